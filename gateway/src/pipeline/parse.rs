//! Stage one: validate a frame and find its flow key. Every check of untrusted bytes happens
//! here, each failure naming its drop reason; nothing is written and nothing is looked up, so a
//! batch can be parsed first and its index buckets fetched before any lookup.

use super::forward::FORWARD_VNI;
use super::parsed::{Kind, Parsed};
use super::tables::Tables;
use crate::drop::DropReason;
use crate::nat::{
    Direction, FlowKey, SessionTable, TunnelEndpoint, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};
use crate::wire::{self, ethernet, geneve, icmp, ipv4, ipv6, tcp, udp};

/// The tunnel an `Out` frame arrived on, read back from its headers (new flows only).
#[inline]
pub fn tunnel_endpoint(frame: &[u8], p: &Parsed) -> TunnelEndpoint {
    super::fast::tunnel_endpoint(frame, p).unwrap_or_else(|| tunnel_endpoint_general(frame, p))
}

/// [`tunnel_endpoint`] through the wire views, for every shape the general parser accepts.
pub fn tunnel_endpoint_general(frame: &[u8], p: &Parsed) -> TunnelEndpoint {
    tunnel_endpoint_at(frame, usize::from(p.geneve), usize::from(p.ip))
}

/// The tunnel of a checked Geneve frame (outer IPv4 without options, or outer IPv6) whose
/// Geneve header is at `geneve_off` and inner IP header at `inner_ip`.
pub(super) fn tunnel_endpoint_at(
    frame: &[u8],
    geneve_off: usize,
    inner_ip: usize,
) -> TunnelEndpoint {
    let eth = ethernet::Frame::new_unchecked(frame);
    let (node_ip, node_ip6) = if eth.ethertype() == ethernet::EtherType::Ipv6 {
        let src = ethernet::HEADER_LEN + 8;
        let src: [u8; 16] = frame[src..src + 16]
            .try_into()
            .expect("a checked IPv6 header");
        (0, u128::from_be_bytes(src))
    } else {
        let outer = ipv4::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]);
        (outer.src(), 0)
    };
    let u = udp::Packet::new_unchecked(&frame[geneve_off - udp::HEADER_LEN..]);
    let inner_eth = inner_ip - ethernet::HEADER_LEN;
    let g = geneve::Header::new_unchecked(&frame[geneve_off..inner_eth]);
    let ieth = ethernet::Frame::new_unchecked(&frame[inner_eth..]);
    TunnelEndpoint {
        src_mac: eth.src(),
        node_ip,
        vni: g.vni(),
        ovn_ports: g.ovn_ports(),
        inner_src_mac: ieth.src(),
        inner_dst_mac: ieth.dst(),
        entropy_port: u.src_port(),
        node_ip6,
    }
}

/// A checked IPv4 header of a whole datagram: a fragment of any kind is `fragment`.
pub(super) fn ipv4_checked(b: &[u8]) -> Result<ipv4::Packet<&[u8]>, DropReason> {
    let p = ipv4_checked_first(b)?;
    if p.more_frags() {
        return Err(DropReason::Fragment);
    }
    Ok(p)
}

/// A checked IPv4 header of a whole datagram or of a first fragment, which holds the ports
/// (`more_frags` tells which). A later fragment is `fragment`, for the worker to look up
/// apart (`pipeline::fragments`).
pub(super) fn ipv4_checked_first(b: &[u8]) -> Result<ipv4::Packet<&[u8]>, DropReason> {
    let p = ipv4_valid(b)?;
    if p.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    Ok(p)
}

/// A checked IPv4 header (no options, its checksum right), fragment or not.
pub(super) fn ipv4_valid(b: &[u8]) -> Result<ipv4::Packet<&[u8]>, DropReason> {
    let p = ipv4::Packet::new_checked(b).map_err(|e| match e {
        wire::Error::Truncated => DropReason::Ipv4Truncated,
        wire::Error::Malformed => DropReason::Ipv4Malformed,
    })?;
    if p.header_len() != ipv4::HEADER_LEN {
        return Err(DropReason::Ipv4Options);
    }
    if !p.verify_checksum() {
        return Err(DropReason::Ipv4BadChecksum);
    }
    Ok(p)
}

/// Validates `frame` (the bytes from the frame start) and extracts its key.
#[inline]
pub fn parse(frame: &[u8], tables: &Tables, table: &SessionTable) -> Result<Parsed, DropReason> {
    let mut slot = Err(DropReason::FrameTruncated);
    parse_into(frame, tables, table, &mut slot);
    slot
}

/// [`parse`] into `slot`, with one store per path rather than one of a value either path
/// made: the common shape's result is then built in the slot itself. (A result copied out
/// of a callee's stack is read back with wider loads than its fields were stored with,
/// which the CPU cannot forward; perf put a fifth of the batch loop's time there.)
#[inline]
pub fn parse_into(
    frame: &[u8],
    tables: &Tables,
    table: &SessionTable,
    slot: &mut Result<Parsed, DropReason>,
) {
    match super::fast::parse(frame, tables) {
        Some(p) => {
            *slot = Ok(Parsed {
                hash: table.hash(&p.key),
                ..p
            })
        }
        // IPv6 (most of it) skips the general IPv4 parser: `v6` parses it.
        None if super::fast::looks_like_ipv6(frame, tables) => {
            *slot = Err(DropReason::InnerNotIpv4)
        }
        None => *slot = general(frame, tables, table),
    }
}

/// Every shape, every check, each failure with its drop reason.
pub fn general(frame: &[u8], tables: &Tables, table: &SessionTable) -> Result<Parsed, DropReason> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::FrameTruncated)?;
    if eth.vlan_tci().is_some() {
        return Err(DropReason::VlanTagged);
    }
    if eth.ethertype() != ethernet::EtherType::Ipv4 {
        return Err(DropReason::NotIpv4);
    }
    let outer_off = ethernet::HEADER_LEN;
    let outer = ipv4_checked_first(&frame[outer_off..])?;
    let node_ip = tables.node.node_ip;
    if outer.dst() == node_ip && outer.protocol() == ipv4::Protocol::Udp {
        // A fragmented tunnel: the steering program leaves these to the node.
        if outer.more_frags() {
            return Err(DropReason::Fragment);
        }
        parse_tunnel(frame, outer_off, &outer, tables, table)
    } else if tables.egress.serves(outer.dst()) {
        translated(frame, outer_off, &outer, Direction::In, 0, table)
    } else {
        Err(DropReason::NotForGateway)
    }
}

/// Where a Geneve frame's inner frame lies, once its outer UDP and Geneve headers passed.
pub(super) struct Tunnel {
    pub udp_off: usize,
    pub inner_eth_off: usize,
    /// The end of the inner frame (the UDP length bounds it; the outer frame may carry
    /// padding).
    pub inner_end: usize,
    pub vni: u32,
}

/// Checks the UDP and Geneve headers of a frame to the node IP and finds the inner frame.
pub(super) fn tunnel(outer_off: usize, outer: &ipv4::Packet<&[u8]>) -> Result<Tunnel, DropReason> {
    tunnel_at(outer_off + ipv4::HEADER_LEN, outer.payload())
}

/// [`tunnel`] for the UDP datagram `datagram` at `udp_off` (the outer packet's payload, of
/// either family).
pub(super) fn tunnel_at(udp_off: usize, datagram: &[u8]) -> Result<Tunnel, DropReason> {
    let u = udp::Packet::new_checked(datagram).map_err(|e| match e {
        wire::Error::Truncated => DropReason::UdpTruncated,
        wire::Error::Malformed => DropReason::UdpMalformed,
    })?;
    if u.dst_port() != geneve::UDP_PORT {
        return Err(DropReason::NotForGateway);
    }
    let g = geneve::Header::new_checked(u.payload()).map_err(|e| match e {
        wire::Error::Truncated => DropReason::GeneveTruncated,
        wire::Error::Malformed => DropReason::GeneveBadVersion,
    })?;
    if g.oam() {
        return Err(DropReason::GeneveOam);
    }
    if g.protocol() != geneve::PROTO_ETHERNET {
        return Err(DropReason::GeneveNotEthernet);
    }
    for opt in g.options() {
        let opt = opt.map_err(|_| DropReason::GeneveOptionOverrun)?;
        if opt.is_critical() && !opt.is_ovn() {
            return Err(DropReason::GeneveCriticalOption);
        }
    }
    Ok(Tunnel {
        udp_off,
        inner_eth_off: udp_off + udp::HEADER_LEN + g.header_len(),
        inner_end: udp_off + usize::from(u.len()),
        vni: g.vni(),
    })
}

fn parse_tunnel(
    frame: &[u8],
    outer_off: usize,
    outer: &ipv4::Packet<&[u8]>,
    tables: &Tables,
    table: &SessionTable,
) -> Result<Parsed, DropReason> {
    let Tunnel {
        udp_off,
        inner_eth_off,
        inner_end,
        vni,
    } = tunnel(outer_off, outer)?;
    let inner = &frame[inner_eth_off..inner_end];
    let ieth = ethernet::Frame::new_checked(inner).map_err(|_| DropReason::InnerFrameTruncated)?;
    if ieth.ethertype() != ethernet::EtherType::Ipv4 || ieth.vlan_tci().is_some() {
        return Err(DropReason::InnerNotIpv4);
    }
    let ip_off = inner_eth_off + ethernet::HEADER_LEN;
    let ip = ipv4_checked_first(&frame[ip_off..inner_end])?;
    if vni == FORWARD_VNI {
        return forwarded(frame, ip_off, &ip, udp_off + udp::HEADER_LEN, tables, table);
    }
    translated(
        frame,
        ip_off,
        &ip,
        Direction::Out,
        udp_off + udp::HEADER_LEN,
        table,
    )
}

/// An IPv4 reply another member of the set forwarded over the IPv6 underlay (a set there
/// forwards replies of either family). Anything else IPv4 over the IPv6 underlay is a pod's
/// packet, which an IPv4 session has no room to send back over IPv6: the named drop. The
/// IPv6 parser has checked the outer header's address; members write no extension headers.
#[cold]
#[inline(never)]
pub fn forwarded_over_ipv6(
    frame: &[u8],
    tables: &Tables,
    table: &SessionTable,
) -> Result<Parsed, DropReason> {
    const POD: DropReason = DropReason::Ipv4OverIpv6Underlay;
    let outer_off = ethernet::HEADER_LEN;
    let outer = ipv6::Packet::new_checked(frame.get(outer_off..).ok_or(POD)?).map_err(|_| POD)?;
    if outer.next_header() != ipv6::next_header::UDP
        || u128::from_be_bytes(outer.dst_bytes()) != tables.node.node_ip6
        || tables.node.node_ip6 == 0
    {
        return Err(POD);
    }
    let udp_off = outer_off + ipv6::HEADER_LEN;
    let t = tunnel_at(udp_off, outer.payload())?;
    if t.vni != FORWARD_VNI {
        return Err(POD);
    }
    let ieth = ethernet::Frame::new_checked(&frame[t.inner_eth_off..t.inner_end])
        .map_err(|_| DropReason::InnerFrameTruncated)?;
    if ieth.ethertype() != ethernet::EtherType::Ipv4 || ieth.vlan_tci().is_some() {
        return Err(POD);
    }
    let ip_off = t.inner_eth_off + ethernet::HEADER_LEN;
    let ip = ipv4_checked_first(&frame[ip_off..t.inner_end])?;
    forwarded(frame, ip_off, &ip, udp_off + udp::HEADER_LEN, tables, table)
}

/// A reply another member of the set forwarded, inside its tunnel: translated here as if it
/// had arrived from outside (and marked, by its Geneve offset, as forwarded).
fn forwarded(
    frame: &[u8],
    ip_off: usize,
    ip: &ipv4::Packet<&[u8]>,
    geneve_off: usize,
    tables: &Tables,
    table: &SessionTable,
) -> Result<Parsed, DropReason> {
    if !tables.egress.serves(ip.dst()) {
        return Err(DropReason::NotForGateway);
    }
    translated(frame, ip_off, ip, Direction::In, geneve_off, table)
}

/// The packet the gateway translates (inner for `Out`, outer for `In`): TTL, L4, key.
fn translated(
    frame: &[u8],
    ip_off: usize,
    ip: &ipv4::Packet<&[u8]>,
    dir: Direction,
    geneve_off: usize,
    table: &SessionTable,
) -> Result<Parsed, DropReason> {
    if ip.ttl() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    let l4 = ip_off + ipv4::HEADER_LEN;
    let (kind, key) = parse_l4(frame, ip_off, l4, ip, dir)?;
    Ok(Parsed {
        dir,
        ip: ip_off as u16,
        l4: l4 as u16,
        geneve: geneve_off as u16,
        kind,
        key,
        hash: table.hash(&key),
        hint: None,
        dest: None,
    })
}

/// The L4 header of the packet to translate, and the key it is looked up by.
fn parse_l4(
    frame: &[u8],
    ip_off: usize,
    l4_off: usize,
    ip: &ipv4::Packet<&[u8]>,
    dir: Direction,
) -> Result<(Kind, FlowKey), DropReason> {
    let payload = ip.payload();
    let key = |sp, dp, proto| FlowKey {
        src: ip.src(),
        dst: ip.dst(),
        src_port: sp,
        dst_port: dp,
        proto,
    };
    match ip.protocol() {
        ipv4::Protocol::Tcp => {
            let t = tcp::Packet::new_checked(payload).map_err(|e| match e {
                wire::Error::Truncated => DropReason::L4Truncated,
                wire::Error::Malformed => DropReason::TcpMalformed,
            })?;
            Ok((
                Kind::Tcp { flags: t.flags() },
                key(t.src_port(), t.dst_port(), PROTO_TCP),
            ))
        }
        // A first fragment holds the ports; its UDP length counts the whole datagram.
        ipv4::Protocol::Udp if ip.more_frags() => {
            let ports = payload
                .get(..udp::HEADER_LEN)
                .ok_or(DropReason::L4Truncated)?;
            Ok((
                Kind::Udp,
                key(wire::be16(ports, 0), wire::be16(ports, 2), PROTO_UDP),
            ))
        }
        ipv4::Protocol::Udp => {
            let u = udp::Packet::new_checked(payload).map_err(|e| match e {
                wire::Error::Truncated => DropReason::L4Truncated,
                wire::Error::Malformed => DropReason::UdpMalformed,
            })?;
            Ok((Kind::Udp, key(u.src_port(), u.dst_port(), PROTO_UDP)))
        }
        ipv4::Protocol::Icmp => {
            let m = icmp::Packet::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
            let echo = match dir {
                Direction::Out => icmp::Message::EchoRequest,
                Direction::In => icmp::Message::EchoReply,
            };
            match m.msg_type() {
                t if t == echo => {
                    let id = m.echo_ident();
                    Ok((Kind::Echo, key(id, id, PROTO_ICMP)))
                }
                // An error in pieces quotes its packet in the first; not worth translating.
                t if t.is_error() && ip.more_frags() => Err(DropReason::Fragment),
                t if t.is_error() => parse_icmp_error(frame, ip_off, l4_off, ip, dir),
                _ => Err(DropReason::IcmpUnsupported),
            }
        }
        ipv4::Protocol::Unknown(_) => Err(DropReason::ProtocolUnsupported),
    }
}

/// RFC 5508: the embedded header describes a packet of the flow going the other way; its
/// reversed tuple is the key of this direction.
fn parse_icmp_error(
    frame: &[u8],
    ip_off: usize,
    l4_off: usize,
    ip: &ipv4::Packet<&[u8]>,
    dir: Direction,
) -> Result<(Kind, FlowKey), DropReason> {
    let emb_ip = l4_off + icmp::HEADER_LEN;
    let ip_end = ip_off + usize::from(ip.total_len());
    let emb = &frame[emb_ip..ip_end];
    // The embedded datagram is cut short by design: check its header and 8 bytes of L4 only.
    if emb.len() < ipv4::HEADER_LEN || emb[0] >> 4 != 4 || emb[0] & 0x0f < 5 {
        return Err(DropReason::IcmpErrorTruncated);
    }
    let emb_hl = usize::from(emb[0] & 0x0f) * 4;
    if emb.len() < emb_hl + 8 {
        return Err(DropReason::IcmpErrorTruncated);
    }
    let (src, dst) = (wire::be32(emb, 12), wire::be32(emb, 16));
    let l4 = &emb[emb_hl..];
    let (sp, dp, proto) = match emb[9] {
        PROTO_TCP | PROTO_UDP => (wire::be16(l4, 0), wire::be16(l4, 2), emb[9]),
        PROTO_ICMP => {
            let id = wire::be16(l4, 4);
            (id, id, PROTO_ICMP)
        }
        _ => return Err(DropReason::IcmpErrorNoSession),
    };
    // The embedded packet went to (Out) or came from (In) the address this error concerns.
    let consistent = match dir {
        Direction::Out => dst == ip.src(),
        Direction::In => src == ip.dst(),
    };
    if !consistent {
        return Err(DropReason::IcmpErrorNoSession);
    }
    let key = FlowKey {
        src: dst,
        dst: src,
        src_port: dp,
        dst_port: sp,
        proto,
    };
    Ok((
        Kind::IcmpError {
            emb_ip: emb_ip as u16,
            emb_l4: (emb_ip + emb_hl) as u16,
        },
        key,
    ))
}
