//! Several workers create, look up and expire sessions at once: replies are looked up on other
//! threads than the creator, and every thread races to create the same pod flows.
//! Afterwards no session is lost, duplicated, or holds an external tuple another holds.

use gateway::nat::{FlowKey, NatConfig, SessionTable, TunnelEndpoint, PROTO_TCP, PROTO_UDP};
use std::collections::HashMap;
use std::sync::{Arc, Barrier};

const WORKERS: u16 = 4;
const FLOWS: u32 = 20_000;
const EXT: u32 = 0xc0a8_4264;

fn flow(i: u32) -> FlowKey {
    FlowKey {
        src: 0x0a80_0000 | (i % 512),
        dst: 0xc0a8_3700 | (i % 7),
        src_port: 10_000 + (i / 512) as u16,
        dst_port: 80,
        proto: if i.is_multiple_of(3) {
            PROTO_UDP
        } else {
            PROTO_TCP
        },
    }
}

/// Each thread walks all flows in its own order: lookup, create on miss. Returns what it saw.
fn race_to_create(
    table: &Arc<SessionTable>,
    id: u16,
    barrier: &Barrier,
) -> HashMap<FlowKey, (u32, u32, u16)> {
    let mut w = table.worker(id);
    let mut seen = HashMap::new();
    barrier.wait();
    for n in 0..FLOWS {
        // Different strides per thread so they collide on different flows at different times.
        let i = (n * [1, 3, 7, 11][usize::from(id)]) % FLOWS; // strides coprime to FLOWS
        let k = flow(i);
        let h = table.hash(&k);
        let s = match table.lookup_inside(&k, h) {
            Some(s) => s,
            None => w
                .create(k, h, EXT, &[], TunnelEndpoint::default(), 0, 1)
                .expect("capacity is ample"),
        };
        seen.insert(k, (s.idx, s.snap.generation, s.snap.data().ext_port));
    }
    // Replies: every flow's outside tuple is found, whoever created it.
    for n in 0..FLOWS {
        let k = flow(n);
        let s = table
            .lookup_inside(&k, table.hash(&k))
            .expect("inside lost");
        let o = s.snap.data().outside();
        let r = table
            .lookup_outside(&o, table.hash(&o))
            .expect("outside lost");
        assert_eq!(r.idx, s.idx);
    }
    seen
}

#[test]
fn racing_creators_agree_and_replies_are_found_on_any_thread() {
    // Slots are split per worker, and on a busy machine one thread may win the race for
    // nearly every flow: each worker needs room for all of them.
    let table = SessionTable::new(NatConfig {
        max_sessions: u32::from(WORKERS) * (FLOWS + FLOWS / 4),
        workers: WORKERS,
        ..NatConfig::default()
    });
    let barrier = Arc::new(Barrier::new(usize::from(WORKERS)));
    let handles: Vec<_> = (0..WORKERS)
        .map(|id| {
            let (t, b) = (Arc::clone(&table), Arc::clone(&barrier));
            std::thread::spawn(move || race_to_create(&t, id, &b))
        })
        .collect();
    let views: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Every thread saw the same session for every flow: no duplicates.
    for k in (0..FLOWS).map(flow) {
        let first = views[0][&k];
        assert!(
            views.iter().all(|v| v[&k] == first),
            "threads disagree on {k:?}"
        );
    }
    assert_eq!(table.check_consistency(), Ok(FLOWS as usize));
}

#[test]
fn create_lookup_and_expire_concurrently() {
    let table = SessionTable::new(NatConfig {
        max_sessions: 16_000,
        workers: WORKERS,
        ..NatConfig::default()
    });
    let barrier = Arc::new(Barrier::new(usize::from(WORKERS)));
    let handles: Vec<_> = (0..WORKERS)
        .map(|id| {
            let (t, b) = (Arc::clone(&table), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut w = t.worker(id);
                let mut lookups_ok = 0u64;
                b.wait();
                // Time advances one second per round; UDP flows idle past 300 s expire while
                // other threads create and look up. Each round touches a sliding window of flows.
                for now in 0..900u32 {
                    for j in 0..40 {
                        let i = (now * 13 + j * 7 + u32::from(id) * 101) % FLOWS;
                        let k = flow(i);
                        let h = t.hash(&k);
                        let s = match t.lookup_inside(&k, h) {
                            Some(s) => s,
                            None => {
                                match w.create(k, h, EXT, &[], TunnelEndpoint::default(), 0, now) {
                                    Ok(s) => s,
                                    Err(_) => continue,
                                }
                            }
                        };
                        t.touch(&s, now, |f| f);
                        // The reply side, from this thread whoever created it.
                        let o = s.snap.data().outside();
                        if let Some(r) = t.lookup_outside(&o, t.hash(&o)) {
                            assert_eq!(r.snap.data().inside, k, "reply mapped to another flow");
                            lookups_ok += 1;
                        }
                    }
                    w.expire(now, 200);
                }
                b.wait();
                (w, lookups_ok)
            })
        })
        .collect();
    let mut workers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(workers.iter().all(|(_, ok)| *ok > 0));
    let live = table
        .check_consistency()
        .expect("consistent after the race");
    assert_eq!(
        live as u32,
        workers.iter().map(|(w, _)| w.live()).sum::<u32>()
    );
    // Far in the future everything expires and the indexes empty out: no leaked entries.
    for (w, _) in &mut workers {
        w.expire(1_000_000, 16_000);
    }
    assert_eq!(table.check_consistency(), Ok(0));
}
