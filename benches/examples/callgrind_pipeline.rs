//! A fixed workload for `valgrind --tool=callgrind`: instruction counts per stage of the
//! established egress and return paths (this VM has no hardware counters).
//!
//! With `time` after the direction it times instead, for comparing two builds on a noisy host:
//! 100 chunks of 2000 batches, `process_batch` alone as in the criterion bench, and prints the
//! fastest chunk's and the median chunk's ns per packet (other tenants only ever add time, so
//! the fastest chunk is the figure least disturbed by them).
use benches::testutil::*;
use benches::Batch;
use gateway::nat::{NatConfig, SessionTable};
use gateway::pipeline::{Worker, BATCH};
use gateway::wire::tcp::flags::ACK;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_default();
    let tables = seed_tables();
    let mut w = Worker::new(
        SessionTable::new(NatConfig {
            max_sessions: 1 << 16,
            ..NatConfig::default()
        })
        .worker(0),
    );
    let frames = (0..BATCH as u16)
        .map(|i| {
            let inner = ipv4_packet(
                POD3,
                SERVER_IP,
                64,
                true,
                L4::Tcp {
                    src_port: 10_000 + i,
                    dst_port: 443,
                    flags: ACK,
                },
                &[0; 64],
            );
            geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner)
        })
        .collect();
    let mut egress = Batch::new(frames);
    egress.run(&mut w, &tables, 1);
    let replies = w
        .nat
        .table()
        .live_sessions()
        .iter()
        .map(|s| {
            let l4 = L4::Tcp {
                src_port: 443,
                dst_port: s.snap.data().ext_port,
                flags: ACK,
            };
            external_frame(&ipv4_packet(SERVER_IP, EGRESS_IP, 64, true, l4, &[0; 64]))
        })
        .collect();
    let mut back = Batch::new(replies);
    if std::env::args().nth(2).as_deref() == Some("time") {
        let batch = if dir == "return" {
            &mut back
        } else {
            &mut egress
        };
        let mut chunks: Vec<f64> = (0..100)
            .map(|_| {
                let spent: std::time::Duration =
                    (0..2000).map(|_| batch.run_timed(&mut w, &tables, 2)).sum();
                spent.as_nanos() as f64 / (2000 * BATCH) as f64
            })
            .collect();
        chunks.sort_by(f64::total_cmp);
        println!("{dir} min {:.1} median {:.1}", chunks[0], chunks[50]);
        return;
    }
    for _ in 0..1000 {
        if dir == "return" {
            back.run(&mut w, &tables, 2);
        } else {
            egress.run(&mut w, &tables, 2);
        }
    }
    assert_eq!(egress.transmitted(), BATCH);
}
