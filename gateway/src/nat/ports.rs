//! External port ranges: this node's slice of each egress IP's ports, split per worker, so
//! no two workers (and, with per-node slices, no two nodes) can hand out the same external
//! tuple and allocation needs no coordination.

use core::ops::Range;

/// The ports one worker allocates from, with a rotating start point.
#[derive(Debug, Clone)]
pub struct PortPool {
    range: Range<u16>,
    cursor: u16,
}

impl PortPool {
    /// Worker `worker` of `workers` gets an equal share of `node_range` (the last takes the rest).
    pub fn for_worker(node_range: Range<u16>, worker: u16, workers: u16) -> PortPool {
        let len = u32::from(node_range.end - node_range.start);
        let share = len / u32::from(workers);
        let lo = u32::from(node_range.start) + share * u32::from(worker);
        let hi = if worker + 1 == workers {
            u32::from(node_range.end)
        } else {
            lo + share
        };
        PortPool {
            range: lo as u16..hi as u16,
            cursor: lo as u16,
        }
    }

    pub fn range(&self) -> Range<u16> {
        self.range.clone()
    }

    pub fn len(&self) -> usize {
        self.range.len()
    }

    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The candidates in order from the cursor, wrapping once; `is_free` picks the first usable.
    /// At most `max_tries` are tested (kernel NAT bounds its search the same way).
    pub fn allocate(
        &mut self,
        max_tries: usize,
        mut is_free: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        if self.range.is_empty() {
            return None;
        }
        let mut p = self.cursor;
        for _ in 0..self.range.len().min(max_tries) {
            let candidate = p;
            p = if p + 1 >= self.range.end {
                self.range.start
            } else {
                p + 1
            };
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
            .map(|w| PortPool::for_worker(1024..65535, w, 3))
            .collect();
        assert_eq!(pools[0].range().start, 1024);
        assert_eq!(pools[2].range().end, 65535);
        for w in 0..2 {
            assert_eq!(pools[w].range().end, pools[w + 1].range().start);
        }
        assert_eq!(pools.iter().map(|p| p.len()).sum::<usize>(), 65535 - 1024);
    }

    #[test]
    fn allocation_rotates_and_reports_exhaustion() {
        let mut pool = PortPool::for_worker(100..104, 0, 1);
        let mut used = std::collections::HashSet::new();
        for _ in 0..4 {
            let p = pool.allocate(16, |p| !used.contains(&p)).unwrap();
            assert!(used.insert(p));
        }
        assert_eq!(pool.allocate(16, |p| !used.contains(&p)), None);
        used.remove(&102);
        assert_eq!(pool.allocate(16, |p| !used.contains(&p)), Some(102));
    }
}
