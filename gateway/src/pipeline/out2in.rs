//! World -> pod: a reply to an egress IP is un-NATed and tunnelled back to the node that sent
//! the flow, mirroring the Geneve header it arrived with.

use super::encap;
use super::forward;
use super::parsed::{Kind, Parsed};
use super::refragment::{self, Spill};
use super::rewrite::{self, End};
use super::tables::Tables;
use super::too_big;
use super::{Frame, Iface, Output, Pieces};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::tcp::track;
use crate::nat::{Direction, NatWorker, ReplyTunnel, SessionData};
use crate::wire::{be16, ethernet};

/// Translates `frame` of `buf` and encapsulates it in the headroom before it (cut into pieces
/// first when it does not fit the underlay and may be: [`tunnel_back`]).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn apply(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
    pieces: &mut Pieces,
) -> Result<Output, DropReason> {
    let start = frame.start;
    let table = nat.table();
    let Some(s) = table.lookup_outside_hinted(&p.key, p.hash, p.hint) else {
        return no_session(buf, frame, p, nat, tables, counters, now, pieces);
    };
    match p.kind {
        Kind::Tcp { flags } => {
            if table.touch(&s, now, |st| track(st, flags, Direction::In)) {
                nat.state_changed(s.idx, s.snap.generation);
            }
        }
        _ => {
            table.touch(&s, now, |st| st);
        }
    }
    let d = &s.snap.data();
    let t = &s.snap.reply_tunnel();
    let ip_at = start + usize::from(p.ip);
    let (total, flags, dscp_ecn) = {
        // Parsing checked the header is there; one bounds check here, none per field.
        let ip: &[u8; 20] = buf
            .get(ip_at..ip_at + 20)
            .and_then(|h| h.try_into().ok())
            .ok_or(DropReason::Ipv4Truncated)?;
        (usize::from(be16(ip, 2)), ip[6], ip[1])
    };
    // Outer IPv4 + UDP + Geneve + inner Ethernet: what the underlay MTU must carry. (The
    // pods' MTU and the underlay's apart rather than `reply_limit`'s minimum: 2 instructions
    // a reply fewer.)
    let encap = encap::len(t.ovn_option) - ethernet::HEADER_LEN;
    let node = &tables.node;
    if total > usize::from(node.pod_mtu)
        || total + encap > usize::from(node.underlay_mtu)
        || flags & MORE_FRAGMENTS != 0
    {
        return unusual(buf, frame, p, nat, tables, counters, now, pieces);
    }
    let inner = Inner {
        at: ip_at,
        total,
        dscp_ecn,
    };
    let underlay_mac = underlay_next_hop(t, tables, counters)?;
    translate(buf, start, p, inner, d);
    tunnel_back(
        buf,
        frame,
        inner,
        t,
        tables,
        counters,
        underlay_mac,
        false,
        &mut pieces.spill,
    )
}

/// A reply with no session here: another member's, perhaps (`forward`). A first fragment
/// forwarded is remembered, so that its later ones follow it (`later_fragment`). Cold and
/// apart, so that the hot path's registers are not sized for it.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn no_session(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
    pieces: &mut Pieces,
) -> Result<Output, DropReason> {
    let unclaimed = forward::Unclaimed {
        forwarded: p.forwarded(),
        port: p.key.dst_port,
        icmp_error: matches!(p.kind, Kind::IcmpError { .. }),
        ip: usize::from(p.ip),
        ipv6: false,
        hash: p.hash,
    };
    let at = frame.start + usize::from(p.ip);
    let first_fragment = buf.get(at + 6).is_some_and(|f| f & MORE_FRAGMENTS != 0);
    if first_fragment && !p.forwarded() && nat.forward_to(p.key.dst_port).is_some() {
        let dir = Direction::In;
        pieces.fragments.remember_first(buf, at, dir, &p.key, now);
    }
    let spill = Some(&mut pieces.spill);
    forward::unclaimed(buf, frame, unclaimed, nat, tables, counters, spill)
}

/// Un-NATs the reply `p` whose IPv4 header is `inner`, per its session's data `d`.
#[inline(always)]
fn translate(buf: &mut [u8], start: usize, p: &Parsed, inner: Inner, d: &SessionData) {
    let l4_at = start + usize::from(p.l4);
    let addr = rewrite::ip_header(buf, inner.at, End::Dst, d.inside.src);
    match p.kind {
        Kind::IcmpError { emb_ip, emb_l4 } => rewrite::embedded(
            buf,
            l4_at,
            start + usize::from(emb_ip),
            start + usize::from(emb_l4),
            inner.at + inner.total,
            End::Src,
            d.inside.src,
            d.inside.src_port,
        ),
        kind => rewrite::l4(buf, l4_at, kind, End::Dst, addr, d.inside.src_port),
    }
}

/// A reply too big for the underlay once wrapped, or a datagram's first fragment: apart and
/// cold, its session looked up again (handing the hot path's session to a call would make
/// that path keep it in memory: 14 instructions and more a reply). Too big with DF set, the
/// sender is told the MTU (RFC 1191); too big without, the translated packet is cut to fit
/// ([`tunnel_back`]). A first fragment is remembered for its datagram's later ones.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn unusual(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
    pieces: &mut Pieces,
) -> Result<Output, DropReason> {
    let at = frame.start + usize::from(p.ip);
    let header = buf.get(at..at + 20).ok_or(DropReason::Ipv4Truncated)?;
    let flags = header[6];
    let inner = Inner {
        at,
        total: usize::from(be16(header, 2)),
        dscp_ecn: header[1],
    };
    let table = nat.table();
    let s = table
        .lookup_outside(&p.key, p.hash)
        .ok_or(DropReason::NoSession)?;
    let t = &s.snap.reply_tunnel();
    let limit = tables
        .node
        .reply_limit(encap::len(t.ovn_option) - ethernet::HEADER_LEN);
    let too_big = inner.total > limit;
    if too_big && flags & DONT_FRAGMENT != 0 {
        if frame.headroom < too_big::HEADROOM {
            return Err(DropReason::NoHeadroom);
        }
        let (new_start, len) = too_big::frag_needed(
            buf,
            frame.start,
            limit as u16,
            p.key.dst,
            tables.node.external_mac,
        )
        .map_err(|_| DropReason::NoHeadroom)?;
        bump(&counters.icmp_frag_needed_sent);
        return Ok(Output {
            iface: Iface::External,
            start: new_start,
            len,
        });
    }
    if flags & MORE_FRAGMENTS != 0 {
        let dir = Direction::In;
        pieces
            .fragments
            .remember_first(buf, inner.at, dir, &p.key, now);
        bump(&counters.fragments_translated);
    }
    let underlay_mac = underlay_next_hop(t, tables, counters)?;
    translate(buf, frame.start, p, inner, &s.snap.data());
    tunnel_back(
        buf,
        frame,
        inner,
        t,
        tables,
        counters,
        underlay_mac,
        too_big,
        &mut pieces.spill,
    )
}

/// The flags byte of an IPv4 header: DF and MF.
const DONT_FRAGMENT: u8 = 0x40;
const MORE_FRAGMENTS: u8 = 0x20;

/// The translated inner IPv4 packet a reply tunnels back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inner {
    /// Its header's offset in the buffer.
    pub at: usize,
    pub total: usize,
    pub dscp_ecn: u8,
}

/// Wraps the translated inner packet in the tunnel `t` mirrored back (inner MACs swapped, OVN
/// ports swapped, same VNI and entropy), in the headroom before it, toward `underlay_mac`.
/// One `too_big` for the underlay (DF clear: the caller answered DF with
/// fragmentation-needed) is cut into pieces that fit first, each wrapped alike; the pieces
/// after the first go to `spill`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn tunnel_back(
    buf: &mut [u8],
    frame: Frame,
    inner: Inner,
    t: &ReplyTunnel,
    tables: &Tables,
    counters: &Counters,
    underlay_mac: u64,
    too_big: bool,
    spill: &mut Spill,
) -> Result<Output, DropReason> {
    let front = encap::len(t.ovn_option);
    let ip_at = inner.at;
    // Outer Ethernet, IPv4, UDP, Geneve and inner Ethernet take `front` bytes before it.
    if frame.headroom + (ip_at - frame.start) < front {
        return Err(DropReason::NoHeadroom);
    }
    let total = if too_big {
        cut(buf, inner, t, tables, counters, underlay_mac, spill)?
    } else {
        inner.total
    };
    let outer_start = ip_at - front;
    encap::write(
        &mut buf[outer_start..ip_at],
        t,
        &tables.node,
        underlay_mac,
        total as u16,
        inner.dscp_ecn,
    )
    .ok_or(DropReason::NoHeadroom)?;
    Ok(Output {
        iface: Iface::Underlay,
        start: outer_start,
        len: ip_at + total - outer_start,
    })
}

/// The cold part of [`tunnel_back`]: cuts the packet (`refragment`), wrapping every piece
/// but the first, and returns the first piece's length.
#[cold]
#[inline(never)]
fn cut(
    buf: &mut [u8],
    inner: Inner,
    t: &ReplyTunnel,
    tables: &Tables,
    counters: &Counters,
    underlay_mac: u64,
    spill: &mut Spill,
) -> Result<usize, DropReason> {
    let front = encap::len(t.ovn_option);
    let max_inner = tables.node.reply_limit(front - ethernet::HEADER_LEN);
    let wrap = |h: &mut [u8], len: u16| {
        encap::write(h, t, &tables.node, underlay_mac, len, inner.dscp_ecn)
    };
    let first = refragment::split(buf, inner.at, inner.total, max_inner, front, spill, wrap)?;
    bump(&counters.replies_fragmented);
    Ok(usize::from(first))
}

/// The MAC the tunnel back to `t`'s node goes to.
#[inline(always)]
pub(super) fn underlay_next_hop(
    t: &ReplyTunnel,
    tables: &Tables,
    counters: &Counters,
) -> Result<u64, DropReason> {
    match tables.underlay.next_hop_word(t.node_ip) {
        Some(mac) => Ok(mac),
        None => {
            counters.request_resolution(tables.underlay.next_hop(t.node_ip));
            // A node on the underlay's link sent the flow from its own MAC: send the reply
            // there rather than drop it while the neighbour table catches up (the kernel
            // would queue it; a dropped SYN-ACK costs the pod a second).
            if !tables.underlay.on_link(t.node_ip) {
                return Err(DropReason::NeighborUnresolved);
            }
            bump(&counters.next_hop_from_flow);
            Ok(t.src_mac_word)
        }
    }
}
