//! `wire/geneve_parse`: the Geneve header with its options, as received from OVN.
//! `wire/frame_parse`: the pipeline's whole validation stage for one tunnel frame.
//! `sync/encode_batch`, `sync/decode_batch`: one MTU-sized sync message of session upserts
//! (24 of them in 1472 bytes), built and signed, or checked and read; per record.

use benches::testutil::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gateway::nat::{NatConfig, SessionTable};
use gateway::wire::geneve;
use gateway::wire::tcp::flags::ACK;

fn frame() -> Vec<u8> {
    let inner = ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags: ACK,
        },
        &[0; 64],
    );
    geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner)
}

fn bench(c: &mut Criterion) {
    let f = frame();
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    g.bench_function("geneve_parse", |b| {
        b.iter(|| {
            let h = geneve::Header::new_checked(black_box(&f[42..])).unwrap();
            let mut critical_unknown = false;
            let mut ports = None;
            for o in h.options() {
                let o = o.unwrap();
                match o.ovn_ports() {
                    Some(p) => ports = Some(p),
                    None => critical_unknown |= o.is_critical(),
                }
            }
            black_box((
                h.vni(),
                h.protocol(),
                ports,
                critical_unknown,
                h.payload().len(),
            ))
        })
    });
    let tables = seed_tables();
    let table = SessionTable::new(NatConfig {
        max_sessions: 1024,
        ..NatConfig::default()
    });
    g.bench_function("frame_parse", |b| {
        b.iter(|| gateway::pipeline::parse::parse(black_box(&f), &tables, &table).unwrap())
    });
    g.finish();
    sync(c);
}

fn sync(c: &mut Criterion) {
    use gateway::nat::{Entry, FlowKey, SessionData, TunnelEndpoint};
    use gateway::sync::wire::{decode, Encoder, Header, Kind, Record, SyncKey, Upsert};
    let key = SyncKey::new(&[7u8; 32]).unwrap();
    let header = Header {
        kind: Kind::Records,
        sender: 1,
        epoch: 1,
        seq: 1,
        ack: 0,
        highest: 0,
        low_water: 0,
        flags: 0,
        acked_epoch: 0,
    };
    let records: Vec<Record> = (0..64u16)
        .map(|i| {
            Record::Upsert(Upsert {
                session: Entry::V4(SessionData {
                    inside: FlowKey {
                        src: POD3,
                        dst: SERVER_IP,
                        src_port: 40000 + i,
                        dst_port: 80,
                        proto: 6,
                    },
                    ext_ip: EGRESS_IP,
                    ext_port: 1024 + i,
                    tunnel: TunnelEndpoint::default(),
                }),
                tcp_flags: 0,
                age: 0,
            })
        })
        .collect();
    let mut buf = [0u8; 1472];
    let fill = |buf: &mut [u8; 1472]| {
        let mut e = Encoder::new(buf, header).unwrap();
        let mut n = 0u64;
        for r in &records {
            if !e.push(r) {
                break;
            }
            n += 1;
        }
        (n, e.finish(&key).len())
    };
    let (per_message, len) = fill(&mut buf);
    let message = buf[..len].to_vec();
    let mut g = c.benchmark_group("sync");
    g.throughput(Throughput::Elements(per_message));
    g.bench_function("encode_batch", |b| b.iter(|| fill(black_box(&mut buf))));
    g.bench_function("decode_batch", |b| {
        b.iter(|| decode(black_box(&message), &key).unwrap().records().count())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
