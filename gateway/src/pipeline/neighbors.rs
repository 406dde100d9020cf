//! A next hop's address -> its MAC, as every reply asks: open addressing with linear probing
//! over 16-byte slots (32 for IPv6), placed by a multiplicative hash. A lookup is one multiply and
//! nearly always one slot; a general hash map's group scan put a chain of dependent loads on
//! the return path (perf found it waiting there). Written only by the control plane, which
//! publishes copies; deletion shifts entries back so no tombstones build up.

use crate::wire::ethernet::MacAddr;
use std::fmt;

/// An address the table keys on: IPv4 as `u32`, IPv6 as `u128`.
pub trait NeighborAddr: Copy + Eq + Default + fmt::Debug {
    /// 32 bits of the address for the multiplicative hash (IPv6: its words folded).
    fn hash32(self) -> u32;
}

impl NeighborAddr for u32 {
    #[inline(always)]
    fn hash32(self) -> u32 {
        self
    }
}

impl NeighborAddr for u128 {
    #[inline(always)]
    fn hash32(self) -> u32 {
        let x = (self as u64) ^ ((self >> 64) as u64);
        (x as u32) ^ ((x >> 32) as u32)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(16))]
struct Slot<A> {
    ip: A,
    used: bool,
    /// As [`MacAddr::to_word`] packs it: the return path stores it into the header whole.
    mac: u64,
}

/// The neighbour table of one interface, of one family.
#[derive(Clone)]
pub struct Neighbors<A = u32> {
    /// A power of two in length (or empty), at most half full.
    slots: Box<[Slot<A>]>,
    len: usize,
}

impl<A> Default for Neighbors<A> {
    fn default() -> Self {
        Neighbors {
            slots: Box::default(),
            len: 0,
        }
    }
}

/// Fewest slots once anything is stored.
const MIN_SLOTS: usize = 16;

impl<A: NeighborAddr> Neighbors<A> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot an address probes first: Fibonacci hashing, the top bits of the product.
    #[inline(always)]
    fn home(&self, ip: A) -> usize {
        // At least MIN_SLOTS slots, so the shift is below 32.
        let bits = self.slots.len().trailing_zeros();
        (ip.hash32().wrapping_mul(0x9e37_79b9) >> (32 - bits)) as usize
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where `ip` is stored, or the free slot ending its probe.
    #[inline(always)]
    fn find(&self, ip: A) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = self.home(ip);
        loop {
            let s = &self.slots[i];
            if !s.used {
                return Err(i);
            }
            if s.ip == ip {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The MAC of `ip`, if known.
    pub fn get(&self, ip: A) -> Option<MacAddr> {
        self.get_word(ip).map(MacAddr::from_word)
    }

    /// The MAC of `ip` as [`MacAddr::to_word`] packs it, if known.
    #[inline]
    pub fn get_word(&self, ip: A) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        self.find(ip).ok().map(|i| self.slots[i].mac)
    }

    /// Sets the MAC of `ip`; returns the one it replaces.
    pub fn insert(&mut self, ip: A, mac: MacAddr) -> Option<MacAddr> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        match self.find(ip) {
            Ok(i) => Some(MacAddr::from_word(std::mem::replace(
                &mut self.slots[i].mac,
                mac.to_word(),
            ))),
            Err(i) => {
                self.slots[i] = Slot {
                    ip,
                    used: true,
                    mac: mac.to_word(),
                };
                self.len += 1;
                None
            }
        }
    }

    /// Forgets `ip`; returns its MAC if it was known.
    pub fn remove(&mut self, ip: A) -> Option<MacAddr> {
        if self.slots.is_empty() {
            return None;
        }
        let mut gap = self.find(ip).ok()?;
        let mac = MacAddr::from_word(self.slots[gap].mac);
        let mask = self.mask();
        // Shift back every entry after the gap whose probe passes through it.
        let mut j = gap;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if !s.used {
                break;
            }
            let probed = j.wrapping_sub(self.home(s.ip)) & mask;
            if probed >= j.wrapping_sub(gap) & mask {
                self.slots[gap] = s;
                gap = j;
            }
        }
        self.slots[gap] = Slot::default();
        self.len -= 1;
        Some(mac)
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size].into());
        self.len = 0;
        for s in old.iter().filter(|s| s.used) {
            self.insert(s.ip, MacAddr::from_word(s.mac));
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (A, MacAddr)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.used)
            .map(|s| (s.ip, MacAddr::from_word(s.mac)))
    }
}

/// Equal when they map the same addresses to the same MACs, whatever the layout.
impl<A: NeighborAddr> PartialEq for Neighbors<A> {
    fn eq(&self, other: &Neighbors<A>) -> bool {
        self.len == other.len && self.iter().all(|(ip, mac)| other.get(ip) == Some(mac))
    }
}

impl<A: NeighborAddr> Eq for Neighbors<A> {}

impl<A: NeighborAddr> fmt::Debug for Neighbors<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u8),
        Remove(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        // A small address space, so removals and overwrites hit, plus the extremes.
        let ip = prop_oneof![0u32..64, Just(0), Just(u32::MAX), any::<u32>()];
        prop_oneof![
            (ip.clone(), any::<u8>()).prop_map(|(i, m)| Op::Insert(i, m)),
            ip.prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Any sequence of inserts and removals answers as a hash map does, for every address
        /// touched and a few never touched; and the table stays at most half full.
        #[test]
        fn answers_as_a_map_does(ops in prop::collection::vec(op(), 0..400)) {
            let mut ours = Neighbors::default();
            let mut map = HashMap::new();
            for op in &ops {
                match *op {
                    Op::Insert(ip, m) => {
                        let mac = MacAddr([2, 0, 0, 0, 0, m]);
                        prop_assert_eq!(ours.insert(ip, mac), map.insert(ip, mac));
                    }
                    Op::Remove(ip) => prop_assert_eq!(ours.remove(ip), map.remove(&ip)),
                }
                prop_assert_eq!(ours.len(), map.len());
                prop_assert!(ours.len() * 2 <= ours.slots.len().max(1));
            }
            for ip in map.keys().copied().chain([1000, 0xdead_beef]) {
                prop_assert_eq!(ours.get(ip), map.get(&ip).copied());
            }
            prop_assert_eq!(ours.iter().count(), map.len());
        }

        /// The same for IPv6 addresses, the IPv4 ones spread over both halves (so that the
        /// folded hash sees either) and a prefix that never changes.
        #[test]
        fn answers_as_a_map_does_for_ipv6(ops in prop::collection::vec(op(), 0..400)) {
            let six = |ip: u32| 0xfd00_0099_u128 << 96 | u128::from(ip) << 64 | u128::from(ip.rotate_left(7));
            let mut ours = Neighbors::<u128>::default();
            let mut map = HashMap::new();
            for op in &ops {
                match *op {
                    Op::Insert(ip, m) => {
                        let mac = MacAddr([2, 0, 0, 0, 0, m]);
                        prop_assert_eq!(ours.insert(six(ip), mac), map.insert(six(ip), mac));
                    }
                    Op::Remove(ip) => prop_assert_eq!(ours.remove(six(ip)), map.remove(&six(ip))),
                }
                prop_assert_eq!(ours.len(), map.len());
            }
            for ip in map.keys().copied().chain([six(1000), 0]) {
                prop_assert_eq!(ours.get(ip), map.get(&ip).copied());
            }
        }
    }

    #[test]
    fn equality_ignores_layout() {
        let (mut a, mut b) = (Neighbors::<u32>::default(), Neighbors::default());
        let mac = |m| MacAddr([2, 0, 0, 0, 0, m]);
        for ip in 0..40 {
            a.insert(ip, mac(ip as u8));
        }
        for ip in (0..40).rev() {
            b.insert(ip, mac(ip as u8));
        }
        for ip in 20..40 {
            a.remove(ip);
            b.remove(ip);
        }
        assert_eq!(a, b);
        b.insert(3, mac(99));
        assert_ne!(a, b);
        assert_eq!(Neighbors::<u32>::default().get(7), None);
        assert_eq!(Neighbors::<u32>::default().remove(7), None);
    }
}
