//! The pipeline's established-packet rate with a million sessions against a thousand, side by
//! side: both tables are filled through the pipeline first (pod flows to distinct remotes),
//! then rounds alternate between them. Each batch is 64 random established flows of its
//! table, egress (pod frames) or return (replies to the ports the flows were given), patched
//! from a template untimed; only `process_batch` is timed, as in the criterion pipeline bench.
//! Prints min and median ns per packet and the 1M/1k rate ratios.
//!
//! Random flows cost more than the criterion bench's 64 fixed ones even at 1k sessions: the
//! tables' lines are not all in L1, and the branch predictor cannot learn the batch.
//!
//! `cargo run --release -p benches --example pipeline_scaling`

use benches::testutil::*;
use benches::Batch;
use gateway::nat::{FlowKey, NatConfig, SessionTable, PROTO_TCP};
use gateway::pipeline::{Tables, Worker, BATCH};
use gateway::wire::checksum;
use gateway::wire::tcp::flags::ACK;
use std::time::Duration;

const ROUNDS: usize = 40;
const BATCHES_PER_ROUND: usize = 1000;

fn remote(i: u32) -> u32 {
    0x0100_0000 + i
}

fn pod_frame(i: u32) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port: 40000,
        dst_port: 443,
        flags: ACK,
    };
    let inner = ipv4_packet(POD3, remote(i), 64, true, l4, &[0; 64]);
    geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner)
}

fn reply_frame(i: u32, ext_port: u16) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port: 443,
        dst_port: ext_port,
        flags: ACK,
    };
    external_frame(&ipv4_packet(remote(i), EGRESS_IP, 64, true, l4, &[0; 64]))
}

/// A worker whose table holds `n` established flows, and each flow's egress port.
fn filled(n: u32, tables: &Tables) -> (Worker, Vec<u16>) {
    let table = SessionTable::new(NatConfig {
        max_sessions: n.next_power_of_two(),
        ..NatConfig::default()
    });
    let mut w = Worker::new(table.worker(0));
    let mut batch = Batch::new(vec![pod_frame(0); BATCH]);
    for start in (0..n).step_by(BATCH) {
        let ids = start..(start + BATCH as u32).min(n);
        let mut frames: Vec<_> = ids.map(pod_frame).collect();
        frames.resize(BATCH, pod_frame(start));
        batch.set_templates(frames);
        batch.run(&mut w, tables, 1);
        assert_eq!(batch.transmitted(), BATCH);
    }
    assert_eq!(w.nat.live(), n);
    let t = w.nat.table();
    let ports = (0..n)
        .map(|i| {
            let key = FlowKey {
                src: POD3,
                dst: remote(i),
                src_port: 40000,
                dst_port: 443,
                proto: PROTO_TCP,
            };
            let s = t.lookup_inside(&key, t.hash(&key)).expect("created");
            s.snap.data().ext_port
        })
        .collect();
    (w, ports)
}

/// Where the fields that tell flows apart lie in each direction's frame: the address that
/// varies, its IPv4 header's checksum, the L4 checksum, and (return) the destination port.
struct Shape {
    addr: usize,
    ip_csum: usize,
    l4_csum: usize,
    port: Option<usize>,
}

/// Pod frames: Ethernet, IPv4, UDP, Geneve with OVN's option, Ethernet, then the inner IPv4
/// header at 72 (destination at 88) and TCP at 92.
const EGRESS: Shape = Shape {
    addr: 88,
    ip_csum: 82,
    l4_csum: 108,
    port: None,
};

/// Replies: Ethernet, IPv4 at 14 (source at 26), TCP at 34.
const RETURN: Shape = Shape {
    addr: 26,
    ip_csum: 24,
    l4_csum: 50,
    port: Some(36),
};

/// `template` (flow 0's frame) made flow `i`'s: the remote address (and on return the egress
/// port) rewritten with both checksums updated. Cheap, so batches are built from a template
/// already in cache rather than streamed from a pool of frames that would evict the tables.
fn patch(frame: &mut Vec<u8>, template: &[u8], shape: &Shape, i: u32, port: u16) {
    frame.clear();
    frame.extend_from_slice(template);
    let sum = |f: &[u8], at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    let (old, new) = (remote(0), remote(i));
    let ip_csum = checksum::update32(sum(frame, shape.ip_csum), old, new);
    let mut l4_csum = checksum::update32(sum(frame, shape.l4_csum), old, new);
    frame[shape.addr..shape.addr + 4].copy_from_slice(&new.to_be_bytes());
    if let Some(at) = shape.port {
        l4_csum = checksum::update16(l4_csum, sum(frame, at), port);
        frame[at..at + 2].copy_from_slice(&port.to_be_bytes());
    }
    frame[shape.ip_csum..shape.ip_csum + 2].copy_from_slice(&ip_csum.to_be_bytes());
    frame[shape.l4_csum..shape.l4_csum + 2].copy_from_slice(&l4_csum.to_be_bytes());
}

/// One round: ns per packet over `BATCHES_PER_ROUND` batches of random flows.
fn round(w: &mut Worker, ports: &[u16], tables: &Tables, back: bool, rng: &mut u32) -> f64 {
    let (template, shape) = if back {
        (reply_frame(0, ports[0]), &RETURN)
    } else {
        (pod_frame(0), &EGRESS)
    };
    let mut frames = vec![template.clone(); BATCH];
    let mut batch = Batch::new(frames.clone());
    let mut spent = Duration::ZERO;
    for _ in 0..BATCHES_PER_ROUND {
        for f in &mut frames {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 17;
            *rng ^= *rng << 5;
            let i = *rng % ports.len() as u32;
            patch(f, &template, shape, i, ports[i as usize]);
        }
        spent += batch.run_timed_on(&frames, w, tables, 2);
        assert_eq!(batch.transmitted(), BATCH);
    }
    spent.as_nanos() as f64 / (BATCHES_PER_ROUND * BATCH) as f64
}

/// Flow `i`'s frame built from scratch, to check [`patch`] against.
fn built(i: u32, port: u16, back: bool) -> Vec<u8> {
    if back {
        reply_frame(i, port)
    } else {
        pod_frame(i)
    }
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let tables = seed_tables();
    let mut small = filled(1_000, &tables);
    let mut large = filled(1_000_000, &tables);
    // The patched frames are the frames the test builders make (UDP checksum of the outer
    // header aside: it is zero, so unchanged).
    for (back, shape) in [(false, &EGRESS), (true, &RETURN)] {
        let template = built(0, large.1[0], back);
        for i in [1, 999, 765_432] {
            let mut f = Vec::new();
            patch(&mut f, &template, shape, i, large.1[i as usize]);
            assert_eq!(f, built(i, large.1[i as usize], back), "flow {i}");
        }
    }
    let mut rng = 0x2545_f491u32;
    for (name, back) in [("egress", false), ("return", true)] {
        let (mut s, mut l) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            s.push(round(&mut small.0, &small.1, &tables, back, &mut rng));
            l.push(round(&mut large.0, &large.1, &tables, back, &mut rng));
        }
        let ((smin, smed), (lmin, lmed)) = (stats(s), stats(l));
        println!(
            "{name:<7} 1k: min {smin:.1} ns, median {smed:.1} ns | 1M: min {lmin:.1} ns, median {lmed:.1} ns | 1M rate / 1k rate: {:.0}% (min), {:.0}% (median)",
            100.0 * smin / lmin,
            100.0 * smed / lmed
        );
    }
}
