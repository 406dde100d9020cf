//! The common shapes, recognised on fixed offsets in one pass: what OVN sends (untagged
//! Ethernet / IPv4 without options / UDP 6081 / Geneve with exactly OVN's option / Ethernet /
//! IPv4 without options / TCP or UDP) and what comes back (Ethernet / IPv4 / TCP or UDP).
//! Every check the general parser makes is made here too; anything else, malformed frames
//! included, returns `None` and the general parser decides (and names the drop reason). A
//! differential property test holds the two to the same answers.

use super::parsed::{Kind, Parsed};
use super::tables::Tables;
use crate::nat::{Direction, FlowKey, TunnelEndpoint, PROTO_TCP, PROTO_UDP};
use crate::wire::checksum::verifies_header20;
use crate::wire::ethernet::MacAddr;
use crate::wire::{be16, be32, geneve};

// Offsets in a Geneve frame carrying the OVN option.
const OUTER_IP: usize = 14;
const UDP: usize = 34;
const GENEVE: usize = 42;
const INNER_IP: usize = 72;
const INNER_L4: usize = 92;
/// Up to the UDP header of the inner packet; TCP needs 12 more bytes, checked separately.
const TUNNEL_MIN: usize = INNER_L4 + 8;
/// The OVN option header: class 0x0102, type 0x80, length 1 word.
const OVN_OPTION: [u8; 4] = [0x01, 0x02, geneve::OVN_TYPE, 0x01];

/// Checks an IPv4 header at `h[at..at + 20]` of the fast shape; returns its total length.
#[inline(always)]
fn ipv4_ok(h: &[u8], at: usize, avail: usize) -> Option<usize> {
    let hdr: &[u8; 20] = h.get(at..at + 20)?.try_into().ok()?;
    let total = usize::from(be16(hdr, 2));
    let frag = be16(hdr, 6) & 0x3fff;
    (hdr[0] == 0x45 && (20..=avail).contains(&total) && frag == 0 && verifies_header20(hdr))
        .then_some(total)
}

/// The L4 kind and ports of a TCP or UDP packet at `ip` whose total length is `total`.
#[inline(always)]
fn l4_ok(frame: &[u8], ip: usize, total: usize) -> Option<(Kind, u16, u16, u8)> {
    let l4 = ip + 20;
    match frame[ip + 9] {
        PROTO_TCP => {
            let t: &[u8; 20] = frame.get(l4..l4 + 20)?.try_into().ok()?;
            let doff = usize::from(t[12] >> 4) * 4;
            (total >= 40 && doff >= 20 && doff <= total - 20).then(|| {
                (
                    Kind::Tcp { flags: t[13] },
                    be16(t, 0),
                    be16(t, 2),
                    PROTO_TCP,
                )
            })
        }
        PROTO_UDP => {
            let u: &[u8; 8] = frame.get(l4..l4 + 8)?.try_into().ok()?;
            let len = usize::from(be16(u, 4));
            (total >= 28 && len >= 8 && len <= total - 20)
                .then(|| (Kind::Udp, be16(u, 0), be16(u, 2), PROTO_UDP))
        }
        _ => None,
    }
}

/// A pod's packet from OVN, or a reply to an egress IP, in its common shape.
#[inline]
pub fn parse(frame: &[u8], tables: &Tables) -> Option<Parsed> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let outer_total = ipv4_ok(frame, OUTER_IP, frame.len() - OUTER_IP)?;
    let dst = be32(frame, OUTER_IP + 16);
    if dst == tables.node.node_ip {
        tunnel(frame, outer_total)
    } else if tables.egress.serves(dst) && frame[OUTER_IP + 8] > 1 {
        let (kind, src_port, dst_port, proto) = l4_ok(frame, OUTER_IP, outer_total)?;
        let key = FlowKey {
            src: be32(frame, OUTER_IP + 12),
            dst,
            src_port,
            dst_port,
            proto,
        };
        Some(Parsed {
            dir: Direction::In,
            ip: OUTER_IP as u16,
            l4: UDP as u16,
            geneve: 0,
            kind,
            key,
            hash: 0,
            hint: None,
            dest: None,
        })
    } else {
        None
    }
}

#[inline(always)]
fn tunnel(frame: &[u8], outer_total: usize) -> Option<Parsed> {
    let h: &[u8; TUNNEL_MIN] = frame.get(..TUNNEL_MIN)?.try_into().ok()?;
    let udp_len = usize::from(be16(h, UDP + 4));
    let ok = h[OUTER_IP + 9] == PROTO_UDP
        && be16(h, UDP + 2) == geneve::UDP_PORT
        && udp_len == outer_total - 20
        // Version 0, two option words, not OAM, Ethernet payload, and the option is OVN's.
        && h[GENEVE] == 0x02
        && h[GENEVE + 1] & 0x80 == 0
        && be16(h, GENEVE + 2) == geneve::PROTO_ETHERNET
        && h[GENEVE + 8..GENEVE + 12] == OVN_OPTION
        && h[INNER_IP - 2..INNER_IP] == [0x08, 0x00];
    if !ok {
        return None;
    }
    let inner_total = ipv4_ok(h, INNER_IP, udp_len.checked_sub(INNER_IP - UDP)?)?;
    if h[INNER_IP + 8] <= 1 {
        return None;
    }
    let (kind, src_port, dst_port, proto) = l4_ok(frame, INNER_IP, inner_total)?;
    let key = FlowKey {
        src: be32(h, INNER_IP + 12),
        dst: be32(h, INNER_IP + 16),
        src_port,
        dst_port,
        proto,
    };
    Some(Parsed {
        dir: Direction::Out,
        ip: INNER_IP as u16,
        l4: INNER_L4 as u16,
        geneve: GENEVE as u16,
        kind,
        key,
        hash: 0,
        hint: None,
        dest: None,
    })
}

/// The tunnel of a parsed pod frame of the common shape (the Geneve header and OVN's option
/// where this parser expects them), read at fixed offsets; None for any other shape.
#[inline]
pub fn tunnel_endpoint(frame: &[u8], p: &Parsed) -> Option<TunnelEndpoint> {
    if usize::from(p.geneve) != GENEVE || usize::from(p.ip) != INNER_IP {
        return None;
    }
    let h: &[u8; INNER_IP] = frame.get(..INNER_IP)?.try_into().ok()?;
    if h[GENEVE + 8..GENEVE + 12] != OVN_OPTION {
        return None;
    }
    let mac = |at: usize| MacAddr([h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5]]);
    let inner_eth = INNER_IP - 14;
    Some(TunnelEndpoint {
        node_ip: be32(h, OUTER_IP + 12),
        vni: be32(h, GENEVE + 4) >> 8,
        ovn_ports: Some((be16(h, GENEVE + 12) & 0x7fff, be16(h, GENEVE + 14))),
        inner_src_mac: mac(inner_eth + 6),
        inner_dst_mac: mac(inner_eth),
        entropy_port: be16(h, UDP),
        src_mac: mac(6),
    })
}
