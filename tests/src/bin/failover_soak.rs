//! Failover figures (issue 16). So far the sync channel's part, two gateways' sync threads
//! over loopback with real session tables:
//! - replication lag: sessions opened at a fixed rate on one gateway, each timed until the
//!   other's table holds it (p50 / p99 / max);
//! - resync: a gateway joining with an empty table, timed until it says it holds the whole
//!   table of its peer (and checked that it does).
//!
//! `cargo run --release -p tests --bin failover_soak -- [--sessions N] [--rate PER_S]
//! [--seconds S]` (defaults 1,000,000, 50,000 and 3). The lab's kills, drains and restarts
//! come with the failover lab.

use gateway::daemon::sync_thread::{self, PeerConfig, SyncConfig, SyncHandle};
use gateway::mailbox::sync_queue::SyncQueue;
use gateway::nat::{FlowKey, NatConfig, NatWorker, SessionTable, TunnelEndpoint, PROTO_TCP};
use gateway::sync::wire::SyncKey;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXT: u32 = 0xc0a8_4264;

fn key(i: u32) -> FlowKey {
    FlowKey {
        src: 0x0a80_0000 | (i >> 8),
        // 64 destinations: a million reply tuples need more than one remote's 64k ports.
        dst: 0xc000_0200 + (i % 64),
        src_port: 30000 + (i & 0xff) as u16,
        dst_port: 443,
        proto: PROTO_TCP,
    }
}

fn create(w: &mut NatWorker, i: u32, now: u32) -> bool {
    let k = key(i);
    let tunnel = TunnelEndpoint {
        node_ip: 0xc0a8_6319,
        vni: 0x00ff_0001,
        ..TunnelEndpoint::default()
    };
    let hash = w.table().hash(&k);
    w.create(k, hash, EXT, &[], tunnel, 0, now).is_ok()
}

/// Faulted in at once, as the daemon does.
fn table(sessions: u32) -> Arc<SessionTable> {
    let t = SessionTable::new(NatConfig {
        max_sessions: 2 * sessions,
        replica_slots: sessions,
        ..NatConfig::default()
    });
    t.prefault();
    t
}

fn start(
    id: u32,
    peer: (u32, SocketAddr),
    socket: std::net::UdpSocket,
    table: Arc<SessionTable>,
    queues: Vec<Arc<SyncQueue>>,
    clock: Instant,
) -> SyncHandle {
    let config = SyncConfig {
        node_id: id,
        peers: vec![PeerConfig {
            id: peer.0,
            address: peer.1,
        }],
        key: SyncKey::new(b"failover soak pre-shared key").unwrap(),
        payload: 1472,
        blocks: None,
        version: gateway::sync::wire::VERSION,
    };
    sync_thread::spawn(socket, config, table, queues, clock).unwrap()
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let sessions = arg("--sessions", 1_000_000) as u32;
    let rate = arg("--rate", 50_000);
    let seconds = arg("--seconds", 3);
    println!("| figure | value |\n|---|---|");
    lag(rate, seconds);
    resync(sessions);
}

/// Sessions opened at `rate` per second for `seconds` on a, each timed until b holds it.
fn lag(rate: u64, seconds: u64) {
    let total = (rate * seconds) as u32;
    let clock = Instant::now();
    let (sa, sb) = (bind(), bind());
    let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    let queue = SyncQueue::new(1 << 16);
    let (ta, tb) = (table(total.max(1024)), table(total.max(1024)));
    let mut wa = ta.worker(0).with_events(queue.clone());
    let a = start(1, (2, ab), sa, Arc::clone(&ta), vec![queue.clone()], clock);
    let b = start(2, (1, aa), sb, Arc::clone(&tb), vec![], clock);
    let t0 = Instant::now();
    while !(a.view().in_sync && b.view().in_sync) {
        assert!(t0.elapsed() < Duration::from_secs(10), "never in sync");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Creation times (ns since `clock`) as the creator publishes them; the checker times
    // every 16th session.
    let created: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let checker = {
        let (created, ta, tb) = (Arc::clone(&created), Arc::clone(&ta), Arc::clone(&tb));
        std::thread::spawn(move || {
            let mut lags = Vec::new();
            let mut missed = 0u32;
            for i in (0..total).step_by(16) {
                let at = loop {
                    let at = created[i as usize].load(Ordering::Acquire);
                    if at != 0 {
                        break at;
                    }
                    std::thread::sleep(Duration::from_micros(20));
                };
                let k = key(i);
                let Some(s) = ta.lookup_inside(&k, ta.hash(&k)) else {
                    missed += 1;
                    continue;
                };
                let o = s.snap.data().outside();
                let deadline = Instant::now() + Duration::from_secs(2);
                while tb.lookup_outside(&o, tb.hash(&o)).is_none() {
                    if Instant::now() > deadline {
                        missed += 1;
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
                let now = clock.elapsed().as_nanos() as u64;
                lags.push(Duration::from_nanos(now.saturating_sub(at)));
            }
            (lags, missed)
        })
    };
    let per_ms = (rate / 1000).max(1) as u32;
    let start = Instant::now();
    let mut i = 0u32;
    while i < total {
        let due = start + Duration::from_micros(u64::from(i / per_ms) * 1000);
        // Sleeping, not spinning: on two cores the sync threads need the CPU.
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for _ in 0..per_ms.min(total - i) {
            create(&mut wa, i, 1);
            created[i as usize].store(clock.elapsed().as_nanos() as u64, Ordering::Release);
            i += 1;
        }
    }
    let offered = f64::from(total) / start.elapsed().as_secs_f64();
    let (mut lags, missed) = checker.join().unwrap();
    lags.sort_unstable();
    println!("| sessions opened on a | {total} at {offered:.0}/s |");
    println!(
        "| replication lag a -> b (every 16th), p50 / p99 / max | {:?} / {:?} / {:?} |",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or_default()
    );
    println!("| not replicated within 2 s | {missed} |");
    println!("| worker queue losses | {} |", queue.lost());
    println!(
        "| records sent / resent | {} / {} |",
        a.counters.records_sent.load(Ordering::Relaxed),
        a.counters.resent.load(Ordering::Relaxed)
    );
}

/// b joins empty while a holds `sessions`: the time until b is in sync, and b's count then.
fn resync(sessions: u32) {
    let clock = Instant::now();
    let ta = table(sessions);
    let mut wa = ta.worker(0);
    let t0 = Instant::now();
    let made = (0..sessions).filter(|&i| create(&mut wa, i, 1)).count();
    let fill = t0.elapsed();
    let (sa, sb) = (bind(), bind());
    let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    let _a = start(1, (2, ab), sa, Arc::clone(&ta), vec![], clock);
    let tb = table(sessions);
    let t1 = Instant::now();
    let b = start(2, (1, aa), sb, Arc::clone(&tb), vec![], clock);
    while !b.view().in_sync {
        assert!(t1.elapsed() < Duration::from_secs(120), "no resync");
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = t1.elapsed();
    let held = tb.check_consistency().expect("consistent");
    println!("| sessions on a (made in {fill:?}) | {made} |");
    println!(
        "| b joins empty: in sync after | {took:?} ({:.0} sessions/s) |",
        made as f64 / took.as_secs_f64()
    );
    println!("| b holds when in sync | {held} |");
    assert_eq!(held, made, "in sync while missing sessions");
}

fn bind() -> std::net::UdpSocket {
    sync_thread::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}
