//! Fair share: one pod cannot take the node's sessions, its new-flow capacity or one
//! destination's ports from the other pods. Each worker keeps its own accounts (VPP's NAT
//! bounds translations per user per thread the same way): no shared line is written per new
//! flow, and a session is counted and released by the worker that owns it. A node-wide limit
//! is split evenly over the workers; a pod's flows spread over the queues by their hash, so a
//! pod meets its limit within a few flows of the configured figure.
//!
//! Only new flows are refused; a pod's established flows, and every other pod's, go on.

use super::flow::{FlowHasher, FlowKey, FlowKey6, PROTO_ICMP, PROTO_ICMPV6};
use crate::drop::DropReason;
use core::hash::{BuildHasherDefault, Hasher};
use hashbrown::HashMap;
use std::net::IpAddr;

/// The node-wide limits per pod. Defaults: far above what an ordinary pod does, low enough
/// that one pod cannot take the default table (1M sessions) or a destination's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairLimits {
    /// Live sessions per pod (0: no limit).
    pub pod_sessions: u32,
    /// New flows a second per pod (0: no limit)...
    pub pod_new_flows_per_s: u32,
    /// ...and how many may come at once above that rate (at least the rate).
    pub pod_new_flow_burst: u32,
    /// Percent of this node's ports to one destination (address, port, protocol) one pod
    /// may hold (100: no limit).
    pub pod_destination_share: u8,
}

impl Default for FairLimits {
    fn default() -> Self {
        FairLimits {
            pod_sessions: 100_000,
            pod_new_flows_per_s: 20_000,
            pod_new_flow_burst: 40_000,
            pod_destination_share: 50,
        }
    }
}

impl FairLimits {
    /// Whether any limit is on (the burst alone limits nothing).
    pub fn any(&self) -> bool {
        self.pod_sessions != 0 || self.pod_new_flows_per_s != 0 || self.pod_destination_share < 100
    }

    /// No limits (each one off).
    pub const NONE: FairLimits = FairLimits {
        pod_sessions: 0,
        pod_new_flows_per_s: 0,
        pod_new_flow_burst: 0,
        pod_destination_share: 100,
    };
}

/// Which limit refused a pod's new flows, as an index into [`PodUsage::drops`].
pub const LIMIT_REASONS: [DropReason; 3] = [
    DropReason::PodSessionLimit,
    DropReason::PodRateLimit,
    DropReason::PodDestinationShare,
];

/// One pod's account on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodUsage {
    /// Live sessions this worker created for the pod.
    pub sessions: u32,
    /// New flows refused, per [`LIMIT_REASONS`].
    pub drops: [u64; 3],
    tokens: u32,
    /// The second the bucket was last filled.
    filled_at: u32,
}

/// Rows of the destination counts; a count is the least of its cells.
const ROWS: usize = 2;
/// Cells per row at most: 64 KiB a row, so that both rows stay in L2 beside the batch's
/// sessions. A destination's count is over by the sessions of destinations sharing both its
/// cells, about `live / cells` (64 at a million sessions on one worker), far below a useful
/// share of 64k ports; an under-count cannot happen.
const MAX_CELLS: usize = 1 << 14;

/// A new flow's destination: its cell in each row of the counts. Computed once, in the
/// batch's prefetch stage, and handed to [`FairShare::admit`] with the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination([u32; ROWS]);

/// Pod addresses come from the cluster's IPAM, not from the pods: one multiply spreads them
/// (hashbrown takes the bucket from the low bits and the tag from the top seven).
#[derive(Debug, Default, Clone, Copy)]
pub struct PodHasher(u64);

impl Hasher for PodHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One worker's accounts.
#[derive(Debug)]
pub struct FairShare {
    /// This worker's part of each limit (sessions: `u32::MAX` for none).
    sessions: u32,
    rate: u32,
    burst: u32,
    share_percent: u32,
    /// Ports one pod may hold to one destination: the share of this worker's pool.
    share: u32,
    pods: PodAccounts<u32>,
    /// IPv6 pods' accounts, kept apart (the reports name IPv4 pods).
    pods6: PodAccounts<u128>,
    /// Sessions per (pod, destination), counted in a count-min sketch: fixed memory, two
    /// counter reads a new flow. Keyed with the table's random hash so that no pod can aim
    /// its destinations at another pod's cells.
    cells: Box<[u32]>,
    mask: u32,
    hasher: FlowHasher,
}

impl FairShare {
    /// Worker accounts for `limits` split over `workers`, with cells for about `slots`
    /// sessions.
    pub fn new(limits: FairLimits, workers: u16, slots: usize, hasher: FlowHasher) -> FairShare {
        let w = u32::from(workers.max(1));
        let part = |v: u32| if v == 0 { 0 } else { v.div_ceil(w) };
        let rate = part(limits.pod_new_flows_per_s);
        let per_row = if limits.pod_destination_share >= 100 {
            0
        } else {
            slots.next_power_of_two().clamp(64, MAX_CELLS)
        };
        FairShare {
            sessions: match part(limits.pod_sessions) {
                0 => u32::MAX,
                n => n,
            },
            rate,
            burst: part(limits.pod_new_flow_burst).max(rate),
            share_percent: u32::from(limits.pod_destination_share.min(100)),
            share: u32::MAX,
            pods: HashMap::with_capacity_and_hasher(256, Default::default()),
            pods6: HashMap::default(),
            cells: vec![0; per_row * ROWS].into_boxed_slice(),
            mask: per_row.saturating_sub(1) as u32,
            hasher,
        }
    }

    /// This worker hands out `ports` ports (again whenever its pool changes).
    pub fn set_ports(&mut self, ports: usize) {
        self.share = (ports as u64 * u64::from(self.share_percent) / 100)
            .clamp(1, u64::from(u32::MAX)) as u32;
    }

    /// Admits a new flow `inside` of its pod, or says which limit refuses it. `dest` is what
    /// [`Self::prefetch`] returned for it, if it was prefetched. The flow is charged at once
    /// (the destination returned is what was counted): refund it if it is not made after all.
    #[inline]
    pub fn admit<F: Flow>(
        &mut self,
        inside: &F,
        dest: Option<Destination>,
        now: u32,
    ) -> Result<Option<Destination>, DropReason> {
        let cells = dest.or_else(|| self.destination(inside));
        let burst = self.burst;
        let pod = inside
            .account(&mut self.pods, &mut self.pods6)
            .or_insert_with(|| PodUsage {
                tokens: burst,
                filled_at: now,
                ..PodUsage::default()
            });
        if pod.sessions >= self.sessions {
            pod.drops[0] += 1;
            return Err(DropReason::PodSessionLimit);
        }
        if self.rate != 0 {
            if now != pod.filled_at {
                let due = u64::from(now.wrapping_sub(pod.filled_at)) * u64::from(self.rate);
                pod.tokens = (u64::from(pod.tokens) + due).min(u64::from(self.burst)) as u32;
                pod.filled_at = now;
            }
            if pod.tokens == 0 {
                pod.drops[1] += 1;
                return Err(DropReason::PodRateLimit);
            }
        }
        if let Some(Destination(cells)) = cells {
            let held = cells.iter().map(|&c| self.cells[c as usize]).min();
            if held.unwrap_or(0) >= self.share {
                pod.drops[2] += 1;
                return Err(DropReason::PodDestinationShare);
            }
            for c in cells {
                self.cells[c as usize] += 1;
            }
        }
        pod.sessions += 1;
        if self.rate != 0 {
            pod.tokens -= 1;
        }
        Ok(cells)
    }

    /// Starts fetching the destination counts a new flow `inside` will read (they are spread
    /// over 128 KiB: a miss each, overlapped with the batch's other fetches), and returns its
    /// destination for [`Self::admit`] (None with the destination share off).
    #[inline]
    pub fn prefetch<F: Flow>(&self, inside: &F) -> Option<Destination> {
        let dest = self.destination(inside)?;
        for c in dest.0 {
            crate::mem::prefetch::prefetch(&self.cells[c as usize]);
        }
        Some(dest)
    }

    /// Gives back what [`Self::admit`] charged for a flow `inside` that was not made
    /// (`counted`: what admit returned).
    pub fn refund<F: Flow>(&mut self, inside: &F, counted: Option<Destination>) {
        let (rate, burst) = (self.rate, self.burst);
        if let PodAccount::Occupied(mut p) = inside.account(&mut self.pods, &mut self.pods6) {
            let p = p.get_mut();
            p.sessions = p.sessions.saturating_sub(1);
            if rate != 0 {
                p.tokens = (p.tokens + 1).min(burst);
            }
        }
        self.uncount(counted);
    }

    /// Session `inside` of this worker is gone.
    #[inline]
    pub fn release<F: Flow>(&mut self, inside: &F) {
        if let PodAccount::Occupied(mut p) = inside.account(&mut self.pods, &mut self.pods6) {
            let p = p.get_mut();
            p.sessions = p.sessions.saturating_sub(1);
        }
        let cells = self.destination(inside);
        self.uncount(cells);
    }

    fn uncount(&mut self, cells: Option<Destination>) {
        for c in cells.into_iter().flat_map(|d| d.0) {
            let n = &mut self.cells[c as usize];
            *n = n.saturating_sub(1);
        }
    }

    /// The destination's cell in each row (None with the destination share off): the same
    /// ports are shared by every flow to one (address, port, protocol); for ICMP, to one
    /// address.
    #[inline]
    fn destination<F: Flow>(&self, inside: &F) -> Option<Destination> {
        if self.cells.is_empty() {
            return None;
        }
        let h = inside.destination_hash(&self.hasher);
        let per_row = self.mask + 1;
        Some(Destination([
            h as u32 & self.mask,
            per_row + ((h >> 32) as u32 & self.mask),
        ]))
    }

    /// Each pod's account, IPv4 and IPv6.
    pub fn pods(&self) -> impl Iterator<Item = (IpAddr, &PodUsage)> {
        let v4 = self
            .pods
            .iter()
            .map(|(ip, u)| (IpAddr::from(ip.to_be_bytes()), u));
        let v6 = self
            .pods6
            .iter()
            .map(|(ip, u)| (IpAddr::from(ip.to_be_bytes()), u));
        v4.chain(v6)
    }

    /// Forgets pods with no live session that either were never refused or are gone from
    /// the maps (`mapped` and `mapped6` say), so the accounts hold only what is worth
    /// reporting.
    pub fn prune(&mut self, mapped: impl Fn(u32) -> bool, mapped6: impl Fn(u128) -> bool) {
        self.pods
            .retain(|ip, u| u.sessions != 0 || (u.drops != [0; 3] && mapped(*ip)));
        self.pods6
            .retain(|ip, u| u.sessions != 0 || (u.drops != [0; 3] && mapped6(*ip)));
    }
}

/// A pod flow of either family, as the accounts see it: its pod's account, and its
/// destination (address, port, protocol; for ICMP the address alone), hashed.
pub trait Flow {
    type Pod: core::hash::Hash;
    /// The pod's account, of the two families' accounts.
    fn account<'a>(
        &self,
        v4: &'a mut PodAccounts<u32>,
        v6: &'a mut PodAccounts<u128>,
    ) -> PodAccount<'a, Self::Pod>;
    fn destination_hash(&self, h: &FlowHasher) -> u64;
}

/// Pods' accounts, keyed by address.
pub type PodAccounts<P> = HashMap<P, PodUsage, BuildHasherDefault<PodHasher>>;
/// One pod's account, there or not.
pub type PodAccount<'a, P> =
    hashbrown::hash_map::Entry<'a, P, PodUsage, BuildHasherDefault<PodHasher>>;

impl Flow for FlowKey {
    type Pod = u32;
    #[inline(always)]
    fn account<'a>(
        &self,
        v4: &'a mut PodAccounts<u32>,
        _: &'a mut PodAccounts<u128>,
    ) -> PodAccount<'a, u32> {
        v4.entry(self.src)
    }
    #[inline(always)]
    fn destination_hash(&self, h: &FlowHasher) -> u64 {
        h.hash(&FlowKey {
            src_port: 0,
            dst_port: if self.proto == PROTO_ICMP {
                0
            } else {
                self.dst_port
            },
            ..*self
        })
    }
}

impl Flow for FlowKey6 {
    type Pod = u128;
    #[inline(always)]
    fn account<'a>(
        &self,
        _: &'a mut PodAccounts<u32>,
        v6: &'a mut PodAccounts<u128>,
    ) -> PodAccount<'a, u128> {
        v6.entry(self.src)
    }
    #[inline(always)]
    fn destination_hash(&self, h: &FlowHasher) -> u64 {
        h.hash6(&FlowKey6 {
            src_port: 0,
            dst_port: if self.proto == PROTO_ICMPV6 {
                0
            } else {
                self.dst_port
            },
            ..*self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::{PROTO_TCP, PROTO_UDP};

    fn flow(pod: u32, dst: u32, port: u16) -> FlowKey {
        FlowKey {
            src: pod,
            dst,
            src_port: port,
            dst_port: 443,
            proto: PROTO_TCP,
        }
    }

    /// Accounts for a worker with 100 ports.
    fn share(limits: FairLimits, workers: u16) -> FairShare {
        let mut f = FairShare::new(limits, workers, 4096, FlowHasher::with_keys(1, 2));
        f.set_ports(100);
        f
    }

    const ONLY_SESSIONS: FairLimits = FairLimits {
        pod_sessions: 3,
        ..FairLimits::NONE
    };

    #[test]
    fn the_burst_alone_is_no_limit() {
        assert!(!FairLimits::NONE.any());
        let burst_only = FairLimits {
            pod_new_flow_burst: 40_000,
            ..FairLimits::NONE
        };
        assert!(!burst_only.any());
        assert!(ONLY_SESSIONS.any());
        assert!(FairLimits::default().any());
    }

    #[test]
    fn a_pod_over_its_sessions_is_refused_and_the_others_are_not() {
        let mut f = share(ONLY_SESSIONS, 1);
        for port in 0..3 {
            f.admit(&flow(1, 9, port), None, 0).unwrap();
        }
        assert_eq!(
            f.admit(&flow(1, 9, 3), None, 0),
            Err(DropReason::PodSessionLimit)
        );
        f.admit(&flow(2, 9, 3), None, 0).unwrap();
        // One of pod 1's sessions ends: it may open one more.
        f.release(&flow(1, 9, 0));
        f.admit(&flow(1, 9, 4), None, 0).unwrap();
        let usage: HashMap<IpAddr, PodUsage> = f.pods().map(|(ip, u)| (ip, *u)).collect();
        assert_eq!(
            (usage[&v4(1)].sessions, usage[&v4(1)].drops),
            (3, [1, 0, 0])
        );
        assert_eq!((usage[&v4(2)].sessions, usage[&v4(2)].drops), (1, [0; 3]));
    }

    #[test]
    fn a_limit_is_split_over_the_workers() {
        // 10 over 4 workers: 3 each (rounded up, so the node admits 12, never fewer than 10).
        let mut f = share(
            FairLimits {
                pod_sessions: 10,
                ..FairLimits::NONE
            },
            4,
        );
        let admitted = (0..10)
            .filter(|&p| f.admit(&flow(1, 9, p), None, 0).is_ok())
            .count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn the_rate_limit_is_a_token_bucket_filled_each_second() {
        let limits = FairLimits {
            pod_new_flows_per_s: 5,
            pod_new_flow_burst: 8,
            ..FairLimits::NONE
        };
        let mut f = share(limits, 1);
        let mut port = 0;
        let mut burst = |f: &mut FairShare, now| {
            let mut n = 0;
            while f.admit(&flow(1, 9, port), None, now).is_ok() {
                port += 1;
                n += 1;
            }
            n
        };
        // A full bucket, then one second's worth, then a long pause fills it to the burst only.
        assert_eq!(burst(&mut f, 100), 8);
        assert_eq!(burst(&mut f, 101), 5);
        assert_eq!(burst(&mut f, 200), 8);
        assert_eq!(
            f.admit(&flow(1, 9, 999), None, 200),
            Err(DropReason::PodRateLimit)
        );
        // Another pod has its own bucket.
        assert!(f.admit(&flow(2, 9, 0), None, 200).is_ok());
    }

    #[test]
    fn a_refund_gives_back_the_session_the_token_and_the_destination_count() {
        let limits = FairLimits {
            pod_sessions: 1,
            pod_new_flows_per_s: 1,
            pod_new_flow_burst: 1,
            pod_destination_share: 1,
        };
        let mut f = share(limits, 1);
        let c = f.admit(&flow(1, 9, 0), None, 0).unwrap();
        f.refund(&flow(1, 9, 0), c);
        f.admit(&flow(1, 9, 0), None, 0).unwrap();
    }

    #[test]
    fn a_pod_may_hold_its_share_of_a_destinations_ports() {
        let limits = FairLimits {
            pod_destination_share: 25,
            ..FairLimits::NONE
        };
        let mut f = share(limits, 1);
        // 100 ports, 25% of them: 25 flows of pod 1 to one destination.
        let ok = (0..40)
            .filter(|&p| f.admit(&flow(1, 9, p), None, 0).is_ok())
            .count();
        assert_eq!(ok, 25);
        assert_eq!(
            f.admit(&flow(1, 9, 99), None, 0),
            Err(DropReason::PodDestinationShare)
        );
        // The same pod to another destination (address, or port, or protocol), and another
        // pod to the same one, are counted apart.
        let other_port = FlowKey {
            dst_port: 80,
            ..flow(1, 9, 99)
        };
        let other_proto = FlowKey {
            proto: PROTO_UDP,
            ..flow(1, 9, 99)
        };
        for k in [flow(1, 10, 99), other_port, other_proto, flow(2, 9, 99)] {
            assert!(f.admit(&k, None, 0).is_ok(), "{k:?}");
        }
        f.release(&flow(1, 9, 0));
        assert!(f.admit(&flow(1, 9, 0), None, 0).is_ok());
    }

    #[test]
    fn a_destination_from_the_prefetch_counts_as_one_computed_at_admission() {
        let limits = FairLimits {
            pod_destination_share: 3,
            ..FairLimits::NONE
        };
        let mut f = share(limits, 1);
        // Alternately prefetched (the pipeline's way) and not (the API's): one count.
        for port in 0..3 {
            let k = flow(1, 9, port);
            let dest = if port % 2 == 0 { f.prefetch(&k) } else { None };
            assert!(dest.is_some() || port % 2 == 1);
            f.admit(&k, dest, 0).unwrap();
        }
        let k = flow(1, 9, 3);
        let dest = f.prefetch(&k);
        assert_eq!(f.admit(&k, dest, 0), Err(DropReason::PodDestinationShare));
        // With the share off there is nothing to fetch or count.
        assert_eq!(share(ONLY_SESSIONS, 1).prefetch(&k), None);
    }

    #[test]
    fn icmp_shares_one_count_per_destination_address() {
        let limits = FairLimits {
            pod_destination_share: 2,
            ..FairLimits::NONE
        };
        let mut f = share(limits, 1);
        let echo = |id| FlowKey {
            src: 1,
            dst: 9,
            src_port: id,
            dst_port: id,
            proto: PROTO_ICMP,
        };
        assert!(f.admit(&echo(1), None, 0).is_ok());
        assert!(f.admit(&echo(2), None, 0).is_ok());
        assert_eq!(
            f.admit(&echo(3), None, 0),
            Err(DropReason::PodDestinationShare)
        );
    }

    #[test]
    fn pruning_keeps_live_pods_and_the_refused_that_are_still_mapped() {
        let mut f = share(ONLY_SESSIONS, 1);
        f.admit(&flow(1, 9, 0), None, 0).unwrap(); // live
        let c = f.admit(&flow(2, 9, 0), None, 0).unwrap();
        f.refund(&flow(2, 9, 0), c); // no session, never refused
        for p in 0..4 {
            let _ = f.admit(&flow(3, 9, p), None, 0); // refused once
            let _ = f.admit(&flow(4, 9, p), None, 0); // refused once, then unmapped
        }
        for p in 0..3 {
            f.release(&flow(3, 9, p));
            f.release(&flow(4, 9, p));
        }
        // And the same for IPv6 pods, in accounts of their own.
        for p in 0..4 {
            let _ = f.admit(&flow6(5, p), None, 0); // refused once, still mapped
            let _ = f.admit(&flow6(6, p), None, 0); // refused once, then unmapped
        }
        for p in 0..3 {
            f.release(&flow6(5, p));
            f.release(&flow6(6, p));
        }
        f.prune(|ip| ip != 4, |ip| ip != 6);
        let mut kept: Vec<IpAddr> = f.pods().map(|(ip, _)| ip).collect();
        kept.sort_unstable();
        assert_eq!(kept, [v4(1), v4(3), IpAddr::from(5u128.to_be_bytes())]);
        let usage: HashMap<IpAddr, PodUsage> = f.pods().map(|(ip, u)| (ip, *u)).collect();
        assert_eq!(usage[&IpAddr::from(5u128.to_be_bytes())].drops, [1, 0, 0]);
    }

    fn v4(ip: u32) -> IpAddr {
        IpAddr::from(ip.to_be_bytes())
    }

    fn flow6(pod: u128, port: u16) -> crate::nat::FlowKey6 {
        crate::nat::FlowKey6 {
            src: pod,
            dst: 9,
            src_port: port,
            dst_port: 443,
            proto: PROTO_TCP,
        }
    }
}
