//! Whole-pipeline cost per packet, batches of 64 frames as the AF_XDP loop hands them over.
//! The frame bytes are restored before each batch, untimed: only `process_batch` is timed (two
//! clock reads per batch, about half a nanosecond per packet, stay in the figure). The restore
//! stands for the NIC (zero-copy) or the kernel (copy mode) writing the frames, not the
//! pipeline's work. Throughput is per packet.
//! - `pipeline/egress_established`: Geneve from pods, 64 established flows.
//! - `pipeline/return_established`: replies to the egress IP, tunnelled back.
//! - `pipeline/egress_new_flow`: every packet a flow never seen (session + port allocation).
//! - `pipeline/egress_new_flow_replicated`: the same, each new session also queued for the
//!   sync thread (issue 16's replication push).
//! - `pipeline/egress_new_flow_fair_share`: `egress_new_flow` with every per-pod limit on
//!   (issue 19), set so high that none refuses: the accounting's cost alone.
//! - `pipeline/egress_established_v6`, `pipeline/return_established_v6`,
//!   `pipeline/egress_new_flow_v6`: the same with IPv6 pod packets (issue 17), in Geneve over
//!   the IPv4 underlay, and IPv6 replies.
//! - `pipeline/egress_established_v6_underlay6`, `pipeline/return_established_v6_underlay6`:
//!   the IPv6 established benches on the IPv6 underlay (Geneve over IPv6; the return path
//!   writes an outer IPv6 header and computes the outer UDP checksum).

use benches::testutil::*;
use benches::Batch;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gateway::mailbox::sync_queue::SyncQueue;
use gateway::nat::{FairLimits, NatConfig, SessionTable};
use gateway::pipeline::{Worker, BATCH};
use gateway::wire::tcp::flags::ACK;
use std::sync::Arc;
use std::time::Duration;

const PAYLOAD: usize = 64;

fn pod_frame(pod: u32, remote: u32, sport: u16) -> Vec<u8> {
    let inner = ipv4_packet(
        pod,
        remote,
        64,
        true,
        L4::Tcp {
            src_port: sport,
            dst_port: 443,
            flags: ACK,
        },
        &[0; PAYLOAD],
    );
    geneve_frame(NODE3_IP, NODE3_MAC, 50000 ^ sport, &inner)
}

/// The underlay a pod's Geneve comes over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Underlay {
    V4,
    V6,
}

fn pod_frame_v6(pod: u128, remote: u128, sport: u16) -> Vec<u8> {
    pod_frame_v6_over(Underlay::V4, pod, remote, sport)
}

fn pod_frame_v6_over(underlay: Underlay, pod: u128, remote: u128, sport: u16) -> Vec<u8> {
    let inner = ipv6_packet(
        pod,
        remote,
        64,
        L4::Tcp {
            src_port: sport,
            dst_port: 443,
            flags: ACK,
        },
        &[0; PAYLOAD],
    );
    match underlay {
        Underlay::V4 => geneve_frame(NODE3_IP, NODE3_MAC, 50000 ^ sport, &inner),
        Underlay::V6 => geneve6_frame(NODE3_V6, NODE3_MAC, 50000 ^ sport, &inner),
    }
}

/// A pod packet of `family` from the seed's pod to remote number `remote`.
fn pod_frame_of(family: Family, remote: u32, sport: u16) -> Vec<u8> {
    match family {
        Family::V4 => pod_frame(POD3, remote, sport),
        Family::V6 => pod_frame_v6(POD3_V6, SERVER_V6 + u128::from(remote), sport),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

fn worker(max: u32) -> Worker {
    Worker::new(
        SessionTable::new(NatConfig {
            max_sessions: max,
            max_sessions_v6: max,
            ..NatConfig::default()
        })
        .worker(0),
    )
}

/// The established benches for IPv6 over `underlay`: 64 flows made once, then their packets
/// out and their replies back; the ids end in `suffix`.
fn established_v6(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    tables: &gateway::pipeline::Tables,
    underlay: Underlay,
    suffix: &str,
) {
    let mut w = worker(1 << 16);
    let mut egress = Batch::new(
        (0..BATCH as u16)
            .map(|i| pod_frame_v6_over(underlay, POD3_V6, SERVER_V6, 10_000 + i))
            .collect(),
    );
    egress.run(&mut w, tables, 1);
    assert_eq!(egress.transmitted(), BATCH);
    g.bench_function(format!("egress_established_v6{suffix}"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| egress.run_timed(&mut w, tables, 2))
                .sum()
        })
    });
    // The replies, to the ports the flows were given (read back from the translated frames).
    let replies = (0..BATCH as u16)
        .map(|i| {
            let out = egress.output(usize::from(i));
            let ext_port = u16::from_be_bytes([out[54], out[55]]);
            external_frame(&ipv6_packet(
                SERVER_V6,
                EGRESS_V6,
                64,
                L4::Tcp {
                    src_port: 443,
                    dst_port: ext_port,
                    flags: ACK,
                },
                &[0; PAYLOAD],
            ))
        })
        .collect();
    let mut back = Batch::new(replies);
    back.run(&mut w, tables, 2);
    assert_eq!(back.transmitted(), BATCH);
    g.bench_function(format!("return_established_v6{suffix}"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| back.run_timed(&mut w, tables, 3)).sum())
    });
}

fn bench(c: &mut Criterion) {
    let tables = seed_tables_dual();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));

    // Established: create the 64 sessions once, then measure.
    let mut w = worker(1 << 16);
    let mut egress = Batch::new(
        (0..BATCH as u16)
            .map(|i| pod_frame(POD3, SERVER_IP, 10_000 + i))
            .collect(),
    );
    egress.run(&mut w, &tables, 1);
    assert_eq!(egress.transmitted(), BATCH);
    g.bench_function("egress_established", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| egress.run_timed(&mut w, &tables, 2))
                .sum()
        })
    });

    // Replies to those 64 flows, addressed to the ports they were given.
    let sessions = w.nat.table().live_sessions();
    let replies = sessions
        .iter()
        .map(|s| {
            let d = s.snap.data();
            external_frame(&ipv4_packet(
                SERVER_IP,
                EGRESS_IP,
                64,
                true,
                L4::Tcp {
                    src_port: 443,
                    dst_port: d.ext_port,
                    flags: ACK,
                },
                &[0; PAYLOAD],
            ))
        })
        .collect();
    let mut back = Batch::new(replies);
    back.run(&mut w, &tables, 2);
    assert_eq!(back.transmitted(), BATCH);
    g.bench_function("return_established", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| back.run_timed(&mut w, &tables, 3)).sum())
    });

    // New flows, without and with replication (issue 16: the worker hands each new session
    // to the sync thread's queue; the queue is drained untimed, as the sync thread on its own
    // core does).
    new_flow(
        &mut g,
        "egress_new_flow",
        &tables,
        None,
        FairLimits::NONE,
        Family::V4,
    );
    new_flow(
        &mut g,
        "egress_new_flow_replicated",
        &tables,
        Some(SyncQueue::new(1 << 16)),
        FairLimits::NONE,
        Family::V4,
    );
    let never = FairLimits {
        pod_sessions: u32::MAX,
        pod_new_flows_per_s: u32::MAX,
        pod_new_flow_burst: u32::MAX,
        pod_destination_share: 99,
    };
    new_flow(
        &mut g,
        "egress_new_flow_fair_share",
        &tables,
        None,
        never,
        Family::V4,
    );
    established_v6(&mut g, &tables, Underlay::V4, "");
    established_v6(&mut g, &seed_tables_underlay6(), Underlay::V6, "_underlay6");
    new_flow(
        &mut g,
        "egress_new_flow_v6",
        &tables,
        None,
        FairLimits::NONE,
        Family::V6,
    );
    g.finish();
}

/// A fresh remote address per packet; the table is emptied (untimed) when full.
fn new_flow(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    tables: &gateway::pipeline::Tables,
    queue: Option<Arc<SyncQueue>>,
    fair: FairLimits,
    family: Family,
) {
    const MAX: u32 = 1 << 20;
    let table = SessionTable::new(NatConfig {
        max_sessions: MAX,
        max_sessions_v6: if family == Family::V6 { MAX } else { 0 },
        fair,
        ..NatConfig::default()
    });
    // As the daemon runs it: resident from the start, so no 2 MiB first-touch fault lands
    // inside a timed batch.
    table.prefault();
    let mut nat = table.worker(0);
    if let Some(q) = &queue {
        nat = nat.with_events(q.clone());
    }
    let mut w = Worker::new(nat);
    let mut newflow = Batch::new(
        (0..BATCH as u16)
            .map(|i| pod_frame_of(family, SERVER_IP, i))
            .collect(),
    );
    let mut drained = Vec::with_capacity(1 << 16);
    let mut next = 0u32;
    let mut now = 1u32;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                if w.nat.live() + BATCH as u32 > MAX {
                    now += 100_000;
                    w.nat.expire(now, MAX as usize);
                }
                if let Some(q) = &queue {
                    drained.clear();
                    q.drain_into(&mut drained, usize::MAX);
                }
                newflow.set_templates(
                    (0..BATCH as u32)
                        .map(|i| pod_frame_of(family, 0x0100_0000 + next + i, 40000))
                        .collect(),
                );
                next = next.wrapping_add(BATCH as u32);
                spent += newflow.run_timed(&mut w, tables, now);
                assert_eq!(newflow.transmitted(), BATCH, "every packet a new flow made");
            }
            spent
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
