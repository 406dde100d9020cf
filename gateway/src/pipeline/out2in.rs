//! World -> pod: a reply to an egress IP is un-NATed and tunnelled back to the node that sent
//! the flow, mirroring the Geneve header it arrived with.

use super::parse::{Kind, Parsed};
use super::rewrite::{self, End};
use super::tables::Tables;
use super::too_big;
use super::{Frame, Iface, Output};
use crate::drop::{bump, Counters, DropReason};
use crate::nat::tcp::track;
use crate::nat::{Direction, NatWorker};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{geneve, ipv4, udp};

/// Outer Ethernet, IPv4, UDP, Geneve with the OVN option, inner Ethernet.
const MAX_ENCAP: usize = 14 + 20 + 8 + 8 + geneve::OVN_OPTION_LEN + 14;

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
    let Some(s) = table.lookup_outside(&p.key, p.hash) else {
        return Err(match p.kind {
            Kind::IcmpError { .. } => DropReason::IcmpErrorNoSession,
            _ => DropReason::NoSession,
        });
    };
    match p.kind {
        Kind::Tcp { flags } => table.touch(&s, now, |st| track(st, flags, Direction::In)),
        _ => table.touch(&s, now, |st| st),
    }
    let d = &s.snap.data();
    let t = &d.tunnel;
    let ip_at = start + usize::from(p.ip);
    let l4_at = start + usize::from(p.l4);
    let (total, dont_frag, dscp_ecn) = {
        let ip = ipv4::Packet::new_unchecked(&buf[ip_at..]);
        (usize::from(ip.total_len()), ip.dont_frag(), ip.dscp_ecn())
    };
    let swapped = t.ovn_ports.map(|(ingress, egress)| (egress, ingress));
    let gen = geneve::Repr {
        vni: t.vni,
        ovn_ports: swapped,
    };
    let encap = ipv4::HEADER_LEN + udp::HEADER_LEN + gen.header_len() + ethernet::HEADER_LEN;
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
    let Some(underlay_mac) = tables.underlay.next_hop_mac(t.node_ip) else {
        let ip = tables.underlay.next_hop(t.node_ip);
        counters
            .unresolved
            .store(ip, core::sync::atomic::Ordering::Relaxed);
        return Err(DropReason::NeighborUnresolved);
    };
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

    // Mirror the tunnel: inner MACs swapped, OVN ports swapped, same VNI and entropy. The
    // headers are built in a fixed-size scratch array (no bounds checks) and copied once.
    let mut hdr = [0u8; MAX_ENCAP];
    let (eth, rest) = hdr.split_at_mut(ethernet::HEADER_LEN);
    let (oip, rest) = rest.split_at_mut(ipv4::HEADER_LEN);
    let (oudp, rest) = rest.split_at_mut(udp::HEADER_LEN);
    let glen = gen.header_len();
    let udp_payload = (glen + ethernet::HEADER_LEN + total) as u16;
    let emitted = ethernet::Repr {
        src: tables.node.underlay_mac,
        dst: underlay_mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(eth)
    .and_then(|_| {
        ipv4::Repr {
            src: tables.node.node_ip,
            dst: t.node_ip,
            protocol: ipv4::Protocol::Udp,
            payload_len: udp_payload + udp::HEADER_LEN as u16,
            ttl: 64,
            dscp_ecn,
            ident: 0,
            dont_frag: true,
        }
        .emit(oip)
    })
    .and_then(|_| {
        udp::Repr {
            src_port: t.entropy_port,
            dst_port: geneve::UDP_PORT,
            payload_len: udp_payload,
        }
        .emit(oudp)
    })
    .and_then(|_| gen.emit(rest))
    .and_then(|_| {
        ethernet::Repr {
            src: t.inner_dst_mac,
            dst: t.inner_src_mac,
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut rest[glen..])
    });
    emitted.map_err(|_| DropReason::NoHeadroom)?;
    buf[outer_start..ip_at].copy_from_slice(&hdr[..encap + ethernet::HEADER_LEN]);
    Ok(Output {
        iface: Iface::Underlay,
        start: outer_start,
        len: ip_at + total - outer_start,
    })
}
