//! Frame builders for tests and benches: the seed's addresses, Geneve frames as OVN sends them,
//! replies as the outside world sends them, and a from-scratch checksum check.
//! Built with this crate's own `Repr::emit`; the wire tests cross-check them against etherparse.

use crate::nat::{NatConfig, SessionTable};
use crate::pipeline::{Fib, Fib6, Frame, NodeConfig, Tables, Worker, HEADROOM};
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::{checksum, geneve, icmp, icmpv6, ipv4, ipv6, tcp, udp};

pub const fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// master-01: the egress node (br-ex).
pub const NODE_IP: u32 = ip(192, 168, 99, 23);
/// master-02 / master-03: pod nodes.
pub const NODE2_IP: u32 = ip(192, 168, 99, 24);
pub const NODE3_IP: u32 = ip(192, 168, 99, 25);
pub const ROUTER_IP: u32 = ip(192, 168, 99, 12);
pub const SERVER_IP: u32 = ip(192, 168, 55, 13);
pub const EGRESS_IP: u32 = ip(192, 168, 66, 100);
/// Pods of the seed: 10.133.0.3 on master-03, 10.132.0.13 on master-02.
pub const POD3: u32 = ip(10, 133, 0, 3);
pub const POD2: u32 = ip(10, 132, 0, 13);

pub const NODE_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 0x23]);
pub const NODE3_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 0x25]);
pub const NODE2_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 0x24]);
pub const ROUTER_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 0x12]);
/// The line-rate bench's wire (`bpf/wire.c`): an XDP program that sends every frame back out
/// as it came, as an object file for `ip link set ... obj`.
pub static WIRE_PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wire.o"));

/// OVN transit router ports: master-01 100.88.0.4, master-03 100.88.0.2.
pub const TRANSIT1_MAC: MacAddr = MacAddr([0x0a, 0x58, 0x64, 0x58, 0x00, 0x04]);
pub const TRANSIT3_MAC: MacAddr = MacAddr([0x0a, 0x58, 0x64, 0x58, 0x00, 0x02]);
/// OVN port keys (ingress = master-03's, egress = master-01's).
pub const OVN_PORTS: (u16, u16) = (2, 4);
pub const UNDERLAY_MTU: u16 = 1500;
/// The pods' MTU: OVN-Kubernetes's on a 1500-byte underlay (100 bytes for Geneve).
pub const POD_MTU: u16 = 1400;

/// The seed's tables: one-armed on br-ex, both pods mapped to 192.168.66.100.
pub fn seed_tables() -> Tables {
    let mut fib = Fib::new(ip(192, 168, 99, 0), 24, Some(ROUTER_IP));
    fib.set_neighbor(ROUTER_IP, ROUTER_MAC);
    fib.set_neighbor(NODE3_IP, NODE3_MAC);
    fib.set_neighbor(NODE2_IP, NODE2_MAC);
    let mut t = Tables {
        node: NodeConfig {
            node_ip: NODE_IP,
            node_ip6: 0,
            underlay_mac: NODE_MAC,
            underlay_mtu: UNDERLAY_MTU,
            pod_mtu: POD_MTU,
            external_mac: NODE_MAC,
            external_mtu: UNDERLAY_MTU,
        },
        egress: Default::default(),
        external: fib.clone(),
        underlay: fib,
        ipv6: Default::default(),
    };
    t.egress.serve(EGRESS_IP);
    t.egress.set(POD3, EGRESS_IP);
    t.egress.set(POD2, EGRESS_IP);
    t
}

/// The seed made dual-stack: pod 10.133.0.3 is also fd00:133::3, the server 2001:db8:55::d,
/// the egress IPv6 address fd00:66::100, the router fd00:99::12 on br-ex's fd00:99::/64.
pub const POD3_V6: u128 = 0xfd00_0133_0000_0000_0000_0000_0000_0003;
pub const SERVER_V6: u128 = 0x2001_0db8_0055_0000_0000_0000_0000_000d;
pub const EGRESS_V6: u128 = 0xfd00_0066_0000_0000_0000_0000_0000_0100;
pub const ROUTER_V6: u128 = 0xfd00_0099_0000_0000_0000_0000_0000_0012;

/// [`seed_tables`] with the IPv6 map (fd00:133::3 -> fd00:66::100, served) and next hops.
pub fn seed_tables_dual() -> Tables {
    let mut t = seed_tables();
    t.ipv6.egress.serve(EGRESS_V6);
    t.ipv6.egress.set(POD3_V6, EGRESS_V6);
    let mut fib = Fib6::new(ROUTER_V6, 64, Some(ROUTER_V6));
    fib.set_neighbor(ROUTER_V6, ROUTER_MAC);
    t.ipv6.external = fib;
    t
}

/// The IPv6 underlay (a single-stack IPv6 cluster's overlay): master-01 fd00:99::23,
/// master-03 fd00:99::25, master-02 fd00:99::24 on br-ex's fd00:99::/64.
pub const NODE_V6: u128 = 0xfd00_0099_0000_0000_0000_0000_0000_0023;
pub const NODE3_V6: u128 = 0xfd00_0099_0000_0000_0000_0000_0000_0025;
pub const NODE2_V6: u128 = 0xfd00_0099_0000_0000_0000_0000_0000_0024;

/// [`seed_tables_dual`] with the IPv6 underlay too: master-01's IPv6 address and the
/// underlay's IPv6 neighbours.
pub fn seed_tables_underlay6() -> Tables {
    let mut t = seed_tables_dual();
    t.node.node_ip6 = NODE_V6;
    let mut fib = Fib6::new(NODE_V6, 64, Some(ROUTER_V6));
    fib.set_neighbor(ROUTER_V6, ROUTER_MAC);
    fib.set_neighbor(NODE3_V6, NODE3_MAC);
    fib.set_neighbor(NODE2_V6, NODE2_MAC);
    t.ipv6.underlay = fib;
    t
}

/// `inner` (a whole Ethernet frame) as master-02, a member of the gateway set, forwards it to
/// master-01 over the IPv6 underlay: Geneve with `vni` (the forwarding VNI, or another to
/// test) and no options, the UDP checksum filled.
pub fn forwarded6_frame(inner: &[u8], vni: u32) -> Vec<u8> {
    let g = geneve::Repr {
        vni,
        ovn_ports: None,
    };
    underlay6_frame(
        (NODE2_V6, NODE2_MAC),
        50001,
        g,
        |b| {
            b.copy_from_slice(inner);
        },
        inner.len(),
    )
}

/// `inner` (an IPv6 or IPv4 packet) as master-03 tunnels it to master-01 over the IPv6
/// underlay (`from_node` its IPv6 address): outer Ethernet / IPv6 / UDP 6081 with its checksum
/// / Geneve VNI 0xff0003 with the OVN option / inner Ethernet.
pub fn geneve6_frame(from_node: u128, from_mac: MacAddr, entropy: u16, inner: &[u8]) -> Vec<u8> {
    let g = geneve::Repr {
        vni: geneve::OVN_TRANSIT_VNI,
        ovn_ports: Some(OVN_PORTS),
    };
    let len = ethernet::HEADER_LEN + inner.len();
    underlay6_frame(
        (from_node, from_mac),
        entropy,
        g,
        |b| put_inner_frame(b, inner),
        len,
    )
}

/// Geneve `g` over the IPv6 underlay from `from` (address, MAC) to master-01, UDP from
/// `src_port`, around `len` bytes that `fill` writes; the UDP checksum filled last.
fn underlay6_frame(
    from: (u128, MacAddr),
    src_port: u16,
    g: geneve::Repr,
    fill: impl FnOnce(&mut [u8]),
    len: usize,
) -> Vec<u8> {
    let udp_payload = g.header_len() + len;
    let mut b = vec![0u8; 14 + 40 + 8 + udp_payload];
    ethernet::Repr {
        src: from.1,
        dst: NODE_MAC,
        vlan_tci: None,
        ethertype: EtherType::Ipv6,
    }
    .emit(&mut b)
    .unwrap();
    ipv6::Repr {
        src: from.0.to_be_bytes().into(),
        dst: NODE_V6.to_be_bytes().into(),
        next_header: ipv6::next_header::UDP,
        hop_limit: 64,
        payload_len: (8 + udp_payload) as u16,
    }
    .emit(&mut b[14..])
    .unwrap();
    udp::Repr {
        src_port,
        dst_port: geneve::UDP_PORT,
        payload_len: udp_payload as u16,
    }
    .emit(&mut b[54..])
    .unwrap();
    g.emit(&mut b[62..]).unwrap();
    fill(&mut b[62 + g.header_len()..]);
    udp::Packet::new_checked(&mut b[54..])
        .unwrap()
        .fill_checksum_v6(&from.0.to_be_bytes(), &NODE_V6.to_be_bytes());
    b
}

/// A one-worker pipeline over a fresh table with room for both families.
pub fn worker_dual(max_sessions: u32) -> Worker {
    let table = SessionTable::new(NatConfig {
        max_sessions,
        max_sessions_v6: max_sessions,
        ..NatConfig::default()
    });
    Worker::new(table.worker(0))
}

/// An IPv6 packet with correct checksums (ICMPv6 only as echo).
pub fn ipv6_packet(src: u128, dst: u128, hop_limit: u8, l4: L4, payload: &[u8]) -> Vec<u8> {
    let (next_header, l4_len) = match l4 {
        L4::Tcp { .. } => (ipv6::next_header::TCP, tcp::HEADER_LEN),
        L4::Udp { .. } => (ipv6::next_header::UDP, udp::HEADER_LEN),
        L4::Echo { .. } => (ipv6::next_header::ICMPV6, icmpv6::HEADER_LEN),
    };
    let mut b = vec![0u8; ipv6::HEADER_LEN + l4_len + payload.len()];
    let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
    ipv6::Repr {
        src: s.into(),
        dst: d.into(),
        next_header,
        hop_limit,
        payload_len: (l4_len + payload.len()) as u16,
    }
    .emit(&mut b)
    .unwrap();
    let seg = &mut b[ipv6::HEADER_LEN..];
    emit_l4(seg, l4, payload, true);
    match l4 {
        L4::Tcp { .. } => tcp::Packet::new_unchecked(seg).fill_checksum_v6(&s, &d),
        L4::Udp { .. } => udp::Packet::new_unchecked(seg).fill_checksum_v6(&s, &d),
        L4::Echo { .. } => icmpv6::Packet::new_checked(&mut seg[..])
            .unwrap()
            .fill_checksum(&s, &d),
    }
    b
}

/// An ICMPv6 error (`msg_type`, `code`, the 4 bytes after the checksum `rest`) from `src` to
/// `dst` quoting `about` whole, with its checksum.
pub fn icmpv6_error(
    src: u128,
    dst: u128,
    msg_type: u8,
    code: u8,
    rest: u32,
    about: &[u8],
) -> Vec<u8> {
    let mut b = vec![0u8; ipv6::HEADER_LEN + icmpv6::HEADER_LEN + about.len()];
    let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
    ipv6::Repr {
        src: s.into(),
        dst: d.into(),
        next_header: ipv6::next_header::ICMPV6,
        hop_limit: 64,
        payload_len: (icmpv6::HEADER_LEN + about.len()) as u16,
    }
    .emit(&mut b)
    .unwrap();
    let m = &mut b[ipv6::HEADER_LEN..];
    m[0] = msg_type;
    m[1] = code;
    m[4..8].copy_from_slice(&rest.to_be_bytes());
    m[icmpv6::HEADER_LEN..].copy_from_slice(about);
    icmpv6::Packet::new_checked(&mut m[..])
        .unwrap()
        .fill_checksum(&s, &d);
    b
}

/// Whether an IPv6 packet's upper-layer checksum (TCP, UDP, ICMPv6 right after the fixed
/// header) verifies from scratch; a zero UDP checksum does not.
pub fn checksums_verify_v6(ip_bytes: &[u8]) -> bool {
    let Ok(p) = ipv6::Packet::new_checked(ip_bytes) else {
        return false;
    };
    let (s, d) = (p.src_bytes(), p.dst_bytes());
    let payload = p.payload();
    match p.next_header() {
        ipv6::next_header::TCP => {
            tcp::Packet::new_checked(payload).is_ok_and(|t| t.verify_checksum_v6(&s, &d))
        }
        ipv6::next_header::UDP => {
            udp::Packet::new_checked(payload).is_ok_and(|u| u.verify_checksum_v6(&s, &d))
        }
        ipv6::next_header::ICMPV6 => {
            icmpv6::Packet::new_checked(payload).is_ok_and(|m| m.verify_checksum(&s, &d))
        }
        _ => false,
    }
}

/// The Ethernet type for an IP packet, by its version.
fn ethertype_of(ip: &[u8]) -> EtherType {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        EtherType::Ipv6
    } else {
        EtherType::Ipv4
    }
}

/// A one-worker pipeline over a fresh table.
pub fn worker(max_sessions: u32) -> Worker {
    let table = SessionTable::new(NatConfig {
        max_sessions,
        ..NatConfig::default()
    });
    Worker::new(table.worker(0))
}

/// The L4 part of a test packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    Echo {
        request: bool,
        ident: u16,
        seq: u16,
    },
}

/// An IPv4 packet with correct checksums.
pub fn ipv4_packet(
    src: u32,
    dst: u32,
    ttl: u8,
    dont_frag: bool,
    l4: L4,
    payload: &[u8],
) -> Vec<u8> {
    let (proto, l4_len) = match l4 {
        L4::Tcp { .. } => (ipv4::Protocol::Tcp, tcp::HEADER_LEN),
        L4::Udp { .. } => (ipv4::Protocol::Udp, udp::HEADER_LEN),
        L4::Echo { .. } => (ipv4::Protocol::Icmp, icmp::HEADER_LEN),
    };
    let mut b = vec![0u8; ipv4::HEADER_LEN + l4_len + payload.len()];
    ipv4::Repr {
        src,
        dst,
        protocol: proto,
        payload_len: (l4_len + payload.len()) as u16,
        ttl,
        dscp_ecn: 0,
        ident: 0x1c46,
        dont_frag,
    }
    .emit(&mut b)
    .unwrap();
    let seg = &mut b[ipv4::HEADER_LEN..];
    emit_l4(seg, l4, payload, false);
    match l4 {
        L4::Tcp { .. } => tcp::Packet::new_unchecked(seg).fill_checksum(src, dst),
        L4::Udp { .. } => udp::Packet::new_unchecked(seg).fill_checksum(src, dst),
        L4::Echo { .. } => icmp::Packet::new_unchecked(seg).fill_checksum(),
    }
    b
}

/// Writes `l4`'s header and `payload` into `seg`, checksums left for the caller (ICMPv6's
/// echo when `v6`).
fn emit_l4(seg: &mut [u8], l4: L4, payload: &[u8], v6: bool) {
    let l4_len = match l4 {
        L4::Tcp { .. } => tcp::HEADER_LEN,
        L4::Udp { .. } => udp::HEADER_LEN,
        L4::Echo { .. } => icmp::HEADER_LEN,
    };
    seg[l4_len..].copy_from_slice(payload);
    match l4 {
        L4::Tcp {
            src_port,
            dst_port,
            flags,
        } => tcp::Repr {
            src_port,
            dst_port,
            seq: 1000,
            ack: 0,
            flags,
            window: 64240,
        }
        .emit(seg)
        .unwrap(),
        L4::Udp { src_port, dst_port } => udp::Repr {
            src_port,
            dst_port,
            payload_len: payload.len() as u16,
        }
        .emit(seg)
        .unwrap(),
        L4::Echo {
            request,
            ident,
            seq,
        } if v6 => icmpv6::Repr::Echo {
            request,
            ident,
            seq,
        }
        .emit(seg)
        .unwrap(),
        L4::Echo {
            request,
            ident,
            seq,
        } => icmp::Repr::Echo {
            request,
            ident,
            seq,
        }
        .emit(seg)
        .unwrap(),
    }
}

/// An ICMP error from `src` to `dst` quoting the first 28 bytes of `about`.
pub fn icmp_error(
    src: u32,
    dst: u32,
    msg: icmp::Message,
    code: u8,
    rest: u32,
    about: &[u8],
) -> Vec<u8> {
    let quote = &about[..about.len().min(28)];
    let mut b = vec![0u8; ipv4::HEADER_LEN + icmp::HEADER_LEN + quote.len()];
    ipv4::Repr {
        src,
        dst,
        protocol: ipv4::Protocol::Icmp,
        payload_len: (icmp::HEADER_LEN + quote.len()) as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 7,
        dont_frag: false,
    }
    .emit(&mut b)
    .unwrap();
    let m = &mut b[ipv4::HEADER_LEN..];
    icmp::Repr::Error { msg, code, rest }.emit(m).unwrap();
    m[icmp::HEADER_LEN..].copy_from_slice(quote);
    icmp::Packet::new_unchecked(m).fill_checksum();
    b
}

/// A buffer with [`HEADROOM`] free bytes, then `frame`. Returns (buffer, start, len).
pub fn with_headroom(frame: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut b = vec![0u8; HEADROOM + frame.len() + 64];
    b[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    (b, HEADROOM, frame.len())
}

/// A frame from a pod's node (`from_node`, `from_mac`) to master-01 on UDP `dst_port`, with
/// `udp_payload` bytes after the UDP header left zero for the caller: the underlay part of a
/// tunnel frame (Geneve here, VXLAN in the line-rate bench).
pub fn underlay_udp_frame(
    from_node: u32,
    from_mac: MacAddr,
    entropy: u16,
    dst_port: u16,
    udp_payload: usize,
) -> Vec<u8> {
    let total = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + udp_payload;
    let mut b = vec![0u8; total];
    ethernet::Repr {
        src: from_mac,
        dst: NODE_MAC,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut b)
    .unwrap();
    ipv4::Repr {
        src: from_node,
        dst: NODE_IP,
        protocol: ipv4::Protocol::Udp,
        payload_len: (udp::HEADER_LEN + udp_payload) as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    }
    .emit(&mut b[14..])
    .unwrap();
    udp::Repr {
        src_port: entropy,
        dst_port,
        payload_len: udp_payload as u16,
    }
    .emit(&mut b[34..])
    .unwrap();
    b
}

/// `inner` (an IPv4 or IPv6 packet) as master-03 tunnels it to master-01: outer Ethernet /
/// IPv4 / UDP 6081 / Geneve VNI 0xff0003 with the OVN option / inner Ethernet.
pub fn geneve_frame(from_node: u32, from_mac: MacAddr, entropy: u16, inner: &[u8]) -> Vec<u8> {
    let g = geneve::Repr {
        vni: geneve::OVN_TRANSIT_VNI,
        ovn_ports: Some(OVN_PORTS),
    };
    let udp_payload = g.header_len() + ethernet::HEADER_LEN + inner.len();
    let mut b = underlay_udp_frame(from_node, from_mac, entropy, geneve::UDP_PORT, udp_payload);
    g.emit(&mut b[42..]).unwrap();
    put_inner_frame(&mut b[42 + g.header_len()..], inner);
    b
}

/// The inner frame as OVN sends it from master-03's transit port: its Ethernet header, then
/// `inner`, into `b` (exactly their length).
fn put_inner_frame(b: &mut [u8], inner: &[u8]) {
    ethernet::Repr {
        src: TRANSIT3_MAC,
        dst: TRANSIT1_MAC,
        vlan_tci: None,
        ethertype: ethertype_of(inner),
    }
    .emit(b)
    .unwrap();
    b[ethernet::HEADER_LEN..].copy_from_slice(inner);
}

/// A random IPv6 flow's first packet's L4 part (`kind` 0: TCP SYN, 1: UDP, else ICMPv6 echo
/// request) from `sport` to `dport`, and how the remote answers it at the egress port:
/// `answer(ext_port, dport)`.
pub fn flow_and_answer(kind: u8, sport: u16, dport: u16) -> (L4, fn(u16, u16) -> L4) {
    let tcp = |src_port, dst_port, flags| L4::Tcp {
        src_port,
        dst_port,
        flags,
    };
    use crate::wire::tcp::flags::{ACK, SYN};
    match kind {
        0 => (tcp(sport, dport, SYN), |p, d| L4::Tcp {
            src_port: d,
            dst_port: p,
            flags: SYN | ACK,
        }),
        1 => (
            L4::Udp {
                src_port: sport,
                dst_port: dport,
            },
            |p, d| L4::Udp {
                src_port: d,
                dst_port: p,
            },
        ),
        _ => (
            L4::Echo {
                request: true,
                ident: sport,
                seq: 1,
            },
            |p, _| L4::Echo {
                request: false,
                ident: p,
                seq: 1,
            },
        ),
    }
}

/// `ip` (an IPv6 packet) with traffic class `class`.
pub fn with_traffic_class(mut ip: Vec<u8>, class: u8) -> Vec<u8> {
    ip[0] = 0x60 | class >> 4;
    ip[1] = (class << 4) | (ip[1] & 0x0f);
    ip
}

/// The egress port an IPv6 packet left with: its source port, or its echo identifier.
pub fn egress_port6(ip: &[u8]) -> u16 {
    let at = if ip[6] == ipv6::next_header::ICMPV6 {
        44
    } else {
        40
    };
    u16::from_be_bytes([ip[at], ip[at + 1]])
}

/// `ip` (an IPv4 or IPv6 packet) as the router delivers it to master-01's br-ex.
pub fn external_frame(ip: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; ethernet::HEADER_LEN + ip.len()];
    ethernet::Repr {
        src: ROUTER_MAC,
        dst: NODE_MAC,
        vlan_tci: None,
        ethertype: ethertype_of(ip),
    }
    .emit(&mut b)
    .unwrap();
    b[14..].copy_from_slice(ip);
    b
}

/// Runs each named frame through `w` and checks it is dropped for its reason, counted once.
pub fn assert_counted_drops(
    w: &mut Worker,
    tables: &Tables,
    cases: &[(&str, Vec<u8>, crate::drop::DropReason)],
) {
    for (name, frame, expected) in cases {
        let before = w.counters.drops(*expected);
        let got = run(w, tables, 1, frame);
        assert_eq!(got.as_ref().err(), Some(expected), "{name}: got {got:?}");
        assert_eq!(
            w.counters.drops(*expected),
            before + 1,
            "{name}: not counted"
        );
    }
}

/// Runs one frame through `w` and returns the output bytes, or the drop reason.
pub fn run(
    w: &mut Worker,
    tables: &Tables,
    now: u32,
    frame: &[u8],
) -> Result<(crate::pipeline::Iface, Vec<u8>), crate::drop::DropReason> {
    let (mut buf, start, len) = with_headroom(frame);
    let frame = Frame {
        start,
        len,
        headroom: start,
    };
    match w.process(&mut buf, frame, tables, now) {
        crate::pipeline::Action::Transmit(o) => {
            Ok((o.iface, buf[o.start..o.start + o.len].to_vec()))
        }
        crate::pipeline::Action::Drop(r) => Err(r),
    }
}

/// Whether an IPv4 packet's header checksum and its TCP/UDP/ICMP checksum verify from scratch
/// (a zero UDP checksum counts as "not computed"; ICMP errors also check the quoted header).
pub fn checksums_verify(ip_bytes: &[u8]) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(ip_bytes) else {
        return false;
    };
    if !p.verify_checksum() {
        return false;
    }
    let payload = p.payload();
    match p.protocol() {
        ipv4::Protocol::Tcp => {
            tcp::Packet::new_unchecked(payload).verify_checksum(p.src(), p.dst())
        }
        ipv4::Protocol::Udp => {
            udp::Packet::new_unchecked(payload).verify_checksum(p.src(), p.dst())
        }
        ipv4::Protocol::Icmp => {
            if !checksum::verifies(0, payload) {
                return false;
            }
            let m = icmp::Packet::new_unchecked(payload);
            if m.msg_type().is_error() && m.data().len() >= 20 {
                let hl = usize::from(m.data()[0] & 0x0f) * 4;
                return hl >= 20 && m.data().len() >= hl && checksum::verifies(0, &m.data()[..hl]);
            }
            true
        }
        ipv4::Protocol::Unknown(_) => true,
    }
}

/// The IPv4 datagram `ip` (a 20-byte header) cut as a sender's stack cuts it: pieces of at
/// most `max_payload` bytes after the header (a multiple of eight but the last), in order.
pub fn fragments_of(ip: &[u8], max_payload: usize) -> Vec<Vec<u8>> {
    let payload = &ip[ipv4::HEADER_LEN..];
    let step = max_payload & !7;
    payload
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = ip[..ipv4::HEADER_LEN].to_vec();
            f.extend_from_slice(chunk);
            let more = (i + 1) * step < payload.len();
            let word = ((i * step / 8) as u16) | if more { 0x2000 } else { 0 };
            let len = f.len() as u16;
            f[2..4].copy_from_slice(&len.to_be_bytes());
            f[6..8].copy_from_slice(&word.to_be_bytes());
            ipv4::Packet::new_unchecked(&mut f[..]).fill_checksum();
            f
        })
        .collect()
}

/// The datagram IPv4 fragments (in any order) reassemble to, its header the first's with
/// fragmenting undone; None unless they cover it exactly once, from offset 0 to a last
/// fragment, all of one datagram (RFC 791).
pub fn reassemble(fragments: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut parts: Vec<(usize, bool, &[u8], &[u8])> = fragments
        .iter()
        .map(|f| {
            let p = ipv4::Packet::new_checked(&f[..]).ok()?;
            p.verify_checksum().then_some(())?;
            let end = usize::from(p.total_len());
            Some((
                usize::from(p.frag_offset()),
                p.more_frags(),
                &f[..ipv4::HEADER_LEN],
                &f[ipv4::HEADER_LEN..end],
            ))
        })
        .collect::<Option<_>>()?;
    parts.sort_by_key(|p| p.0);
    let same = |h: &[u8]| {
        h[4..6] == parts[0].2[4..6] && h[9] == parts[0].2[9] && h[12..20] == parts[0].2[12..20]
    };
    let mut whole = parts.first()?.2.to_vec();
    for (i, (offset, more, header, data)) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if *offset != whole.len() - ipv4::HEADER_LEN || *more == last || !same(header) {
            return None;
        }
        whole.extend_from_slice(data);
    }
    let total = whole.len() as u16;
    whole[2..4].copy_from_slice(&total.to_be_bytes());
    whole[6..8].copy_from_slice(&[0, 0]);
    ipv4::Packet::new_unchecked(&mut whole[..]).fill_checksum();
    Some(whole)
}

/// [`run`], then the frames the translation made beyond its own (a reply cut to fit the
/// underlay): every frame sent, in order. The spill is cleared, as the worker's loop does.
pub fn run_all(
    w: &mut Worker,
    tables: &Tables,
    now: u32,
    frame: &[u8],
) -> Result<Vec<(crate::pipeline::Iface, Vec<u8>)>, crate::drop::DropReason> {
    let first = run(w, tables, now, frame)?;
    let spill = &mut w.pieces.spill;
    let mut sent = vec![first];
    sent.extend(
        spill
            .outputs()
            .iter()
            .map(|o| (o.iface, spill.bytes(o).to_vec())),
    );
    spill.clear();
    Ok(sent)
}
