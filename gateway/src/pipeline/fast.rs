//! The common shapes, recognised on fixed offsets in one pass: what OVN sends (untagged
//! Ethernet / IPv4 without options / UDP 6081 / Geneve with exactly OVN's option / Ethernet /
//! IPv4 without options / TCP or UDP) and what comes back (Ethernet / IPv4 / TCP or UDP).
//! Every check the general parser makes is made here too; anything else, malformed frames
//! included, returns `None` and the general parser decides (and names the drop reason). A
//! differential property test holds the two to the same answers.

use super::parsed::{Kind, Parsed, Parsed6};
use super::tables::Tables;
use crate::nat::{Direction, FlowKey, FlowKey6, TunnelEndpoint, PROTO_TCP, PROTO_UDP};
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
    // An IPv6 pod packet in OVN's Geneve has IPv6's Ethernet type where an IPv4 one's inner
    // type is: it is turned away before the outer header is checked here, as `parse6` checks
    // it again (a reply whose payload holds those bytes there takes the general parser).
    if frame.get(12..14)? != [0x08, 0x00]
        || frame.get(INNER_IP - 2..INNER_IP) == Some(&[0x86, 0xdd])
    {
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
        node_ip6: 0,
    })
}

/// Whether a frame the IPv4 fast path did not take is IPv6: IPv6 itself, or an IPv6 pod
/// packet in Geneve to the node IP as OVN sends it (outer IPv4 without options, UDP 6081, one
/// 8-byte option, so the inner Ethernet type is at a fixed place). A cheap look, so that such
/// frames skip the general IPv4 parser; other shapes reach `v6` through it.
#[inline(always)]
pub fn looks_like_ipv6(frame: &[u8], tables: &Tables) -> bool {
    const INNER_TYPE: usize = 70;
    let Some(h) = frame.first_chunk::<{ INNER_TYPE + 2 }>() else {
        return frame.get(12..14) == Some(&[0x86, 0xdd]);
    };
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    be16(12) == 0x86dd
        || (be16(12) == 0x0800
            && h[14] == 0x45
            && h[23] == 17
            && h[30..34] == tables.node.node_ip.to_be_bytes()
            && be16(36) == geneve::UDP_PORT
            && h[42] & 0x3f == 2
            && be16(INNER_TYPE) == 0x86dd)
}

// IPv6 shapes: the pod's IPv6 packet in Geneve as OVN sends it (over IPv4 as above, the inner
// Ethernet type IPv6's, or over IPv6), and a reply to an egress IPv6 address; TCP or UDP right
// after the fixed header.
const OUTER_IP6_L4: usize = OUTER_IP + 40;

/// The L4 kind and ports of a TCP or UDP packet after the IPv6 header at `ip`, whose payload
/// is `payload` bytes; the hop limit over 1 and no extension header.
#[inline(always)]
fn l4_ok6(frame: &[u8], ip: usize, payload: usize) -> Option<(Kind, u16, u16, u8)> {
    let l4 = ip + 40;
    if frame[ip + 7] <= 1 {
        return None;
    }
    match frame[ip + 6] {
        PROTO_TCP => {
            let t: &[u8; 20] = frame.get(l4..l4 + 20)?.try_into().ok()?;
            let doff = usize::from(t[12] >> 4) * 4;
            (doff >= 20 && doff <= payload).then(|| {
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
            (len >= 8 && len <= payload && be16(u, 6) != 0)
                .then(|| (Kind::Udp, be16(u, 0), be16(u, 2), PROTO_UDP))
        }
        _ => None,
    }
}

/// The payload length of an IPv6 header at `ip` that fits in `avail` bytes from it.
#[inline(always)]
fn ipv6_ok(frame: &[u8], ip: usize, avail: usize) -> Option<usize> {
    let h: &[u8; 40] = frame.get(ip..ip + 40)?.try_into().ok()?;
    let payload = usize::from(be16(h, 4));
    (h[0] >> 4 == 6 && 40 + payload <= avail).then_some(payload)
}

/// [`parse`] for IPv6: a pod's IPv6 packet from OVN, or a reply to an egress IPv6 address, in
/// its common shape; None for anything else (`v6::general` decides).
#[inline]
pub fn parse6(frame: &[u8], tables: &Tables) -> Option<Parsed6> {
    let key6 = |ip: usize, (kind, src_port, dst_port, proto)| {
        let addr = |at: usize| u128::from_be_bytes(frame[at..at + 16].try_into().expect("16"));
        (
            kind,
            FlowKey6 {
                src: addr(ip + 8),
                dst: addr(ip + 24),
                src_port,
                dst_port,
                proto,
            },
        )
    };
    // A pod's packet: where its IPv6 header, the outer UDP header and its payload lie.
    let (ip, udp, payload) = match frame.get(12..14)? {
        [0x86, 0xdd] => {
            let payload = ipv6_ok(frame, OUTER_IP, frame.len() - OUTER_IP)?;
            let node_ip6 = tables.node.node_ip6;
            if node_ip6 != 0 && frame[OUTER_IP + 24..OUTER_IP + 40] == node_ip6.to_be_bytes() {
                tunnel6(frame, payload)?
            } else {
                let (kind, key) = key6(OUTER_IP, l4_ok6(frame, OUTER_IP, payload)?);
                return tables.ipv6.egress.serves(key.dst).then_some(Parsed6 {
                    dir: Direction::In,
                    ip: OUTER_IP,
                    l4: OUTER_IP6_L4,
                    udp: 0,
                    kind,
                    key,
                    hash: 0,
                    hint: None,
                });
            }
        }
        [0x08, 0x00] => {
            let outer_total = ipv4_ok(frame, OUTER_IP, frame.len() - OUTER_IP)?;
            let h: &[u8; INNER_IP] = frame.get(..INNER_IP)?.try_into().ok()?;
            let udp_len = usize::from(be16(h, UDP + 4));
            let ok = be32(h, OUTER_IP + 16) == tables.node.node_ip
                && h[OUTER_IP + 9] == PROTO_UDP
                && udp_len == outer_total - 20
                && ovn_geneve6(h, UDP);
            if !ok {
                return None;
            }
            let payload = ipv6_ok(frame, INNER_IP, udp_len.checked_sub(INNER_IP - UDP)?)?;
            (INNER_IP, UDP, payload)
        }
        _ => return None,
    };
    let (kind, key) = key6(ip, l4_ok6(frame, ip, payload)?);
    Some(Parsed6 {
        dir: Direction::Out,
        ip,
        l4: ip + 40,
        udp,
        kind,
        key,
        hash: 0,
        hint: None,
    })
}

/// Whether `h` holds, from its UDP header at `udp`, OVN's Geneve to port 6081 (version 0, two
/// option words, not OAM, Ethernet inside, not the forwarding VNI, OVN's option) around an
/// IPv6 packet: the part both underlays' pod frames share.
#[inline(always)]
fn ovn_geneve6(h: &[u8], udp: usize) -> bool {
    let g = udp + 8;
    let inner_type = g + 16 + 12;
    be16(h, udp + 2) == geneve::UDP_PORT
        && h[g] == 0x02
        && h[g + 1] & 0x80 == 0
        && be16(h, g + 2) == geneve::PROTO_ETHERNET
        && be32(h, g + 4) >> 8 != super::forward::FORWARD_VNI
        && h[g + 8..g + 12] == OVN_OPTION
        && h[inner_type..inner_type + 2] == [0x86, 0xdd]
}

/// OVN's Geneve over the IPv6 underlay (outer IPv6 with UDP right after it), carrying a pod's
/// IPv6 packet, whose outer payload is `payload` bytes: the inner IPv6 header's offset, the
/// outer UDP header's, and the inner payload's length.
#[inline(always)]
fn tunnel6(frame: &[u8], payload: usize) -> Option<(usize, usize, usize)> {
    const UDP6: usize = OUTER_IP + 40;
    const INNER_IP6: usize = UDP6 + 8 + 16 + 14;
    let h: &[u8; INNER_IP6] = frame.get(..INNER_IP6)?.try_into().ok()?;
    let udp_len = usize::from(be16(h, UDP6 + 4));
    let ok = h[OUTER_IP + 6] == PROTO_UDP && udp_len == payload && ovn_geneve6(h, UDP6);
    if !ok {
        return None;
    }
    let inner = ipv6_ok(frame, INNER_IP6, udp_len.checked_sub(INNER_IP6 - UDP6)?)?;
    Some((INNER_IP6, UDP6, inner))
}
