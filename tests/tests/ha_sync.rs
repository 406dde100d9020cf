//! Session replication between two gateways' sync threads over loopback UDP, with real
//! session tables and real workers' queues (no namespaces: the channel is plain UDP).
//! Issue 16: creates, TCP state changes and deletes reach the peer; a restarted peer is
//! resynced whole before it says it is in sync; foreign and forged datagrams are counted
//! drops. IPv6 sessions replicate the same way, in their own replica slots.

use gateway::daemon::sync_thread::{self, PeerConfig, SyncConfig, SyncHandle};
use gateway::mailbox::published::Published;
use gateway::mailbox::sync_queue::SyncQueue;
use gateway::nat::blocks::{BlockPlan, Ownership, PortBlocks};
use gateway::nat::{
    Entry, FlowKey, FlowKey6, NatConfig, NatWorker, NewSession6, SessionTable, TunnelEndpoint,
    PROTO_TCP,
};
use gateway::sync::wire::{SyncDrop, SyncKey, VERSION};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXT: u32 = 0xc0a8_4264;
const KEY: &[u8] = b"a pre-shared key of the gateway set";

fn table() -> Arc<SessionTable> {
    SessionTable::new(NatConfig {
        max_sessions: 1 << 16,
        replica_slots: 1 << 15,
        max_sessions_v6: 1 << 13,
        replica_slots_v6: 1 << 12,
        ..NatConfig::default()
    })
}

fn key(i: u32) -> FlowKey {
    FlowKey {
        src: 0x0a80_0000 | (i >> 8),
        dst: 0xc0a8_370d,
        src_port: 30000 + (i & 0xff) as u16,
        dst_port: 80,
        proto: PROTO_TCP,
    }
}

fn create(w: &mut NatWorker, i: u32, now: u32) {
    let k = key(i);
    let tunnel = TunnelEndpoint {
        node_ip: 0xc0a8_6319,
        vni: 0x00ff_0001,
        ..TunnelEndpoint::default()
    };
    let hash = w.table().hash(&k);
    w.create(k, hash, EXT, &[], tunnel, 0, now)
        .expect("created");
}

const EXT6: u128 = 0xfd00_0066_0000_0000_0000_0000_0000_0100;

fn key6(i: u32) -> FlowKey6 {
    FlowKey6 {
        src: 0xfd00_0010_0133_0000_0000_0000_0000_0000 | u128::from(i >> 8),
        dst: 0xfd00_0055_0000_0000_0000_0000_0000_0013,
        src_port: 30000 + (i & 0xff) as u16,
        dst_port: 80,
        proto: PROTO_TCP,
    }
}

fn create6(w: &mut NatWorker, i: u32, now: u32) {
    create6_from(
        w,
        i,
        now,
        TunnelEndpoint {
            node_ip: 0xc0a8_6319,
            vni: 0x00ff_0001,
            ..TunnelEndpoint::default()
        },
    );
}

/// IPv6 session `i` of a pod whose node is on the IPv6 underlay (fd00:99::25).
fn create6_underlay6(w: &mut NatWorker, i: u32, now: u32) {
    create6_from(
        w,
        i,
        now,
        TunnelEndpoint {
            vni: 0x00ff_0001,
            node_ip6: 0xfd00_0099_0000_0000_0000_0000_0000_0025,
            ..TunnelEndpoint::default()
        },
    );
}

fn create6_from(w: &mut NatWorker, i: u32, now: u32, tunnel: TunnelEndpoint) {
    let k = key6(i);
    let inside_hash = w.table().hash6(&k);
    w.create6(NewSession6 {
        inside: k,
        inside_hash,
        ext_ip: EXT6,
        reserved: &[],
        tunnel,
        flags: 0,
        now,
    })
    .expect("created");
}

/// How many of IPv6 sessions `0..n` of `from` `t` holds, found by their reply tuple, with
/// the same translation and tunnel.
fn held6(t: &SessionTable, from: &SessionTable, n: u32) -> u32 {
    (0..n)
        .filter(|&i| {
            let k = key6(i);
            let Some(mine) = from.lookup_inside6(&k, from.hash6(&k)) else {
                return false;
            };
            let o = mine.snap.data().outside();
            t.lookup_outside6(&o, t.hash6(&o))
                .is_some_and(|r| r.snap.data() == mine.snap.data())
        })
        .count() as u32
}

/// Polls `cond` every millisecond until it holds or `limit` passes.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// How many of sessions `0..n` `t` holds, found by their reply tuple.
fn held(t: &SessionTable, n: u32, port_of: impl Fn(u32) -> Option<FlowKey>) -> u32 {
    (0..n)
        .filter(|&i| port_of(i).is_some_and(|o| t.lookup_outside(&o, t.hash(&o)).is_some()))
        .count() as u32
}

struct Node {
    table: Arc<SessionTable>,
    sync: SyncHandle,
}

fn start(
    id: u32,
    socket: UdpSocket,
    peer: (u32, SocketAddr),
    table: Arc<SessionTable>,
    queues: Vec<Arc<SyncQueue>>,
    clock: Instant,
) -> Node {
    start_speaking(VERSION, id, socket, peer, table, queues, clock)
}

/// [`start`] for a member that speaks protocol versions up to `version` (an older one
/// stands in for a member not yet upgraded).
fn start_speaking(
    version: u8,
    id: u32,
    socket: UdpSocket,
    peer: (u32, SocketAddr),
    table: Arc<SessionTable>,
    queues: Vec<Arc<SyncQueue>>,
    clock: Instant,
) -> Node {
    let config = SyncConfig {
        node_id: id,
        peers: vec![PeerConfig {
            id: peer.0,
            address: peer.1,
        }],
        key: SyncKey::new(KEY).unwrap(),
        payload: 1472,
        // Alone at first: every block of 1024-65535 is this node's until it hears the peer.
        blocks: Some(Published::new(PortBlocks {
            ownership: Ownership::compute(BlockPlan::new(1024..=65535, 64).unwrap(), &[id], 0),
            me: id,
            addresses: vec![(1, [127, 0, 0, 1].into()), (2, [127, 0, 0, 2].into())],
        })),
        version,
    };
    let sync = sync_thread::spawn(socket, config, Arc::clone(&table), queues, clock).unwrap();
    Node { table, sync }
}

fn bound() -> UdpSocket {
    sync_thread::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Two gateways: a, whose worker reports to the sync thread and holds sessions `0..before`
/// from its start, and b, with an empty table.
struct Pair {
    a: Node,
    b: Node,
    ta: Arc<SessionTable>,
    wa: NatWorker,
    queue: Arc<SyncQueue>,
    addrs: (SocketAddr, SocketAddr),
    clock: Instant,
}

fn pair(before: u32) -> Pair {
    let clock = Instant::now();
    let (sa, sb) = (bound(), bound());
    let addrs = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    let queue = SyncQueue::new(1 << 16);
    let ta = table();
    let mut wa = ta.worker(0).with_events(queue.clone());
    for i in 0..before {
        create(&mut wa, i, 1);
    }
    let a = start(
        1,
        sa,
        (2, addrs.1),
        Arc::clone(&ta),
        vec![queue.clone()],
        clock,
    );
    let b = start(2, sb, (1, addrs.0), table(), vec![], clock);
    Pair {
        a,
        b,
        ta,
        wa,
        queue,
        addrs,
        clock,
    }
}

#[test]
fn ha_sync_replicates_creates_state_changes_and_deletes() {
    let Pair {
        a,
        b,
        ta,
        mut wa,
        queue,
        ..
    } = pair(0);
    assert!(
        wait_for(Duration::from_secs(5), || a.sync.view().in_sync
            && b.sync.view().in_sync)
        .is_some(),
        "both in sync: {:?} {:?}",
        a.sync.view(),
        b.sync.view()
    );
    let n = 2000;
    let t0 = Instant::now();
    for i in 0..n {
        create(&mut wa, i, 5);
    }
    let outside = |i: u32| {
        let k = key(i);
        ta.lookup_inside(&k, ta.hash(&k))
            .map(|s| s.snap.data().outside())
    };
    let took = wait_for(Duration::from_secs(5), || held(&b.table, n, outside) == n)
        .unwrap_or_else(|| panic!("b holds {} of {n}", held(&b.table, n, outside)));
    eprintln!(
        "{n} sessions replicated in {:?} after the first create ({:?} to create them)",
        took,
        t0.elapsed() - took
    );
    // Everything came across intact: the translation and the tunnel back.
    let k = key(7);
    let mine = ta.lookup_inside(&k, ta.hash(&k)).unwrap().snap.data();
    let theirs = b.table.lookup_inside(&k, b.table.hash(&k)).unwrap();
    assert_eq!(theirs.snap.data(), mine);
    assert!(b.table.replica_slots().contains(&theirs.idx));
    // A TCP state change.
    let s = ta.lookup_inside(&k, ta.hash(&k)).unwrap();
    assert!(ta.touch(&s, 6, |f| f | 0x03));
    wa.state_changed(s.idx, s.snap.generation);
    assert!(wait_for(Duration::from_secs(2), || {
        b.table
            .lookup_inside(&k, b.table.hash(&k))
            .is_some_and(|r| r.snap.state.flags == s.snap.state.flags | 0x03)
    })
    .is_some());
    // Deletes: a flush of half of them.
    let gone = wa.flush(|e| matches!(e, Entry::V4(d) if d.inside.src_port % 2 == 0));
    assert_eq!(gone, n as usize / 2);
    assert!(
        wait_for(Duration::from_secs(2), || {
            b.table.check_consistency() == Ok(n as usize - gone)
        })
        .is_some(),
        "b holds {:?}",
        b.table.check_consistency()
    );
    assert_eq!(queue.lost(), 0);
    let cb = &b.sync.counters;
    assert_eq!(cb.conflicts.load(Relaxed), 0);
    assert!(cb.installed.load(Relaxed) >= u64::from(n));
}

#[test]
fn ha_sync_a_restarted_peer_holds_every_session_before_it_is_in_sync() {
    let n = 20_000;
    let Pair {
        a,
        b,
        ta,
        addrs: (aa, ab),
        clock,
        ..
    } = pair(n);
    let outside = |i: u32| {
        let k = key(i);
        ta.lookup_inside(&k, ta.hash(&k))
            .map(|s| s.snap.data().outside())
    };
    // Joining: b is in sync only once it holds all of a's table.
    wait_for(Duration::from_secs(10), || b.sync.view().in_sync).expect("b in sync");
    assert_eq!(held(&b.table, n, outside), n);
    // b restarts with an empty table on the same address; a still runs.
    drop(b);
    let b2 = start(
        2,
        UdpSocket::bind(ab).unwrap(),
        (1, aa),
        table(),
        vec![],
        clock,
    );
    let t0 = Instant::now();
    let mut seen_partial_in_sync = false;
    let took = wait_for(Duration::from_secs(10), || {
        let in_sync = b2.sync.view().in_sync;
        let count = held(&b2.table, n, outside);
        seen_partial_in_sync |= in_sync && count < n;
        in_sync
    })
    .expect("b resynced");
    assert!(!seen_partial_in_sync, "in sync while sessions were missing");
    assert_eq!(held(&b2.table, n, outside), n);
    eprintln!(
        "{n} sessions resynced in {took:?} ({:?} since restart)",
        t0.elapsed()
    );
    assert!(a.sync.counters.bulk_records.load(Relaxed) >= 2 * u64::from(n));
}

#[test]
fn ha_sync_foreign_and_forged_datagrams_are_counted_drops() {
    let clock = Instant::now();
    let (sa, forger) = (bound(), bound());
    let aa = sa.local_addr().unwrap();
    // The forger's address is a's configured peer, but it does not hold the key.
    let a = start(
        1,
        sa,
        (2, forger.local_addr().unwrap()),
        table(),
        vec![],
        clock,
    );
    let stranger = bound();
    stranger.send_to(&[0u8; 100], aa).unwrap();
    let mut forged = vec![0u8; 120];
    forged[0..2].copy_from_slice(&0x4547u16.to_be_bytes());
    forger.send_to(&forged, aa).unwrap();
    forger.send_to(&[1, 2, 3], aa).unwrap();
    let c = &a.sync.counters;
    let bad_mac = SyncDrop::ALL
        .iter()
        .position(|d| *d == SyncDrop::BadMac)
        .unwrap();
    let short = SyncDrop::ALL
        .iter()
        .position(|d| *d == SyncDrop::Short)
        .unwrap();
    assert!(wait_for(Duration::from_secs(2), || {
        c.unknown_peer.load(Relaxed) == 1
            && c.drops[bad_mac].load(Relaxed) == 1
            && c.drops[short].load(Relaxed) == 1
            && !a.sync.view().peers.is_empty()
    })
    .is_some());
    assert_eq!(c.messages_received.load(Relaxed), 0);
    assert!(!a.sync.view().peers[0].alive);
}

/// A peer that stops is declared dead within DEAD_AFTER (300 ms) of its last word, and its
/// port blocks become this node's; its return brings a bulk resend, both ends back in sync
/// and its blocks back to it.
#[test]
fn ha_sync_a_silent_peer_is_declared_dead_and_welcomed_back() {
    let Pair {
        a,
        b,
        addrs: (aa, ab),
        clock,
        ..
    } = pair(0);
    let alive = |n: &Node| n.sync.view().peers.first().is_some_and(|p| p.alive);
    wait_for(Duration::from_secs(5), || alive(&a) && alive(&b)).expect("both alive");
    // Both hold the same split of the 1008 blocks, about half each.
    let split = |n: &Node| {
        let v = n.sync.view();
        (v.blocks, v.peers[0].blocks)
    };
    wait_for(Duration::from_secs(1), || split(&a).0 + split(&a).1 == 1008).expect("a split");
    let (mine, theirs) = split(&a);
    assert!((400..=608).contains(&mine), "{mine} of 1008");
    assert_eq!(split(&b), (theirs, mine));
    // Silent: as a crash.
    b.sync.halt();
    let t0 = Instant::now();
    let took = wait_for(Duration::from_secs(2), || !alive(&a)).expect("declared dead");
    eprintln!("silence declared death {took:?} after the peer stopped");
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "not before it fell silent"
    );
    // Alone, a is in sync (nobody holds sessions it lacks) and owns every block.
    assert!(a.sync.view().in_sync);
    wait_for(Duration::from_secs(1), || split(&a) == (1008, 0)).expect("b's blocks taken");
    let b2 = start(
        2,
        UdpSocket::bind(ab).unwrap(),
        (1, aa),
        table(),
        vec![],
        clock,
    );
    wait_for(Duration::from_secs(5), || {
        alive(&a) && a.sync.view().in_sync && b2.sync.view().in_sync
    })
    .expect("back in sync");
    assert!(!a.sync.view().peers[0].bulk_to);
    wait_for(Duration::from_secs(1), || split(&a) == (mine, theirs)).expect("b's blocks back");
}

/// A planned stop (`SyncHandle::stop`, on SIGTERM) first delivers what the workers made last,
/// then tells the peer it leaves: the peer holds every session, sessions made in the last
/// moment included, and takes the stopped node's blocks at once, not after the dead interval.
#[test]
fn ha_sync_a_planned_stop_delivers_the_last_sessions_and_leaves_at_once() {
    let Pair {
        a,
        b,
        ta,
        mut wa,
        queue,
        ..
    } = pair(0);
    wait_for(Duration::from_secs(5), || {
        a.sync.view().in_sync && b.sync.view().in_sync && b.sync.view().peers[0].blocks > 0
    })
    .expect("both in sync");
    let n = 5000;
    for i in 0..n {
        create(&mut wa, i, 5);
    }
    // At once: most of these are still in the worker's queue or in flight.
    let t0 = Instant::now();
    a.sync.stop();
    let stopping = t0.elapsed();
    let gone = wait_for(Duration::from_secs(1), || {
        !b.sync.view().peers[0].alive && b.sync.view().blocks == 1008
    })
    .expect("a left");
    eprintln!("stop took {stopping:?}; b saw a leave {gone:?} after that");
    assert!(
        gone < Duration::from_millis(100),
        "{gone:?}: the peer waited for the dead interval"
    );
    let outside = |i: u32| {
        let k = key(i);
        ta.lookup_inside(&k, ta.hash(&k))
            .map(|s| s.snap.data().outside())
    };
    assert_eq!(held(&b.table, n, outside), n, "sessions lost in the stop");
    assert_eq!(queue.lost(), 0);
}

/// A drained member (`SyncHandle::set_draining`, what `egressctl drain` ends in) hands its
/// blocks to the member that serves, which is told within a turn, while the stream between
/// them goes on: the drained node's state changes and new sessions still replicate, and
/// undrained it takes its share back.
#[test]
fn ha_sync_a_drained_member_hands_its_blocks_over_and_keeps_replicating() {
    let Pair {
        a,
        b,
        ta,
        mut wa,
        queue,
        ..
    } = pair(0);
    let split = |n: &Node| {
        let v = n.sync.view();
        (v.blocks, v.peers[0].blocks)
    };
    wait_for(Duration::from_secs(5), || {
        a.sync.view().in_sync && b.sync.view().in_sync && split(&a).1 > 0 && split(&b).1 > 0
    })
    .expect("both in sync, blocks split");
    let (mine, theirs) = split(&a);
    a.sync.set_draining(true);
    let took = wait_for(Duration::from_secs(1), || {
        split(&b) == (1008, 0) && split(&a) == (0, 1008)
    })
    .expect("a's blocks handed to b");
    eprintln!("blocks handed over {took:?} after the drain");
    assert!(took < Duration::from_millis(100), "{took:?}: not at once");
    let (va, vb) = (a.sync.view(), b.sync.view());
    assert!(va.draining && vb.peers[0].draining && !vb.draining);
    assert!(vb.peers[0].alive && va.peers[0].alive, "the stream goes on");
    // What the drained node still carries replicates.
    for i in 0..100 {
        create(&mut wa, i, 5);
    }
    let outside = |i: u32| {
        let k = key(i);
        ta.lookup_inside(&k, ta.hash(&k))
            .map(|s| s.snap.data().outside())
    };
    wait_for(Duration::from_secs(2), || {
        held(&b.table, 100, outside) == 100
    })
    .expect("the drained node's sessions reach the peer");
    a.sync.set_draining(false);
    wait_for(Duration::from_secs(1), || {
        split(&a) == (mine, theirs) && split(&b) == (theirs, mine)
    })
    .expect("a's share back");
    assert!(!b.sync.view().peers[0].draining);
    // Both drained: the set keeps its ports rather than owning none.
    a.sync.set_draining(true);
    b.sync.set_draining(true);
    wait_for(Duration::from_secs(1), || {
        split(&a) == (mine, theirs)
            && b.sync.view().peers[0].draining
            && a.sync.view().peers[0].draining
    })
    .expect("both drained, blocks kept");
    assert_eq!(queue.lost(), 0);
}

#[test]
fn ha_sync_ipv6_sessions_replicate_and_resync_in_their_own_slots() {
    let Pair {
        a,
        b,
        ta,
        mut wa,
        queue,
        addrs: (aa, ab),
        clock,
    } = pair(0);
    wait_for(Duration::from_secs(5), || {
        a.sync.view().in_sync && b.sync.view().in_sync
    })
    .expect("both in sync");
    // IPv6 and IPv4 sessions in one stream.
    let n = 1000;
    for i in 0..n {
        create6(&mut wa, i, 5);
        create(&mut wa, i, 5);
    }
    let outside = |i: u32| {
        let k = key(i);
        ta.lookup_inside(&k, ta.hash(&k))
            .map(|s| s.snap.data().outside())
    };
    wait_for(Duration::from_secs(5), || {
        held6(&b.table, &ta, n) == n && held(&b.table, n, outside) == n
    })
    .unwrap_or_else(|| panic!("b holds {} of {n} IPv6 sessions", held6(&b.table, &ta, n)));
    let k = key6(7);
    let theirs = b.table.lookup_inside6(&k, b.table.hash6(&k)).unwrap();
    assert!(b.table.replica_slots6().contains(&theirs.idx));
    // A TCP state change.
    let s = ta.lookup_inside6(&k, ta.hash6(&k)).unwrap();
    assert!(ta.touch_slot6(s.idx, s.snap.generation, 6, |f| f | 0x03));
    wa.state_changed(s.idx, s.snap.generation);
    wait_for(Duration::from_secs(2), || {
        b.table
            .lookup_inside6(&k, b.table.hash6(&k))
            .is_some_and(|r| r.snap.state.flags == s.snap.state.flags | 0x03)
    })
    .expect("the state change replicated");
    // Deletes: every IPv6 session of an even port flushed.
    let gone = wa.flush(|e| matches!(e, Entry::V6(d) if d.inside.src_port % 2 == 0));
    assert_eq!(gone, n as usize / 2);
    wait_for(Duration::from_secs(2), || {
        b.table.check_consistency() == Ok(2 * n as usize - gone)
    })
    .unwrap_or_else(|| panic!("b holds {:?}", b.table.check_consistency()));
    assert_eq!(queue.lost(), 0);
    assert_eq!(b.sync.counters.conflicts.load(Relaxed), 0);
    // b restarts empty: the bulk resend carries the IPv6 sessions too, before it is in sync.
    drop(b);
    let b2 = start(
        2,
        UdpSocket::bind(ab).unwrap(),
        (1, aa),
        table(),
        vec![],
        clock,
    );
    wait_for(Duration::from_secs(10), || b2.sync.view().in_sync).expect("b resynced");
    assert_eq!(held6(&b2.table, &ta, n), n - gone as u32);
    assert_eq!(held(&b2.table, n, outside), n);
    assert_eq!(b2.table.check_consistency(), Ok(2 * n as usize - gone));
}

/// A rolling upgrade: a member of version 2 and one still of version 1. The new member hears
/// the old one speak version 1 and speaks it back: their IPv4 sessions replicate both ways
/// (a joining old member is resynced whole), its IPv6 sessions stay home, counted, and
/// nothing is dropped as another version once they have heard each other.
#[test]
fn ha_sync_a_member_of_version_2_speaks_version_1_to_one_not_yet_upgraded() {
    let clock = Instant::now();
    let (sa, sb) = (bound(), bound());
    let addrs = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    let queue = SyncQueue::new(1 << 16);
    let ta = table();
    let mut wa = ta.worker(0).with_events(queue.clone());
    // Sessions of both families before the old member joins: its bulk carries IPv4 alone.
    for i in 0..100 {
        create(&mut wa, i, 1);
        create6(&mut wa, i, 1);
    }
    let a = start(
        1,
        sa,
        (2, addrs.1),
        Arc::clone(&ta),
        vec![queue.clone()],
        clock,
    );
    let old_queue = SyncQueue::new(1 << 16);
    let tb = table();
    let mut wb = tb.worker(0).with_events(old_queue.clone());
    let b = start_speaking(
        1,
        2,
        sb,
        (1, addrs.0),
        Arc::clone(&tb),
        vec![old_queue],
        clock,
    );
    wait_for(Duration::from_secs(10), || {
        a.sync.view().in_sync && b.sync.view().in_sync
    })
    .unwrap_or_else(|| panic!("in sync: {:?} {:?}", a.sync.view(), b.sync.view()));
    let outside_a = |i: u32| {
        let k = key(i);
        ta.lookup_inside(&k, ta.hash(&k))
            .map(|s| s.snap.data().outside())
    };
    assert_eq!(
        held(&tb, 100, outside_a),
        100,
        "the old member holds the IPv4 ones"
    );
    // New sessions on both sides after they have heard each other.
    for i in 100..200 {
        create(&mut wa, i, 5);
        create6(&mut wa, i, 5);
    }
    for i in 1000..1100 {
        create(&mut wb, i, 5);
    }
    // The old member's own sessions (it holds a's too).
    let outside_b = |i: u32| {
        let k = key(i);
        (i >= 1000)
            .then(|| tb.lookup_inside(&k, tb.hash(&k)))
            .flatten()
            .map(|s| s.snap.data().outside())
    };
    wait_for(Duration::from_secs(5), || {
        held(&tb, 200, outside_a) == 200 && held(&ta, 1100, outside_b) == 100
    })
    .unwrap_or_else(|| {
        panic!(
            "the old member holds {} of 200, the new one {} of 100",
            held(&tb, 200, outside_a),
            held(&ta, 1100, outside_b)
        )
    });
    assert_eq!(
        held6(&tb, &ta, 200),
        0,
        "no IPv6 session reached the old member"
    );
    assert!(a.sync.counters.ipv6_unsent.load(Relaxed) >= 200);
    // Version 2 reached the old member only before it was heard from, if at all; it sent
    // none, and the new member refused nothing.
    let bad = |n: &Node| {
        let i = SyncDrop::ALL
            .iter()
            .position(|d| *d == SyncDrop::BadVersion)
            .unwrap();
        n.sync.counters.drops[i].load(Relaxed)
    };
    assert_eq!(bad(&a), 0);
    let before = bad(&b);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bad(&b), before, "version 2 still sent to the old member");
    assert_eq!(queue.lost(), 0);
}

/// A set on the IPv6 underlay: the channel runs over IPv6 (here `::1`), and sessions from
/// nodes on the IPv6 underlay reach the peer with their node's IPv6 address (version 3).
/// A peer still of version 2 gets the set's other sessions, while these stay home, counted.
#[test]
fn ha_sync_over_ipv6_the_ipv6_underlays_sessions_replicate_with_their_node() {
    for peer_version in [VERSION, 2] {
        let clock = Instant::now();
        let bind6 = || sync_thread::bind("[::1]:0".parse().unwrap()).unwrap();
        let (sa, sb) = (bind6(), bind6());
        let addrs = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
        let queue = SyncQueue::new(1 << 16);
        let ta = table();
        let mut wa = ta.worker(0).with_events(queue.clone());
        let a = start(
            1,
            sa,
            (2, addrs.1),
            Arc::clone(&ta),
            vec![queue.clone()],
            clock,
        );
        let b = start_speaking(peer_version, 2, sb, (1, addrs.0), table(), vec![], clock);
        wait_for(Duration::from_secs(10), || {
            a.sync.view().in_sync && b.sync.view().in_sync
        })
        .unwrap_or_else(|| panic!("in sync: {:?} {:?}", a.sync.view(), b.sync.view()));
        // 100 sessions from the IPv6 underlay, then 100 from the IPv4 one.
        for i in 0..100 {
            create6_underlay6(&mut wa, i, 5);
        }
        for i in 100..200 {
            create6(&mut wa, i, 5);
        }
        let from_ipv4 = |t: &SessionTable| {
            (100..200)
                .filter(|&i| held6(t, &ta, i + 1) > held6(t, &ta, i))
                .count()
        };
        wait_for(Duration::from_secs(5), || from_ipv4(&b.table) == 100)
            .unwrap_or_else(|| panic!("b holds {} of 100", from_ipv4(&b.table)));
        if peer_version >= 3 {
            wait_for(Duration::from_secs(5), || held6(&b.table, &ta, 100) == 100)
                .unwrap_or_else(|| panic!("b holds {} of 100", held6(&b.table, &ta, 100)));
            let k = key6(7);
            let r = b.table.lookup_inside6(&k, b.table.hash6(&k)).unwrap();
            assert_eq!(r.snap.data().tunnel.node().to_string(), "fd00:99::25");
            assert_eq!(a.sync.counters.underlay6_unsent.load(Relaxed), 0);
        } else {
            assert_eq!(held6(&b.table, &ta, 100), 0, "version 2 cannot carry them");
            assert_eq!(a.sync.counters.underlay6_unsent.load(Relaxed), 100);
            assert_eq!(a.sync.counters.ipv6_unsent.load(Relaxed), 0);
        }
        assert_eq!(queue.lost(), 0);
    }
}
