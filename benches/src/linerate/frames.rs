//! The generator's frames: pod traffic as a pod's node tunnels it to the gateway (Geneve with
//! the OVN option for egressgw and the floor; VXLAN for the kernel, which has no Geneve
//! here), and the 16-byte trailer every frame ends with, so the sink can recognise a frame
//! whatever was added or removed in front of it.
//!
//! Flow `i` is pod `i % pods`, destination port `5000 + (i / pods) % DST_PORTS` and source
//! port `1024 + i / (pods * DST_PORTS)`: distinct 5-tuples, spread over enough destinations
//! that no (egress IP, destination) pair runs out of ports, for egressgw's endpoint-dependent
//! ports and the kernel's SNAT alike. Inner IPv4 UDP checksums are zero (RFC 768: none
//! computed), so writing the trailer needs no checksum update. With IPv6 inside (pods
//! fd00:10:133::2 onwards, to the seed's server 2001:db8:55::d) a zero UDP checksum is
//! illegal, so each frame gets its own, and the smallest frame is 78 bytes (CSIT's IPv6
//! minimum: the headers and the trailer).

use super::tcp_cycle;
use gateway::testutil::{self, L4};
use gateway::wire::checksum;
use gateway::wire::ethernet::{self, EtherType, MacAddr};
use gateway::wire::{geneve, ipv4, ipv6, tcp, udp};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Bytes at the end of every generated frame: magic, flags, sender, sequence, time stamp.
pub const TRAILER_LEN: usize = 16;
const MAGIC: u16 = 0xe9a7;
/// Set by the sink when it sends a frame back (a reply).
pub const FLAG_REPLY: u8 = 1;
/// Sent inside the measured window (not readiness probes or priming).
pub const FLAG_MEASURED: u8 = 2;

/// Destination ports flows are spread over.
pub const DST_PORTS: u32 = 64;
/// Frame sizes (the frame the server side receives, without FCS).
pub const MIN_SIZE: usize = 64;
pub const MAX_SIZE: usize = 1500;
/// IMIX as CSIT runs it (IMIX_v4_1: 64, 570 and 1518 bytes with FCS, 7:4:1), capped at the
/// largest frame this bench's server side takes: 64, 570 and 1500 bytes, 352 on average.
pub const IMIX: [usize; 3] = [64, 570, 1500];
/// Which of [`IMIX`] each of 12 consecutive frames is: 7, 4 and 1 of them, interleaved.
pub const IMIX_ORDER: [u8; 12] = [0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1];
/// Bytes the tunnel adds in front of that frame.
pub const GENEVE_OVERHEAD: usize = 14 + 20 + 8 + 8 + 8;
pub const VXLAN_OVERHEAD: usize = 14 + 20 + 8 + 8;
/// Pods are 10.133.0.2 onwards.
const POD_BASE: u32 = testutil::ip(10, 133, 0, 2);
/// IPv6 pods are fd00:10:133::2 onwards.
const POD6_BASE: u128 = 0xfd00_0010_0133_0000_0000_0000_0000_0002;
/// The smallest IPv6 frame: Ethernet, IPv6 and UDP headers and the trailer.
pub const MIN_SIZE_V6: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + TRAILER_LEN;
pub const MAX_PODS: u32 = 65000;
pub const VXLAN_PORT: u16 = 4789;
/// The MAC of the kernel path's VXLAN device (inner frames must be addressed to it).
pub const VXLAN_DEV_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0x01, 0x23]);

/// How the pod's node reaches the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encap {
    Geneve,
    Vxlan,
    /// The same over the IPv6 underlay (fd00:99::25 to fd00:99::23; a single-stack IPv6
    /// cluster's), the outer UDP checksum zero (RFC 6935 lets a tunnel send it so; egressgw
    /// takes it, the kernel's VXLAN with `udp6zerocsumrx`).
    Geneve6,
    Vxlan6,
}

impl Encap {
    /// The same tunnel over the IPv6 underlay.
    pub fn over_ipv6(self) -> Encap {
        match self {
            Encap::Geneve | Encap::Geneve6 => Encap::Geneve6,
            Encap::Vxlan | Encap::Vxlan6 => Encap::Vxlan6,
        }
    }
}

/// What the last [`TRAILER_LEN`] bytes of a frame say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub flags: u8,
    /// The generating thread (each has its own sequence).
    pub sender: u8,
    pub seq: u32,
    /// Nanoseconds since the tester started.
    pub stamp_ns: u64,
}

impl Trailer {
    /// Writes the trailer over the last bytes of `frame` (at least [`TRAILER_LEN`] long).
    pub fn write(&self, frame: &mut [u8]) {
        let at = frame.len() - TRAILER_LEN;
        let t = &mut frame[at..];
        t[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        t[2] = self.flags;
        t[3] = self.sender;
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..16].copy_from_slice(&self.stamp_ns.to_be_bytes());
    }

    /// The trailer of `frame`, if it ends with one.
    pub fn read(frame: &[u8]) -> Option<Trailer> {
        let at = frame.len().checked_sub(TRAILER_LEN)?;
        let t = &frame[at..];
        if u16::from_be_bytes([t[0], t[1]]) != MAGIC {
            return None;
        }
        Some(Trailer {
            flags: t[2],
            sender: t[3],
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            stamp_ns: u64::from_be_bytes([t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]]),
        })
    }

    /// Sets the reply flag of the trailer `frame` ends with.
    pub fn mark_reply(frame: &mut [u8]) {
        if let Some(at) = frame.len().checked_sub(TRAILER_LEN) {
            frame[at + 2] |= FLAG_REPLY;
        }
    }
}

/// The flow set: how many pods and flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flows {
    pub pods: u32,
    pub flows: u32,
}

impl Flows {
    pub fn pod_ip(pod: u32) -> u32 {
        POD_BASE + pod
    }

    pub fn pod_ip6(pod: u32) -> u128 {
        POD6_BASE + u128::from(pod)
    }

    /// The pod (0-based) flow `i` comes from.
    pub fn pod_of(&self, i: u32) -> u32 {
        i % self.pods
    }

    /// (pod IP, source port, destination port) of flow `i`.
    pub fn flow(&self, i: u32) -> (u32, u16, u16) {
        let rest = i / self.pods;
        let dport = 5000 + rest % DST_PORTS;
        let sport = 1024 + rest / DST_PORTS;
        (Self::pod_ip(self.pod_of(i)), sport as u16, dport as u16)
    }

    /// Whether every flow gets a distinct 5-tuple (source ports stay in 1024-65535).
    pub fn check(&self) -> Result<(), String> {
        if self.pods == 0 || self.pods > MAX_PODS {
            return Err(format!("pods must be 1-{MAX_PODS}"));
        }
        let per_sport = u64::from(self.pods) * u64::from(DST_PORTS);
        if u64::from(self.flows) > per_sport * 64512 || self.flows == 0 {
            return Err(format!("flows must be 1-{}", per_sport * 64512));
        }
        Ok(())
    }
}

/// What a generator's frames carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    /// UDP requests over IPv4.
    Udp,
    /// UDP requests over IPv6.
    Udp6,
    /// TCP SYNs (the connection-rate mode's cycles) over IPv4.
    Tcp,
}

/// Builds request frames for one encapsulation, size and flow set.
#[derive(Debug, Clone)]
pub struct Generator {
    template: Vec<u8>,
    /// Where the inner IP header starts.
    inner_ip: usize,
    /// Where the outer UDP source port (the flow's entropy) lies.
    entropy_at: usize,
    flows: Flows,
    inner: Inner,
}

impl Generator {
    /// Frames of `size` bytes on the server side (the inner Ethernet frame), tunnelled from
    /// master-03 (`testutil::NODE3_IP`, `tester_mac`) to the gateway (`testutil::NODE_IP`,
    /// `testutil::NODE_MAC`), addressed to the seed's server.
    pub fn new(encap: Encap, flows: Flows, size: usize, tester_mac: MacAddr) -> Generator {
        Self::build(encap, flows, size, tester_mac, Inner::Udp)
    }

    /// [`Self::new`] with IPv6 inside (at least [`MIN_SIZE_V6`] bytes), the UDP checksum
    /// computed for each frame.
    pub fn udp6(encap: Encap, flows: Flows, size: usize, tester_mac: MacAddr) -> Generator {
        Self::build(encap, flows, size, tester_mac, Inner::Udp6)
    }

    /// TCP SYNs opening flow `i` (at least [`tcp_cycle::MIN_SIZE`] bytes, for the trailer),
    /// with the checksum computed for each frame.
    pub fn tcp(encap: Encap, flows: Flows, size: usize, tester_mac: MacAddr) -> Generator {
        Self::build(encap, flows, size, tester_mac, Inner::Tcp)
    }

    fn build(
        encap: Encap,
        flows: Flows,
        size: usize,
        tester_mac: MacAddr,
        kind: Inner,
    ) -> Generator {
        let tcp = kind == Inner::Tcp;
        let min = match kind {
            Inner::Udp => MIN_SIZE,
            Inner::Udp6 => MIN_SIZE_V6,
            Inner::Tcp => tcp_cycle::MIN_SIZE,
        };
        let size = size.clamp(min, MAX_SIZE);
        let (l4, l4_len) = if tcp {
            let l4 = L4::Tcp {
                src_port: 1024,
                dst_port: 5000,
                flags: tcp::flags::SYN,
            };
            (l4, tcp::HEADER_LEN)
        } else {
            let l4 = L4::Udp {
                src_port: 1024,
                dst_port: 5000,
            };
            (l4, udp::HEADER_LEN)
        };
        let inner = if kind == Inner::Udp6 {
            let payload = vec![0u8; size - ethernet::HEADER_LEN - ipv6::HEADER_LEN - l4_len];
            testutil::ipv6_packet(Flows::pod_ip6(0), testutil::SERVER_V6, 64, l4, &payload)
        } else {
            let payload = vec![0u8; size - ethernet::HEADER_LEN - ipv4::HEADER_LEN - l4_len];
            let mut inner = testutil::ipv4_packet(
                Flows::pod_ip(0),
                testutil::SERVER_IP,
                64,
                false,
                l4,
                &payload,
            );
            if !tcp {
                inner[ipv4::HEADER_LEN + 6..ipv4::HEADER_LEN + 8].fill(0);
            }
            inner
        };
        let (template, inner_ip) = match encap {
            Encap::Geneve | Encap::Geneve6 => (
                testutil::geneve_frame(testutil::NODE3_IP, tester_mac, 49152, &inner),
                GENEVE_OVERHEAD + ethernet::HEADER_LEN,
            ),
            Encap::Vxlan | Encap::Vxlan6 => (
                vxlan_frame(tester_mac, &inner),
                VXLAN_OVERHEAD + ethernet::HEADER_LEN,
            ),
        };
        let (template, inner_ip, entropy_at) = match encap {
            Encap::Geneve6 | Encap::Vxlan6 => (
                over_ipv6_underlay(&template),
                inner_ip + UNDERLAY6_EXTRA,
                34 + UNDERLAY6_EXTRA,
            ),
            Encap::Geneve | Encap::Vxlan => (template, inner_ip, 34),
        };
        Generator {
            template,
            inner_ip,
            entropy_at,
            flows,
            inner: kind,
        }
    }

    /// Length of every frame this generator writes.
    pub fn len(&self) -> usize {
        self.template.len()
    }

    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// Writes flow `i`'s frame with `trailer` into `buf` (at least [`Self::len`] bytes);
    /// returns its length.
    pub fn write(&self, buf: &mut [u8], i: u32, trailer: &Trailer) -> usize {
        let n = self.template.len();
        let frame = &mut buf[..n];
        frame.copy_from_slice(&self.template);
        let (pod, sport, dport) = self.flows.flow(i);
        let ip = self.inner_ip;
        // The outer source port carries the flow's entropy, as OVS sets it.
        let entropy = 49152 | (i as u16 & 0x3fff);
        let at = self.entropy_at;
        frame[at..at + 2].copy_from_slice(&entropy.to_be_bytes());
        if self.inner == Inner::Udp6 {
            let pod6 = Flows::pod_ip6(self.flows.pod_of(i)).to_be_bytes();
            frame[ip + 8..ip + 24].copy_from_slice(&pod6);
            let l4 = ip + ipv6::HEADER_LEN;
            frame[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
            frame[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
            trailer.write(frame);
            udp::Packet::new_unchecked(&mut frame[l4..])
                .fill_checksum_v6(&pod6, &testutil::SERVER_V6.to_be_bytes());
            return n;
        }
        frame[ip + 12..ip + 16].copy_from_slice(&pod.to_be_bytes());
        frame[ip + 10..ip + 12].fill(0);
        let mut header = [0u8; 20];
        header.copy_from_slice(&frame[ip..ip + 20]);
        frame[ip + 10..ip + 12].copy_from_slice(&checksum::header20(&header).to_be_bytes());
        frame[ip + 20..ip + 22].copy_from_slice(&sport.to_be_bytes());
        frame[ip + 22..ip + 24].copy_from_slice(&dport.to_be_bytes());
        trailer.write(frame);
        if self.inner == Inner::Tcp {
            let seg = &mut frame[ip + ipv4::HEADER_LEN..];
            tcp::Packet::new_unchecked(seg).fill_checksum(pod, testutil::SERVER_IP);
        }
        n
    }
}

/// Bytes the IPv6 underlay adds to a tunnel over IPv4's.
pub const UNDERLAY6_EXTRA: usize = ipv6::HEADER_LEN - ipv4::HEADER_LEN;

/// A tunnel frame over the IPv4 underlay (master-03 to master-01) carried over the IPv6 one
/// instead: the outer IPv4 header replaced by IPv6 from `testutil::NODE3_V6` to
/// `testutil::NODE_V6`, the UDP checksum zero.
pub fn over_ipv6_underlay(frame: &[u8]) -> Vec<u8> {
    let udp_at = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
    let datagram = &frame[udp_at..];
    let mut b = vec![0u8; ethernet::HEADER_LEN + ipv6::HEADER_LEN + datagram.len()];
    b[..12].copy_from_slice(&frame[..12]);
    b[12..14].copy_from_slice(&[0x86, 0xdd]);
    ipv6::Repr {
        src: testutil::NODE3_V6.to_be_bytes().into(),
        dst: testutil::NODE_V6.to_be_bytes().into(),
        next_header: ipv6::next_header::UDP,
        hop_limit: 64,
        payload_len: datagram.len() as u16,
    }
    .emit(&mut b[ethernet::HEADER_LEN..])
    .expect("room for the header");
    let at = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
    b[at..].copy_from_slice(datagram);
    b[at + 6..at + 8].fill(0);
    b
}

/// `inner` (an IPv4 or IPv6 packet) VXLAN-encapsulated from master-03 to the gateway, VNI as
/// OVN's transit switch, inner frame addressed to the gateway's VXLAN device.
pub fn vxlan_frame(tester_mac: MacAddr, inner: &[u8]) -> Vec<u8> {
    let udp_payload = 8 + ethernet::HEADER_LEN + inner.len();
    let mut b = testutil::underlay_udp_frame(
        testutil::NODE3_IP,
        tester_mac,
        49152,
        VXLAN_PORT,
        udp_payload,
    );
    // VXLAN: the I flag, then the VNI in the top three bytes of the second word.
    b[42] = 0x08;
    b[46..50].copy_from_slice(&(geneve::OVN_TRANSIT_VNI << 8).to_be_bytes());
    ethernet::Repr {
        src: testutil::TRANSIT3_MAC,
        dst: VXLAN_DEV_MAC,
        vlan_tci: None,
        ethertype: if inner[0] >> 4 == 6 {
            EtherType::Ipv6
        } else {
            EtherType::Ipv4
        },
    }
    .emit(&mut b[50..])
    .unwrap();
    b[64..].copy_from_slice(inner);
    b
}

/// What arrived at the tester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A plain IPv4 or IPv6 frame from `source` (the gateway's output toward the server).
    Plain { source: IpAddr },
    /// A tunnel frame (a reply tunnelled back, or the floor's bounce).
    Tunnel,
    /// Something else (ARP, IPv6, a frame without our trailer).
    Other,
}

/// Where a plain IPv6 frame's addresses and ports lie.
const V6_SRC: usize = ethernet::HEADER_LEN + 8;
const V6_DST: usize = V6_SRC + 16;
const V6_L4: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;

/// Classifies a received frame.
pub fn classify(frame: &[u8]) -> Arrival {
    if frame.get(12..14) == Some(&[0x86, 0xdd]) {
        if frame.len() < MIN_SIZE_V6 || !matches!(frame[20], 6 | 17) {
            return Arrival::Other;
        }
        // A tunnel over the IPv6 underlay (no extension headers here).
        let dport = u16::from_be_bytes([frame[V6_L4 + 2], frame[V6_L4 + 3]]);
        if frame[20] == 17 && (dport == geneve::UDP_PORT || dport == VXLAN_PORT) {
            return Arrival::Tunnel;
        }
        let source: [u8; 16] = frame[V6_SRC..V6_DST].try_into().expect("16 bytes");
        return Arrival::Plain {
            source: source.into(),
        };
    }
    let udp = frame.get(23) == Some(&17);
    if frame.len() < 42 + TRAILER_LEN || frame[12..14] != [0x08, 0x00] || !(udp || frame[23] == 6) {
        return Arrival::Other;
    }
    let dport = u16::from_be_bytes([frame[36], frame[37]]);
    if udp && (dport == geneve::UDP_PORT || dport == VXLAN_PORT) {
        Arrival::Tunnel
    } else {
        Arrival::Plain {
            source: IpAddr::from([frame[26], frame[27], frame[28], frame[29]]),
        }
    }
}

/// Turns a frame that arrived on the server side into the server's reply, in place: MACs,
/// and for a plain frame also addresses and ports, swapped (the IPv4 checksum is a sum, so
/// swapping keeps it right; the IPv4 UDP checksum is zero, and a TCP segment's answer sets
/// its own, `tcp_cycle`). Sets the reply flag; an IPv6 UDP checksum is computed again.
pub fn reflect(frame: &mut [u8]) {
    swap(frame, 0, 6, 6);
    match classify(frame) {
        Arrival::Plain {
            source: IpAddr::V6(_),
        } => {
            swap(frame, V6_SRC, V6_DST, 16);
            swap(frame, V6_L4, V6_L4 + 2, 2);
            Trailer::mark_reply(frame);
            if frame[20] == 17 {
                let src: [u8; 16] = frame[V6_SRC..V6_DST].try_into().expect("16 bytes");
                let dst: [u8; 16] = frame[V6_DST..V6_L4].try_into().expect("16 bytes");
                let end = (V6_L4 + usize::from(u16::from_be_bytes([frame[18], frame[19]])))
                    .min(frame.len());
                udp::Packet::new_unchecked(&mut frame[V6_L4..end]).fill_checksum_v6(&src, &dst);
            }
            return;
        }
        Arrival::Plain { .. } => {
            swap(frame, 26, 30, 4);
            swap(frame, 34, 36, 2);
        }
        _ => {}
    }
    Trailer::mark_reply(frame);
}

/// Swaps the `len` bytes at `a` with those at `b` (`a + len <= b`): two MACs, addresses or
/// ports side by side.
pub fn swap(frame: &mut [u8], a: usize, b: usize, len: usize) {
    let (first, second) = frame.split_at_mut(b);
    first[a..a + len].swap_with_slice(&mut second[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::wire::ipv4::Packet as Ipv4;

    fn trailer() -> Trailer {
        Trailer {
            flags: FLAG_MEASURED,
            sender: 3,
            seq: 0xdead_beef,
            stamp_ns: 0x0123_4567_89ab_cdef,
        }
    }

    #[test]
    fn trailer_round_trips_and_needs_its_magic() {
        let mut f = vec![0u8; 64];
        trailer().write(&mut f);
        assert_eq!(Trailer::read(&f), Some(trailer()));
        Trailer::mark_reply(&mut f);
        assert_eq!(Trailer::read(&f).unwrap().flags, FLAG_MEASURED | FLAG_REPLY);
        f[48] ^= 1;
        assert_eq!(Trailer::read(&f), None);
        assert_eq!(Trailer::read(&f[..10]), None);
    }

    #[test]
    fn flows_are_distinct_and_spread_over_destinations() {
        let flows = Flows {
            pods: 10,
            flows: 5000,
        };
        flows.check().unwrap();
        let all: std::collections::HashSet<_> = (0..5000).map(|i| flows.flow(i)).collect();
        assert_eq!(all.len(), 5000);
        let dports: std::collections::HashSet<_> = all.iter().map(|f| f.2).collect();
        assert_eq!(dports.len(), DST_PORTS as usize);
        assert!(Flows { pods: 0, flows: 1 }.check().is_err());
        assert!(Flows { pods: 1, flows: 0 }.check().is_err());
    }

    /// The gateway's own parser accepts the Geneve frames: views read the fields written.
    #[test]
    fn geneve_frames_read_back_with_the_gateway_views() {
        let flows = Flows {
            pods: 300,
            flows: 100_000,
        };
        let g = Generator::new(Encap::Geneve, flows, 128, testutil::NODE3_MAC);
        assert_eq!(g.len(), 128 + GENEVE_OVERHEAD);
        let mut buf = vec![0u8; 2048];
        let n = g.write(&mut buf, 77_777, &trailer());
        let frame = &buf[..n];
        let outer = Ipv4::new_checked(&frame[14..]).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(outer.dst(), testutil::NODE_IP);
        let gen = geneve::Header::new_checked(&frame[42..]).unwrap();
        assert_eq!(gen.vni(), geneve::OVN_TRANSIT_VNI);
        assert_eq!(gen.ovn_ports(), Some(testutil::OVN_PORTS));
        let inner = Ipv4::new_checked(&frame[GENEVE_OVERHEAD + 14..]).unwrap();
        assert!(inner.verify_checksum());
        let (pod, sport, dport) = flows.flow(77_777);
        assert_eq!((inner.src(), inner.dst()), (pod, testutil::SERVER_IP));
        let u = udp::Packet::new_checked(inner.payload()).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.checksum()),
            (sport, dport, 0)
        );
        assert_eq!(Trailer::read(frame), Some(trailer()));
        assert_eq!(classify(frame), Arrival::Tunnel);
    }

    /// Over the IPv6 underlay: the same tunnels behind an outer IPv6 header from master-03's
    /// IPv6 address to master-01's, the UDP checksum zero, the entropy in the UDP source port;
    /// egressgw's pipeline takes the Geneve frame (node.ip6 set) and translates its pod's
    /// IPv6, and the tester tells both tunnels from plain IPv6.
    #[test]
    fn frames_over_the_ipv6_underlay_are_taken_by_the_pipeline() {
        let flows = Flows { pods: 4, flows: 64 };
        let mut buf = vec![0u8; 2048];
        for encap in [Encap::Geneve6, Encap::Vxlan6] {
            let g = Generator::udp6(encap, flows, 128, testutil::NODE3_MAC);
            let n = g.write(&mut buf, 5, &trailer());
            let frame = &buf[..n];
            let outer = ipv6::Packet::new_checked(&frame[14..]).unwrap();
            assert_eq!(
                (outer.src_bytes(), outer.dst_bytes(), outer.next_header()),
                (
                    testutil::NODE3_V6.to_be_bytes(),
                    testutil::NODE_V6.to_be_bytes(),
                    17
                )
            );
            assert_eq!(usize::from(outer.payload_len()), n - 54);
            let u = udp::Packet::new_checked(outer.payload()).unwrap();
            assert_eq!((u.src_port(), u.checksum()), (49152 | 5, 0));
            assert_eq!(classify(frame), Arrival::Tunnel, "{encap:?}");
            assert_eq!(Trailer::read(frame), Some(trailer()));
            if encap == Encap::Geneve6 {
                let t = testutil::seed_tables_underlay6();
                let mut t = t;
                t.ipv6
                    .egress
                    .set(Flows::pod_ip6(flows.pod_of(5)), testutil::EGRESS_V6);
                let mut w = testutil::worker_dual(64);
                let (_, out) = testutil::run(&mut w, &t, 1, frame).expect("translated");
                let ip = ipv6::Packet::new_checked(&out[14..]).unwrap();
                assert_eq!(ip.src_bytes(), testutil::EGRESS_V6.to_be_bytes());
            }
        }
    }

    /// The VXLAN frames parse with etherparse (an independent reader).
    #[test]
    fn vxlan_frames_parse_with_etherparse() {
        let flows = Flows { pods: 4, flows: 8 };
        let g = Generator::new(Encap::Vxlan, flows, 64, testutil::NODE3_MAC);
        let mut buf = vec![0u8; 2048];
        let n = g.write(&mut buf, 5, &trailer());
        let outer = etherparse::SlicedPacket::from_ethernet(&buf[..n]).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = outer.transport else {
            panic!("outer UDP")
        };
        assert_eq!(u.destination_port(), VXLAN_PORT);
        let vx = u.payload();
        assert_eq!(vx[0], 0x08);
        assert_eq!(
            u32::from_be_bytes([vx[4], vx[5], vx[6], vx[7]]) >> 8,
            geneve::OVN_TRANSIT_VNI
        );
        let inner = etherparse::SlicedPacket::from_ethernet(&vx[8..]).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(e)) = inner.link else {
            panic!("inner Ethernet")
        };
        assert_eq!(e.destination(), VXLAN_DEV_MAC.0);
        let Some(etherparse::NetSlice::Ipv4(ip)) = inner.net else {
            panic!("inner IPv4")
        };
        assert_eq!(ip.header().source(), Flows::pod_ip(1).to_be_bytes());
        assert_eq!(vx.len() - 8, 64);
    }

    #[test]
    fn reflect_swaps_a_plain_frame_and_keeps_its_checksum() {
        let inner = testutil::ipv4_packet(
            testutil::EGRESS_IP,
            testutil::SERVER_IP,
            63,
            false,
            L4::Udp {
                src_port: 40000,
                dst_port: 5001,
            },
            &[0u8; 40],
        );
        let mut f = testutil::external_frame(&inner);
        trailer().write(&mut f);
        assert_eq!(
            classify(&f),
            Arrival::Plain {
                source: IpAddr::from(testutil::EGRESS_IP.to_be_bytes())
            }
        );
        reflect(&mut f);
        let ip = Ipv4::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.src(), ip.dst()),
            (testutil::SERVER_IP, testutil::EGRESS_IP)
        );
        assert_eq!(&f[0..6], &testutil::ROUTER_MAC.0);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (5001, 40000));
        assert_eq!(Trailer::read(&f).unwrap().flags & FLAG_REPLY, FLAG_REPLY);
    }

    /// IPv6 frames: 78 bytes at least, each with its own correct UDP checksum, read back
    /// by the gateway's views; the server's answer keeps a correct checksum too.
    #[test]
    fn ipv6_frames_carry_a_checksum_and_reflect_with_one() {
        let flows = Flows {
            pods: 300,
            flows: 100_000,
        };
        let g = Generator::udp6(Encap::Geneve, flows, 64, testutil::NODE3_MAC);
        assert_eq!(g.len(), MIN_SIZE_V6 + GENEVE_OVERHEAD);
        let mut buf = vec![0u8; 2048];
        let n = g.write(&mut buf, 77_777, &trailer());
        let inner = &buf[GENEVE_OVERHEAD + 14..n];
        let ip = ipv6::Packet::new_checked(inner).unwrap();
        let (_, sport, dport) = flows.flow(77_777);
        let pod6 = Flows::pod_ip6(flows.pod_of(77_777));
        assert_eq!(ip.src_bytes(), pod6.to_be_bytes());
        assert!(testutil::checksums_verify_v6(inner));
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (sport, dport));
        assert_ne!(u.checksum(), 0);
        assert_eq!(Trailer::read(&buf[..n]), Some(trailer()));
        // As egressgw would emit it: plain IPv6 from the egress IP; reflected, the checksum
        // still verifies.
        let mut out = testutil::external_frame(inner);
        out[22..38].copy_from_slice(&testutil::EGRESS_V6.to_be_bytes());
        udp::Packet::new_unchecked(&mut out[54..]).fill_checksum_v6(
            &testutil::EGRESS_V6.to_be_bytes(),
            &testutil::SERVER_V6.to_be_bytes(),
        );
        assert_eq!(
            classify(&out),
            Arrival::Plain {
                source: IpAddr::from(testutil::EGRESS_V6.to_be_bytes())
            }
        );
        reflect(&mut out);
        assert!(testutil::checksums_verify_v6(&out[14..]));
        assert_eq!(&out[22..38], &testutil::SERVER_V6.to_be_bytes());
        assert_eq!(Trailer::read(&out).unwrap().flags & FLAG_REPLY, FLAG_REPLY);
        // And in VXLAN for the kernel path: the inner Ethernet type says IPv6.
        let v = Generator::udp6(Encap::Vxlan, flows, 64, testutil::NODE3_MAC);
        let n = v.write(&mut buf, 1, &trailer());
        assert_eq!(&buf[62..64], &[0x86, 0xdd]);
        assert!(testutil::checksums_verify_v6(&buf[64..n]));
    }

    #[test]
    fn imix_is_seven_four_one() {
        let count = |k| IMIX_ORDER.iter().filter(|&&i| i == k).count();
        assert_eq!((count(0), count(1), count(2)), (7, 4, 1));
        let mean = IMIX_ORDER.iter().map(|&i| IMIX[i as usize]).sum::<usize>() / 12;
        assert_eq!(mean, 352);
        assert!(IMIX.iter().all(|s| (MIN_SIZE..=MAX_SIZE).contains(s)));
    }

    #[test]
    fn classify_ignores_what_is_not_ours() {
        assert_eq!(classify(&[0u8; 20]), Arrival::Other);
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(classify(&arp), Arrival::Other);
    }
}
