//! What the pipeline reads besides the frame: this node's addresses, the pod -> egress-IP map,
//! and next hops. Built by the control plane and published to workers as one immutable
//! snapshot (read-copy-update), so a worker sees the old tables or the new, never a mix.

use super::neighbors::Neighbors;
use crate::wire::ethernet::MacAddr;
use hashbrown::HashMap;
use std::net::IpAddr;

/// This node's side of the tunnel and of the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// The underlay address Geneve arrives at (and leaves from).
    pub node_ip: u32,
    /// The IPv6 underlay's address Geneve over IPv6 arrives at, or 0 where the underlay is
    /// IPv4 alone.
    pub node_ip6: u128,
    pub underlay_mac: MacAddr,
    /// Largest packet the underlay carries (the interface MTU).
    pub underlay_mtu: u16,
    /// Largest packet a pod's interface takes (OVN-Kubernetes's `mtu`, below the underlay's
    /// by the tunnel's room): a reply is held to it as to what the underlay carries once
    /// wrapped ([`NodeConfig::reply_limit`]), for a larger one would be dropped unseen at
    /// the pod's own interface.
    pub pod_mtu: u16,
    pub external_mac: MacAddr,
    /// Largest packet the external interface sends (its MTU): a pod's packet above it is
    /// answered with ICMP through its tunnel (`pod_too_big`). Where the two interfaces are one
    /// it is the underlay's, which a decapsulated packet always fits.
    pub external_mtu: u16,
}

impl NodeConfig {
    /// The largest inner packet a reply may be, tunnelled in `carried` bytes of headers (outer
    /// IP, UDP, Geneve and inner Ethernet): what the pod's interface takes and the underlay
    /// carries. A larger one with DF set (or IPv6) draws ICMP announcing this, else it is cut.
    #[inline(always)]
    pub fn reply_limit(&self, carried: usize) -> usize {
        usize::from(self.pod_mtu).min(usize::from(self.underlay_mtu).saturating_sub(carried))
    }
}

/// The pod -> egress-IP map of one family (the seed's `egress-service-snat-v4`, or `-v6` with
/// 128-bit addresses) and the egress IPs this node serves. A pod whose egress IP is not served
/// here is treated as unmapped: fail closed. Nodes are underlay addresses of either family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressMapOf<A: Address> {
    pods: HashMap<A, A>,
    /// pod -> the underlay IP of its node, where known (new flows must come from there).
    nodes: HashMap<A, IpAddr>,
    /// Sorted: a node serves a handful, and every reply asks; a binary search of a few
    /// words beats hashing the address.
    served: Vec<A>,
    /// (egress IP, protocol) -> its Service's own ports, sorted: never used for SNAT. Most
    /// nodes have none; a new flow looks here once.
    reserved: Vec<((A, u8), Vec<u16>)>,
}

/// An address as the map keeps it: IPv4 as `u32`, IPv6 as `u128`.
pub trait Address: Copy + Ord + core::hash::Hash + core::fmt::Debug {
    /// `ip` as this family keeps it, or `None` for the other family's.
    fn of(ip: std::net::IpAddr) -> Option<Self>;
}

impl Address for u32 {
    fn of(ip: std::net::IpAddr) -> Option<u32> {
        match ip {
            std::net::IpAddr::V4(v4) => Some(u32::from(v4)),
            std::net::IpAddr::V6(_) => None,
        }
    }
}

impl Address for u128 {
    fn of(ip: std::net::IpAddr) -> Option<u128> {
        match ip {
            std::net::IpAddr::V6(v6) => Some(u128::from(v6)),
            std::net::IpAddr::V4(_) => None,
        }
    }
}

/// The IPv4 map (`egress-service-snat-v4`).
pub type EgressMap = EgressMapOf<u32>;
/// The IPv6 map (`egress-service-snat-v6`).
pub type EgressMap6 = EgressMapOf<u128>;

impl<A: Address> Default for EgressMapOf<A> {
    fn default() -> Self {
        EgressMapOf {
            pods: HashMap::new(),
            nodes: HashMap::new(),
            served: Vec::new(),
            reserved: Vec::new(),
        }
    }
}

impl<A: Address> EgressMapOf<A> {
    pub fn set(&mut self, pod: A, egress_ip: A) {
        self.pods.insert(pod, egress_ip);
    }

    pub fn remove(&mut self, pod: A) -> Option<A> {
        self.nodes.remove(&pod);
        self.pods.remove(&pod)
    }

    pub fn set_node(&mut self, pod: A, node: IpAddr) {
        self.nodes.insert(pod, node);
    }

    /// Whether a new flow of `pod` may come through the tunnel from `node`: yes when the
    /// pod's node is not known, else only from that node (another node cannot borrow a pod's
    /// egress IP by spoofing its address).
    #[inline]
    pub fn admits(&self, pod: A, node: IpAddr) -> bool {
        self.nodes.get(&pod).is_none_or(|n| *n == node)
    }

    pub fn serve(&mut self, egress_ip: A) {
        if let Err(at) = self.served.binary_search(&egress_ip) {
            self.served.insert(at, egress_ip);
        }
    }

    pub fn unserve(&mut self, egress_ip: A) {
        if let Ok(at) = self.served.binary_search(&egress_ip) {
            self.served.remove(at);
        }
    }

    /// Whether `pod` has a map entry (served here or not).
    pub fn maps(&self, pod: A) -> bool {
        self.pods.contains_key(&pod)
    }

    /// `pod`'s map entry's egress IP, served here or not.
    pub fn mapped_to(&self, pod: A) -> Option<A> {
        self.pods.get(&pod).copied()
    }

    /// The egress IP a new flow from `pod` leaves with, if any and served here.
    #[inline]
    pub fn egress_for(&self, pod: A) -> Option<A> {
        self.pods.get(&pod).copied().filter(|ip| self.serves(*ip))
    }

    /// Whether replies addressed to `ip` are ours to translate.
    #[inline]
    pub fn serves(&self, ip: A) -> bool {
        self.served.binary_search(&ip).is_ok()
    }

    /// Keeps `port` of `egress_ip` for protocol `proto` out of SNAT (a Service port).
    pub fn reserve(&mut self, egress_ip: A, proto: u8, port: u16) {
        let key = (egress_ip, proto);
        let at = match self.reserved.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => at,
            Err(at) => {
                self.reserved.insert(at, (key, Vec::new()));
                at
            }
        };
        let ports = &mut self.reserved[at].1;
        if let Err(i) = ports.binary_search(&port) {
            ports.insert(i, port);
        }
    }

    /// The ports of `egress_ip` its Service owns for `proto`, sorted (empty for most).
    #[inline]
    pub fn reserved_ports(&self, egress_ip: A, proto: u8) -> &[u16] {
        if self.reserved.is_empty() {
            return &[];
        }
        match self
            .reserved
            .binary_search_by(|(k, _)| k.cmp(&(egress_ip, proto)))
        {
            Ok(at) => &self.reserved[at].1,
            Err(_) => &[],
        }
    }

    pub fn pods(&self) -> impl Iterator<Item = (A, A)> + '_ {
        self.pods.iter().map(|(&p, &e)| (p, e))
    }

    pub fn served(&self) -> impl Iterator<Item = A> + '_ {
        self.served.iter().copied()
    }
}

/// IPv6 next hops on the external interface: one on-link prefix, a default gateway, and the
/// neighbours (NDP's, mirrored from the kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fib6 {
    prefix: u128,
    mask: u128,
    gateway: Option<u128>,
    /// The gateway's MAC, kept beside the table: nearly every packet goes to it.
    gateway_mac: Option<u64>,
    neighbors: Neighbors<u128>,
}

impl Fib6 {
    /// `prefix/len` is on link; everything else goes via `gateway`.
    pub fn new(prefix: u128, len: u8, gateway: Option<u128>) -> Fib6 {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(len.min(128)))
            .unwrap_or(0);
        Fib6 {
            prefix: prefix & mask,
            mask,
            gateway,
            gateway_mac: None,
            neighbors: Neighbors::default(),
        }
    }

    pub fn set_neighbor(&mut self, ip: u128, mac: MacAddr) {
        self.neighbors.insert(ip, mac);
        self.refresh_gateway();
    }

    pub fn remove_neighbor(&mut self, ip: u128) {
        self.neighbors.remove(ip);
        self.refresh_gateway();
    }

    fn refresh_gateway(&mut self) {
        self.gateway_mac = self.gateway.and_then(|g| self.neighbors.get_word(g));
    }

    /// Whether `ip` is on this interface's link (its connected prefix).
    pub fn on_link(&self, ip: u128) -> bool {
        ip & self.mask == self.prefix
    }

    /// The default gateway, while its MAC is unknown.
    pub fn gateway_unresolved(&self) -> Option<u128> {
        self.gateway.filter(|_| self.gateway_mac.is_none())
    }

    /// The address whose MAC a packet to `dst` needs (0 with no route).
    #[inline]
    pub fn next_hop(&self, dst: u128) -> u128 {
        if dst & self.mask == self.prefix {
            dst
        } else {
            self.gateway.unwrap_or(0)
        }
    }

    /// The MAC for `dst` as [`MacAddr::to_word`] packs it, if known.
    #[inline]
    pub fn next_hop_word(&self, dst: u128) -> Option<u64> {
        if dst & self.mask == self.prefix {
            self.neighbors.get_word(dst)
        } else {
            self.gateway_mac
        }
    }
}

/// What the pipeline reads for IPv6 (issue 17): the pod -> egress-IPv6 map and the IPv6 next
/// hops of the external interface and of the underlay (where it is IPv6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipv6Tables {
    pub egress: EgressMap6,
    pub external: Fib6,
    pub underlay: Fib6,
}

/// Next hops on one interface: one connected subnet, a default gateway, and the neighbour
/// table (mirrored from the kernel by the daemon). The gateway's MAC is kept resolved beside
/// the table: nearly every egress packet goes to it, and this saves a hash lookup each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fib {
    subnet: u32,
    mask: u32,
    gateway: Option<u32>,
    /// The gateway's MAC as [`MacAddr::to_word`] packs it.
    gateway_mac: Option<u64>,
    neighbors: Neighbors,
}

impl Fib {
    /// `subnet/prefix_len` is on link; everything else goes via `gateway`.
    pub fn new(subnet: u32, prefix_len: u8, gateway: Option<u32>) -> Fib {
        let mask = if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix_len.min(32)))
        };
        Fib {
            subnet: subnet & mask,
            mask,
            gateway,
            ..Fib::default()
        }
    }

    pub fn set_neighbor(&mut self, ip: u32, mac: MacAddr) {
        self.neighbors.insert(ip, mac);
        self.refresh_gateway();
    }

    pub fn remove_neighbor(&mut self, ip: u32) {
        self.neighbors.remove(ip);
        self.refresh_gateway();
    }

    fn refresh_gateway(&mut self) {
        self.gateway_mac = self.gateway.and_then(|g| self.neighbors.get_word(g));
    }

    /// The default gateway, if any.
    pub fn gateway(&self) -> Option<u32> {
        self.gateway
    }

    /// Whether `ip` is on this interface's link (its connected subnet).
    pub fn on_link(&self, ip: u32) -> bool {
        ip & self.mask == self.subnet
    }

    /// The address whose MAC a packet to `dst` needs: `dst` itself on the link, else the
    /// gateway (0 when there is none).
    #[inline]
    pub fn next_hop(&self, dst: u32) -> u32 {
        if dst & self.mask == self.subnet {
            dst
        } else {
            self.gateway.unwrap_or(0)
        }
    }

    /// The MAC to send a packet for `dst` to, if known.
    pub fn next_hop_mac(&self, dst: u32) -> Option<MacAddr> {
        self.next_hop_word(dst).map(MacAddr::from_word)
    }

    /// [`Fib::next_hop_mac`] as [`MacAddr::to_word`] packs it, for the packet path.
    #[inline]
    pub fn next_hop_word(&self, dst: u32) -> Option<u64> {
        if dst & self.mask == self.subnet {
            self.neighbors.get_word(dst)
        } else {
            self.gateway_mac
        }
    }
}

/// Everything the pipeline reads, as one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub node: NodeConfig,
    pub egress: EgressMap,
    /// Next hops toward the outside world (br-ex).
    pub external: Fib,
    /// Next hops toward other nodes' tunnel endpoints (the same interface in one-armed mode).
    pub underlay: Fib,
    pub ipv6: Ipv6Tables,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unserved_egress_ip_fails_closed() {
        let mut m = EgressMap::default();
        m.set(0x0a85_0003, 0xc0a8_4264);
        assert_eq!(m.egress_for(0x0a85_0003), None);
        m.serve(0xc0a8_4264);
        assert_eq!(m.egress_for(0x0a85_0003), Some(0xc0a8_4264));
        assert_eq!(m.egress_for(0x0a85_0004), None);
        m.unserve(0xc0a8_4264);
        assert!(!m.serves(0xc0a8_4264));
    }

    #[test]
    fn served_set_keeps_each_address_once_in_any_order() {
        let mut m = EgressMap::default();
        for ip in [30, 10, 20, 10, 40, 30] {
            m.serve(ip);
        }
        assert_eq!(m.served().collect::<Vec<_>>(), [10, 20, 30, 40]);
        m.unserve(20);
        m.unserve(99);
        assert!([10, 30, 40].iter().all(|ip| m.serves(*ip)));
        assert!(![0, 20, 25, 99].iter().any(|ip| m.serves(*ip)));
        let mut other = EgressMap::default();
        [40, 30, 10].iter().for_each(|ip| other.serve(*ip));
        assert_eq!(m, other);
    }

    #[test]
    fn ipv6_next_hop_on_link_or_via_gateway() {
        let (r, n) = (MacAddr([2, 0, 0, 0, 0, 12]), MacAddr([2, 0, 0, 0, 0, 24]));
        let router = 0xfd00_0099_u128 << 96 | 0x12;
        let mut fib = Fib6::new(0xfd00_0099_u128 << 96, 64, Some(router));
        let server = 0x2001_0db8_0055_u128 << 80 | 0xd;
        assert_eq!(fib.next_hop_word(server), None);
        fib.set_neighbor(router, r);
        fib.set_neighbor(router + 12, n);
        assert_eq!(fib.next_hop_word(server), Some(r.to_word()));
        assert_eq!(fib.next_hop_word(router + 12), Some(n.to_word()));
        assert_eq!(fib.next_hop(router + 99), router + 99);
        fib.remove_neighbor(router);
        assert_eq!(fib.next_hop_word(server), None);
        assert_eq!(
            Fib6::new(0, 0, None).next_hop(server),
            server,
            "/0 is all on link"
        );
    }

    #[test]
    fn next_hop_on_link_or_via_gateway() {
        let r = MacAddr([2, 0, 0, 0, 0, 12]);
        let n = MacAddr([2, 0, 0, 0, 0, 24]);
        let mut fib = Fib::new(0xc0a8_6300, 24, Some(0xc0a8_630c));
        assert_eq!(fib.next_hop_mac(0xc0a8_370d), None); // gateway unresolved
        fib.set_neighbor(0xc0a8_630c, r);
        fib.set_neighbor(0xc0a8_6318, n);
        assert_eq!(fib.next_hop_mac(0xc0a8_6318), Some(n));
        assert_eq!(fib.next_hop_mac(0xc0a8_370d), Some(r));
        assert_eq!(fib.next_hop_mac(0xc0a8_6319), None); // on link, unresolved
        fib.remove_neighbor(0xc0a8_630c);
        assert_eq!(fib.next_hop_mac(0xc0a8_370d), None);
        fib.remove_neighbor(0xc0a8_630c);
        assert_eq!(fib.next_hop_mac(0xc0a8_370d), None);
    }
}
