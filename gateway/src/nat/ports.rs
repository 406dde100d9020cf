//! External port ranges: this node's slice of each egress IP's ports, split per worker, so
//! no two workers (and, with per-node slices, no two nodes) can hand out the same external
//! tuple and allocation needs no coordination.

use core::ops::RangeInclusive;

/// The ports one worker allocates from, with a rotating start point.
#[derive(Debug, Clone)]
pub struct PortPool {
    first: u16,
    last: u16,
    cursor: u16,
}

impl PortPool {
    /// Worker `worker` of `workers` gets an equal share of `node_range` (the last takes the
    /// rest). A share of nothing (more workers than ports) is an empty pool.
    pub fn for_worker(node_range: RangeInclusive<u16>, worker: u16, workers: u16) -> PortPool {
        let (start, end) = (
            u32::from(*node_range.start()),
            u32::from(*node_range.end()) + 1,
        );
        let share = end.saturating_sub(start) / u32::from(workers.max(1));
        let lo = start + share * u32::from(worker);
        let hi = if worker + 1 == workers {
            end
        } else {
            lo + share
        };
        if hi <= lo {
            return PortPool::empty();
        }
        PortPool {
            first: lo as u16,
            last: (hi - 1) as u16,
            cursor: lo as u16,
        }
    }

    /// A pool with no ports (the replica handle allocates none).
    pub fn empty() -> PortPool {
        PortPool {
            first: 1,
            last: 0,
            cursor: 1,
        }
    }

    pub fn range(&self) -> RangeInclusive<u16> {
        self.first..=self.last
    }

    pub fn len(&self) -> usize {
        (usize::from(self.last) + 1).saturating_sub(usize::from(self.first))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The port the `nth` next allocation would try first (a guess for prefetching: ports in
    /// use are skipped at allocation).
    #[inline]
    pub fn peek(&self, nth: u32) -> u16 {
        let len = self.len() as u32;
        if len == 0 {
            return self.first;
        }
        let off = (u32::from(self.cursor.saturating_sub(self.first)) + nth) % len;
        (u32::from(self.first) + off) as u16
    }

    /// The candidates in order from the cursor, wrapping once; `is_free` picks the first usable.
    /// At most `max_tries` are tested (kernel NAT bounds its search the same way).
    pub fn allocate(
        &mut self,
        max_tries: usize,
        mut is_free: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let mut p = self.cursor;
        for _ in 0..self.len().min(max_tries) {
            let candidate = p;
            p = if p >= self.last { self.first } else { p + 1 };
            if is_free(candidate) {
                self.cursor = p;
                return Some(candidate);
            }
        }
        self.cursor = p;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_disjoint_and_cover_the_range() {
        let pools: Vec<_> = (0..3)
            .map(|w| PortPool::for_worker(1024..=65535, w, 3))
            .collect();
        assert_eq!(*pools[0].range().start(), 1024);
        assert_eq!(*pools[2].range().end(), 65535);
        for w in 0..2 {
            assert_eq!(*pools[w].range().end() + 1, *pools[w + 1].range().start());
        }
        assert_eq!(pools.iter().map(|p| p.len()).sum::<usize>(), 65536 - 1024);
    }

    #[test]
    fn allocation_rotates_wraps_and_reports_exhaustion() {
        let mut pool = PortPool::for_worker(65532..=65535, 0, 1);
        let mut used = std::collections::HashSet::new();
        for _ in 0..4 {
            let p = pool.allocate(16, |p| !used.contains(&p)).unwrap();
            assert!(used.insert(p));
        }
        assert!(used.contains(&65535));
        assert_eq!(pool.allocate(16, |p| !used.contains(&p)), None);
        used.remove(&65534);
        assert_eq!(pool.allocate(16, |p| !used.contains(&p)), Some(65534));
    }

    #[test]
    fn peek_names_the_ports_allocation_hands_out_next() {
        let mut pool = PortPool::for_worker(65530..=65535, 0, 1);
        pool.allocate(16, |p| p == 65531).unwrap();
        let peeked: Vec<u16> = (0..8).map(|n| pool.peek(n)).collect();
        let given: Vec<u16> = (0..8)
            .map(|_| pool.allocate(16, |_| true).unwrap())
            .collect();
        assert_eq!(peeked, given);
        assert_eq!(given[..5], [65532, 65533, 65534, 65535, 65530]);
        assert_eq!(PortPool::for_worker(100..=101, 0, 3).peek(5), 1);
    }

    #[test]
    fn more_workers_than_ports_leaves_empty_pools() {
        let mut first = PortPool::for_worker(100..=101, 0, 3);
        assert!(first.is_empty());
        assert_eq!(first.allocate(8, |_| true), None);
        // The last worker takes the remainder.
        assert_eq!(PortPool::for_worker(100..=101, 2, 3).range(), 100..=101);
    }
}
