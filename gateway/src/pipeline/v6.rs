//! IPv6 through the pipeline (issue 17): a pod's IPv6 packet out of Geneve (over the IPv4
//! underlay, or the IPv6 one at `node.ip6`) leaves with its egress IPv6 address; a reply to an
//! egress IPv6 address is un-NATed and tunnelled back to the pod's node over the underlay it
//! came by; a reply too big for the tunnel draws an ICMPv6 Packet Too Big (IPv6 routers never
//! fragment). The frames the IPv4 parser turns away
//! as not IPv4 come here, one at a time (no batch staging yet).

use super::fast;
use super::out2in::underlay_next_hop;
use super::parse::{ipv4_checked, tunnel, tunnel_at, tunnel_endpoint_at, Tunnel};
use super::parsed::{Kind, Parsed6};
use super::rewrite::{self, End};
use super::tables::Tables;
use super::{encap, forward, Frame, Iface, Output};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::tcp::track;
use crate::nat::{
    Direction, FlowKey6, NatWorker, NewSession6, ReplyTunnel, SessionTable, PROTO_ICMPV6,
    PROTO_TCP, PROTO_UDP,
};
use crate::wire::checksum::Delta;
use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::{self, icmpv6, ipv4, ipv6, tcp, udp};

/// Validates an IPv6 frame: a pod's, in Geneve to the node IP, or a reply to an egress IPv6
/// address. Every failure names its drop reason.
pub fn parse(frame: &[u8], tables: &Tables, table: &SessionTable) -> Result<Parsed6, DropReason> {
    let mut slot = Err(DropReason::FrameTruncated);
    parse_into(frame, tables, table, &mut slot);
    slot
}

/// [`parse`] into `slot`, the common shape's result built in the slot itself (see
/// `parse::parse_into`: a result copied out of a callee's stack stalls the loads after it).
#[inline]
pub fn parse_into(
    frame: &[u8],
    tables: &Tables,
    table: &SessionTable,
    slot: &mut Result<Parsed6, DropReason>,
) {
    match fast::parse6(frame, tables) {
        Some(p) => {
            *slot = Ok(Parsed6 {
                hash: table.hash6(&p.key),
                ..p
            })
        }
        None => *slot = general(frame, tables, table),
    }
}

/// Every shape, every check, each failure with its drop reason.
pub fn general(frame: &[u8], tables: &Tables, table: &SessionTable) -> Result<Parsed6, DropReason> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::FrameTruncated)?;
    if eth.vlan_tci().is_some() {
        return Err(DropReason::VlanTagged);
    }
    match eth.ethertype() {
        EtherType::Ipv4 => {
            let outer = ipv4_checked(&frame[ethernet::HEADER_LEN..])?;
            if outer.dst() != tables.node.node_ip || outer.protocol() != ipv4::Protocol::Udp {
                return Err(DropReason::NotForGateway);
            }
            let t = tunnel(ethernet::HEADER_LEN, &outer)?;
            inner(frame, t, false, tables, table)
        }
        EtherType::Ipv6 => {
            let ip = ethernet::HEADER_LEN;
            let node_ip6 = tables.node.node_ip6;
            if node_ip6 != 0 && frame.get(ip + 24..ip + 40) == Some(&node_ip6.to_be_bytes()) {
                return tunnel6(frame, tables, table);
            }
            translated(frame, ip, frame.len(), Direction::In, 0, tables, table)
        }
        _ => Err(DropReason::NotIpv4),
    }
}

/// Geneve over the IPv6 underlay, to the node's IPv6 address: the outer header checked (its
/// UDP checksum is not: RFC 6935 lets a tunnel send zero, and the inner packet's own
/// checksums cover what the gateway translates), then the inner frame as over IPv4.
fn tunnel6(frame: &[u8], tables: &Tables, table: &SessionTable) -> Result<Parsed6, DropReason> {
    let outer = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..])
        .map_err(|_| DropReason::Ipv6Truncated)?;
    let offset = match outer.upper_layer() {
        Ok(ipv6::UpperLayer::Protocol {
            next_header: PROTO_UDP,
            offset,
        }) => offset,
        Ok(ipv6::UpperLayer::Protocol { .. }) => return Err(DropReason::NotForGateway),
        Ok(ipv6::UpperLayer::Fragment { .. }) => return Err(DropReason::Fragment),
        Err(_) => return Err(DropReason::Ipv6ExtensionChain),
    };
    let udp_off = ethernet::HEADER_LEN + ipv6::HEADER_LEN + offset;
    let t = tunnel_at(udp_off, &outer.payload()[offset..])?;
    inner(frame, t, true, tables, table)
}

/// The frame inside a checked tunnel: a pod's IPv6 packet, or a reply another member of the
/// set forwarded (translated here as if it had arrived from outside, marked forwarded by its
/// UDP offset). An IPv4 pod packet is the IPv4 parser's, but over the IPv6 underlay.
fn inner(
    frame: &[u8],
    t: Tunnel,
    over_ipv6: bool,
    tables: &Tables,
    table: &SessionTable,
) -> Result<Parsed6, DropReason> {
    let ieth = ethernet::Frame::new_checked(&frame[t.inner_eth_off..t.inner_end])
        .map_err(|_| DropReason::InnerFrameTruncated)?;
    match ieth.ethertype() {
        _ if ieth.vlan_tci().is_some() => return Err(DropReason::InnerNotIpv4),
        EtherType::Ipv6 => {}
        EtherType::Ipv4 if over_ipv6 => return Err(DropReason::Ipv4OverIpv6Underlay),
        _ => return Err(DropReason::InnerNotIpv4),
    }
    let ip = t.inner_eth_off + ethernet::HEADER_LEN;
    let dir = if t.vni == forward::FORWARD_VNI {
        Direction::In
    } else {
        Direction::Out
    };
    translated(frame, ip, t.inner_end, dir, t.udp_off, tables, table)
}

fn translated(
    frame: &[u8],
    ip_off: usize,
    end: usize,
    dir: Direction,
    udp: usize,
    tables: &Tables,
    table: &SessionTable,
) -> Result<Parsed6, DropReason> {
    let ip =
        ipv6::Packet::new_checked(&frame[ip_off..end]).map_err(|_| DropReason::Ipv6Truncated)?;
    let (src, dst) = (
        u128::from_be_bytes(ip.src_bytes()),
        u128::from_be_bytes(ip.dst_bytes()),
    );
    if dir == Direction::In && !tables.ipv6.egress.serves(dst) {
        return Err(DropReason::NotForGateway);
    }
    if ip.hop_limit() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    let (next_header, offset) = match ip.upper_layer() {
        Ok(ipv6::UpperLayer::Protocol {
            next_header,
            offset,
        }) => (next_header, offset),
        Ok(ipv6::UpperLayer::Fragment { .. }) => return Err(DropReason::Fragment),
        Err(_) => return Err(DropReason::Ipv6ExtensionChain),
    };
    let payload = &ip.payload()[offset..];
    let key = |src_port, dst_port, proto| FlowKey6 {
        src,
        dst,
        src_port,
        dst_port,
        proto,
    };
    let (kind, key) = match next_header {
        PROTO_TCP => {
            let t = tcp::Packet::new_checked(payload).map_err(|e| match e {
                wire::Error::Truncated => DropReason::L4Truncated,
                wire::Error::Malformed => DropReason::TcpMalformed,
            })?;
            let flags = t.flags();
            (
                Kind::Tcp { flags },
                key(t.src_port(), t.dst_port(), PROTO_TCP),
            )
        }
        PROTO_UDP => {
            let u = udp::Packet::new_checked(payload).map_err(|e| match e {
                wire::Error::Truncated => DropReason::L4Truncated,
                wire::Error::Malformed => DropReason::UdpMalformed,
            })?;
            if u.checksum() == 0 {
                return Err(DropReason::UdpZeroChecksum);
            }
            (Kind::Udp, key(u.src_port(), u.dst_port(), PROTO_UDP))
        }
        PROTO_ICMPV6 => {
            let m = icmpv6::Packet::new_checked(payload).map_err(|_| DropReason::L4Truncated)?;
            if m.msg_type().is_error() {
                let l4 = ip_off + ipv6::HEADER_LEN + offset;
                return error(&m, (ip_off, l4), (src, dst), dir, udp, table);
            }
            let echo = match dir {
                Direction::Out => icmpv6::Message::EchoRequest,
                Direction::In => icmpv6::Message::EchoReply,
            };
            if m.msg_type() != echo {
                return Err(DropReason::IcmpUnsupported);
            }
            let id = m.echo_ident();
            (Kind::Echo, key(id, id, PROTO_ICMPV6))
        }
        _ => return Err(DropReason::ProtocolUnsupported),
    };
    Ok(Parsed6 {
        dir,
        ip: ip_off,
        l4: ip_off + ipv6::HEADER_LEN + offset,
        udp,
        kind,
        key,
        hash: table.hash6(&key),
        hint: None,
    })
}

/// RFC 4443 / RFC 5508 for IPv6: an ICMPv6 error quoting a packet of a tracked flow, going
/// the other way; the quoted tuple reversed is this direction's key. The quote must come
/// from (Out: be about a packet to) the address the error goes to (comes from).
fn error(
    m: &icmpv6::Packet<&[u8]>,
    (ip, l4): (usize, usize),
    (src, dst): (u128, u128),
    dir: Direction,
    udp: usize,
    table: &SessionTable,
) -> Result<Parsed6, DropReason> {
    let q = m.invoking().map_err(|e| match e {
        icmpv6::InvokingError::Fragment => DropReason::IcmpErrorNoSession,
        _ => DropReason::IcmpErrorTruncated,
    })?;
    let (q_src, q_dst) = (u128::from_be_bytes(q.src), u128::from_be_bytes(q.dst));
    let (sport, dport, proto) = match (q.ports(), q.echo_ident()) {
        (Some((sp, dp)), _) => (sp, dp, q.next_header),
        (None, Some(id)) => (id, id, PROTO_ICMPV6),
        _ => return Err(DropReason::IcmpErrorNoSession),
    };
    let consistent = match dir {
        Direction::Out => q_dst == src,
        Direction::In => q_src == dst,
    };
    if !consistent {
        return Err(DropReason::IcmpErrorNoSession);
    }
    let key = FlowKey6 {
        src: q_dst,
        dst: q_src,
        src_port: dport,
        dst_port: sport,
        proto,
    };
    let emb_ip = l4 + icmpv6::HEADER_LEN;
    Ok(Parsed6 {
        dir,
        ip,
        l4,
        udp,
        kind: Kind::IcmpError {
            emb_ip: emb_ip as u16,
            emb_l4: (emb_ip + q.upper_offset) as u16,
        },
        key,
        hash: table.hash6(&key),
        hint: None,
    })
}

/// The IPv6 packet's length (header and payload) at `ip`, which parsing checked.
fn total(buf: &[u8], ip: usize) -> usize {
    ipv6::HEADER_LEN + usize::from(wire::be16(buf, ip + 4))
}

/// Decrements the hop limit and rewrites `end`'s address and port of the IPv6 packet at
/// `ip`, its L4 checksum following (IPv6 has no header checksum; ICMPv6's, unlike ICMP's,
/// covers the addresses). A UDP checksum never becomes zero.
/// `delta` with a 16-byte address's change from `old` to `new` added.
fn addr_change(mut delta: Delta, old: [u8; 16], new: [u8; 16]) -> Delta {
    for i in (0..16).step_by(4) {
        let four = |a: [u8; 16]| -> [u8; 4] { a[i..i + 4].try_into().expect("4 bytes") };
        delta = delta.addr(four(old), four(new));
    }
    delta
}

/// Writes the 16-byte address `new` at `at`; returns the old one.
fn put_addr(buf: &mut [u8], at: usize, new: u128) -> [u8; 16] {
    let old: [u8; 16] = buf[at..at + 16].try_into().expect("16 bytes");
    buf[at..at + 16].copy_from_slice(&new.to_be_bytes());
    old
}

/// Writes the 16-bit word `new` at `at`, adding its change to `delta`.
fn put_word(buf: &mut [u8], at: usize, new: u16, delta: Delta) -> Delta {
    let old = [buf[at], buf[at + 1]];
    buf[at..at + 2].copy_from_slice(&new.to_be_bytes());
    delta.word(old, new.to_be_bytes())
}

fn addr_at(end: End) -> usize {
    if end == End::Src {
        8
    } else {
        24
    }
}

/// Decrements the hop limit and rewrites `end`'s address and port of the IPv6 packet at
/// `ip`, its L4 checksum following (IPv6 has no header checksum; ICMPv6's, unlike ICMP's,
/// covers the addresses). A UDP checksum never becomes zero. For an ICMPv6 error, the quoted
/// packet's other end, its port and its checksum (where quoted) change too. `start` is the
/// frame's, which `p`'s offsets count from.
#[inline(always)]
fn rewrite6(buf: &mut [u8], start: usize, p: &Parsed6, end: End, addr: u128, port: u16) {
    let (ip, l4, kind, proto) = (start + p.ip, start + p.l4, p.kind, p.key.proto);
    buf[ip + 7] -= 1;
    let new = addr.to_be_bytes();
    let delta = addr_change(
        Delta::default(),
        put_addr(buf, ip + addr_at(end), addr),
        new,
    );
    match kind {
        Kind::IcmpError { emb_ip, emb_l4 } => {
            let (emb_ip, emb_l4) = (start + usize::from(emb_ip), start + usize::from(emb_l4));
            // The quoted packet went the other way: its other end is this one.
            let quoted = if end == End::Src { End::Dst } else { End::Src };
            let old = put_addr(buf, emb_ip + addr_at(quoted), addr);
            // The quoted L4 checksum sees the quoted address change; ICMPv6's sees that and
            // the outer one (its pseudo-header).
            let q_addr = addr_change(Delta::default(), old, new);
            let mut msg = addr_change(delta, old, new);
            let (port_at, csum_at) = match proto {
                PROTO_ICMPV6 => (emb_l4 + 4, emb_l4 + 2),
                PROTO_TCP => (emb_l4 + if quoted == End::Src { 0 } else { 2 }, emb_l4 + 16),
                _ => (emb_l4 + if quoted == End::Src { 0 } else { 2 }, emb_l4 + 6),
            };
            let msg_end = ip + total(buf, ip);
            let old_port = [buf[port_at], buf[port_at + 1]];
            let q_l4 = put_word(buf, port_at, port, q_addr);
            msg = msg.word(old_port, port.to_be_bytes());
            // The quoted checksum, where the quote holds it (and a UDP one was computed).
            if csum_at + 2 <= msg_end && buf[csum_at..csum_at + 2] != [0, 0] {
                let c = q_l4.apply([buf[csum_at], buf[csum_at + 1]]);
                msg = put_word(buf, csum_at, u16::from_be_bytes(c), msg);
            }
            let c = msg.apply([buf[l4 + 2], buf[l4 + 3]]);
            buf[l4 + 2..l4 + 4].copy_from_slice(&c);
        }
        Kind::Echo => {
            let old_id: [u8; 2] = buf[l4 + 4..l4 + 6].try_into().expect("2 bytes");
            let c = delta
                .word(old_id, port.to_be_bytes())
                .apply([buf[l4 + 2], buf[l4 + 3]]);
            buf[l4 + 2..l4 + 4].copy_from_slice(&c);
            buf[l4 + 4..l4 + 6].copy_from_slice(&port.to_be_bytes());
        }
        kind => rewrite::l4(buf, l4, kind, end, delta, port),
    }
}

/// Pod -> world: finds or makes the session, translates, and turns the inner Ethernet header
/// into the outer one. Inlined into its caller, so its result is not read back through the
/// stack (a store-forwarding stall perf found there).
#[inline]
pub fn egress(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed6,
    nat: &mut NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
) -> Result<Output, DropReason> {
    let start = frame.start;
    let bytes = &buf[start..start + frame.len];
    let table = nat.table();
    let (ext_ip, ext_port) = match table.lookup_binding6_hinted(&p.key, p.hash, p.hint) {
        Some((idx, b)) => {
            match p.kind {
                Kind::Tcp { flags } => {
                    // A TCP state change goes to the gateway set's peers.
                    if table.touch_slot6(idx, b.generation, now, |st| {
                        track(st, flags, Direction::Out)
                    }) {
                        nat.state_changed(idx, b.generation);
                    }
                }
                _ => {
                    table.touch_slot6(idx, b.generation, now, |st| st);
                }
            }
            (b.ext_ip(), b.ext_port())
        }
        None if matches!(p.kind, Kind::IcmpError { .. }) => {
            return Err(DropReason::IcmpErrorNoSession)
        }
        None => {
            // In a gateway set, a mid-stream segment with no session here belongs to a
            // session whose replica has not arrived yet (as IPv4's, `in2out`).
            if let Kind::Tcp { flags } = p.kind {
                if flags & wire::tcp::flags::SYN == 0 && nat.in_gateway_set() {
                    return Err(DropReason::MidStreamNoSession);
                }
            }
            let egress = &tables.ipv6.egress;
            let ext_ip = egress
                .egress_for(p.key.src)
                .ok_or(DropReason::NoEgressMapping)?;
            let tunnel = tunnel_endpoint_at(bytes, p.udp + udp::HEADER_LEN, p.ip);
            if !egress.admits(p.key.src, tunnel.node()) {
                return Err(DropReason::PodWrongNode);
            }
            let flags = match p.kind {
                Kind::Tcp { flags } => track(0, flags, Direction::Out),
                _ => 0,
            };
            let s = nat.create6(NewSession6 {
                inside: p.key,
                inside_hash: p.hash,
                ext_ip,
                reserved: egress.reserved_ports(ext_ip, p.key.proto),
                tunnel,
                flags,
                now,
            })?;
            bump(&counters.sessions_created);
            let b = s.snap.binding();
            (b.ext_ip(), b.ext_port())
        }
    };
    let fib = &tables.ipv6.external;
    let Some(next_hop) = fib.next_hop_word(p.key.dst) else {
        counters.request_resolution6(fib.next_hop(p.key.dst));
        return Err(DropReason::NeighborUnresolved);
    };
    let ip = start + p.ip;
    let len = total(buf, ip);
    rewrite6(buf, start, p, End::Src, ext_ip, ext_port);
    let eth_at = ip - ethernet::HEADER_LEN;
    let eth: &mut [u8; ethernet::HEADER_LEN] = (&mut buf[eth_at..ip]).try_into().expect("14 bytes");
    let src = ethernet::src_and_type_word_of(tables.node.external_mac, EtherType::Ipv6);
    ethernet::put_header_words(eth, next_hop, src);
    Ok(Output {
        iface: Iface::External,
        start: eth_at,
        len: ethernet::HEADER_LEN + len,
    })
}

/// World -> pod: un-NATs a reply and tunnels it back to the pod's node (inlined, as
/// [`egress`]).
#[inline]
pub fn reply(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed6,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
) -> Result<Output, DropReason> {
    let start = frame.start;
    let table = nat.table();
    let Some(s) = table.lookup_outside6_hinted(&p.key, p.hash, p.hint) else {
        let unclaimed = forward::Unclaimed {
            forwarded: p.forwarded(),
            port: p.key.dst_port,
            icmp_error: matches!(p.kind, Kind::IcmpError { .. }),
            ip: p.ip,
            ipv6: true,
            hash: p.hash,
        };
        return forward::unclaimed(buf, frame, unclaimed, nat, tables, counters, None);
    };
    match p.kind {
        Kind::Tcp { flags } => {
            if table.touch_slot6(s.idx, s.snap.generation, now, |st| {
                track(st, flags, Direction::In)
            }) {
                nat.state_changed(s.idx, s.snap.generation);
            }
        }
        _ => {
            table.touch_slot6(s.idx, s.snap.generation, now, |st| st);
        }
    }
    let d = s.snap.data();
    let t = s.snap.reply_tunnel();
    let ip = start + p.ip;
    let len = total(buf, ip);
    // Outer IP + UDP + Geneve + inner Ethernet: what the underlay MTU must carry.
    let over_ipv6 = t.node_ip6 != 0;
    let encap = if over_ipv6 {
        encap::len6(t.ovn_option)
    } else {
        encap::len(t.ovn_option)
    } - ethernet::HEADER_LEN;
    let limit = tables.node.reply_limit(encap);
    if len > limit {
        return packet_too_big(buf, frame, ip, len, limit as u32, tables, counters);
    }
    let underlay_mac = if over_ipv6 {
        underlay_next_hop6(&t, tables, counters)?
    } else {
        underlay_next_hop(&t, tables, counters)?
    };
    let inner_eth = ip - ethernet::HEADER_LEN;
    if frame.headroom + (inner_eth - start) < encap {
        return Err(DropReason::NoHeadroom);
    }
    let outer_start = inner_eth - encap;
    // The outer header takes the traffic class (as IPv4's DSCP and ECN).
    let traffic_class = (buf[ip] << 4) | (buf[ip + 1] >> 4);
    rewrite6(buf, start, p, End::Dst, d.inside.src, d.inside.src_port);
    let headers = &mut buf[outer_start..ip];
    encap::write_either(
        headers,
        &t,
        &tables.node,
        underlay_mac,
        len as u16,
        traffic_class,
    )
    .ok_or(DropReason::NoHeadroom)?;
    if over_ipv6 {
        let upper = match p.kind {
            Kind::IcmpError { .. } | Kind::Echo => PROTO_ICMPV6,
            _ => p.key.proto,
        };
        let outer_ip = outer_start + ethernet::HEADER_LEN;
        encap::fill_udp6_checksum(buf, outer_ip, (ip, start + p.l4, upper), ip + len);
    }
    Ok(Output {
        iface: Iface::Underlay,
        start: outer_start,
        len: ip + len - outer_start,
    })
}

/// The MAC the tunnel back to `t`'s node goes to on the IPv6 underlay (as
/// `out2in::underlay_next_hop` on the IPv4 one: a node on the link whose neighbour entry is
/// missing gets the reply at the MAC its flow came from).
#[inline(always)]
pub(super) fn underlay_next_hop6(
    t: &ReplyTunnel,
    tables: &Tables,
    counters: &Counters,
) -> Result<u64, DropReason> {
    let fib = &tables.ipv6.underlay;
    if let Some(mac) = fib.next_hop_word(t.node_ip6) {
        return Ok(mac);
    }
    counters.request_resolution6(fib.next_hop(t.node_ip6));
    if !fib.on_link(t.node_ip6) {
        return Err(DropReason::NeighborUnresolved);
    }
    bump(&counters.next_hop_from_flow);
    Ok(t.src_mac_word)
}

/// RFC 8201 / RFC 4443 3.2: an ICMPv6 Packet Too Big to the reply's sender, from the egress
/// IP it was sent to, quoting as much of it as fits IPv6's minimum MTU, built in front of it
/// (the quote is already in place) and sent back to the MAC it came from.
#[cold]
#[inline(never)]
fn packet_too_big(
    buf: &mut [u8],
    frame: Frame,
    ip: usize,
    len: usize,
    mtu: u32,
    tables: &Tables,
    counters: &Counters,
) -> Result<Output, DropReason> {
    if frame.headroom + (ip - frame.start) < ethernet::HEADER_LEN + TOO_BIG_HEADERS {
        return Err(DropReason::NoHeadroom);
    }
    let sender_mac = ethernet::Frame::new_unchecked(&buf[frame.start..]).src();
    let (egress_ip, sender): ([u8; 16], [u8; 16]) = (
        buf[ip + 24..ip + 40].try_into().expect("16 bytes"),
        buf[ip + 8..ip + 24].try_into().expect("16 bytes"),
    );
    let (eth_at, end) = emit_packet_too_big(
        buf,
        (ip, len),
        mtu,
        (egress_ip, sender),
        (tables.node.external_mac, sender_mac),
    )?;
    bump(&counters.icmp_frag_needed_sent);
    Ok(Output {
        iface: Iface::External,
        start: eth_at,
        len: end - eth_at,
    })
}

/// The IPv6 and ICMPv6 headers of a Packet Too Big in front of a packet.
pub(super) const TOO_BIG_HEADERS: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;

/// Writes an ICMPv6 Packet Too Big announcing `mtu` about the packet at `ip` (`len` bytes),
/// from `src` to `dst`, in an Ethernet frame from `src_mac` to `dst_mac`, in front of the
/// packet, which is then its quote (cut to IPv6's minimum MTU). The caller checked that
/// 14 + [`TOO_BIG_HEADERS`] bytes before `ip` are the frame's. Returns where the frame begins
/// and ends.
pub(super) fn emit_packet_too_big(
    buf: &mut [u8],
    (ip, len): (usize, usize),
    mtu: u32,
    (src, dst): ([u8; 16], [u8; 16]),
    (src_mac, dst_mac): (MacAddr, MacAddr),
) -> Result<(usize, usize), DropReason> {
    let quote = len.min(1280 - TOO_BIG_HEADERS);
    let new_ip = ip
        .checked_sub(TOO_BIG_HEADERS + ethernet::HEADER_LEN)
        .ok_or(DropReason::NoHeadroom)?
        + ethernet::HEADER_LEN;
    let eth_at = new_ip - ethernet::HEADER_LEN;
    let icmp_at = new_ip + ipv6::HEADER_LEN;
    let end = icmp_at + icmpv6::HEADER_LEN + quote;
    let emitted = ethernet::Repr {
        src: src_mac,
        dst: dst_mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv6,
    }
    .emit(&mut buf[eth_at..])
    .and_then(|()| {
        ipv6::Repr {
            src: src.into(),
            dst: dst.into(),
            next_header: PROTO_ICMPV6,
            hop_limit: 64,
            payload_len: (icmpv6::HEADER_LEN + quote) as u16,
        }
        .emit(&mut buf[new_ip..])
    })
    .and_then(|()| icmpv6::Repr::PacketTooBig { mtu }.emit(&mut buf[icmp_at..]));
    emitted.map_err(|_| DropReason::NoHeadroom)?;
    icmpv6::Packet::new_checked(buf.get_mut(icmp_at..end).ok_or(DropReason::NoHeadroom)?)
        .map_err(|_| DropReason::NoHeadroom)?
        .fill_checksum(&src, &dst);
    Ok((eth_at, end))
}
