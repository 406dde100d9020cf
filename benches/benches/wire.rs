//! `wire/geneve_parse`: the Geneve header with its options, as received from OVN.
//! `wire/frame_parse`: the pipeline's whole validation stage for one tunnel frame.

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
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
