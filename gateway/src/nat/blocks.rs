//! Ports by block: an egress IP's port range is split into equal blocks, and each block is
//! owned by one live member of the IP's gateway set, chosen by rendezvous hashing. A member
//! allocates only from blocks it owns, so the owner of any reply follows from its
//! destination port alone, with no lookup shared between members.
//!
//! The hash covers (member, block) and not the epoch: with the epoch in it every block would
//! move on every membership change. Without it, a member's death moves only that member's
//! blocks (each to its runner-up), and its return moves back only those. The epoch is the
//! version of an ownership, carried so that peers can tell which one they hold.

use core::ops::RangeInclusive;
use std::net::IpAddr;

/// A gateway node's id within the set that serves an egress IP (from configuration).
pub type MemberId = u32;

/// How an egress IP's port range is cut into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPlan {
    first: u16,
    block_size: u16,
    blocks: u16,
}

/// Why a port range cannot be cut into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockPlanError {
    ZeroBlockSize,
    /// The range's length is not a multiple of the block size; the rest would be owned by
    /// no one, so it is refused rather than silently unused.
    NotAMultiple {
        ports: u32,
        block_size: u16,
    },
}

impl core::fmt::Display for BlockPlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockPlanError::ZeroBlockSize => write!(f, "the block size must be at least 1"),
            BlockPlanError::NotAMultiple { ports, block_size } => write!(
                f,
                "the port range holds {ports} ports, not a multiple of the block size {block_size}"
            ),
        }
    }
}

impl BlockPlan {
    pub fn new(range: RangeInclusive<u16>, block_size: u16) -> Result<BlockPlan, BlockPlanError> {
        if block_size == 0 {
            return Err(BlockPlanError::ZeroBlockSize);
        }
        let ports = (u32::from(*range.end()) + 1).saturating_sub(u32::from(*range.start()));
        if ports % u32::from(block_size) != 0 {
            return Err(BlockPlanError::NotAMultiple { ports, block_size });
        }
        Ok(BlockPlan {
            first: *range.start(),
            block_size,
            // At most 65536 / 1 blocks; 65536 itself only for a block size of 1 over every
            // port, which the u16 count cannot hold, so it is capped (port 0 is never used).
            blocks: (ports / u32::from(block_size)).min(u32::from(u16::MAX)) as u16,
        })
    }

    pub fn blocks(&self) -> u16 {
        self.blocks
    }

    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    /// The block that holds `port`, if the port is in the range.
    #[inline]
    pub fn block_of(&self, port: u16) -> Option<u16> {
        let offset = port.checked_sub(self.first)?;
        let block = offset / self.block_size;
        (block < self.blocks).then_some(block)
    }

    /// The ports of `block` (which must be below `blocks()`).
    pub fn ports(&self, block: u16) -> RangeInclusive<u16> {
        let lo = self.first + block * self.block_size;
        lo..=lo + (self.block_size - 1)
    }
}

/// Rendezvous weight of `member` for `block`: a 64-bit finaliser (splitmix64's) over both,
/// so that each block's order of members is independent of every other block's.
#[inline]
fn weight(member: MemberId, block: u16) -> u64 {
    let mut x = (u64::from(member) << 32 | u64::from(block)) ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The owner of `block` among `members`: the member of highest weight (ties, which need a
/// 64-bit collision, go to the lower id). None when there are no members.
pub fn owner(members: &[MemberId], block: u16) -> Option<MemberId> {
    members
        .iter()
        .copied()
        .max_by_key(|&m| (weight(m, block), core::cmp::Reverse(m)))
}

/// Who owns each block of one egress IP, at one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    plan: BlockPlan,
    epoch: u32,
    owners: Vec<MemberId>,
}

impl Ownership {
    /// Ownership among `members` (the live ones). With no members no block has an owner,
    /// which `owner_of_port` reports as None.
    pub fn compute(plan: BlockPlan, members: &[MemberId], epoch: u32) -> Ownership {
        let owners = if members.is_empty() {
            Vec::new()
        } else {
            (0..plan.blocks())
                .map(|b| owner(members, b).unwrap_or_default())
                .collect()
        };
        Ownership {
            plan,
            epoch,
            owners,
        }
    }

    pub fn plan(&self) -> BlockPlan {
        self.plan
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn owner_of_block(&self, block: u16) -> Option<MemberId> {
        self.owners.get(usize::from(block)).copied()
    }

    /// The member a reply to `port` belongs to.
    #[inline]
    pub fn owner_of_port(&self, port: u16) -> Option<MemberId> {
        self.owner_of_block(self.plan.block_of(port)?)
    }

    /// The blocks `member` owns, in order.
    pub fn blocks_of(&self, member: MemberId) -> impl Iterator<Item = u16> + '_ {
        (0..self.plan.blocks()).filter(move |&b| self.owners.get(usize::from(b)) == Some(&member))
    }

    /// Worker `worker` of `workers` on `member`: the member's blocks whose number is the
    /// worker's modulo `workers`. A block's worker is fixed by its number, whoever owns it,
    /// so two workers never hold one block, not even while each still allocates from a
    /// different ownership (one has picked up a change, the other not yet).
    pub fn worker_blocks(&self, member: MemberId, worker: u16, workers: u16) -> Vec<u16> {
        let workers = workers.max(1);
        self.blocks_of(member)
            .filter(|b| b % workers == worker)
            .collect()
    }

    /// The blocks whose owner differs between `self` and `next` (what a change moves).
    pub fn moved_blocks<'a>(&'a self, next: &'a Ownership) -> impl Iterator<Item = u16> + 'a {
        (0..self.plan.blocks()).filter(move |&b| self.owner_of_block(b) != next.owner_of_block(b))
    }
}

/// What a node's workers allocate from and forward replies by: the ownership of every block
/// among the live members, this node's id, and each member's node (underlay) IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBlocks {
    pub ownership: Ownership,
    pub me: MemberId,
    /// (member, node address on the set's underlay) of every member, this node's included.
    pub addresses: Vec<(MemberId, IpAddr)>,
}

impl PortBlocks {
    /// The node IP a reply to `port` goes to when another live member owns the port; None
    /// when it is this node's, outside the range, or its owner's address is unknown.
    #[inline]
    pub fn forward_to(&self, port: u16) -> Option<IpAddr> {
        let owner = self.ownership.owner_of_port(port)?;
        if owner == self.me {
            return None;
        }
        self.addresses
            .iter()
            .find(|(m, _)| *m == owner)
            .map(|(_, ip)| *ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan() -> BlockPlan {
        BlockPlan::new(1024..=65535, 64).unwrap()
    }

    #[test]
    fn a_range_that_is_not_a_multiple_of_the_block_size_is_refused() {
        assert_eq!(
            BlockPlan::new(1024..=65534, 64),
            Err(BlockPlanError::NotAMultiple {
                ports: 64511,
                block_size: 64
            })
        );
        assert_eq!(
            BlockPlan::new(1024..=2047, 0),
            Err(BlockPlanError::ZeroBlockSize)
        );
    }

    #[test]
    fn blocks_cover_the_range_and_map_back() {
        let p = plan();
        assert_eq!(p.blocks(), 1008);
        assert_eq!(p.block_of(1023), None);
        assert_eq!(p.block_of(1024), Some(0));
        assert_eq!(p.block_of(65535), Some(1007));
        for b in [0, 1, 500, 1007] {
            let ports = p.ports(b);
            assert_eq!(p.block_of(*ports.start()), Some(b));
            assert_eq!(p.block_of(*ports.end()), Some(b));
            assert_eq!(ports.len(), 64);
        }
        let small = BlockPlan::new(2000..=2127, 64).unwrap();
        assert_eq!(small.block_of(2128), None);
    }

    #[test]
    fn no_members_means_no_owner() {
        let o = Ownership::compute(plan(), &[], 1);
        assert_eq!(o.owner_of_port(5000), None);
        assert_eq!(o.blocks_of(1).count(), 0);
    }

    #[test]
    fn blocks_are_shared_evenly() {
        let o = Ownership::compute(plan(), &[1, 2, 3], 1);
        for m in [1, 2, 3] {
            let n = o.blocks_of(m).count();
            // 1008 / 3 = 336; rendezvous over a good hash stays well inside +-15%.
            assert!((286..=386).contains(&n), "member {m} owns {n} blocks");
        }
    }

    #[test]
    fn worker_shares_are_disjoint_and_cover_the_members_blocks() {
        let o = Ownership::compute(plan(), &[7, 9], 3);
        let mut all: Vec<u16> = (0..4).flat_map(|w| o.worker_blocks(7, w, 4)).collect();
        all.sort_unstable();
        let mine: Vec<u16> = o.blocks_of(7).collect();
        assert_eq!(all, mine);
        let sizes: Vec<usize> = (0..4).map(|w| o.worker_blocks(7, w, 4).len()).collect();
        // About 504 / 4 = 126 each.
        assert!(sizes.iter().all(|&n| (90..=160).contains(&n)), "{sizes:?}");
        // A block keeps its worker when its owner changes.
        let alone = Ownership::compute(plan(), &[7], 4);
        for w in 0..4 {
            let before = o.worker_blocks(7, w, 4);
            let after = alone.worker_blocks(7, w, 4);
            assert!(before.iter().all(|b| after.contains(b)));
            for other in (0..4).filter(|&x| x != w) {
                assert!(alone
                    .worker_blocks(7, other, 4)
                    .iter()
                    .all(|b| !before.contains(b)));
            }
        }
    }

    #[test]
    fn replies_are_forwarded_to_the_owner_of_their_port() {
        let o = Ownership::compute(plan(), &[1, 2], 1);
        let blocks = PortBlocks {
            ownership: o.clone(),
            me: 1,
            addresses: vec![(1, [10, 0, 0, 1].into()), (2, [10, 0, 0, 2].into())],
        };
        let theirs = *plan().ports(o.blocks_of(2).next().unwrap()).start();
        let mine = *plan().ports(o.blocks_of(1).next().unwrap()).start();
        assert_eq!(blocks.forward_to(theirs), Some([10, 0, 0, 2].into()));
        assert_eq!(blocks.forward_to(mine), None);
        assert_eq!(blocks.forward_to(80), None);
        let pool = crate::nat::ports::PortPool::for_worker_blocks(&blocks, 0, 1);
        assert!(pool.contains(mine) && !pool.contains(theirs));
        assert_eq!(pool.len(), o.blocks_of(1).count() * 64);
    }

    proptest! {
        /// A member's death moves only its own blocks, and every one of them to a survivor;
        /// its return moves exactly those back.
        #[test]
        fn only_the_dead_members_blocks_move(
            members in proptest::collection::btree_set(0u32..1000, 2..6),
            pick in any::<prop::sample::Index>(),
        ) {
            let members: Vec<u32> = members.into_iter().collect();
            let dead = members[pick.index(members.len())];
            let survivors: Vec<u32> = members.iter().copied().filter(|&m| m != dead).collect();
            let before = Ownership::compute(plan(), &members, 1);
            let after = Ownership::compute(plan(), &survivors, 2);
            for b in before.moved_blocks(&after) {
                prop_assert_eq!(before.owner_of_block(b), Some(dead));
                prop_assert!(survivors.contains(&after.owner_of_block(b).unwrap()));
            }
            prop_assert_eq!(before.moved_blocks(&after).count(), before.blocks_of(dead).count());
            let back = Ownership::compute(plan(), &members, 3);
            prop_assert_eq!(&back.owners, &before.owners);
        }

        /// Every port of the range has exactly one owner, and it is a member.
        #[test]
        fn every_port_has_one_member_owner(
            members in proptest::collection::btree_set(any::<u32>(), 1..5),
            port in 1024u16..=65535,
        ) {
            let members: Vec<u32> = members.into_iter().collect();
            let o = Ownership::compute(plan(), &members, 1);
            let owner = o.owner_of_port(port).unwrap();
            prop_assert!(members.contains(&owner));
            let b = o.plan().block_of(port).unwrap();
            let holders = members.iter().filter(|&&m| o.blocks_of(m).any(|x| x == b)).count();
            prop_assert_eq!(holders, 1);
        }
    }
}
