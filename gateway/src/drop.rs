//! Why a frame was dropped: one enum, one counter each, per worker (VPP's error counters).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// Every reason the pipeline drops a frame. Names are stable: they appear in
        /// `egressctl stats` and in metrics labels.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// The snake_case name used by the CLI and metrics.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    FrameTruncated => "frame_truncated": "Shorter than an Ethernet header.",
    NotIpv4 => "not_ipv4": "Outer EtherType is neither IPv4 nor IPv6 (ARP, ...): the steering program should have passed it.",
    VlanTagged => "vlan_tagged": "802.1Q-tagged frame; the gateway runs on untagged interfaces.",
    Ipv4Truncated => "ipv4_truncated": "IPv4 header or total length beyond the frame.",
    Ipv4Malformed => "ipv4_malformed": "IPv4 version not 4, IHL < 5, or total length < header length.",
    Ipv4BadChecksum => "ipv4_bad_checksum": "IPv4 header checksum does not verify.",
    Ipv4Options => "ipv4_options": "IPv4 header carries options; not forwarded by the fast path.",
    Fragment => "fragment": "A fragment the gateway does not translate: IPv6 (a Fragment header), an ICMP error in pieces, a first fragment too short to hold its ports, or a fragmented tunnel (outer header); IPv4 fragments of pods' flows and of their replies are translated.",
    FragmentNoFirst => "fragment_no_first": "A later IPv4 fragment (offset above 0) whose datagram's first fragment this worker has not translated in the last 2 s: lost, overtaken, or its flow's session gone or on another member of the set.",
    Ipv6Truncated => "ipv6_truncated": "IPv6 header or payload length beyond the frame, or version not 6.",
    Ipv6ExtensionChain => "ipv6_extension_chain": "IPv6 extension headers that overrun the packet, number more than eight, put hop-by-hop anywhere but first, or that the gateway does not translate across (ESP, AH, mobility, ...).",
    TtlExpired => "ttl_expired": "TTL (IPv6: hop limit) would reach zero.",
    NotForGateway => "not_for_gateway": "Neither Geneve to the node IP nor addressed to an egress IP served here.",
    UdpTruncated => "udp_truncated": "UDP header or length beyond the packet.",
    UdpMalformed => "udp_malformed": "UDP length field below 8.",
    UdpZeroChecksum => "udp_zero_checksum": "IPv6 UDP datagram with checksum 0, which RFC 8200 forbids.",
    GeneveTruncated => "geneve_truncated": "Geneve header or options area beyond the packet.",
    GeneveBadVersion => "geneve_bad_version": "Geneve version is not 0.",
    GeneveOptionOverrun => "geneve_option_overrun": "A Geneve option's length runs past the options area.",
    GeneveCriticalOption => "geneve_critical_option": "Unknown Geneve option with the critical bit (RFC 8926 3.5).",
    GeneveOam => "geneve_oam": "Geneve OAM frame.",
    GeneveNotEthernet => "geneve_not_ethernet": "Geneve protocol type is not Ethernet (0x6558).",
    InnerFrameTruncated => "inner_frame_truncated": "Encapsulated frame shorter than an Ethernet header.",
    InnerNotIpv4 => "inner_not_ipv4": "Encapsulated frame is neither IPv4 nor IPv6.",
    Ipv4OverIpv6Underlay => "ipv4_over_ipv6_underlay": "An IPv4 pod packet in Geneve over the IPv6 underlay: an IPv4 session has no room for an IPv6 node address, so the gateway serves IPv6 pods alone there (single-stack IPv6 clusters).",
    L4Truncated => "l4_truncated": "TCP, UDP or ICMP header beyond the packet.",
    TcpMalformed => "tcp_malformed": "TCP data offset below 5.",
    ProtocolUnsupported => "protocol_unsupported": "Inner IP protocol other than TCP, UDP, ICMP or ICMPv6.",
    IcmpUnsupported => "icmp_unsupported": "ICMP or ICMPv6 type neither echo nor a translatable error.",
    IcmpErrorTruncated => "icmp_error_truncated": "ICMP error whose embedded header is truncated or malformed.",
    IcmpErrorNoSession => "icmp_error_no_session": "ICMP error about a flow with no session.",
    NoEgressMapping => "no_egress_mapping": "Pod IP has no egress IP: the gateway fails closed.",
    PodWrongNode => "pod_wrong_node": "A new flow of a pod came through another node's tunnel than the one its map entry names.",
    NoSession => "no_session": "Packet to an egress IP that matches no session.",
    MidStreamNoSession => "mid_stream_no_session": "In a gateway set: a pod's TCP segment without SYN and with no session (its replica may be on its way); no session is made from mid-stream.",
    SessionTableFull => "session_table_full": "This worker's share of the session bound is used up.",
    PortExhausted => "port_exhausted": "No free external port for this egress IP and destination.",
    PodSessionLimit => "pod_session_limit": "The pod holds as many live sessions as one pod may (`nat.fair_share.pod_max_sessions`); its new flow is refused, its other flows go on.",
    PodRateLimit => "pod_rate_limit": "The pod opened new flows faster than one pod may (`nat.fair_share.pod_new_flows_per_second`); its new flow is refused.",
    PodDestinationShare => "pod_destination_share": "The pod holds its share of the ports to this destination (`nat.fair_share.pod_destination_share`); the rest stay for the other pods.",
    NoPortsOwned => "no_ports_owned": "This worker owns no port to give a new flow: in a gateway set, the node is drained (its blocks are the serving members') or holds no block for this worker.",
    NeighborUnresolved => "neighbor_unresolved": "Next hop's MAC address unknown (resolution requested).",
    NoHeadroom => "no_headroom": "Frame buffer lacks the headroom to prepend headers (a sizing bug, not traffic).",
    TxRingFull => "tx_ring_full": "Every transmit frame is in flight; the packet was translated but not sent.",
    TooBigNoDf => "too_big_no_df": "A reply too big for the underlay once wrapped, DF clear, that could not be cut into pieces: the batch's room for extra frames was used up.",
    EgressTooBig => "egress_too_big": "A pod's packet exceeds the external interface's MTU and no ICMP answered it: DF clear (fragmenting is not done here), or itself an ICMP error.",
    ForwardTooBig => "forward_too_big": "A reply for another member's port does not fit the underlay once wrapped for forwarding, and cannot be cut to fit: DF set, IPv6, or over the IPv6 underlay.",
    ForwardedNoSession => "forwarded_no_session": "A reply another member forwarded matches no session here either (it is not forwarded again).",
}

/// Per-worker packet counters. Each worker is the only writer of its own set, so a relaxed
/// load + store (no read-modify-write) is enough; other threads read them for stats.
#[derive(Debug)]
#[repr(align(64))]
pub struct Counters {
    drops: [AtomicU64; DropReason::COUNT],
    pub rx: AtomicU64,
    /// Non-empty batches received (one per port a turn).
    pub rx_batches: AtomicU64,
    pub tx_external: AtomicU64,
    pub tx_underlay: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// Bytes handed to the transmit ring.
    pub tx_bytes: AtomicU64,
    /// Nanoseconds spent on non-empty batches, from the first frame received (after the
    /// wait) to the end of transmit and expiry (VPP's clocks per packet, in time): busy time per packet is
    /// `busy_ns / rx`.
    pub busy_ns: AtomicU64,
    pub sessions_created: AtomicU64,
    /// Session slots of this worker in use (stored once a turn): its free list holds the rest.
    pub slots_in_use: AtomicU64,
    /// The last next hop a packet was dropped for lacking a MAC (`neighbor_unresolved`), for
    /// the control thread to ask the kernel to resolve; 0 when none is waiting.
    pub unresolved: AtomicU32,
    /// The same for IPv6 next hops (no 128-bit atomics: a lock the worker only tries, on a
    /// drop, never waiting for it).
    pub unresolved6: std::sync::Mutex<Option<u128>>,
    /// ICMP fragmentation-needed and Packet Too Big messages generated: for replies too big for
    /// the underlay, and for pods' packets too big for the external interface.
    pub icmp_frag_needed_sent: AtomicU64,
    /// Replies sent to the MAC their flow arrived from, the node's neighbour entry missing.
    pub next_hop_from_flow: AtomicU64,
    /// Replies with no session here sent to the member owning their port.
    pub replies_forwarded: AtomicU64,
    /// IPv4 fragments translated (first and later, both directions).
    pub fragments_translated: AtomicU64,
    /// Replies too big for the underlay, DF clear, cut into pieces that fit (`refragment`).
    pub replies_fragmented: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            drops: [const { AtomicU64::new(0) }; DropReason::COUNT],
            rx: AtomicU64::new(0),
            rx_batches: AtomicU64::new(0),
            tx_external: AtomicU64::new(0),
            tx_underlay: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            sessions_created: AtomicU64::new(0),
            slots_in_use: AtomicU64::new(0),
            unresolved: AtomicU32::new(0),
            unresolved6: std::sync::Mutex::new(None),
            icmp_frag_needed_sent: AtomicU64::new(0),
            next_hop_from_flow: AtomicU64::new(0),
            replies_forwarded: AtomicU64::new(0),
            fragments_translated: AtomicU64::new(0),
            replies_fragmented: AtomicU64::new(0),
        }
    }
}

/// Adds one to a counter owned by the calling worker.
#[inline(always)]
pub fn bump(c: &AtomicU64) {
    add(c, 1);
}

/// Adds `n` to a counter owned by the calling worker.
#[inline(always)]
pub fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Counters {
    #[inline(always)]
    pub fn count_drop(&self, r: DropReason) {
        bump(&self.drops[r as usize]);
    }

    /// Leaves `next_hop` for the control thread to have the kernel resolve.
    #[inline]
    pub fn request_resolution(&self, next_hop: u32) {
        self.unresolved.store(next_hop, Ordering::Relaxed);
    }

    /// Leaves the IPv6 `next_hop` for the control thread, unless it is reading the last one
    /// (0, no route: nothing to resolve).
    #[cold]
    pub fn request_resolution6(&self, next_hop: u128) {
        if next_hop == 0 {
            return;
        }
        if let Ok(mut slot) = self.unresolved6.try_lock() {
            *slot = Some(next_hop);
        }
    }

    /// The IPv6 next hop waiting to be resolved, taken.
    pub fn take_unresolved6(&self) -> Option<u128> {
        self.unresolved6
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize].load(Ordering::Relaxed)
    }

    /// The reasons with drops so far, and their counts (for stats and metrics).
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.drops(*r)))
            .filter(|(_, n)| *n > 0)
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn counts_per_reason() {
        let c = Counters::default();
        c.count_drop(DropReason::NoEgressMapping);
        c.count_drop(DropReason::NoEgressMapping);
        c.count_drop(DropReason::Fragment);
        assert_eq!(c.drops(DropReason::NoEgressMapping), 2);
        assert_eq!(c.drops(DropReason::Fragment), 1);
        assert_eq!(c.total_drops(), 3);
    }
}
