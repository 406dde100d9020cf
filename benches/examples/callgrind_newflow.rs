//! A fixed workload for `valgrind --tool=callgrind`: 64k new flows (one batch of 64 frames
//! rewritten with fresh remote addresses each round) into a 1M-session table. With
//! `FAIR_SHARE=1`, every per-pod limit on (none reached): what the accounting adds.
use benches::testutil::*;
use benches::Batch;
use gateway::nat::{FairLimits, NatConfig, SessionTable};
use gateway::pipeline::{Worker, BATCH};
use gateway::wire::tcp::flags::SYN;

fn frame(remote: u32) -> Vec<u8> {
    let inner = ipv4_packet(
        POD3,
        remote,
        64,
        true,
        L4::Tcp {
            src_port: 40000,
            dst_port: 443,
            flags: SYN,
        },
        &[],
    );
    geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner)
}

fn main() {
    let tables = seed_tables();
    let fair = match std::env::var("FAIR_SHARE").as_deref() {
        Ok("1") => FairLimits {
            pod_sessions: u32::MAX,
            pod_new_flows_per_s: u32::MAX,
            pod_new_flow_burst: u32::MAX,
            pod_destination_share: 99,
        },
        _ => FairLimits::NONE,
    };
    let mut w = Worker::new(
        SessionTable::new(NatConfig {
            max_sessions: 1 << 20,
            fair,
            ..NatConfig::default()
        })
        .worker(0),
    );
    let mut batch = Batch::new((0..BATCH as u32).map(|i| frame(0x0100_0000 + i)).collect());
    for round in 1..1000u32 {
        batch.set_templates(
            (0..BATCH as u32)
                .map(|i| frame(0x0100_0000 + round * 64 + i))
                .collect(),
        );
        batch.run(&mut w, &tables, 1);
        assert_eq!(batch.transmitted(), BATCH);
    }
}
