//! Geneve over an IPv6 underlay as real OVS sends it (issue 17, item 1): frames captured with
//! tcpdump from Open vSwitch 3 (userspace datapath, a `geneve` port with `remote_ip` IPv6 and
//! `csum=true` as OVN sets it, OVN's option class 0x0102 type 0x80 written through a TLV map)
//! in a network namespace, 2026-12-07. The pod's side is IPv6 too (an IPv6-only cluster).
//! Every layer reads back through the views, the checksums hold (the outer UDP one with the
//! IPv6 pseudo-header, which RFC 8200 makes mandatory), and etherparse agrees.

use gateway::wire::{ethernet, geneve, icmpv6, ipv6, udp};

/// The pod fd00:133::3 sends UDP 40000 -> [2001:db8:55::d]:80 ("egressgw"); OVS tunnels it
/// from fd00:99::23 to fd00:99::24, VNI 0xff0003, OVN ports 2 -> 4.
const UDP_IN_GENEVE_V6: &str = "020000000024865514bdbb4b86dd60000000005e1140fd000099000000000000\
    000000000023fd000099000000000000000000000024acf217c1005e543d02406558ff00030001028001000200\
    040a58645800040a586458000286dd60062aaa00101140fd00013300000000000000000000000320010db80055\
    0000000000000000000d9c400050001084346567726573736777";

/// The pod port's own MLDv2 report as OVS tunnelled it: its IPv6 header is followed by a
/// hop-by-hop options header (router alert) before the ICMPv6 message.
const MLD_WITH_HOP_BY_HOP: &str = "020000000024865514bdbb4b86dd6000000000861140fd00009900000000\
    0000000000000023fd000099000000000000000000000024826b17c10086b5ed02406558ff0003000102800100\
    0200043333000000160a586458000286dd6000000000380001fe80000000000000085864fffe580002ff020000\
    0000000000000000000000163a000502000001008f0002e00000000204000000ff0200000000000000000001ff\
    00000304000000ff0200000000000000000001ff580002";

fn bytes(hex: &str) -> Vec<u8> {
    let hex: String = hex.split_whitespace().collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn addr(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// The outer layers down to the inner frame: checks what both captures share and returns
/// where the inner frame starts.
fn tunnel(frame: &[u8]) -> usize {
    let eth = ethernet::Frame::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), ethernet::EtherType::Ipv6);
    let outer = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
    assert_eq!(
        (outer.src_bytes(), outer.dst_bytes(), outer.hop_limit()),
        (addr("fd00:99::23"), addr("fd00:99::24"), 64)
    );
    assert_eq!(
        outer.upper_layer(),
        Ok(ipv6::UpperLayer::Protocol {
            next_header: ipv6::next_header::UDP,
            offset: 0
        })
    );
    assert_eq!(
        usize::from(outer.payload_len()),
        frame.len() - ethernet::HEADER_LEN - ipv6::HEADER_LEN
    );
    let u = udp::Packet::new_checked(outer.payload()).unwrap();
    assert_eq!(u.dst_port(), geneve::UDP_PORT);
    assert!(u.verify_checksum_v6(&outer.src_bytes(), &outer.dst_bytes()));
    let g = geneve::Header::new_checked(u.payload()).unwrap();
    assert_eq!((g.vni(), g.protocol()), (0xff0003, geneve::PROTO_ETHERNET));
    assert_eq!(g.ovn_ports(), Some((2, 4)));
    assert!(g.critical(), "OVN's option is critical");
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + g.header_len()
}

#[test]
fn ovs_geneve_over_ipv6_with_an_ipv6_pod_packet() {
    let frame = bytes(UDP_IN_GENEVE_V6);
    let inner_at = tunnel(&frame);
    let ie = ethernet::Frame::new_checked(&frame[inner_at..]).unwrap();
    assert_eq!(ie.ethertype(), ethernet::EtherType::Ipv6);
    let ip = ipv6::Packet::new_checked(ie.payload()).unwrap();
    assert_eq!(
        (
            ip.src_bytes(),
            ip.dst_bytes(),
            ip.hop_limit(),
            ip.flow_label()
        ),
        (addr("fd00:133::3"), addr("2001:db8:55::d"), 64, 0x62aaa)
    );
    let u = udp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (u.src_port(), u.dst_port(), u.payload()),
        (40000, 80, &b"egressgw"[..])
    );
    assert!(u.verify_checksum_v6(&ip.src_bytes(), &ip.dst_bytes()));

    // etherparse reads the same frame the same way, layer by layer.
    let theirs = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
    let Some(etherparse::TransportSlice::Udp(outer_udp)) = theirs.transport else {
        panic!("{theirs:?}")
    };
    assert_eq!(outer_udp.destination_port(), geneve::UDP_PORT);
    let inner = etherparse::SlicedPacket::from_ethernet(&frame[inner_at..]).unwrap();
    let Some(etherparse::NetSlice::Ipv6(inner_ip)) = &inner.net else {
        panic!("{inner:?}")
    };
    assert_eq!(inner_ip.header().source(), ip.src_bytes());
    let Some(etherparse::TransportSlice::Udp(inner_udp)) = &inner.transport else {
        panic!("{inner:?}")
    };
    assert_eq!(
        (inner_udp.source_port(), inner_udp.destination_port()),
        (40000, 80)
    );
}

#[test]
fn ovs_tunnels_an_inner_packet_with_a_hop_by_hop_header() {
    let frame = bytes(MLD_WITH_HOP_BY_HOP);
    let inner_at = tunnel(&frame);
    let ie = ethernet::Frame::new_checked(&frame[inner_at..]).unwrap();
    let ip = ipv6::Packet::new_checked(ie.payload()).unwrap();
    assert_eq!(ip.next_header(), ipv6::next_header::HOP_BY_HOP);
    // The walk steps over the 8-byte hop-by-hop header to the ICMPv6 message.
    assert_eq!(
        ip.upper_layer(),
        Ok(ipv6::UpperLayer::Protocol {
            next_header: ipv6::next_header::ICMPV6,
            offset: 8
        })
    );
    let m = icmpv6::Packet::new_checked(&ip.payload()[8..]).unwrap();
    assert_eq!(m.msg_type(), icmpv6::Message::Unknown(143), "MLDv2 report");
    assert!(m.verify_checksum(&ip.src_bytes(), &ip.dst_bytes()));
}
