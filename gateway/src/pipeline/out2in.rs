//! World -> pod: a reply to an egress IP is un-NATed and tunnelled back to the node that sent
//! the flow, mirroring the Geneve header it arrived with.

use super::encap;
use super::forward;
use super::parsed::{Kind, Parsed};
use super::rewrite::{self, End};
use super::tables::Tables;
use super::too_big;
use super::{Frame, Iface, Output};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::tcp::track;
use crate::nat::{Direction, NatWorker, ReplyTunnel};
use crate::wire::{be16, ethernet};

/// Translates `frame` of `buf` and encapsulates it in the headroom before it.
#[inline]
pub fn apply(
    buf: &mut [u8],
    frame: Frame,
    p: &Parsed,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
) -> Result<Output, DropReason> {
    let start = frame.start;
    let table = nat.table();
    let Some(s) = table.lookup_outside_hinted(&p.key, p.hash, p.hint) else {
        let unclaimed = forward::Unclaimed {
            forwarded: p.forwarded(),
            port: p.key.dst_port,
            icmp_error: matches!(p.kind, Kind::IcmpError { .. }),
            ip: usize::from(p.ip),
            ipv6: false,
            hash: p.hash,
        };
        return forward::unclaimed(buf, frame, unclaimed, nat, tables, counters);
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
    let l4_at = start + usize::from(p.l4);
    let (total, dont_frag, dscp_ecn) = {
        // Parsing checked the header is there; one bounds check here, none per field.
        let ip: &[u8; 20] = buf
            .get(ip_at..ip_at + 20)
            .and_then(|h| h.try_into().ok())
            .ok_or(DropReason::Ipv4Truncated)?;
        (usize::from(be16(ip, 2)), ip[6] & 0x40 != 0, ip[1])
    };
    // Outer IPv4 + UDP + Geneve + inner Ethernet: what the underlay MTU must carry.
    let encap = encap::len(t.ovn_option) - ethernet::HEADER_LEN;
    let mtu = usize::from(tables.node.underlay_mtu);
    if total + encap > mtu {
        if !dont_frag {
            return Err(DropReason::TooBigNoDf);
        }
        if frame.headroom < too_big::HEADROOM {
            return Err(DropReason::NoHeadroom);
        }
        let (new_start, len) = too_big::frag_needed(
            buf,
            start,
            (mtu - encap) as u16,
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
    let underlay_mac = underlay_next_hop(t, tables, counters)?;
    let inner_eth = ip_at - ethernet::HEADER_LEN;
    // Outer Ethernet + IPv4 + UDP + Geneve take as many bytes as `encap` counts after them.
    if frame.headroom + (inner_eth - start) < encap {
        return Err(DropReason::NoHeadroom);
    }
    let outer_start = inner_eth - encap;

    // Translate the inner packet.
    let addr = rewrite::ip_header(buf, ip_at, End::Dst, d.inside.src);
    match p.kind {
        Kind::IcmpError { emb_ip, emb_l4 } => rewrite::embedded(
            buf,
            l4_at,
            start + usize::from(emb_ip),
            start + usize::from(emb_l4),
            ip_at + total,
            End::Src,
            d.inside.src,
            d.inside.src_port,
        ),
        kind => rewrite::l4(buf, l4_at, kind, End::Dst, addr, d.inside.src_port),
    }

    // Mirror the tunnel: inner MACs swapped, OVN ports swapped, same VNI and entropy.
    encap::write(
        &mut buf[outer_start..ip_at],
        t,
        &tables.node,
        underlay_mac,
        total as u16,
        dscp_ecn,
    )
    .ok_or(DropReason::NoHeadroom)?;
    Ok(Output {
        iface: Iface::Underlay,
        start: outer_start,
        len: ip_at + total - outer_start,
    })
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
