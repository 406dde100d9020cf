//! A session: a slot of atomics, read by any worker without a lock (a sequence lock over the
//! immutable part), written only by the worker that owns the slot. An IPv4 session is one
//! cache line ([`Session`]); an IPv6 one two ([`Session6`]): its flow and translation in the
//! first line (the egress path reads nothing else), the tunnel back in the second (the return
//! path reads both).
//!
//! Word 0 is the state: `generation (24) | flags (8) | last_seen (32)`. An even generation means
//! the slot is free or being rewritten (so an all-zero slot is free, and a table can start as
//! untouched zeroed memory). Any worker may update flags and last-seen with a
//! compare-and-swap that also checks the generation, so a late update can never land on a
//! recycled slot. The other words hold the flow and the tunnel it came in on; they change only
//! while the generation is even.

use super::flow::{FlowKey, FlowKey6, InsideKey, PROTO_ICMP, PROTO_ICMPV6};
use crate::wire::ethernet::{self, MacAddr};
use core::sync::atomic::{fence, AtomicU64, Ordering};

/// Where the return traffic of a flow goes: the Geneve tunnel it came in on, mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunnelEndpoint {
    /// Underlay IP of the node that sent the flow (the outer source on the way in).
    pub node_ip: u32,
    pub vni: u32,
    /// OVN (ingress, egress) port keys as received; swapped on the way back.
    pub ovn_ports: Option<(u16, u16)>,
    /// Inner source MAC as received (the pod node's transit router port).
    pub inner_src_mac: MacAddr,
    /// Inner destination MAC as received (this node's transit router port).
    pub inner_dst_mac: MacAddr,
    /// Outer UDP source port as received: the sender's flow entropy, reused on the way back.
    pub entropy_port: u16,
    /// Outer source MAC as received: the node's own when it shares the underlay's link, so
    /// the way back while the neighbour table has not caught up with it.
    pub src_mac: MacAddr,
    /// The node's IPv6 underlay address when the flow came in Geneve over IPv6 (then
    /// `node_ip` is 0); 0 on the IPv4 underlay. Only an IPv6 session has room for it.
    pub node_ip6: u128,
}

impl TunnelEndpoint {
    /// The node the flow came from, on either underlay.
    pub fn node(&self) -> std::net::IpAddr {
        if self.node_ip6 != 0 {
            self.node_ip6.to_be_bytes().into()
        } else {
            self.node_ip.to_be_bytes().into()
        }
    }
}

/// Everything a session records, as plain data (exportable to another node later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionData {
    /// pod -> remote, as the pod sent it.
    pub inside: FlowKey,
    pub ext_ip: u32,
    pub ext_port: u16,
    pub tunnel: TunnelEndpoint,
}

impl SessionData {
    /// remote -> egress IP, as replies arrive.
    pub fn outside(&self) -> FlowKey {
        self.inside.reply_at(self.ext_ip, self.ext_port)
    }
}

/// An IPv6 session's record, as plain data. The tunnel is the IPv4 underlay's or the IPv6
/// one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionData6 {
    /// pod -> remote, as the pod sent it.
    pub inside: FlowKey6,
    pub ext_ip: u128,
    pub ext_port: u16,
    pub tunnel: TunnelEndpoint,
}

impl SessionData6 {
    /// remote -> egress IP, as replies arrive.
    pub fn outside(&self) -> FlowKey6 {
        self.inside.reply_at(self.ext_ip, self.ext_port)
    }
}

/// What a slot holds, for its owner's expiry and flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    V4(SessionData),
    V6(SessionData6),
}

impl Entry {
    /// The pod's side of the session.
    pub fn inside(&self) -> InsideKey {
        match self {
            Entry::V4(d) => InsideKey::V4(d.inside),
            Entry::V6(d) => InsideKey::V6(d.inside),
        }
    }

    pub fn proto(&self) -> u8 {
        match self {
            Entry::V4(d) => d.inside.proto,
            Entry::V6(d) => d.inside.proto,
        }
    }

    /// The egress IP the session is translated to.
    pub fn ext_ip(&self) -> std::net::IpAddr {
        match self {
            Entry::V4(d) => d.ext_ip.to_be_bytes().into(),
            Entry::V6(d) => d.ext_ip.to_be_bytes().into(),
        }
    }

    /// The tunnel back to the pod's node.
    pub fn tunnel(&self) -> &TunnelEndpoint {
        match self {
            Entry::V4(d) => &d.tunnel,
            Entry::V6(d) => &d.tunnel,
        }
    }
}

/// The mutable state word, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub generation: u32,
    pub flags: u8,
    pub last_seen: u32,
}

impl State {
    pub fn pack(self) -> u64 {
        (u64::from(self.generation & GEN_MASK) << 40)
            | (u64::from(self.flags) << 32)
            | u64::from(self.last_seen)
    }

    pub fn unpack(w: u64) -> State {
        State {
            generation: (w >> 40) as u32 & GEN_MASK,
            flags: (w >> 32) as u8,
            last_seen: w as u32,
        }
    }

    pub fn is_live(self) -> bool {
        self.generation & 1 == 1
    }
}

const GEN_MASK: u32 = 0x00ff_ffff;

/// One session slot of `N` data words. All zero is generation 0, free (the huge-page array
/// starts so).
#[derive(Debug, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub struct Slot<const N: usize> {
    state: AtomicU64,
    words: [AtomicU64; N],
}

/// An IPv4 session: one cache line.
pub type Session = Slot<7>;
/// An IPv6 session: two cache lines (the last word is free).
pub type Session6 = Slot<15>;

/// Data words in the first cache line (with the state word).
const LINE0_WORDS: usize = 7;
/// Words of an IPv6 session's record: its first line, then in the second the tunnel's five
/// and the IPv6 underlay's node address (zero on the IPv4 underlay).
const V6_WORDS: usize = 14;

impl<const N: usize> Default for Slot<N> {
    /// All zero: generation 0, free.
    fn default() -> Self {
        Slot {
            state: AtomicU64::new(0),
            words: [const { AtomicU64::new(0) }; N],
        }
    }
}

fn encode(d: &SessionData) -> [u64; 7] {
    let (a, b) = d.inside.words();
    let t = &d.tunnel;
    let (ovn_in, ovn_out, has_ovn) = match t.ovn_ports {
        Some((i, o)) => (i, o, 1u64),
        None => (0, 0, 0),
    };
    [
        a,
        b | (u64::from(d.ext_port) << 16) | (has_ovn << 8),
        (u64::from(d.ext_ip) << 32) | u64::from(t.node_ip),
        tunnel_word(t.vni, ovn_in, ovn_out),
        t.inner_src_mac.to_word()
            | u64::from(u16::from_le_bytes(t.entropy_port.to_be_bytes())) << 48,
        ethernet::src_and_type_word(t.inner_dst_mac),
        t.src_mac.to_word(),
    ]
}

/// The tunnel's words (`encode`'s 3-6) hold what the reply's headers carry in the order they
/// carry it (read as little-endian words), so the return path writes them with whole-word
/// stores: word 3 is the VNI's three bytes, a zero, then OVN's egress and ingress port keys
/// as received (the reply's ingress and egress); word 4 the inner source MAC and the outer UDP
/// source port, word 5 the inner destination MAC and the Ethernet type (the reply's inner
/// header is words 4 and 5 stored 6 bytes apart), word 6 the outer source MAC.
fn tunnel_word(vni: u32, ovn_in: u16, ovn_out: u16) -> u64 {
    let [_, v0, v1, v2] = vni.to_be_bytes();
    let [e0, e1] = ovn_out.to_be_bytes();
    let [i0, i1] = ovn_in.to_be_bytes();
    u64::from_le_bytes([v0, v1, v2, 0, e0, e1, i0, i1])
}

/// An IPv6 session's words: the first line holds the pod address's high half, the shared
/// ports word, the rest of the pod address, the remote address and the egress IP; the
/// second line the tunnel's words as [`encode`] lays them out (node IP, VNI and OVN ports,
/// inner Ethernet, outer source MAC).
fn encode6(d: &SessionData6) -> [u64; V6_WORDS] {
    let [src_hi, src_lo, dst_hi, dst_lo, ports] = d.inside.words();
    let tunnel = encode(&SessionData {
        tunnel: d.tunnel,
        ..SessionData::default()
    });
    let has_ovn = u64::from(d.tunnel.ovn_ports.is_some());
    // The reply's inner Ethernet header carries IPv6's type.
    let inner_dst_and_type =
        ethernet::src_and_type_word_of(d.tunnel.inner_dst_mac, ethernet::EtherType::Ipv6);
    [
        src_hi,
        ports | (u64::from(d.ext_port) << 16) | (has_ovn << 8),
        src_lo,
        dst_hi,
        dst_lo,
        (d.ext_ip >> 64) as u64,
        d.ext_ip as u64,
        tunnel[2],
        tunnel[3],
        tunnel[4],
        inner_dst_and_type,
        tunnel[6],
        (d.tunnel.node_ip6 >> 64) as u64,
        d.tunnel.node_ip6 as u64,
    ]
}

fn decode6(w: &[u64; V6_WORDS]) -> SessionData6 {
    let pair = |hi: u64, lo: u64| (u128::from(hi) << 64) | u128::from(lo);
    // The tunnel decodes as an IPv4 session's: its words, at their IPv4 places.
    let tunnel = TunnelEndpoint {
        node_ip6: pair(w[12], w[13]),
        ..decode(&[0, w[1], w[7], w[8], w[9], w[10], w[11]]).tunnel
    };
    SessionData6 {
        inside: FlowKey6 {
            src: pair(w[0], w[2]),
            dst: pair(w[3], w[4]),
            src_port: (w[1] >> 48) as u16,
            dst_port: (w[1] >> 32) as u16,
            proto: w[1] as u8,
        },
        ext_ip: pair(w[5], w[6]),
        ext_port: (w[1] >> 16) as u16,
        tunnel,
    }
}

fn decode(w: &[u64; 7]) -> SessionData {
    let w3 = w[3].to_le_bytes();
    SessionData {
        inside: FlowKey {
            src: (w[0] >> 32) as u32,
            dst: w[0] as u32,
            src_port: (w[1] >> 48) as u16,
            dst_port: (w[1] >> 32) as u16,
            proto: w[1] as u8,
        },
        ext_ip: (w[2] >> 32) as u32,
        ext_port: (w[1] >> 16) as u16,
        tunnel: TunnelEndpoint {
            src_mac: MacAddr::from_word(w[6]),
            node_ip: w[2] as u32,
            vni: u32::from_be_bytes([0, w3[0], w3[1], w3[2]]),
            ovn_ports: ((w[1] >> 8) & 1 == 1).then_some((
                u16::from_be_bytes([w3[6], w3[7]]),
                u16::from_be_bytes([w3[4], w3[5]]),
            )),
            inner_src_mac: MacAddr::from_word(w[4]),
            inner_dst_mac: MacAddr::from_word(w[5]),
            entropy_port: u16::from_be_bytes(((w[4] >> 48) as u16).to_le_bytes()),
            node_ip6: 0,
        },
    }
}

/// A consistent copy of a live session, with the generation it was read at. Kept as the raw
/// words: the fast path decodes only the fields it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub generation: u32,
    pub state: State,
    words: [u64; 7],
}

impl Snapshot {
    pub fn data(&self) -> SessionData {
        decode(&self.words)
    }

    /// The tunnel back, as stored.
    #[inline(always)]
    pub fn reply_tunnel(&self) -> ReplyTunnel {
        ReplyTunnel::from_words(&self.words)
    }

    /// The binding part (the first three words).
    #[inline(always)]
    pub fn binding(&self) -> Binding {
        Binding {
            generation: self.generation,
            words: [self.words[0], self.words[1], self.words[2]],
        }
    }

    /// Whether the reply tuple is `key`.
    #[inline(always)]
    pub fn is_outside(&self, key: &FlowKey) -> bool {
        outside_matches(self.words[0], self.words[1], self.words[2], key)
    }
}

/// The tunnel a reply goes back through, in the stored words (see [`tunnel_word`]): what the
/// return path writes, without decoding it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTunnel {
    pub node_ip: u32,
    /// The IPv6 underlay's node address, 0 on the IPv4 underlay.
    pub node_ip6: u128,
    pub ovn_option: bool,
    /// Outer source MAC the flow arrived with, as [`MacAddr::to_word`] packs it.
    pub src_mac_word: u64,
    vni_ports: u64,
    inner_eth: [u64; 2],
}

impl ReplyTunnel {
    /// The words of `t` as a session stores them: the way back for a frame that has no session
    /// (the pipeline's answers to a pod, and tests).
    pub(crate) fn new(t: &TunnelEndpoint) -> ReplyTunnel {
        ReplyTunnel {
            node_ip6: t.node_ip6,
            ..ReplyTunnel::from_words(&encode(&SessionData {
                tunnel: *t,
                ..SessionData::default()
            }))
        }
    }

    /// [`ReplyTunnel::new`] for an IPv6 packet: the inner Ethernet type is IPv6's.
    pub(crate) fn new6(t: &TunnelEndpoint) -> ReplyTunnel {
        let mut r = ReplyTunnel::new(t);
        r.inner_eth[1] = ethernet::src_and_type_word_of(t.inner_dst_mac, ethernet::EtherType::Ipv6);
        r
    }

    #[inline(always)]
    fn from_words(w: &[u64; 7]) -> ReplyTunnel {
        ReplyTunnel {
            node_ip: w[2] as u32,
            node_ip6: 0,
            ovn_option: (w[1] >> 8) & 1 == 1,
            src_mac_word: w[6],
            vni_ports: w[3],
            inner_eth: [w[4], w[5]],
        }
    }

    /// Bytes 4-7 of the Geneve header: the VNI and a reserved zero (as a little-endian word).
    #[inline(always)]
    pub fn vni_word(&self) -> u32 {
        self.vni_ports as u32
    }

    /// The OVN option's port keys swapped for the reply: the egress port the flow left OVN by,
    /// less its top bit (the ingress key has 15), then the ingress port (little-endian word).
    #[inline(always)]
    pub fn ovn_ports_word(&self) -> u32 {
        (self.vni_ports >> 32) as u32 & !0x80
    }

    /// The inner Ethernet header, mirrored: the first word at byte 0 (destination: the
    /// sender's source MAC, then two bytes the second overwrites), the second at byte 6
    /// (source MAC and type).
    #[inline(always)]
    pub fn inner_eth(&self) -> [u64; 2] {
        self.inner_eth
    }

    /// The sender's outer UDP source port, in wire order (a little-endian u16 of its bytes).
    #[inline(always)]
    pub fn entropy_port_wire(&self) -> u16 {
        (self.inner_eth[0] >> 48) as u16
    }
}

/// What the egress fast path needs of a session: its pod tuple words and its translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub generation: u32,
    words: [u64; 3],
}

impl Binding {
    #[inline(always)]
    pub fn ext_ip(&self) -> u32 {
        (self.words[2] >> 32) as u32
    }

    #[inline(always)]
    pub fn ext_port(&self) -> u16 {
        (self.words[1] >> 16) as u16
    }

    /// Whether the pod-side tuple is `key`.
    #[inline(always)]
    pub fn is_inside(&self, key: &FlowKey) -> bool {
        let (a, b) = key.words();
        self.words[0] == a && self.words[1] & INSIDE_MASK == b
    }
}

/// A consistent copy of a live IPv6 session (see [`Snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot6 {
    pub generation: u32,
    pub state: State,
    words: [u64; V6_WORDS],
}

impl Snapshot6 {
    pub fn data(&self) -> SessionData6 {
        decode6(&self.words)
    }

    /// The binding part (the first line).
    #[inline(always)]
    pub fn binding(&self) -> Binding6 {
        let mut words = [0; LINE0_WORDS];
        words.copy_from_slice(&self.words[..LINE0_WORDS]);
        Binding6 {
            generation: self.generation,
            words,
        }
    }

    /// Whether the reply tuple is `key`.
    #[inline(always)]
    pub fn is_outside(&self, key: &FlowKey6) -> bool {
        let w = &self.words;
        let (proto, ext_port) = (w[1] as u8, (w[1] >> 16) as u16);
        let remote_port = if proto == PROTO_ICMPV6 {
            ext_port
        } else {
            (w[1] >> 32) as u16
        };
        let [r_hi, r_lo, e_hi, e_lo, _] = key.words();
        (w[3], w[4], w[5], w[6]) == (r_hi, r_lo, e_hi, e_lo)
            && ext_port == key.dst_port
            && remote_port == key.src_port
            && proto == key.proto
    }

    /// The tunnel back, as stored (the second line).
    #[inline(always)]
    pub fn reply_tunnel(&self) -> ReplyTunnel {
        let w = &self.words;
        ReplyTunnel {
            node_ip6: (u128::from(w[12]) << 64) | u128::from(w[13]),
            ..ReplyTunnel::from_words(&[0, w[1], w[7], w[8], w[9], w[10], w[11]])
        }
    }
}

/// What the IPv6 egress fast path needs of a session: the first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding6 {
    pub generation: u32,
    words: [u64; LINE0_WORDS],
}

impl Binding6 {
    #[inline(always)]
    pub fn ext_ip(&self) -> u128 {
        (u128::from(self.words[5]) << 64) | u128::from(self.words[6])
    }

    #[inline(always)]
    pub fn ext_port(&self) -> u16 {
        (self.words[1] >> 16) as u16
    }

    /// Whether the pod-side tuple is `key`.
    #[inline(always)]
    pub fn is_inside(&self, key: &FlowKey6) -> bool {
        let [s_hi, s_lo, d_hi, d_lo, ports] = key.words();
        let w = &self.words;
        w[1] & INSIDE_MASK == ports && (w[0], w[2], w[3], w[4]) == (s_hi, s_lo, d_hi, d_lo)
    }
}

/// The bits of the ports word that belong to the inside key (ports and protocol).
const INSIDE_MASK: u64 = 0xffff_ffff_0000_00ff;

#[inline(always)]
fn outside_matches(w0: u64, w1: u64, w2: u64, key: &FlowKey) -> bool {
    let (proto, ext_port) = (w1 as u8, (w1 >> 16) as u16);
    let remote_port = if proto == PROTO_ICMP {
        ext_port
    } else {
        (w1 >> 32) as u16
    };
    w0 as u32 == key.src
        && (w2 >> 32) as u32 == key.dst
        && ext_port == key.dst_port
        && remote_port == key.src_port
        && proto == key.proto
}

impl Session {
    /// Reads the session if it is live and was not rewritten during the read.
    #[inline]
    pub fn read(&self) -> Option<Snapshot> {
        self.read_words::<7>().map(|(state, words)| Snapshot {
            generation: state.generation,
            state,
            words,
        })
    }

    /// The binding alone (pod tuple, egress IP and port): three words instead of seven, for
    /// the egress fast path.
    #[inline]
    pub fn read_binding(&self) -> Option<Binding> {
        self.read_words::<3>().map(|(state, w)| Binding {
            generation: state.generation,
            words: w,
        })
    }

    /// Writes a free slot (owner only).
    pub fn publish(&self, data: &SessionData, flags: u8, now: u32) -> u32 {
        self.publish_words(&encode(data), flags, now)
    }

    /// The session's data, read by its owner (no other writer exists).
    pub fn owner_data(&self) -> SessionData {
        decode(&self.owner_words())
    }
}

impl Session6 {
    /// Reads the session if it is live and was not rewritten during the read.
    #[inline]
    pub fn read(&self) -> Option<Snapshot6> {
        self.read_words::<V6_WORDS>()
            .map(|(state, words)| Snapshot6 {
                generation: state.generation,
                state,
                words,
            })
    }

    /// The first line alone (pod tuple, egress IP and port), for the egress fast path.
    #[inline]
    pub fn read_binding(&self) -> Option<Binding6> {
        self.read_words::<LINE0_WORDS>().map(|(state, w)| Binding6 {
            generation: state.generation,
            words: w,
        })
    }

    /// Starts fetching the second line (the tunnel back).
    #[inline(always)]
    pub fn prefetch_second_line(&self) {
        crate::mem::prefetch::prefetch(&self.words[LINE0_WORDS]);
    }

    /// Writes a free slot (owner only).
    pub fn publish(&self, data: &SessionData6, flags: u8, now: u32) -> u32 {
        self.publish_words(&encode6(data), flags, now)
    }

    /// The session's data, read by its owner (no other writer exists).
    pub fn owner_data(&self) -> SessionData6 {
        decode6(&self.owner_words())
    }
}

impl<const N: usize> Slot<N> {
    /// Starts fetching this slot's (first) line.
    #[inline(always)]
    pub fn prefetch(&self) {
        crate::mem::prefetch::prefetch(self);
    }

    pub fn state(&self) -> State {
        State::unpack(self.state.load(Ordering::Acquire))
    }

    /// The first `M` data words under the sequence lock, if the slot is live throughout.
    #[inline(always)]
    fn read_words<const M: usize>(&self) -> Option<(State, [u64; M])> {
        let state = State::unpack(self.state.load(Ordering::Acquire));
        if !state.is_live() {
            return None;
        }
        let mut w = [0u64; M];
        for (dst, src) in w.iter_mut().zip(&self.words) {
            *dst = src.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        let s1 = State::unpack(self.state.load(Ordering::Relaxed));
        (s1.generation == state.generation).then_some((state, w))
    }

    /// The first `M` data words, read by the owner (no other writer exists).
    fn owner_words<const M: usize>(&self) -> [u64; M] {
        let mut w = [0u64; M];
        for (dst, src) in w.iter_mut().zip(&self.words) {
            *dst = src.load(Ordering::Relaxed);
        }
        w
    }

    /// Generation even -> fields -> generation odd.
    fn publish_words(&self, words: &[u64], flags: u8, now: u32) -> u32 {
        let old = self.state();
        debug_assert!(!old.is_live());
        let generation = (old.generation | 1) & GEN_MASK;
        // Readers that saw the previous live generation fail their re-check from here on.
        fence(Ordering::Release);
        for (dst, src) in self.words.iter().zip(words) {
            dst.store(*src, Ordering::Relaxed);
        }
        self.state.store(
            State {
                generation,
                flags,
                last_seen: now,
            }
            .pack(),
            Ordering::Release,
        );
        generation
    }

    /// Applies `update` to flags and last-seen if the slot still holds `generation`.
    /// Writes nothing when nothing changes (most packets within the same second). True when
    /// this call changed the flags (a TCP state change, which replication carries).
    #[inline]
    pub fn touch(&self, generation: u32, now: u32, update: impl Fn(u8) -> u8) -> bool {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let s = State::unpack(cur);
            if s.generation != generation {
                return false;
            }
            let flags = update(s.flags);
            let next = State {
                flags,
                last_seen: now.max(s.last_seen),
                ..s
            }
            .pack();
            if next == cur {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return flags != s.flags,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Retires the session if its state is still `seen` (owner only): the generation turns even,
    /// so concurrent touches and reads fail from here on. False if a packet refreshed it first.
    pub fn retire(&self, seen: State) -> bool {
        let dead = State {
            generation: seen.generation.wrapping_add(1) & GEN_MASK,
            flags: 0,
            last_seen: seen.last_seen,
        };
        self.state
            .compare_exchange(
                seen.pack(),
                dead.pack(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Retires the session whatever its flags and last-seen (owner only): other workers may
    /// still be touching it, so retry until the generation turns.
    pub fn retire_now(&self) {
        loop {
            let seen = self.state();
            if !seen.is_live() || self.retire(seen) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_is_a_free_slot() {
        // The huge-page array hands out all-zero sessions; they must read as free.
        let s: Session = bytemuck::Zeroable::zeroed();
        assert!(!s.state().is_live());
        assert_eq!(s.state(), Session::default().state());
    }

    fn sample() -> SessionData {
        SessionData {
            inside: FlowKey {
                src: 0x0a85_0003,
                dst: 0xc0a8_370d,
                src_port: 40000,
                dst_port: 80,
                proto: 6,
            },
            ext_ip: 0xc0a8_4264,
            ext_port: 1025,
            tunnel: TunnelEndpoint {
                node_ip: 0xc0a8_6319,
                vni: 0xff0003,
                ovn_ports: Some((2, 4)),
                inner_src_mac: MacAddr([0x0a, 0x58, 0x64, 0x58, 0, 2]),
                inner_dst_mac: MacAddr([0x0a, 0x58, 0x64, 0x58, 0, 4]),
                entropy_port: 54321,
                src_mac: MacAddr([2, 0, 0, 0, 0, 0x25]),
                node_ip6: 0,
            },
        }
    }

    #[test]
    fn one_cache_line_for_ipv4_and_two_for_ipv6() {
        assert_eq!(core::mem::size_of::<Session>(), 64);
        assert_eq!(core::mem::align_of::<Session>(), 64);
        assert_eq!(core::mem::size_of::<Session6>(), 128);
        assert_eq!(core::mem::align_of::<Session6>(), 64);
    }

    fn sample6() -> SessionData6 {
        SessionData6 {
            inside: FlowKey6 {
                src: 0xfd00_0133_0000_0000_0000_0000_0000_0003,
                dst: 0x2001_0db8_0055_0000_0000_0000_0000_000d,
                src_port: 40000,
                dst_port: 443,
                proto: 6,
            },
            ext_ip: 0xfd00_0066_0000_0000_0000_0000_0000_0100,
            ext_port: 1025,
            tunnel: sample().tunnel,
        }
    }

    #[test]
    fn ipv6_session_round_trip_binding_outside_and_tunnel() {
        let d = sample6();
        assert_eq!(decode6(&encode6(&d)), d);
        let no_ovn = SessionData6 {
            tunnel: TunnelEndpoint {
                ovn_ports: None,
                ..d.tunnel
            },
            ..d
        };
        assert_eq!(decode6(&encode6(&no_ovn)), no_ovn);
        // On the IPv6 underlay the node's address is the second line's last two words.
        let underlay6 = SessionData6 {
            tunnel: TunnelEndpoint {
                node_ip: 0,
                node_ip6: 0xfd00_0099_u128 << 96 | 0x25,
                ..d.tunnel
            },
            ..d
        };
        assert_eq!(decode6(&encode6(&underlay6)), underlay6);
        let s6 = Session6::default();
        s6.publish(&underlay6, 0, 100);
        let t6 = s6.read().unwrap().reply_tunnel();
        assert_eq!((t6.node_ip6, t6.node_ip), (underlay6.tunnel.node_ip6, 0));
        assert_eq!(
            underlay6.tunnel.node(),
            "fd00:99::25".parse::<std::net::IpAddr>().unwrap()
        );
        let s = Session6::default();
        assert!(s.read().is_none() && s.read_binding().is_none());
        let g = s.publish(&d, 0, 100);
        let snap = s.read().unwrap();
        assert_eq!((snap.generation, snap.data()), (g, d));
        assert_eq!(s.owner_data(), d);
        let b = s.read_binding().unwrap();
        assert_eq!((b.ext_ip(), b.ext_port()), (d.ext_ip, d.ext_port));
        assert!(b.is_inside(&d.inside) && snap.binding() == b);
        // Every field of the key counts, both halves of both addresses.
        let k = d.inside;
        for other in k.each_field_changed() {
            assert!(!b.is_inside(&other), "{other:?}");
            // The reply tuple leaves the pod's address out.
            let reply = other.reply_at(d.ext_ip, d.ext_port);
            assert_eq!(snap.is_outside(&reply), reply == d.outside(), "{other:?}");
        }
        assert!(snap.is_outside(&d.outside()));
        assert!(!snap.is_outside(&FlowKey6 {
            dst: d.ext_ip ^ 1,
            ..d.outside()
        }));
        // The tunnel back reads as an IPv4 session's with the same tunnel does, but for the
        // inner Ethernet type: IPv6's.
        let (v4, v6) = (ReplyTunnel::new(&d.tunnel), snap.reply_tunnel());
        assert_eq!(
            (v6.node_ip, v6.ovn_option, v6.vni_word()),
            (v4.node_ip, v4.ovn_option, v4.vni_word())
        );
        assert_eq!(
            (v6.ovn_ports_word(), v6.entropy_port_wire()),
            (v4.ovn_ports_word(), v4.entropy_port_wire())
        );
        assert_eq!(v6.inner_eth()[0], v4.inner_eth()[0]);
        let ipv6_type =
            ethernet::src_and_type_word_of(d.tunnel.inner_dst_mac, ethernet::EtherType::Ipv6);
        assert_eq!(v6.inner_eth()[1], ipv6_type);
        // A retired IPv6 session is gone for readers and late touches.
        assert!(s.touch(g, 105, |f| f | 2));
        assert!(s.retire(s.state()));
        assert!(s.read().is_none() && !s.touch(g, 200, |f| f | 1));
    }

    #[test]
    fn icmpv6_echo_replies_key_on_the_translated_identifier() {
        let d = SessionData6 {
            inside: FlowKey6 {
                src: 1,
                dst: 2,
                src_port: 7,
                dst_port: 7,
                proto: PROTO_ICMPV6,
            },
            ext_ip: 3,
            ext_port: 1500,
            ..SessionData6::default()
        };
        let s = Session6::default();
        s.publish(&d, 0, 0);
        let o = d.outside();
        assert_eq!((o.src, o.dst, o.src_port, o.dst_port), (2, 3, 1500, 1500));
        assert!(s.read().unwrap().is_outside(&o));
    }

    #[test]
    fn encode_decode_round_trip() {
        let d = sample();
        assert_eq!(decode(&encode(&d)), d);
        let d2 = SessionData {
            tunnel: TunnelEndpoint {
                ovn_ports: None,
                ..d.tunnel
            },
            ..d
        };
        assert_eq!(decode(&encode(&d2)), d2);
    }

    #[test]
    fn lifecycle() {
        let s = Session::default();
        assert!(s.read().is_none());
        let g = s.publish(&sample(), 0, 100);
        let snap = s.read().unwrap();
        assert_eq!((snap.generation, snap.data()), (g, sample()));
        assert!(snap.binding().is_inside(&sample().inside) && snap.is_outside(&sample().outside()));
        assert_eq!(
            (snap.binding().ext_ip(), snap.binding().ext_port()),
            (sample().ext_ip, sample().ext_port)
        );
        assert!(!snap.binding().is_inside(&FlowKey {
            src_port: 1,
            ..sample().inside
        }));
        assert!(!snap.is_outside(&FlowKey {
            src_port: 1,
            ..sample().outside()
        }));
        s.touch(g, 105, |f| f | 2);
        assert_eq!((s.state().flags, s.state().last_seen), (2, 105));
        // A stale state does not retire; the current one does.
        assert!(!s.retire(snap.state));
        assert!(s.retire(s.state()));
        assert!(s.read().is_none());
        s.retire_now(); // already retired: no-op
        assert!(!s.state().is_live());
        // Touches for the old generation are ignored after retirement.
        let before = s.state();
        s.touch(g, 200, |f| f | 1);
        assert_eq!(s.state(), before);
        let g2 = s.publish(&sample(), 0, 300);
        assert_ne!(g2, g);
        assert!(s.read().unwrap().state.is_live());
    }

    #[test]
    fn outside_key_for_icmp_uses_ext_id_both_ways() {
        let d = SessionData {
            inside: FlowKey {
                src: 1,
                dst: 2,
                src_port: 7,
                dst_port: 7,
                proto: PROTO_ICMP,
            },
            ext_ip: 3,
            ext_port: 1500,
            ..Default::default()
        };
        assert_eq!(
            d.outside(),
            FlowKey {
                src: 2,
                dst: 3,
                src_port: 1500,
                dst_port: 1500,
                proto: PROTO_ICMP
            }
        );
    }
}
