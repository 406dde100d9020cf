//! A pod's packet too big for the external interface (a second interface with a smaller MTU
//! than the overlay carries): answered as the router on its path would (RFC 1191, RFC 8201),
//! with ICMP fragmentation-needed or ICMPv6 Packet Too Big from the pod's egress IP, back
//! through the tunnel the packet came in. Without DF, or about an ICMP error, it is a counted
//! drop: fragmenting is not done here. Checked before the session (a compare on the way out), so
//! such a packet makes none.

use super::encap;
use super::out2in::underlay_next_hop;
use super::parse::{tunnel_endpoint, tunnel_endpoint_at};
use super::parsed::{Kind, Parsed, Parsed6};
use super::tables::Tables;
use super::too_big;
use super::v6::{emit_packet_too_big, underlay_next_hop6, TOO_BIG_HEADERS};
use super::{Frame, Iface, Output};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::{ReplyTunnel, PROTO_ICMPV6};
use crate::wire::{ethernet, ipv6, udp};

/// Whether the IPv4 pod packet `p` of `frame` is larger than the external interface sends.
/// The frame's length bounds the packet's, so only a frame longer than the MTU allows reads
/// the header's total length (what the way out costs every packet: one compare).
#[inline(always)]
pub(super) fn ipv4_exceeds(buf: &[u8], frame: Frame, p: &Parsed, tables: &Tables) -> bool {
    let mtu = tables.node.external_mtu;
    frame.len > usize::from(p.ip) + usize::from(mtu) && {
        let at = frame.start + usize::from(p.ip) + 2;
        buf.get(at..at + 2)
            .is_some_and(|b| u16::from_be_bytes([b[0], b[1]]) > mtu)
    }
}

/// [`ipv4_exceeds`] for IPv6 (the fixed header and its payload length).
#[inline(always)]
pub(super) fn ipv6_exceeds(buf: &[u8], frame: Frame, p: &Parsed6, tables: &Tables) -> bool {
    let mtu = usize::from(tables.node.external_mtu);
    frame.len > p.ip + mtu && {
        let at = frame.start + p.ip + 4;
        buf.get(at..at + 2)
            .is_some_and(|b| ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([b[0], b[1]])) > mtu)
    }
}

/// The IPv4 pod packet `p` of `frame` exceeds the external MTU ([`ipv4_exceeds`]).
#[cold]
#[inline(never)]
pub(super) fn ipv4(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed,
    tables: &Tables,
    counters: &Counters,
) -> Result<Output, DropReason> {
    let egress_ip = tables
        .egress
        .egress_for(p.key.src)
        .ok_or(DropReason::NoEgressMapping)?;
    let ip = frame.start + usize::from(p.ip);
    let dont_frag = buf.get(ip + 6).is_some_and(|b| b & 0x40 != 0);
    if !dont_frag || matches!(p.kind, Kind::IcmpError { .. }) {
        return Err(DropReason::EgressTooBig);
    }
    let bytes = frame.bytes(buf).ok_or(DropReason::FrameTruncated)?;
    let tunnel = tunnel_endpoint(bytes, p);
    if !tables.egress.admits(p.key.src, tunnel.node()) {
        return Err(DropReason::PodWrongNode);
    }
    // An IPv4 pod's packet comes over the IPv4 underlay (the parser drops it on the other).
    if tunnel.node_ip6 != 0 {
        return Err(DropReason::EgressTooBig);
    }
    let t = ReplyTunnel::new(&tunnel);
    let next_hop = underlay_next_hop(&t, tables, counters)?;
    let encap_len = encap::len(t.ovn_option);
    let inner_eth = ip - ethernet::HEADER_LEN;
    // The message goes in front of the packet (its quote), and the tunnel in front of that.
    if frame.headroom + (inner_eth - frame.start)
        < too_big::HEADROOM + encap_len - ethernet::HEADER_LEN
    {
        return Err(DropReason::NoHeadroom);
    }
    let (msg_eth, msg_len) = too_big::frag_needed(
        buf,
        inner_eth,
        tables.node.external_mtu,
        egress_ip,
        tables.node.underlay_mac,
    )
    .map_err(|_| DropReason::NoHeadroom)?;
    let msg_ip = msg_eth + ethernet::HEADER_LEN;
    let back = Back {
        tunnel: &t,
        next_hop,
        encap_len,
    };
    tunnel_back(buf, (msg_ip, msg_eth + msg_len), back, tables, counters)
}

/// The IPv6 pod packet `p` of `frame` exceeds the external MTU ([`ipv6_exceeds`]).
#[cold]
#[inline(never)]
pub(super) fn ipv6(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed6,
    tables: &Tables,
    counters: &Counters,
) -> Result<Output, DropReason> {
    let egress = &tables.ipv6.egress;
    let egress_ip = egress
        .egress_for(p.key.src)
        .ok_or(DropReason::NoEgressMapping)?;
    if matches!(p.kind, Kind::IcmpError { .. }) {
        return Err(DropReason::EgressTooBig);
    }
    let bytes = frame.bytes(buf).ok_or(DropReason::FrameTruncated)?;
    let tunnel = tunnel_endpoint_at(bytes, p.udp + udp::HEADER_LEN, p.ip);
    if !egress.admits(p.key.src, tunnel.node()) {
        return Err(DropReason::PodWrongNode);
    }
    let t = ReplyTunnel::new6(&tunnel);
    let over_ipv6 = t.node_ip6 != 0;
    let (next_hop, encap_len) = if over_ipv6 {
        (
            underlay_next_hop6(&t, tables, counters)?,
            encap::len6(t.ovn_option),
        )
    } else {
        (
            underlay_next_hop(&t, tables, counters)?,
            encap::len(t.ovn_option),
        )
    };
    let ip = frame.start + p.ip;
    let len = ipv6::HEADER_LEN + usize::from(crate::wire::be16(buf, ip + 4));
    if frame.headroom + p.ip < TOO_BIG_HEADERS + encap_len {
        return Err(DropReason::NoHeadroom);
    }
    let pod = buf
        .get(ip + 8..ip + 24)
        .and_then(|a| <[u8; 16]>::try_from(a).ok())
        .ok_or(DropReason::Ipv6Truncated)?;
    let (msg_eth, end) = emit_packet_too_big(
        buf,
        (ip, len),
        u32::from(tables.node.external_mtu),
        (egress_ip.to_be_bytes(), pod),
        (tables.node.underlay_mac, tables.node.underlay_mac),
    )?;
    let msg_ip = msg_eth + ethernet::HEADER_LEN;
    let back = Back {
        tunnel: &t,
        next_hop,
        encap_len,
    };
    tunnel_back(buf, (msg_ip, end), back, tables, counters)
}

/// The tunnel a message goes back through: its headers, the underlay MAC they go to, and
/// their length.
struct Back<'t> {
    tunnel: &'t ReplyTunnel,
    next_hop: u64,
    encap_len: usize,
}

/// Wraps the message at `msg_ip..end` (its inner Ethernet header just before it) in `back`'s
/// headers in front of it, and counts it.
fn tunnel_back(
    buf: &mut [u8],
    (msg_ip, end): (usize, usize),
    back: Back,
    tables: &Tables,
    counters: &Counters,
) -> Result<Output, DropReason> {
    let outer = msg_ip - back.encap_len;
    let t = back.tunnel;
    let inner_total = (end - msg_ip) as u16;
    encap::write_either(
        &mut buf[outer..msg_ip],
        t,
        &tables.node,
        back.next_hop,
        inner_total,
        0,
    )
    .ok_or(DropReason::NoHeadroom)?;
    // Only an IPv6 pod's message goes over the IPv6 underlay (an IPv4 pod's never came so).
    if t.node_ip6 != 0 {
        let icmp_at = msg_ip + ipv6::HEADER_LEN;
        let outer_ip = outer + ethernet::HEADER_LEN;
        encap::fill_udp6_checksum(buf, outer_ip, (msg_ip, icmp_at, PROTO_ICMPV6), end);
    }
    bump(&counters.icmp_frag_needed_sent);
    Ok(Output {
        iface: Iface::Underlay,
        start: outer,
        len: end - outer,
    })
}
