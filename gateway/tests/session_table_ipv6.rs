//! IPv6 sessions in the shared session table (issue 17, item 2): the same properties as IPv4
//! (endpoint-dependent ports from the worker's pool, per-worker slots, lock-free lookups both
//! ways, TCP state and timeouts, a bound that is a counted refusal), two cache lines each in
//! slots of their own, beside IPv4 sessions in the same indexes without either family ever
//! finding the other's.

use gateway::drop::DropReason;
use gateway::nat::tcp::flag;
use gateway::nat::{
    Entry, FlowKey, FlowKey6, NatConfig, NatWorker, NewSession6, SessionRef6, SessionTable,
    TunnelEndpoint, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Barrier};

const EXT6: u128 = 0xfd00_0066_0000_0000_0000_0000_0000_0100;
const EXT4: u32 = 0xc0a8_4264;

fn config(v4: u32, v6: u32, workers: u16) -> NatConfig {
    NatConfig {
        max_sessions: v4,
        max_sessions_v6: v6,
        workers,
        port_range: 1024..=65535,
        ..NatConfig::default()
    }
}

fn flow6(pod: u32, port: u16, proto: u8) -> FlowKey6 {
    FlowKey6 {
        src: 0xfd00_0133_u128 << 96 | u128::from(pod),
        dst: 0x2001_0db8_0055_u128 << 80 | 0xd,
        src_port: port,
        dst_port: if proto == PROTO_ICMPV6 { port } else { 443 },
        proto,
    }
}

fn create6(
    t: &SessionTable,
    w: &mut NatWorker,
    k: FlowKey6,
    flags: u8,
    now: u32,
) -> Result<SessionRef6, DropReason> {
    w.create6(NewSession6 {
        inside: k,
        inside_hash: t.hash6(&k),
        ext_ip: EXT6,
        reserved: &[],
        tunnel: TunnelEndpoint {
            node_ip: 0xc0a8_6319,
            vni: 0xff0003,
            ..TunnelEndpoint::default()
        },
        flags,
        now,
    })
}

#[test]
fn ipv6_sessions_are_found_both_ways_touched_expired_and_flushed() {
    let t = SessionTable::new(config(64, 64, 1));
    let mut w = t.worker(0);
    let k = flow6(3, 40000, PROTO_TCP);
    let s = create6(&t, &mut w, k, flag::SYN_OUT, 10).unwrap();
    let d = s.snap.data();
    assert_eq!((d.inside, d.ext_ip), (k, EXT6));
    assert!(w.ports().contains(d.ext_port));
    assert!(s.idx >= 64, "IPv6 slots follow the IPv4 ones: {}", s.idx);
    let (hk, o) = (t.hash6(&k), d.outside());
    let ho = t.hash6(&o);
    assert_eq!(t.lookup_inside6(&k, hk).map(|r| r.idx), Some(s.idx));
    assert_eq!(t.lookup_outside6(&o, ho).map(|r| r.idx), Some(s.idx));
    // The prefetch stage's candidate is the session; right, wrong and no hints all find it.
    assert_eq!(t.prefetch_session6(true, hk), Some(s.idx));
    assert_eq!(t.prefetch_session6(false, ho), Some(s.idx));
    for hint in [Some(s.idx), Some(3), Some(100), Some(u32::MAX), None] {
        let b = t.lookup_binding6_hinted(&k, hk, hint).unwrap();
        assert_eq!(
            (b.0, b.1.ext_ip(), b.1.ext_port()),
            (s.idx, EXT6, d.ext_port)
        );
        assert_eq!(
            t.lookup_outside6_hinted(&o, ho, hint).map(|r| r.idx),
            Some(s.idx)
        );
    }
    // Creating it again returns the same session.
    assert_eq!(create6(&t, &mut w, k, 0, 11).unwrap().idx, s.idx);
    assert_eq!(w.live(), 1);
    // Transitory until the reply's SYN: 240 s, then established: 7440 s.
    assert_eq!(w.expire(249, 256), 0);
    assert!(t.touch_slot6(s.idx, s.snap.generation, 100, |f| f | flag::SYN_IN));
    assert_eq!(w.expire(100 + 7439, 256), 0);
    assert_eq!(w.expire(100 + 7440, 256), 1);
    assert!(t.lookup_inside6(&k, hk).is_none() && t.lookup_outside6(&o, ho).is_none());
    // ICMPv6 echo keeps ICMP's 60 s.
    let echo = create6(&t, &mut w, flow6(4, 77, PROTO_ICMPV6), 0, 1000).unwrap();
    let eo = echo.snap.data().outside();
    assert_eq!(eo.src_port, echo.snap.data().ext_port);
    assert_eq!(w.expire(1059, 256), 0);
    assert_eq!(w.expire(1060, 256), 1);
    // A flush takes IPv6 sessions by protocol; a filter on IPv4 addresses leaves them.
    for i in 0..4 {
        create6(&t, &mut w, flow6(i, 1000, PROTO_UDP), 0, 2000).unwrap();
    }
    assert_eq!(w.flush(|e| matches!(e, Entry::V4(_))), 0);
    assert_eq!(
        w.flush(|e| matches!(e, Entry::V6(d) if d.inside.src & 1 == 1)),
        2
    );
    assert_eq!(t.check_consistency(), Ok(2));
    assert_eq!(w.live(), 2);
}

#[test]
fn each_family_has_its_own_bound_and_finds_only_its_own_sessions() {
    let t = SessionTable::new(config(4, 2, 1));
    let mut w = t.worker(0);
    for i in 0..2 {
        create6(&t, &mut w, flow6(i, 5000, PROTO_UDP), 0, 0).unwrap();
    }
    assert_eq!(
        create6(&t, &mut w, flow6(9, 5000, PROTO_UDP), 0, 0).map(|_| ()),
        Err(DropReason::SessionTableFull)
    );
    // The IPv4 slots are untouched by the IPv6 ones.
    for i in 0..4 {
        let k = FlowKey {
            src: 0x0a85_0000 | i,
            dst: 0xc0a8_370d,
            src_port: 5000,
            dst_port: 443,
            proto: PROTO_UDP,
        };
        let s = w
            .create(k, t.hash(&k), EXT4, &[], TunnelEndpoint::default(), 0, 0)
            .unwrap();
        assert!(s.idx < 4);
        // The IPv6 index never answers an IPv4 key's slot, nor the other way round.
        assert!(t
            .lookup_binding6_hinted(&flow6(i, 5000, PROTO_UDP), 0, Some(s.idx))
            .is_none());
    }
    assert_eq!(t.check_consistency(), Ok(6));
    // Without IPv6 slots (the daemon today), IPv6 flows are a counted refusal.
    let t = SessionTable::new(config(4, 0, 1));
    let mut w = t.worker(0);
    assert_eq!(
        create6(&t, &mut w, flow6(1, 1, PROTO_TCP), 0, 0).map(|_| ()),
        Err(DropReason::SessionTableFull)
    );
}

#[test]
fn the_memory_of_an_ipv6_session() {
    // Two cache lines and its two index entries (the IPv4 figure, docs/measurements.md, is
    // the same table without them).
    let n = 1u32 << 16;
    let both = SessionTable::new(config(n, n, 1)).memory_bytes();
    let v4 = SessionTable::new(config(n, 0, 1)).memory_bytes();
    let per6 = (both - v4) as f64 / f64::from(n);
    println!("memory per IPv6 session: {per6:.1} bytes");
    assert!((128.0..=192.0).contains(&per6), "{per6}");
}

/// Every thread races to create the same IPv6 pod flows; replies are looked up on threads
/// other than the creator's. No flow gets two sessions, no two share a reply tuple.
#[test]
fn racing_creators_of_ipv6_flows_agree() {
    const WORKERS: u16 = 4;
    const FLOWS: u32 = 8000;
    // Room for every flow in each worker's share: one thread may make them all.
    let t = SessionTable::new(config(1 << 12, 1 << 15, WORKERS));
    let barrier = Arc::new(Barrier::new(usize::from(WORKERS)));
    let seen: Vec<HashMap<FlowKey6, u32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|id| {
                let (t, barrier) = (Arc::clone(&t), Arc::clone(&barrier));
                scope.spawn(move || {
                    let mut w = t.worker(id);
                    let mut seen = HashMap::new();
                    barrier.wait();
                    for n in 0..FLOWS {
                        let i = (n * [1, 3, 7, 11][usize::from(id)]) % FLOWS;
                        let k = flow6(i % 256, 10_000 + (i / 256) as u16, PROTO_TCP);
                        let s = match t.lookup_inside6(&k, t.hash6(&k)) {
                            Some(s) => s,
                            None => create6(&t, &mut w, k, 0, 1).expect("room"),
                        };
                        seen.insert(k, s.idx);
                    }
                    seen
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, idx) in &seen[0] {
        assert!(seen.iter().all(|m| m[k] == *idx), "{k:?} made twice");
        let s = t.lookup_inside6(k, t.hash6(k)).unwrap();
        let o = s.snap.data().outside();
        assert_eq!(
            t.lookup_outside6(&o, t.hash6(&o)).map(|r| r.idx),
            Some(*idx)
        );
    }
    assert_eq!(t.check_consistency(), Ok(FLOWS as usize));
}

proptest! {
    /// Flows of both families, made and expired in any order with colliding ports and low
    /// address bits: each family's lookups find exactly its own sessions, the indexes hold
    /// each once both ways, and every slot comes back when all have expired.
    #[test]
    fn both_families_side_by_side(ops in prop::collection::vec((any::<bool>(), 0u32..24, 0u16..6, any::<bool>()), 1..200)) {
        let t = SessionTable::new(config(64, 64, 1));
        let mut w = t.worker(0);
        let mut now = 0;
        let mut made4: HashMap<FlowKey, u32> = HashMap::new();
        let mut made6: HashMap<FlowKey6, u32> = HashMap::new();
        for (v6, pod, port, expire) in ops {
            now += 1;
            if expire {
                // UDP's 300 s, all at once.
                now += 300;
                w.expire(now, 1024);
                made4.clear();
                made6.clear();
                continue;
            }
            if v6 {
                let k = flow6(pod, port, PROTO_UDP);
                let s = create6(&t, &mut w, k, 0, now).unwrap();
                prop_assert_eq!(*made6.entry(k).or_insert(s.idx), s.idx);
                // An IPv4 lookup walking the IPv6 session's bucket passes over it.
                let v4 = FlowKey { src: pod, ..FlowKey::default() };
                let crossed = t.lookup_inside(&v4, t.hash6(&k));
                prop_assert!(crossed.is_none());
            } else {
                let k = FlowKey { src: pod, dst: 0xd, src_port: port, dst_port: 443, proto: PROTO_UDP };
                let s = w.create(k, t.hash(&k), EXT4, &[], TunnelEndpoint::default(), 0, now).unwrap();
                prop_assert_eq!(*made4.entry(k).or_insert(s.idx), s.idx);
            }
            prop_assert_eq!(t.check_consistency(), Ok(made4.len() + made6.len()));
            for (k, idx) in &made6 {
                prop_assert_eq!(t.lookup_inside6(k, t.hash6(k)).map(|r| r.idx), Some(*idx));
                prop_assert!(*idx >= 64);
            }
            for (k, idx) in &made4 {
                prop_assert_eq!(t.lookup_inside(k, t.hash(k)).map(|r| r.idx), Some(*idx));
                prop_assert!(*idx < 64);
            }
        }
        w.expire(now + 301, 1024);
        prop_assert_eq!(w.live(), 0);
        prop_assert_eq!(t.check_consistency(), Ok(0));
        prop_assert_eq!(t.index_entries(), (0, 0));
    }
}

/// IPv6 pods are held to the per-pod limits as IPv4 pods are: one over its sessions is
/// refused its new flows alone; when its sessions expire it may open more.
#[test]
fn an_ipv6_pod_over_its_session_limit_is_refused_and_the_others_are_not() {
    let t = SessionTable::new(NatConfig {
        fair: gateway::nat::FairLimits {
            pod_sessions: 3,
            ..gateway::nat::FairLimits::NONE
        },
        ..config(64, 64, 1)
    });
    let mut w = t.worker(0);
    for port in 0..3 {
        create6(&t, &mut w, flow6(1, 1000 + port, PROTO_UDP), 0, 10).unwrap();
    }
    assert_eq!(
        create6(&t, &mut w, flow6(1, 2000, PROTO_UDP), 0, 10).map(|_| ()),
        Err(DropReason::PodSessionLimit)
    );
    // Its existing flows are found as before; another IPv6 pod and an IPv4 pod go on.
    let known = flow6(1, 1000, PROTO_UDP);
    assert!(t.lookup_inside6(&known, t.hash6(&known)).is_some());
    create6(&t, &mut w, flow6(2, 2000, PROTO_UDP), 0, 11).unwrap();
    let k = FlowKey {
        src: 1,
        dst: 2,
        src_port: 3,
        dst_port: 4,
        proto: PROTO_UDP,
    };
    w.create(k, t.hash(&k), EXT4, &[], TunnelEndpoint::default(), 0, 11)
        .unwrap();
    // UDP's 300 s later all are gone, and the pod's account with them.
    assert_eq!(w.expire(400, 1024), 5);
    for port in 0..3 {
        create6(&t, &mut w, flow6(1, 3000 + port, PROTO_UDP), 0, 400).unwrap();
    }
}
