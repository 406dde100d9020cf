//! Pod -> world: the decapsulated packet leaves with its egress IP as source, on the external
//! interface. New flows are created here (the slow path); known flows are a lookup and a few
//! stores.

use super::fragments::Fragments;
use super::parsed::{Kind, Parsed};
use super::rewrite::{self, End};
use super::tables::Tables;
use super::{Frame, Iface, Output};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::tcp::track;
use crate::nat::{Direction, NatWorker, NewSession};
use crate::wire::ethernet;
use crate::wire::tcp;

/// Finds or creates the session for a pod's packet; returns its egress IP and port.
#[inline]
fn session(
    frame: &[u8],
    p: &Parsed,
    nat: &mut NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
) -> Result<(u32, u16), DropReason> {
    let table = nat.table();
    let tcp_flags = match p.kind {
        Kind::Tcp { flags } => Some(flags),
        _ => None,
    };
    if let Some((idx, b)) = table.lookup_binding_hinted(&p.key, p.hash, p.hint) {
        match tcp_flags {
            Some(f) => {
                if table.touch_slot(idx, b.generation, now, |st| track(st, f, Direction::Out)) {
                    nat.state_changed(idx, b.generation);
                }
            }
            None => {
                table.touch_slot(idx, b.generation, now, |st| st);
            }
        }
        return Ok((b.ext_ip(), b.ext_port()));
    }
    if matches!(p.kind, Kind::IcmpError { .. }) {
        return Err(DropReason::IcmpErrorNoSession);
    }
    // In a gateway set, a TCP segment other than a SYN with no session belongs to a flow
    // whose replica is on its way (or was lost): a new port would have the server reset
    // it, so it waits for a retransmission instead.
    if let Some(f) = tcp_flags {
        if f & tcp::flags::SYN == 0 && nat.in_gateway_set() {
            return Err(DropReason::MidStreamNoSession);
        }
    }
    let ext_ip = tables
        .egress
        .egress_for(p.key.src)
        .ok_or(DropReason::NoEgressMapping)?;
    let flags = tcp_flags.map_or(0, |f| track(0, f, Direction::Out));
    let tunnel = super::parse::tunnel_endpoint(frame, p);
    if !tables.egress.admits(p.key.src, tunnel.node()) {
        return Err(DropReason::PodWrongNode);
    }
    let reserved = tables.egress.reserved_ports(ext_ip, p.key.proto);
    let new = NewSession {
        inside: p.key,
        inside_hash: p.hash,
        ext_ip,
        reserved,
        tunnel,
        flags,
        now,
    };
    let s = nat.create_prefetched(new, p.dest)?;
    bump(&counters.sessions_created);
    let b = s.snap.binding();
    Ok((b.ext_ip(), b.ext_port()))
}

/// Translates and re-frames `frame` of `buf` per `p`.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn apply(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed,
    nat: &mut NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
    fragments: &mut Fragments,
) -> Result<Output, DropReason> {
    let start = frame.start;
    let frame = &mut buf[start..start + frame.len];
    let (ext_ip, ext_port) = session(frame, p, nat, tables, counters, now)?;
    let (ip_at, l4_at) = (usize::from(p.ip), usize::from(p.l4));
    // The remote end: the packet's destination, or for an ICMP error the quoted source.
    let Some(next_hop) = tables.external.next_hop_word(p.key.dst) else {
        counters.request_resolution(tables.external.next_hop(p.key.dst));
        return Err(DropReason::NeighborUnresolved);
    };
    let (total, first_fragment) = frame
        .get(ip_at + 2..ip_at + 7)
        .map(|b| {
            (
                usize::from(u16::from_be_bytes([b[0], b[1]])),
                b[4] & 0x20 != 0,
            )
        })
        .ok_or(DropReason::Ipv4Truncated)?;
    // The first fragment of a datagram: its later ones, which carry no ports, follow it.
    if first_fragment {
        fragments.remember_first(frame, ip_at, Direction::Out, &p.key, now);
        bump(&counters.fragments_translated);
    }
    let addr = rewrite::ip_header(frame, ip_at, End::Src, ext_ip);
    match p.kind {
        Kind::IcmpError { emb_ip, emb_l4 } => rewrite::embedded(
            frame,
            l4_at,
            usize::from(emb_ip),
            usize::from(emb_l4),
            ip_at + total,
            End::Dst,
            ext_ip,
            ext_port,
        ),
        kind => rewrite::l4(frame, l4_at, kind, End::Src, addr, ext_port),
    }
    let out = out_of_the_tunnel(frame, ip_at, total, next_hop, tables)?;
    Ok(Output {
        start: start + out.start,
        ..out
    })
}

/// Frames the translated IPv4 packet at `ip_at` of `frame` (`total` bytes) for the external
/// interface, toward `next_hop`: the inner Ethernet header becomes the outer one, so
/// decapsulation moves no bytes. The output's start is `frame`'s offset.
#[inline(always)]
pub(super) fn out_of_the_tunnel(
    frame: &mut [u8],
    ip_at: usize,
    total: usize,
    next_hop: u64,
    tables: &Tables,
) -> Result<Output, DropReason> {
    let eth_at = ip_at - ethernet::HEADER_LEN;
    let eth: &mut [u8; ethernet::HEADER_LEN] = frame
        .get_mut(eth_at..ip_at)
        .and_then(|h| h.try_into().ok())
        .ok_or(DropReason::InnerFrameTruncated)?;
    let src = ethernet::src_and_type_word(tables.node.external_mac);
    ethernet::put_header_words(eth, next_hop, src);
    Ok(Output {
        iface: Iface::External,
        start: eth_at,
        len: ethernet::HEADER_LEN + total,
    })
}
