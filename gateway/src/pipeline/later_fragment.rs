//! A later IPv4 fragment (offset above zero): no ports to look up, so its datagram's first
//! fragment named the flow (`fragments`). A pod's leaves with the flow's egress IP as source;
//! a reply goes back through the flow's tunnel with the pod's address as destination, cut to
//! fit the underlay where it must. Off the packet path's hot code: the parser hands these over
//! as `fragment`.

use super::encap;
use super::forward;
use super::fragments::FragmentId;
use super::in2out::out_of_the_tunnel;
use super::out2in::{tunnel_back, underlay_next_hop, Inner};
use super::parse::{ipv4_valid, tunnel};
use super::refragment::Spill;
use super::rewrite::{self, End};
use super::tables::Tables;
use super::{Frame, Output, Pieces};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::{Direction, FlowKey, NatWorker};
use crate::wire::{ethernet, ipv4};

/// Translates the later fragment `frame` of `buf`, or says why not.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub fn translate(
    buf: &mut [u8],
    frame: Frame,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    now: u32,
    pieces: &mut Pieces,
) -> Result<Output, DropReason> {
    let bytes = frame.bytes(buf).ok_or(DropReason::FrameTruncated)?;
    let eth = ethernet::Frame::new_checked(bytes).map_err(|_| DropReason::FrameTruncated)?;
    if eth.ethertype() != ethernet::EtherType::Ipv4 || eth.vlan_tci().is_some() {
        return Err(DropReason::Fragment);
    }
    let outer_off = ethernet::HEADER_LEN;
    let outer = ipv4_valid(&bytes[outer_off..])?;
    // Which way it goes, where its IPv4 header lies, what it is, and whether another member
    // of the set forwarded it here.
    let (dir, ip_off, (id, inner), forwarded) =
        if outer.dst() == tables.node.node_ip && outer.protocol() == ipv4::Protocol::Udp {
            // A fragmented tunnel is the node's (the steering program passes it).
            if outer.is_fragment() {
                return Err(DropReason::Fragment);
            }
            let t = tunnel(outer_off, &outer)?;
            let inner = bytes
                .get(t.inner_eth_off..t.inner_end)
                .ok_or(DropReason::InnerFrameTruncated)?;
            let ieth =
                ethernet::Frame::new_checked(inner).map_err(|_| DropReason::InnerFrameTruncated)?;
            if ieth.ethertype() != ethernet::EtherType::Ipv4 || ieth.vlan_tci().is_some() {
                return Err(DropReason::Fragment);
            }
            let ip_off = t.inner_eth_off + ethernet::HEADER_LEN;
            let ip = ipv4_valid(&bytes[ip_off..t.inner_end])?;
            if t.vni == forward::FORWARD_VNI {
                // A reply's piece another member forwarded, its first ahead of it.
                if !tables.egress.serves(ip.dst()) {
                    return Err(DropReason::NotForGateway);
                }
                (Direction::In, ip_off, later(&ip)?, true)
            } else {
                (Direction::Out, ip_off, later(&ip)?, false)
            }
        } else if tables.egress.serves(outer.dst()) {
            (Direction::In, outer_off, later(&outer)?, false)
        } else {
            return Err(DropReason::NotForGateway);
        };
    let key = pieces
        .fragments
        .flow_of(&id, dir, now)
        .ok_or(DropReason::FragmentNoFirst)?;
    let inner = Inner {
        at: frame.start + ip_off,
        ..inner
    };
    match dir {
        Direction::Out => pod(buf, inner, &key, nat, tables, counters),
        Direction::In => {
            let to = Reply { inner, forwarded };
            let spill = &mut pieces.spill;
            reply(buf, frame, to, &key, nat, tables, counters, spill)
        }
    }
}

/// A later fragment's datagram and its length, TOS and TTL (`at` left for the caller); a
/// first fragment or a whole packet was the parser's to take.
fn later(ip: &ipv4::Packet<&[u8]>) -> Result<(FragmentId, Inner), DropReason> {
    if ip.frag_offset() == 0 {
        return Err(DropReason::Fragment);
    }
    if ip.ttl() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    if let ipv4::Protocol::Unknown(_) = ip.protocol() {
        return Err(DropReason::ProtocolUnsupported);
    }
    let id = FragmentId {
        src: ip.src(),
        dst: ip.dst(),
        ident: ip.ident(),
        proto: u8::from(ip.protocol()),
    };
    let inner = Inner {
        at: 0,
        total: usize::from(ip.total_len()),
        dscp_ecn: ip.dscp_ecn(),
    };
    Ok((id, inner))
}

/// A pod's later fragment (its inner IPv4 header `ip`) of the flow `key`: out with the flow's
/// egress IP.
fn pod(
    buf: &mut [u8],
    ip: Inner,
    key: &FlowKey,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
) -> Result<Output, DropReason> {
    let table = nat.table();
    let (_, b) = table
        .lookup_binding(key, table.hash(key))
        .ok_or(DropReason::FragmentNoFirst)?;
    // A fragment never has DF: too big for the way out is a drop, as for a whole packet.
    if ip.total > usize::from(tables.node.external_mtu) {
        return Err(DropReason::EgressTooBig);
    }
    let Some(next_hop) = tables.external.next_hop_word(key.dst) else {
        counters.request_resolution(tables.external.next_hop(key.dst));
        return Err(DropReason::NeighborUnresolved);
    };
    rewrite::ip_header(buf, ip.at, End::Src, b.ext_ip());
    let out = out_of_the_tunnel(buf, ip.at, ip.total, next_hop, tables)?;
    bump(&counters.fragments_translated);
    Ok(out)
}

/// A reply's later fragment, and whether another member forwarded it here.
#[derive(Debug, Clone, Copy)]
struct Reply {
    inner: Inner,
    forwarded: bool,
}

/// A reply's later fragment of the flow `key`: to the pod, through the flow's tunnel, cut to
/// fit where it must; or, where its first was forwarded to the member that owns its port
/// (no session here yet), after it.
#[allow(clippy::too_many_arguments)]
fn reply(
    buf: &mut [u8],
    frame: Frame,
    to: Reply,
    key: &FlowKey,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    spill: &mut Spill,
) -> Result<Output, DropReason> {
    let table = nat.table();
    let hash = table.hash(key);
    let inner = to.inner;
    let Some(s) = table.lookup_outside(key, hash) else {
        let unclaimed = forward::Unclaimed {
            forwarded: to.forwarded,
            port: key.dst_port,
            icmp_error: false,
            ip: inner.at - frame.start,
            ipv6: false,
            hash,
        };
        return forward::unclaimed(buf, frame, unclaimed, nat, tables, counters, Some(spill));
    };
    let pod_ip = s.snap.data().inside.src;
    let t = s.snap.reply_tunnel();
    let underlay_mac = underlay_next_hop(&t, tables, counters)?;
    let carried = encap::len(t.ovn_option) - ethernet::HEADER_LEN;
    let too_big = inner.total > tables.node.reply_limit(carried);
    rewrite::ip_header(buf, inner.at, End::Dst, pod_ip);
    let out = tunnel_back(
        buf,
        frame,
        inner,
        &t,
        tables,
        counters,
        underlay_mac,
        too_big,
        spill,
    )?;
    bump(&counters.fragments_translated);
    Ok(out)
}
