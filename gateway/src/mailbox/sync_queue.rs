//! Workers' session changes on their way to the sync thread: one bounded lock-free queue
//! per worker (crossbeam's `ArrayQueue`). A worker never waits on it: when the queue is
//! full the event is counted as lost and the worker goes on; the sync thread's periodic
//! scan of the tables sends the session's current state later.

use crate::nat::{InsideKey, SessionEvents};
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A change to one session, as a worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncEvent {
    /// A session was made, or its TCP state changed: the sync thread reads its current
    /// state from slot `slot` if the slot still holds generation `generation`.
    Upsert { slot: u32, generation: u32 },
    /// A session expired or was flushed.
    Delete { inside: InsideKey },
}

/// Both ends of one worker's queue.
#[derive(Debug)]
pub struct SyncQueue {
    events: ArrayQueue<SyncEvent>,
    lost: AtomicU64,
}

impl SyncQueue {
    pub fn new(capacity: usize) -> Arc<SyncQueue> {
        Arc::new(SyncQueue {
            events: ArrayQueue::new(capacity.max(1)),
            lost: AtomicU64::new(0),
        })
    }

    /// The worker's end: never blocks; false (and counted) when the queue is full.
    #[inline]
    pub fn push(&self, event: SyncEvent) -> bool {
        if self.events.push(event).is_ok() {
            return true;
        }
        // Only the owning worker writes it; relaxed is enough for a counter.
        self.lost.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// The sync thread's end: at most `max` events into `out`.
    pub fn drain_into(&self, out: &mut Vec<SyncEvent>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(e) = self.events.pop() else { break };
            out.push(e);
            n += 1;
        }
        n
    }

    /// Events dropped because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// A worker's session changes go straight onto its queue.
impl SessionEvents for SyncQueue {
    #[inline]
    fn upsert(&self, slot: u32, generation: u32) {
        self.push(SyncEvent::Upsert { slot, generation });
    }

    #[inline]
    fn delete(&self, inside: InsideKey) {
        self.push(SyncEvent::Delete { inside });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_counts_the_loss_and_keeps_what_it_has() {
        let q = SyncQueue::new(2);
        assert!(q.push(SyncEvent::Upsert {
            slot: 1,
            generation: 1
        }));
        assert!(q.push(SyncEvent::Upsert {
            slot: 2,
            generation: 1
        }));
        assert!(!q.push(SyncEvent::Upsert {
            slot: 3,
            generation: 1
        }));
        assert_eq!(q.lost(), 1);
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, 64), 2);
        assert_eq!(
            out[0],
            SyncEvent::Upsert {
                slot: 1,
                generation: 1
            }
        );
        assert!(q.is_empty());
        assert!(q.push(SyncEvent::Upsert {
            slot: 3,
            generation: 1
        }));
    }

    #[test]
    fn events_cross_threads_in_order() {
        let q = SyncQueue::new(1024);
        let producer = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for slot in 0..10_000u32 {
                    while !q.push(SyncEvent::Upsert {
                        slot,
                        generation: 0,
                    }) {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut out = Vec::new();
        while out.len() < 10_000 {
            if q.drain_into(&mut out, 64) == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        for (i, e) in out.iter().enumerate() {
            assert_eq!(
                *e,
                SyncEvent::Upsert {
                    slot: i as u32,
                    generation: 0
                }
            );
        }
    }
}
