//! External port ranges: this node's slice of each egress IP's ports, split per worker, so
//! no two workers (and, with per-node slices, no two nodes) can hand out the same external
//! tuple and allocation needs no coordination.

use core::ops::RangeInclusive;

/// The ports one worker allocates from: equal spans (one contiguous share, or the port
/// blocks this worker holds), walked from a rotating cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPool {
    /// First port of each span, ascending.
    starts: Vec<u16>,
    /// Ports in each span.
    span: u32,
    /// Position of the next candidate, in `0..len()`.
    cursor: u32,
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
            starts: vec![lo as u16],
            span: hi - lo,
            cursor: 0,
        }
    }

    /// The ports of `blocks` (block numbers of `plan`, any order): a worker's share of its
    /// node's blocks. The cursor starts at the first block's first port.
    pub fn for_blocks(plan: &super::blocks::BlockPlan, blocks: &[u16]) -> PortPool {
        let mut starts: Vec<u16> = blocks
            .iter()
            .filter(|&&b| b < plan.blocks())
            .map(|&b| *plan.ports(b).start())
            .collect();
        starts.sort_unstable();
        starts.dedup();
        PortPool {
            span: if starts.is_empty() {
                0
            } else {
                u32::from(plan.block_size())
            },
            starts,
            cursor: 0,
        }
    }

    /// Worker `worker` of `workers`'s share of the blocks its node owns in `blocks`.
    pub fn for_worker_blocks(
        blocks: &super::blocks::PortBlocks,
        worker: u16,
        workers: u16,
    ) -> PortPool {
        let mine = blocks.ownership.worker_blocks(blocks.me, worker, workers);
        PortPool::for_blocks(&blocks.ownership.plan(), &mine)
    }

    /// A pool with no ports (the replica handle allocates none).
    pub fn empty() -> PortPool {
        PortPool {
            starts: Vec::new(),
            span: 0,
            cursor: 0,
        }
    }

    /// Whether `port` is one this pool hands out.
    pub fn contains(&self, port: u16) -> bool {
        let i = self.starts.partition_point(|&s| s <= port);
        i > 0 && u32::from(port - self.starts[i - 1]) < self.span
    }

    /// The lowest and highest port (None when empty). Contiguous only for one span.
    pub fn bounds(&self) -> Option<RangeInclusive<u16>> {
        let first = *self.starts.first()?;
        let last = *self.starts.last()? as u32 + self.span - 1;
        Some(first..=last as u16)
    }

    pub fn len(&self) -> usize {
        self.starts.len() * self.span as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline(always)]
    fn port_at(&self, pos: u32) -> u16 {
        // One span (no HA) needs no division.
        if self.starts.len() == 1 {
            return self.starts[0].wrapping_add(pos as u16);
        }
        let span = self.span.max(1);
        let start = self.starts.get((pos / span) as usize).copied().unwrap_or(0);
        start.wrapping_add((pos % span) as u16)
    }

    /// The port the `nth` next allocation would try first (a guess for prefetching: ports in
    /// use are skipped at allocation).
    #[inline]
    pub fn peek(&self, nth: u32) -> u16 {
        let len = self.len() as u32;
        if len == 0 {
            return 1;
        }
        self.port_at((self.cursor + nth % len) % len)
    }

    /// The candidates in order from the cursor; `is_free` picks the first usable. At most
    /// `max_tries` are tested (kernel NAT bounds its search the same way), in up to
    /// [`PROBE_RUNS`] runs spread over the pool: ports taken in long runs (another member's
    /// sessions in blocks that have just become this worker's, all to one destination) cost
    /// one run, not the whole budget.
    pub fn allocate(
        &mut self,
        max_tries: usize,
        mut is_free: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let len = self.len() as u32;
        let tries = (len as usize).min(max_tries) as u32;
        if tries == 0 {
            return None;
        }
        // A budget that covers the pool tests every port in one run.
        let run = if tries == len {
            len
        } else {
            tries.div_ceil(PROBE_RUNS).max(1)
        };
        // Odd, so the runs' starts differ for any pool length.
        let stride = (len / PROBE_RUNS) | 1;
        let mut tested = 0;
        let mut start = self.cursor;
        while tested < tries {
            let mut pos = start;
            for _ in 0..run.min(tries - tested) {
                let candidate = self.port_at(pos);
                pos = if pos + 1 >= len { 0 } else { pos + 1 };
                tested += 1;
                if is_free(candidate) {
                    self.cursor = pos;
                    return Some(candidate);
                }
            }
            start =
                ((u64::from(start) + u64::from(run) + u64::from(stride)) % u64::from(len)) as u32;
        }
        self.cursor = start;
        None
    }
}

/// How many stretches of the pool one allocation samples at most.
pub const PROBE_RUNS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_disjoint_and_cover_the_range() {
        let pools: Vec<_> = (0..3)
            .map(|w| PortPool::for_worker(1024..=65535, w, 3))
            .collect();
        assert_eq!(*pools[0].bounds().unwrap().start(), 1024);
        assert_eq!(*pools[2].bounds().unwrap().end(), 65535);
        for w in 0..2 {
            assert_eq!(
                *pools[w].bounds().unwrap().end() + 1,
                *pools[w + 1].bounds().unwrap().start()
            );
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
    fn a_long_run_of_taken_ports_costs_one_probe_run_not_the_budget() {
        // The first 600 of 1000 ports taken (as another member's sessions to one destination
        // leave them); 64 tries find a free one.
        let mut pool = PortPool::for_worker(2000..=2999, 0, 1);
        let got = pool.allocate(64, |p| p >= 2600).unwrap();
        assert!(got >= 2600);
        // Every port taken but one, far from the cursor: the budget bounds the search.
        let mut tried = 0;
        assert_eq!(
            pool.allocate(64, |p| {
                tried += 1;
                p == 2001
            }),
            None
        );
        assert_eq!(tried, 64);
    }

    #[test]
    fn a_pool_of_blocks_hands_out_exactly_their_ports() {
        let plan = super::super::blocks::BlockPlan::new(1024..=1279, 64).unwrap();
        // Blocks 3 and 1 (in any order): ports 1088-1151 and 1216-1279.
        let mut pool = PortPool::for_blocks(&plan, &[3, 1, 9]);
        assert_eq!(pool.len(), 128);
        assert!(pool.contains(1088) && pool.contains(1151) && pool.contains(1279));
        assert!(!pool.contains(1087) && !pool.contains(1152) && !pool.contains(1024));
        let peeked: Vec<u16> = (0..130).map(|n| pool.peek(n)).collect();
        let mut given = Vec::new();
        while let Some(p) = pool.allocate(1, |_| true) {
            given.push(p);
            if given.len() == 130 {
                break;
            }
        }
        assert_eq!(peeked, given);
        assert_eq!(given[0], 1088);
        assert_eq!(given[63..66], [1151, 1216, 1217]);
        // Wrapped after 128.
        assert_eq!(given[128..], [1088, 1089]);
        let mut sorted = given[..128].to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 128);
        assert!(sorted.iter().all(|&p| pool.contains(p)));
        assert!(PortPool::for_blocks(&plan, &[]).is_empty());
    }

    #[test]
    fn more_workers_than_ports_leaves_empty_pools() {
        let mut first = PortPool::for_worker(100..=101, 0, 3);
        assert!(first.is_empty());
        assert_eq!(first.allocate(8, |_| true), None);
        // The last worker takes the remainder.
        assert_eq!(
            PortPool::for_worker(100..=101, 2, 3).bounds(),
            Some(100..=101)
        );
    }
}
