//! What the per-pod limits cost a new flow, measured side by side in one process: four
//! workers, each with a 1M-session table of its own (the limits off; every limit on, none
//! reached; on but the destination share; the destination share alone), take turns, one batch
//! of 64 new flows each, so that whatever else the host runs hits all four alike. Prints ns a
//! new flow per variant (the minimum and quantiles of every batch), and on against off.
//!
//!   cargo run --release -p benches --example fair_share_cost [ROUNDS]   (default 20000)
//!
//! Criterion runs one bench after another, and on this shared VM the host's load moves between
//! them by more than the 10% this is to resolve; taking turns per batch does not.
use benches::testutil::*;
use benches::Batch;
use gateway::nat::{FairLimits, NatConfig, SessionTable};
use gateway::pipeline::{Worker, BATCH};
use gateway::wire::tcp::flags::ACK;

const MAX_SESSIONS: u32 = 1 << 20;

fn pod_frame(remote: u32) -> Vec<u8> {
    let tcp = L4::Tcp {
        src_port: 40000,
        dst_port: 443,
        flags: ACK,
    };
    let inner = ipv4_packet(POD3, remote, 64, true, tcp, &[0; 64]);
    geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner)
}

struct Variant {
    name: &'static str,
    worker: Worker,
    batch: Batch,
    /// ns a new flow, per batch.
    samples: Vec<f64>,
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .map_or(20_000, |a| a.parse().expect("ROUNDS"));
    let tables = seed_tables();
    // Every limit on, none reached: the accounting alone.
    let on = FairLimits {
        pod_sessions: u32::MAX,
        pod_new_flows_per_s: u32::MAX,
        pod_new_flow_burst: u32::MAX,
        pod_destination_share: 99,
    };
    let no_share = FairLimits {
        pod_destination_share: 100,
        ..on
    };
    let share_only = FairLimits {
        pod_destination_share: 99,
        ..FairLimits::NONE
    };
    let mut variants: Vec<Variant> = [
        ("off", FairLimits::NONE),
        ("on", on),
        ("on, no destination share", no_share),
        ("destination share only", share_only),
    ]
    .into_iter()
    .map(|(name, fair)| {
        let table = SessionTable::new(NatConfig {
            max_sessions: MAX_SESSIONS,
            fair,
            ..NatConfig::default()
        });
        table.prefault();
        Variant {
            name,
            worker: Worker::new(table.worker(0)),
            batch: Batch::new(vec![pod_frame(SERVER_IP); BATCH]),
            samples: Vec::with_capacity(rounds as usize),
        }
    })
    .collect();
    let mut now = 1;
    for round in 0..rounds {
        // A fresh remote address per packet, the same ones for every variant.
        let first = 0x0100_0000 + round.wrapping_mul(BATCH as u32);
        let frames: Vec<Vec<u8>> = (0..BATCH as u32).map(|i| pod_frame(first + i)).collect();
        for v in &mut variants {
            if v.worker.nat.live() + BATCH as u32 > MAX_SESSIONS {
                now += 100_000;
                v.worker.nat.expire(now, MAX_SESSIONS as usize);
            }
            let spent = v.batch.run_timed_on(&frames, &mut v.worker, &tables, now);
            assert_eq!(v.batch.transmitted(), BATCH, "every packet a new flow made");
            v.samples.push(spent.as_nanos() as f64 / BATCH as f64);
        }
    }
    println!("ns a new flow, {rounds} batches of {BATCH} each, taking turns");
    let mut off_low = [0.0; 3];
    for v in &mut variants {
        v.samples.sort_by(f64::total_cmp);
        let q = |p: f64| v.samples[((v.samples.len() - 1) as f64 * p) as usize];
        let low = [q(0.0), q(0.1), q(0.5)];
        if v.name == "off" {
            off_low = low;
        }
        println!(
            "{:26} min {:6.1} p10 {:6.1} p25 {:6.1} median {:6.1}   against off: min {:+.1}% p10 {:+.1}% median {:+.1}%",
            v.name,
            low[0],
            low[1],
            q(0.25),
            low[2],
            (low[0] / off_low[0] - 1.0) * 100.0,
            (low[1] / off_low[1] - 1.0) * 100.0,
            (low[2] / off_low[2] - 1.0) * 100.0,
        );
    }
}
