//! A concurrent open-addressing index from a flow hash to a session number.
//!
//! Buckets are one cache line: a control word and seven slots. A slot holds
//! `tag << 32 | (session + 1)` (0 = free), the tag being the hash's low half so most
//! mismatches are rejected without touching the session. The bucket is chosen from the hash's
//! high half (multiply-shift, so any bucket count works and memory follows the session bound).
//!
//! Lookups take no lock and write nothing. They end at the first bucket whose overflow count
//! is zero: the count is raised before an entry is placed beyond its home bucket and lowered
//! after it is removed (F14's scheme), so removal frees a slot outright: no tombstones.
//! Inserts of keys that two workers may race on take the home bucket's lock bit (new flows
//! only; lookups never look at it).

use crate::mem::hugemem::HugeSlice;
use crate::mem::prefetch::prefetch;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Relaxed, SeqCst};

const SLOTS: usize = 7;
const LOCK: u64 = 1;
const OVERFLOW_ONE: u64 = 1 << 8;

/// One cache line of the index. All zero is unlocked, no overflow, empty slots.
#[derive(Debug, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub struct Bucket {
    ctrl: AtomicU64,
    slots: [AtomicU64; SLOTS],
}

/// The index (one for inside keys, one for outside keys).
#[derive(Debug)]
pub struct Index {
    buckets: HugeSlice<Bucket>,
}

/// Held while inserting a key two workers might race on; unlocks on drop.
#[derive(Debug)]
pub struct BucketLock<'a> {
    ctrl: &'a AtomicU64,
}

impl Drop for BucketLock<'_> {
    fn drop(&mut self) {
        self.ctrl.fetch_and(!LOCK, SeqCst);
    }
}

#[inline(always)]
fn tag(hash: u64) -> u64 {
    hash & 0xffff_ffff
}

impl Index {
    /// An index for up to `entries` live entries at a load of at most one half.
    pub fn with_capacity(entries: usize) -> Index {
        let buckets = (entries * 2).div_ceil(SLOTS).max(2);
        Index {
            buckets: HugeSlice::zeroed(buckets),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<Bucket>()
    }

    /// Faults the whole index in now (see `HugeSlice::populate`); false if the kernel refused.
    pub fn populate(&self) -> bool {
        self.buckets.populate()
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (((hash >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Starts fetching the home bucket (batched lookups call this a stage ahead).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        prefetch(&self.buckets[self.home(hash)]);
    }

    /// The first entry in the home bucket whose tag matches: which session to fetch a stage
    /// before the lookup proper confirms it.
    #[inline(always)]
    pub fn candidate(&self, hash: u64) -> Option<u32> {
        let t = tag(hash);
        self.buckets[self.home(hash)].slots.iter().find_map(|s| {
            let v = s.load(Relaxed);
            (v >> 32 == t && v as u32 != 0).then(|| (v as u32).wrapping_sub(1))
        })
    }

    /// The first session whose tag matches and for which `is_match` holds.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            for s in &bucket.slots {
                let v = s.load(SeqCst);
                // An empty slot (0) never matches: live entries hold `idx + 1` in the low half.
                if v >> 32 == t && v as u32 != 0 {
                    let idx = (v as u32).wrapping_sub(1);
                    if is_match(idx) {
                        return Some(idx);
                    }
                }
            }
            if bucket.ctrl.load(SeqCst) < OVERFLOW_ONE {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Takes the lock bit of the key's home bucket. Holders run a few dozen instructions.
    pub fn lock(&self, hash: u64) -> BucketLock<'_> {
        let ctrl = &self.buckets[self.home(hash)].ctrl;
        while ctrl.fetch_or(LOCK, SeqCst) & LOCK != 0 {
            core::hint::spin_loop();
        }
        BucketLock { ctrl }
    }

    /// Places `idx` under `hash`. Returns false only if every slot is taken, which the
    /// session bound rules out (the index is sized for twice the bound).
    pub fn insert(&self, hash: u64, idx: u32) -> bool {
        let value = (tag(hash) << 32) | u64::from(idx + 1);
        let home = self.home(hash);
        let mut b = home;
        for _ in 0..self.buckets.len() {
            for s in &self.buckets[b].slots {
                if s.load(SeqCst) == 0 && s.compare_exchange(0, value, SeqCst, SeqCst).is_ok() {
                    return true;
                }
            }
            // Full: announce the overflow before the entry can appear further on.
            self.buckets[b].ctrl.fetch_add(OVERFLOW_ONE, SeqCst);
            b = self.next(b);
        }
        for bucket in self.buckets.iter() {
            bucket.ctrl.fetch_sub(OVERFLOW_ONE, SeqCst);
        }
        false
    }

    /// Removes the entry for `idx` under `hash`; returns whether it was there.
    pub fn remove(&self, hash: u64, idx: u32) -> bool {
        let value = (tag(hash) << 32) | u64::from(idx + 1);
        let home = self.home(hash);
        let mut b = home;
        for _ in 0..self.buckets.len() {
            for s in &self.buckets[b].slots {
                if s.load(SeqCst) == value && s.compare_exchange(value, 0, SeqCst, SeqCst).is_ok() {
                    self.unwind_overflow(home, b);
                    return true;
                }
            }
            if self.buckets[b].ctrl.load(SeqCst) < OVERFLOW_ONE {
                return false;
            }
            b = self.next(b);
        }
        false
    }

    /// Lowers the overflow counts of the buckets an entry passed, from `home` up to `at`.
    fn unwind_overflow(&self, home: usize, at: usize) {
        let mut b = home;
        while b != at {
            self.buckets[b].ctrl.fetch_sub(OVERFLOW_ONE, SeqCst);
            b = self.next(b);
        }
    }

    /// Live entries (a scan; for tests and stats).
    pub fn len(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|b| b.slots.iter())
            .filter(|s| s.load(SeqCst) != 0)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(core::mem::size_of::<Bucket>(), 64);
    }

    #[test]
    fn insert_find_remove_with_overflow() {
        let idx = Index::with_capacity(14); // 4 buckets
                                            // Same high half: every key has the same home bucket, forcing overflow.
        let hashes: Vec<u64> = (0..20u64).map(|i| (7u64 << 32) | (i + 1)).collect();
        for (i, &h) in hashes.iter().enumerate() {
            assert!(idx.insert(h, i as u32));
        }
        for (i, &h) in hashes.iter().enumerate() {
            assert_eq!(idx.find(h, |s| s == i as u32), Some(i as u32));
        }
        // Remove from the home bucket; the overflowed entries stay reachable.
        for (i, &h) in hashes.iter().enumerate().take(7) {
            assert!(idx.remove(h, i as u32));
        }
        for (i, &h) in hashes.iter().enumerate().skip(7) {
            assert_eq!(idx.find(h, |s| s == i as u32), Some(i as u32));
        }
        for (i, &h) in hashes.iter().enumerate().skip(7) {
            assert!(idx.remove(h, i as u32));
        }
        assert!(idx.is_empty());
        // All overflow counts returned to zero: a miss ends at the home bucket.
        assert!(idx.buckets.iter().all(|b| b.ctrl.load(SeqCst) == 0));
        assert!(!idx.remove(hashes[0], 0));
    }

    #[test]
    fn full_index_refuses() {
        let idx = Index::with_capacity(1); // 2 buckets, 14 slots
        for i in 0..14u32 {
            assert!(idx.insert(u64::from(i) + 1, i));
        }
        let before: Vec<u64> = idx.buckets.iter().map(|b| b.ctrl.load(SeqCst)).collect();
        assert_eq!(before, vec![7 * OVERFLOW_ONE, 0]); // seven entries live past bucket 0
        assert!(!idx.insert(99, 99));
        let after: Vec<u64> = idx.buckets.iter().map(|b| b.ctrl.load(SeqCst)).collect();
        assert_eq!(after, before, "a refused insert leaves no overflow behind");
    }
}
