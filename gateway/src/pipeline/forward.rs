//! Replies find their owner (failover, issue 16): a reply that reaches a member of the
//! gateway set with no session for it goes, once, to the member that owns its port's block,
//! inside Geneve with the forwarding VNI. The owner translates it as if it had arrived
//! itself; a forwarded reply that finds no session there is dropped, never sent on again.
//! Only the gap before a new session's replica lands takes this path (replicas translate
//! the rest), so it is written for clarity, with the wire layer's emitters. The set's
//! underlay is its members' family: over IPv6 the tunnel carries a UDP checksum, summed
//! over the whole datagram (Linux and OVS refuse Geneve over IPv6 without one).

use super::refragment::{self, Spill};
use super::tables::Tables;
use super::{Frame, Iface, Output};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::NatWorker;
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{be16, geneve, ipv4, ipv6, udp};
use std::net::IpAddr;

/// The VNI of a reply forwarded between members. OVN's keys for datapaths count up from 1
/// and its transit switches sit at 0xff0000 and up; this one is neither.
pub const FORWARD_VNI: u32 = 0x00ee_6701;

/// Outer Ethernet, IPv4, UDP and Geneve (no options) in front of the forwarded frame.
pub const HEADER_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + 8;
/// The same over the IPv6 underlay.
pub const HEADER6_LEN: usize = HEADER_LEN + ipv6::HEADER_LEN - ipv4::HEADER_LEN;

/// A reply of either family that found no session here, as the parser saw it.
#[derive(Debug, Clone, Copy)]
pub struct Unclaimed {
    /// Another member forwarded it here already.
    pub forwarded: bool,
    /// Its destination port: the translated port, whose block names the owner.
    pub port: u16,
    pub icmp_error: bool,
    /// Where its IP header lies, from the frame start.
    pub ip: usize,
    pub ipv6: bool,
    /// Its flow hash (the underlay's entropy).
    pub hash: u64,
}

/// A reply with no session here: another member's, if its port is in that member's block
/// (sent there once), else a counted drop. Never a RST, never a session.
#[cold]
#[inline(never)]
pub fn unclaimed(
    buf: &mut [u8],
    frame: Frame,
    reply: Unclaimed,
    nat: &NatWorker,
    tables: &Tables,
    counters: &Counters,
    spill: Option<&mut Spill>,
) -> Result<Output, DropReason> {
    if reply.forwarded {
        return Err(DropReason::ForwardedNoSession);
    }
    match nat.forward_to(reply.port) {
        Some(owner) => apply(buf, frame, reply, owner, tables, counters, spill),
        None if reply.icmp_error => Err(DropReason::IcmpErrorNoSession),
        None => Err(DropReason::NoSession),
    }
}

/// The IP packet's length (header and payload) at `at`, which parsing checked.
fn ip_total(buf: &[u8], at: usize, ipv6: bool) -> Result<usize, DropReason> {
    let header = if ipv6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    let h = buf.get(at..at + header).ok_or(DropReason::FrameTruncated)?;
    Ok(if ipv6 {
        ipv6::HEADER_LEN + usize::from(be16(h, 4))
    } else {
        usize::from(be16(h, 2))
    })
}

/// Wraps `reply` of `buf` (arrived from outside: Ethernet + IPv4 or IPv6 at the frame
/// start) for the member at `owner`, over the set's underlay (`owner`'s family).
fn apply(
    buf: &mut [u8],
    frame: Frame,
    reply: Unclaimed,
    owner: IpAddr,
    tables: &Tables,
    counters: &Counters,
    spill: Option<&mut Spill>,
) -> Result<Output, DropReason> {
    let ip_at = frame.start + reply.ip;
    let total = ip_total(buf, ip_at, reply.ipv6)?;
    // The received Ethernet header travels inside; padding after the packet does not.
    let inner_at = ip_at - ethernet::HEADER_LEN;
    let header_len = if owner.is_ipv6() {
        HEADER6_LEN
    } else {
        HEADER_LEN
    };
    if frame.headroom + (inner_at - frame.start) < header_len {
        return Err(DropReason::NoHeadroom);
    }
    let mac = next_hop(owner, tables, counters)?;
    // What the underlay carries of the reply once wrapped.
    let room = usize::from(tables.node.underlay_mtu) - (header_len - ethernet::HEADER_LEN);
    let mut inner_len = ethernet::HEADER_LEN + total;
    if inner_len > room {
        // An IPv4 reply with DF clear (a fragment, say) is cut to fit, over an IPv4 underlay
        // (over IPv6 each piece's checksum would sum the piece: not done).
        let df = buf.get(ip_at + 6).is_none_or(|f| f & 0x40 != 0);
        let (Some(spill), false, false, false) = (spill, reply.ipv6, owner.is_ipv6(), df) else {
            return Err(DropReason::ForwardTooBig);
        };
        inner_len = ethernet::HEADER_LEN
            + cut(
                buf, ip_at, total, room, owner, mac, reply.hash, tables, spill,
            )?;
    }
    let at = inner_at - header_len;
    let h = &mut buf[at..inner_at + inner_len];
    write_header(h, owner, inner_len, mac, reply.hash, tables)?;
    bump(&counters.replies_forwarded);
    Ok(Output {
        iface: Iface::Underlay,
        start: at,
        len: header_len + inner_len,
    })
}

/// Writes the forwarding tunnel's headers (outer Ethernet, IP of `owner`'s family, UDP,
/// Geneve with the forwarding VNI) at the start of `h`, for `inner_len` bytes of received
/// frame after them; over IPv6 `h` must hold that frame too (the UDP checksum sums it).
fn write_header(
    h: &mut [u8],
    owner: IpAddr,
    inner_len: usize,
    mac: u64,
    hash: u64,
    tables: &Tables,
) -> Result<(), DropReason> {
    let header_len = if owner.is_ipv6() {
        HEADER6_LEN
    } else {
        HEADER_LEN
    };
    let udp_at = header_len - udp::HEADER_LEN - geneve::HEADER_LEN;
    let geneve_len = (geneve::HEADER_LEN + inner_len) as u16;
    let udp_len = udp::HEADER_LEN as u16 + geneve_len;
    let (ethertype, ip_written) = match owner {
        IpAddr::V4(owner) => (
            EtherType::Ipv4,
            ipv4::Repr {
                src: tables.node.node_ip,
                dst: u32::from(owner),
                protocol: ipv4::Protocol::Udp,
                payload_len: udp_len,
                ttl: 64,
                dscp_ecn: 0,
                ident: 0,
                dont_frag: true,
            }
            .emit(&mut h[ethernet::HEADER_LEN..]),
        ),
        IpAddr::V6(owner) => (
            EtherType::Ipv6,
            ipv6::Repr {
                src: tables.node.node_ip6.into(),
                dst: owner,
                next_header: ipv6::next_header::UDP,
                hop_limit: 64,
                payload_len: udp_len,
            }
            .emit(&mut h[ethernet::HEADER_LEN..]),
        ),
    };
    let written = ethernet::Repr {
        src: tables.node.underlay_mac,
        dst: ethernet::MacAddr::from_word(mac),
        vlan_tci: None,
        ethertype,
    }
    .emit(h)
    .and(ip_written)
    .and_then(|()| {
        udp::Repr {
            // Entropy for the underlay's ECMP: the flow's hash, kept off the well-known range.
            src_port: 0xc000 | (hash as u16 & 0x3fff),
            dst_port: geneve::UDP_PORT,
            payload_len: geneve_len,
        }
        .emit(&mut h[udp_at..])
    })
    .and_then(|()| {
        geneve::Repr {
            vni: FORWARD_VNI,
            ovn_ports: None,
        }
        .emit(&mut h[udp_at + udp::HEADER_LEN..])
    });
    written.map_err(|_| DropReason::NoHeadroom)?;
    if let IpAddr::V6(owner) = owner {
        let src = tables.node.node_ip6.to_be_bytes();
        udp::Packet::new_unchecked(&mut h[udp_at..]).fill_checksum_v6(&src, &owner.octets());
    }
    Ok(())
}

/// The cold part of [`apply`]: cuts the IPv4 reply at `ip_at` (`total` bytes) into pieces of
/// at most `room` bytes with their Ethernet header, each wrapped for `owner` (IPv4) with a
/// copy of the received Ethernet header; the pieces after the first go to `spill`. Returns
/// the first piece's IP length.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn cut(
    buf: &mut [u8],
    ip_at: usize,
    total: usize,
    room: usize,
    owner: IpAddr,
    mac: u64,
    hash: u64,
    tables: &Tables,
    spill: &mut Spill,
) -> Result<usize, DropReason> {
    let eth_at = ip_at - ethernet::HEADER_LEN;
    let eth: [u8; ethernet::HEADER_LEN] = buf[eth_at..ip_at]
        .try_into()
        .map_err(|_| DropReason::FrameTruncated)?;
    let wrap = |h: &mut [u8], ip_len: u16| {
        let (header, inner_eth) = h.split_at_mut(HEADER_LEN);
        inner_eth.copy_from_slice(&eth);
        let inner_len = ethernet::HEADER_LEN + usize::from(ip_len);
        write_header(header, owner, inner_len, mac, hash, tables).ok()
    };
    let max_ip = room - ethernet::HEADER_LEN;
    let outer_len = HEADER_LEN + ethernet::HEADER_LEN;
    let first = refragment::split(buf, ip_at, total, max_ip, outer_len, spill, wrap)?;
    Ok(usize::from(first))
}

/// The underlay MAC toward `owner`, or the request to resolve it.
fn next_hop(owner: IpAddr, tables: &Tables, counters: &Counters) -> Result<u64, DropReason> {
    let mac = match owner {
        IpAddr::V4(owner) => {
            let owner = u32::from(owner);
            let mac = tables.underlay.next_hop_word(owner);
            if mac.is_none() {
                counters.request_resolution(tables.underlay.next_hop(owner));
            }
            mac
        }
        IpAddr::V6(owner) => {
            let (owner, fib) = (u128::from(owner), &tables.ipv6.underlay);
            let mac = fib.next_hop_word(owner);
            if mac.is_none() {
                counters.request_resolution6(fib.next_hop(owner));
            }
            mac
        }
    };
    mac.ok_or(DropReason::NeighborUnresolved)
}
