//! The return tunnel's headers, written in place in front of the inner packet: outer
//! Ethernet, IPv4 (or IPv6, on the IPv6 underlay), UDP, Geneve (with OVN's option when the flow
//! came with one) and the inner Ethernet header. Stores at fixed offsets into fixed-size chunks
//! (no bounds check per field, no scratch copy) and the outer IPv4 checksum summed from its
//! words; tests hold the bytes to what the wire layer's `Repr` emitters write. Over IPv6 the
//! outer UDP checksum is computed too (Linux refuses a zero one on Geneve over IPv6 unless told
//! otherwise), from the inner packet's own checksum rather than its bytes: [`fill_udp6_checksum`].

use super::tables::NodeConfig;
use crate::nat::ReplyTunnel;
use crate::wire::checksum;
use crate::wire::ethernet;
use crate::wire::geneve;

/// Outer Ethernet, IPv4, UDP and the Geneve base header.
const FIXED: usize = 14 + 20 + 8 + geneve::HEADER_LEN;
/// The same over IPv6.
const FIXED6: usize = 14 + 40 + 8 + geneve::HEADER_LEN;
const INNER_ETH: usize = 14;

/// Bytes of headers in front of the inner IPv4 header.
#[inline(always)]
pub fn len(ovn_option: bool) -> usize {
    FIXED
        + INNER_ETH
        + if ovn_option {
            geneve::OVN_OPTION_LEN
        } else {
            0
        }
}

/// [`len`] on the IPv6 underlay.
#[inline(always)]
pub fn len6(ovn_option: bool) -> usize {
    len(ovn_option) + FIXED6 - FIXED
}

#[inline(always)]
fn put<const N: usize>(b: &mut [u8], at: usize, v: [u8; N]) {
    b[at..at + N].copy_from_slice(&v);
}

/// Writes the headers of the tunnel `t` mirrored back (inner MACs swapped, OVN ports swapped,
/// the sender's entropy port, DSCP/ECN of the inner packet) into `h`, which must be exactly
/// [`len`] bytes; `next_hop` is the underlay MAC as [`ethernet::MacAddr::to_word`] packs it
/// and `inner_total` the inner IPv4 packet's length. None if `h` is not.
#[inline(always)]
pub fn write(
    h: &mut [u8],
    t: &ReplyTunnel,
    node: &NodeConfig,
    next_hop: u64,
    inner_total: u16,
    dscp_ecn: u8,
) -> Option<()> {
    let opt_len = if t.ovn_option {
        geneve::OVN_OPTION_LEN
    } else {
        0
    };
    if h.len() != len(t.ovn_option) {
        return None;
    }
    let (fixed, rest) = h.split_first_chunk_mut::<FIXED>()?;
    // Wrapping: the caller has checked the packet against the MTU; nothing here may panic.
    let udp_len = ((8 + geneve::HEADER_LEN + opt_len + INNER_ETH) as u16).wrapping_add(inner_total);
    let ip_total = udp_len.wrapping_add(20);
    let (src, dst) = (node.node_ip, t.node_ip);
    // Version/IHL + DSCP/ECN, length, ident 0, DF, TTL 64 + UDP, addresses.
    let sum = (0x4500 | u32::from(dscp_ecn))
        + u32::from(ip_total)
        + 0x4000
        + 0x4011
        + (src >> 16)
        + (src & 0xffff)
        + (dst >> 16)
        + (dst & 0xffff);
    let csum = !checksum::fold32(sum);

    let (eth, _) = fixed.split_first_chunk_mut::<{ ethernet::HEADER_LEN }>()?;
    ethernet::put_header_words(
        eth,
        next_hop,
        ethernet::src_and_type_word(node.underlay_mac),
    );
    put(fixed, 14, [0x45, dscp_ecn]);
    put(fixed, 16, ip_total.to_be_bytes());
    put(fixed, 18, [0, 0, 0x40, 0, 64, 17]);
    put(fixed, 24, csum.to_be_bytes());
    put(fixed, 26, src.to_be_bytes());
    put(fixed, 30, dst.to_be_bytes());
    put(fixed, 34, t.entropy_port_wire().to_le_bytes());
    put(fixed, 36, geneve::UDP_PORT.to_be_bytes());
    put(fixed, 38, udp_len.to_be_bytes());
    put(fixed, 40, [0, 0]);
    geneve_and_inner(&mut fixed[42..], rest, t)
}

/// The Geneve base header (`g`, its 8 bytes), then in `rest` OVN's option where the flow had
/// one and the inner Ethernet header, mirrored.
#[inline(always)]
fn geneve_and_inner(g: &mut [u8], rest: &mut [u8], t: &ReplyTunnel) -> Option<()> {
    // Option length in words, the critical-option flag, the protocol; the VNI as stored.
    let [p0, p1] = geneve::PROTO_ETHERNET.to_be_bytes();
    let base = if t.ovn_option {
        [(geneve::OVN_OPTION_LEN / 4) as u8, 0x40, p0, p1]
    } else {
        [0, 0, p0, p1]
    };
    let base = u64::from(u32::from_le_bytes(base)) | u64::from(t.vni_word()) << 32;
    put(g, 0, base.to_le_bytes());
    let eth = if t.ovn_option {
        let (opt, eth) = rest.split_first_chunk_mut::<{ geneve::OVN_OPTION_LEN }>()?;
        let [c0, c1] = geneve::OVN_CLASS.to_be_bytes();
        let head = u32::from_le_bytes([c0, c1, geneve::OVN_TYPE, 1]);
        *opt = (u64::from(head) | u64::from(t.ovn_ports_word()) << 32).to_le_bytes();
        eth
    } else {
        rest
    };
    let [dst_mac, src_mac_type] = t.inner_eth();
    ethernet::put_header_words(eth.first_chunk_mut()?, dst_mac, src_mac_type);
    Some(())
}

/// [`write`] on the IPv6 underlay: `h` must be exactly [`len6`] bytes, `inner_total` is the
/// inner IPv6 packet's length and `traffic_class` its traffic class. The outer UDP checksum is
/// left zero for [`fill_udp6_checksum`], once the inner packet is translated.
#[inline(always)]
pub fn write6(
    h: &mut [u8],
    t: &ReplyTunnel,
    node: &NodeConfig,
    next_hop: u64,
    inner_total: u16,
    traffic_class: u8,
) -> Option<()> {
    let opt_len = if t.ovn_option {
        geneve::OVN_OPTION_LEN
    } else {
        0
    };
    if h.len() != len6(t.ovn_option) {
        return None;
    }
    let (fixed, rest) = h.split_first_chunk_mut::<FIXED6>()?;
    let udp_len = ((8 + geneve::HEADER_LEN + opt_len + INNER_ETH) as u16).wrapping_add(inner_total);
    let (eth, _) = fixed.split_first_chunk_mut::<{ ethernet::HEADER_LEN }>()?;
    ethernet::put_header_words(
        eth,
        next_hop,
        ethernet::src_and_type_word_of(node.underlay_mac, ethernet::EtherType::Ipv6),
    );
    // Version, traffic class, and the sender's entropy port as the flow label (RFC 6438:
    // a tunnel's flow label carries its inner flow's entropy to ECMP on the way).
    let label = u32::from(t.entropy_port_wire().swap_bytes());
    let first = 0x6000_0000 | u32::from(traffic_class) << 20 | label;
    put(fixed, 14, first.to_be_bytes());
    put(fixed, 18, udp_len.to_be_bytes());
    put(fixed, 20, [17, 64]);
    put(fixed, 22, node.node_ip6.to_be_bytes());
    put(fixed, 38, t.node_ip6.to_be_bytes());
    put(fixed, 54, t.entropy_port_wire().to_le_bytes());
    put(fixed, 56, geneve::UDP_PORT.to_be_bytes());
    put(fixed, 58, udp_len.to_be_bytes());
    put(fixed, 60, [0, 0]);
    geneve_and_inner(&mut fixed[62..], rest, t)
}

/// [`write6`] where the tunnel is the IPv6 underlay's (`t.node_ip6` set), else [`write`]; `h`
/// must be [`len6`] or [`len`] bytes to match. Each writer is inlined into its branch (a
/// function pointer chosen by the caller was not, and cost 3 ns a reply).
#[inline(always)]
pub fn write_either(
    h: &mut [u8],
    t: &ReplyTunnel,
    node: &NodeConfig,
    next_hop: u64,
    inner_total: u16,
    tos: u8,
) -> Option<()> {
    if t.node_ip6 != 0 {
        write6(h, t, node, next_hop, inner_total, tos)
    } else {
        write(h, t, node, next_hop, inner_total, tos)
    }
}

/// The outer UDP checksum of a frame [`write6`] wrapped, whose outer IPv6 header is at
/// `outer_ip` and inner one at `inner_ip`, its upper layer (of protocol `proto`) at `inner_l4`,
/// ending at `end`. Summed over the headers alone: the inner upper layer's bytes sum to the
/// complement of its pseudo-header's (its checksum being valid: Linux's local checksum
/// offload), whose addresses are the inner header's and cancel out with them, so what is left
/// to sum is the outer pseudo-header, the tunnel's headers, the inner header's first 8 bytes
/// and its extension headers, less the upper layer's length and protocol. An invalid inner
/// checksum leaves this one invalid too, and the receiver drops the frame as it would have
/// dropped the packet. Never zero (RFC 8200).
#[inline(always)]
pub fn fill_udp6_checksum(
    buf: &mut [u8],
    outer_ip: usize,
    (inner_ip, inner_l4, proto): (usize, usize, u8),
    end: usize,
) {
    let udp = outer_ip + 40;
    let be32 = |v: u32| u64::from(u32::from_ne_bytes(v.to_be_bytes()));
    // The outer pseudo-header (addresses, length, protocol UDP), the UDP, Geneve and inner
    // Ethernet headers (the checksum field still zero), the inner header's first 8 bytes and
    // its extension headers.
    let acc = checksum::sum_native(&buf[outer_ip + 8..udp])
        + be32((end - udp) as u32)
        + be32(17)
        + checksum::sum_native(&buf[udp..inner_ip + 8])
        + checksum::sum_native(&buf[inner_ip + 40..inner_l4]);
    let upper = checksum::fold64(be32((end - inner_l4) as u32) + be32(u32::from(proto)));
    let sum = checksum::fold64(acc + u64::from(!upper));
    let c = match !sum {
        0 => 0xffff,
        c => c,
    };
    buf[udp + 6..udp + 8].copy_from_slice(&c.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::TunnelEndpoint;
    use crate::wire::ethernet::{EtherType, MacAddr};
    use crate::wire::{ipv4, udp};

    /// What the wire layer's emitters write for the same tunnel.
    fn by_reprs(
        t: &TunnelEndpoint,
        node: &NodeConfig,
        mac: MacAddr,
        total: u16,
        ds: u8,
    ) -> Vec<u8> {
        let gen = geneve::Repr {
            vni: t.vni,
            ovn_ports: t.ovn_ports.map(|(i, e)| (e, i)),
        };
        let glen = gen.header_len();
        let mut h = vec![0u8; len(t.ovn_ports.is_some())];
        let udp_payload = (glen + 14) as u16 + total;
        ethernet::Repr {
            src: node.underlay_mac,
            dst: mac,
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut h)
        .unwrap();
        ipv4::Repr {
            src: node.node_ip,
            dst: t.node_ip,
            protocol: ipv4::Protocol::Udp,
            payload_len: udp_payload + 8,
            ttl: 64,
            dscp_ecn: ds,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut h[14..])
        .unwrap();
        udp::Repr {
            src_port: t.entropy_port,
            dst_port: geneve::UDP_PORT,
            payload_len: udp_payload,
        }
        .emit(&mut h[34..])
        .unwrap();
        gen.emit(&mut h[42..]).unwrap();
        ethernet::Repr {
            src: t.inner_dst_mac,
            dst: t.inner_src_mac,
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut h[42 + glen..])
        .unwrap();
        h
    }

    #[test]
    fn writes_what_the_wire_emitters_write() {
        let node = NodeConfig {
            node_ip: 0xc0a8_6317,
            node_ip6: 0,
            underlay_mac: MacAddr([2, 0, 0, 0, 0, 0x23]),
            underlay_mtu: 1500,
            pod_mtu: 1400,
            external_mac: MacAddr([2, 0, 0, 0, 0, 0x24]),
            external_mtu: 1500,
        };
        let mac = MacAddr([2, 0, 0, 0, 0, 0x25]);
        for ovn_ports in [Some((0x7001, 0x8002)), Some((0, 0xffff)), None] {
            for (total, ds) in [(20, 0), (84, 0xb8), (1442, 3), (60000, 0xff)] {
                for (node_ip, vni) in [(0xc0a8_6319, 0xff0003), (0xffff_ffff, 0xff_ffff), (1, 0)] {
                    let t = TunnelEndpoint {
                        node_ip,
                        vni,
                        ovn_ports,
                        inner_src_mac: MacAddr([0x0a, 0x58, 0x64, 0x58, 0, 4]),
                        inner_dst_mac: MacAddr([0x0a, 0x58, 0x64, 0x58, 0, 2]),
                        entropy_port: 50123,
                        src_mac: MacAddr([2, 0, 0, 0, 0, 0x25]),
                        node_ip6: 0,
                    };
                    let mut h = vec![0xeeu8; len(ovn_ports.is_some())];
                    write(
                        &mut h,
                        &ReplyTunnel::new(&t),
                        &node,
                        mac.to_word(),
                        total,
                        ds,
                    )
                    .unwrap();
                    assert_eq!(h, by_reprs(&t, &node, mac, total, ds), "{t:?} {total} {ds}");
                }
            }
        }
    }

    #[test]
    fn writes_over_ipv6_what_the_wire_emitters_write() {
        use crate::wire::ipv6;
        let node = NodeConfig {
            node_ip: 0,
            node_ip6: 0xfd00_0099_u128 << 96 | 0x23,
            underlay_mac: MacAddr([2, 0, 0, 0, 0, 0x23]),
            underlay_mtu: 1500,
            pod_mtu: 1400,
            external_mac: MacAddr([2, 0, 0, 0, 0, 0x24]),
            external_mtu: 1500,
        };
        let mac = MacAddr([2, 0, 0, 0, 0, 0x25]);
        for ovn_ports in [Some((0x7001, 0x8002)), None] {
            for (total, tc) in [(40, 0), (1422, 0xb8), (60000, 0xff)] {
                let t = TunnelEndpoint {
                    vni: 0xff0003,
                    ovn_ports,
                    inner_src_mac: MacAddr([0x0a, 0x58, 0x64, 0x58, 0, 4]),
                    inner_dst_mac: MacAddr([0x0a, 0x58, 0x64, 0x58, 0, 2]),
                    entropy_port: 50123,
                    node_ip6: 0xfd00_0099_u128 << 96 | 0x25,
                    ..TunnelEndpoint::default()
                };
                let mut h = vec![0xeeu8; len6(ovn_ports.is_some())];
                write6(
                    &mut h,
                    &ReplyTunnel::new(&t),
                    &node,
                    mac.to_word(),
                    total,
                    tc,
                )
                .unwrap();
                // The IPv4 underlay's headers from UDP on, behind outer IPv6.
                let v4 = by_reprs(&t, &node, mac, total, tc);
                let udp_len = (v4.len() - 34) as u16 + total;
                let mut want = vec![0u8; h.len()];
                ethernet::Repr {
                    src: node.underlay_mac,
                    dst: mac,
                    vlan_tci: None,
                    ethertype: EtherType::Ipv6,
                }
                .emit(&mut want)
                .unwrap();
                ipv6::Repr {
                    src: node.node_ip6.to_be_bytes().into(),
                    dst: t.node_ip6.to_be_bytes().into(),
                    next_header: ipv6::next_header::UDP,
                    hop_limit: 64,
                    payload_len: udp_len,
                }
                .emit(&mut want[14..])
                .unwrap();
                want[14] |= tc >> 4;
                want[15] = tc << 4;
                want[16..18].copy_from_slice(&t.entropy_port.to_be_bytes());
                want[54..].copy_from_slice(&v4[34..]);
                assert_eq!(h, want, "{t:?} {total} {tc}");
            }
        }
    }

    #[test]
    fn refuses_a_header_area_of_the_wrong_size() {
        let t = TunnelEndpoint {
            ovn_ports: Some((1, 2)),
            ..TunnelEndpoint::default()
        };
        let node = NodeConfig {
            node_ip: 1,
            node_ip6: 0,
            underlay_mac: MacAddr::default(),
            underlay_mtu: 1500,
            pod_mtu: 1400,
            external_mac: MacAddr::default(),
            external_mtu: 1500,
        };
        for n in [0, len(false), len(true) - 1, len(true) + 1] {
            let mut h = vec![0u8; n];
            let t = ReplyTunnel::new(&t);
            assert!(write(&mut h, &t, &node, 0, 20, 0).is_none());
        }
    }
}
