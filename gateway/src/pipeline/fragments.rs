//! Virtual reassembly (VPP's "shallow" reassembly): a datagram's later fragments carry no
//! ports, so each worker remembers for a moment which flow the datagram's first fragment
//! belonged to, keyed by what every fragment carries (RFC 791: source, destination, protocol,
//! identification). Fragments are translated as they come, never held: a later fragment that
//! arrives before its first, or after the entry is gone, is dropped and counted
//! (`fragment_no_first`). Senders emit a datagram's fragments in order, and a NIC's receive
//! hash puts every fragment of a datagram on one queue (it hashes the addresses alone for
//! fragments), so the worker that saw the first sees the rest.

use crate::nat::{Direction, FlowKey};

/// Entries a worker holds: datagrams in flight at once. Two ways a set, so two datagrams
/// whose identities hash alike do not evict each other.
pub const FRAGMENT_SLOTS: usize = 4096;
/// Seconds an entry lives after its first fragment: a datagram's fragments arrive within
/// microseconds of each other; the kernel waits 30 s for stragglers (`ipfrag_time`), which
/// here would only let an identification reused 65536 datagrams later find a stale flow.
pub const FRAGMENT_TIMEOUT_S: u32 = 2;

/// What every fragment of one IPv4 datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentId {
    pub src: u32,
    pub dst: u32,
    pub ident: u16,
    pub proto: u8,
}

impl FragmentId {
    fn hash(&self) -> u64 {
        let a = u64::from(self.src) << 32 | u64::from(self.dst);
        let b = u64::from(self.ident) << 8 | u64::from(self.proto);
        // SplitMix64's finalizer: every input bit reaches the low bits the slot is taken
        // from. Only the peer of a live flow can make an entry, so nothing here needs to
        // resist chosen collisions.
        let mut h = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b;
        h = (h ^ h >> 30).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ h >> 27).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ h >> 31
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: FragmentId,
    dir: Direction,
    /// The first fragment's key, as the session table looks it up in `dir`.
    flow: FlowKey,
    /// The second after which the entry is stale.
    until: u32,
}

/// One worker's fragment entries: fixed size, allocated once.
#[derive(Debug)]
pub struct Fragments {
    slots: Vec<Option<Entry>>,
}

impl Default for Fragments {
    fn default() -> Self {
        Fragments::new()
    }
}

impl Fragments {
    pub fn new() -> Fragments {
        Fragments {
            slots: vec![None; FRAGMENT_SLOTS],
        }
    }

    /// The two slots `id` may occupy.
    fn set(&self, id: &FragmentId) -> usize {
        (id.hash() as usize) & (FRAGMENT_SLOTS - 2)
    }

    /// Records that the datagram `id`, travelling in `dir`, belongs to the flow `flow`: its
    /// first fragment was translated at `now`. Takes the datagram's own slot, else an empty or
    /// stale one, else the one closer to expiry.
    pub fn remember(&mut self, id: FragmentId, dir: Direction, flow: FlowKey, now: u32) {
        let at = self.set(&id);
        let entry = Entry {
            id,
            dir,
            flow,
            until: now.saturating_add(FRAGMENT_TIMEOUT_S),
        };
        let pair = &mut self.slots[at..at + 2];
        let free = |s: &Option<Entry>| s.is_none_or(|e| e.until < now || e.id == id);
        let older = |a: &Option<Entry>, b: &Option<Entry>| {
            a.is_some_and(|a| b.is_some_and(|b| a.until < b.until))
        };
        let second = !free(&pair[0]) && (free(&pair[1]) || older(&pair[1], &pair[0]));
        let victim = usize::from(second);
        pair[victim] = Some(entry);
    }

    /// [`Fragments::remember`] for the first fragment whose IPv4 header is at `ip` of `buf`
    /// (parsed, so there) and whose key is `flow`: the key's addresses and protocol are the
    /// header's (no ICMP error is translated in pieces).
    #[cold]
    #[inline(never)]
    pub fn remember_first(
        &mut self,
        buf: &[u8],
        ip: usize,
        dir: Direction,
        flow: &FlowKey,
        now: u32,
    ) {
        let id = FragmentId {
            src: flow.src,
            dst: flow.dst,
            ident: crate::wire::be16(buf, ip + 4),
            proto: flow.proto,
        };
        self.remember(id, dir, *flow, now);
    }

    /// The flow of datagram `id` travelling in `dir`, if its first fragment was translated
    /// here within [`FRAGMENT_TIMEOUT_S`].
    pub fn flow_of(&self, id: &FragmentId, dir: Direction, now: u32) -> Option<FlowKey> {
        let at = self.set(id);
        self.slots[at..at + 2]
            .iter()
            .flatten()
            .find(|e| e.id == *id && e.dir == dir && e.until >= now)
            .map(|e| e.flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ident: u16) -> FragmentId {
        FragmentId {
            src: 0xc0a8_370d,
            dst: 0xc0a8_4264,
            ident,
            proto: 17,
        }
    }

    fn flow(port: u16) -> FlowKey {
        FlowKey {
            src: 0xc0a8_370d,
            dst: 0xc0a8_4264,
            src_port: 9999,
            dst_port: port,
            proto: 17,
        }
    }

    #[test]
    fn a_later_fragment_finds_its_first_fragments_flow_until_it_expires() {
        let mut f = Fragments::new();
        f.remember(id(7), Direction::In, flow(40000), 100);
        assert_eq!(f.flow_of(&id(7), Direction::In, 100), Some(flow(40000)));
        assert_eq!(
            f.flow_of(&id(7), Direction::In, 100 + FRAGMENT_TIMEOUT_S),
            Some(flow(40000))
        );
        assert_eq!(
            f.flow_of(&id(7), Direction::In, 101 + FRAGMENT_TIMEOUT_S),
            None
        );
        // Another identification, or the other direction, is another datagram.
        assert_eq!(f.flow_of(&id(8), Direction::In, 100), None);
        assert_eq!(f.flow_of(&id(7), Direction::Out, 100), None);
    }

    #[test]
    fn a_reused_identification_takes_over_its_entry() {
        let mut f = Fragments::new();
        f.remember(id(7), Direction::In, flow(40000), 100);
        f.remember(id(7), Direction::In, flow(40001), 100);
        assert_eq!(f.flow_of(&id(7), Direction::In, 100), Some(flow(40001)));
    }

    #[test]
    fn many_datagrams_in_flight_keep_the_newest_and_never_grow() {
        let mut f = Fragments::new();
        let n = FRAGMENT_SLOTS as u16 * 4;
        for i in 0..n {
            f.remember(id(i), Direction::In, flow(i), 100);
        }
        assert_eq!(f.slots.len(), FRAGMENT_SLOTS);
        // The last datagram of all is always found; most of the newest set's are.
        assert_eq!(f.flow_of(&id(n - 1), Direction::In, 100), Some(flow(n - 1)));
        let recent = (n - 512..n)
            .filter(|&i| f.flow_of(&id(i), Direction::In, 100).is_some())
            .count();
        assert!(recent > 400, "{recent} of the last 512 found");
    }

    #[test]
    fn a_stale_entry_is_replaced_before_a_live_one() {
        let mut f = Fragments::new();
        // Fill the set `id(1)` lands in with a live and a stale entry, then add a third.
        let target = f.set(&id(1));
        let same_set: Vec<u16> = (2..u16::MAX)
            .filter(|&i| f.set(&id(i)) == target)
            .take(2)
            .collect();
        f.remember(id(1), Direction::In, flow(1), 100);
        f.remember(id(same_set[0]), Direction::In, flow(2), 90);
        f.remember(id(same_set[1]), Direction::In, flow(3), 100);
        assert_eq!(f.flow_of(&id(1), Direction::In, 100), Some(flow(1)));
        assert_eq!(
            f.flow_of(&id(same_set[1]), Direction::In, 100),
            Some(flow(3))
        );
    }
}
