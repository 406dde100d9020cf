//! Packets built by etherparse (IPv4 and IPv6, extension headers, Geneve over IPv6) read the
//! same through this crate's views, and their checksums verify with this crate's checksum code;
//! arbitrary bytes never make an IPv6 view panic.

use etherparse::PacketBuilder;
use gateway::wire::{ethernet, geneve, icmp, icmpv6, ipv4, ipv6, tcp, udp};
use proptest::prelude::*;

proptest! {
    #[test]
    fn views_read_what_etherparse_wrote(
        src_mac in any::<[u8; 6]>(), dst_mac in any::<[u8; 6]>(),
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in any::<u8>(),
        sport in any::<u16>(), dport in any::<u16>(), seq in any::<u32>(), window in any::<u16>(),
        kind in 0u8..3, payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let base = PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(src, dst, ttl);
        let mut bytes = Vec::new();
        match kind {
            0 => base.tcp(sport, dport, seq, window).syn().ack(seq.wrapping_add(1)).write(&mut bytes, &payload).unwrap(),
            1 => base.udp(sport, dport).write(&mut bytes, &payload).unwrap(),
            _ => base.icmpv4_echo_request(sport, dport).write(&mut bytes, &payload).unwrap(),
        }
        let eth = ethernet::Frame::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(eth.src(), ethernet::MacAddr(src_mac));
        prop_assert_eq!(eth.dst(), ethernet::MacAddr(dst_mac));
        prop_assert_eq!(eth.ethertype(), ethernet::EtherType::Ipv4);
        let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
        prop_assert_eq!(ip.src(), u32::from_be_bytes(src));
        prop_assert_eq!(ip.dst(), u32::from_be_bytes(dst));
        prop_assert_eq!(ip.ttl(), ttl);
        prop_assert!(ip.verify_checksum());
        let repr = ipv4::Repr::parse(&ip).unwrap();
        let mut re = vec![0u8; usize::from(ip.total_len())];
        repr.emit(&mut re).unwrap();
        prop_assert_eq!(&re[..20], &eth.payload()[..20]);
        match kind {
            0 => {
                let t = tcp::Packet::new_checked(ip.payload()).unwrap();
                prop_assert_eq!((t.src_port(), t.dst_port(), t.seq(), t.window()), (sport, dport, seq, window));
                prop_assert_eq!(t.ack(), seq.wrapping_add(1));
                prop_assert_eq!(t.flags() & (tcp::flags::SYN | tcp::flags::ACK), tcp::flags::SYN | tcp::flags::ACK);
                prop_assert_eq!(t.payload(), &payload[..]);
                prop_assert!(t.verify_checksum(ip.src(), ip.dst()));
            }
            1 => {
                let u = udp::Packet::new_checked(ip.payload()).unwrap();
                prop_assert_eq!((u.src_port(), u.dst_port()), (sport, dport));
                prop_assert_eq!(u.payload(), &payload[..]);
                prop_assert!(u.verify_checksum(ip.src(), ip.dst()));
            }
            _ => {
                let m = icmp::Packet::new_checked(ip.payload()).unwrap();
                prop_assert_eq!(m.msg_type(), icmp::Message::EchoRequest);
                prop_assert_eq!((m.echo_ident(), m.echo_seq()), (sport, dport));
                prop_assert!(m.verify_checksum());
            }
        }
    }
}

proptest! {
    #[test]
    fn ipv6_views_read_what_etherparse_wrote(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), hop_limit in any::<u8>(),
        sport in any::<u16>(), dport in any::<u16>(), seq in any::<u32>(), window in any::<u16>(),
        kind in 0u8..3, payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let base = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv6(src, dst, hop_limit);
        let mut bytes = Vec::new();
        match kind {
            0 => base.tcp(sport, dport, seq, window).syn().write(&mut bytes, &payload).unwrap(),
            1 => base.udp(sport, dport).write(&mut bytes, &payload).unwrap(),
            _ => base.icmpv6_echo_request(sport, dport).write(&mut bytes, &payload).unwrap(),
        }
        let eth = ethernet::Frame::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(eth.ethertype(), ethernet::EtherType::Ipv6);
        let ip = ipv6::Packet::new_checked(eth.payload()).unwrap();
        prop_assert_eq!((ip.src_bytes(), ip.dst_bytes(), ip.hop_limit()), (src, dst, hop_limit));
        let repr = ipv6::Repr::parse(&ip);
        let mut re = [0u8; ipv6::HEADER_LEN];
        repr.emit(&mut re).unwrap();
        prop_assert_eq!(&re[..], &eth.payload()[..ipv6::HEADER_LEN]);
        let ipv6::UpperLayer::Protocol { next_header, offset: 0 } = ip.upper_layer().unwrap() else {
            panic!("no extension header was written")
        };
        let l4 = ip.payload();
        match kind {
            0 => {
                prop_assert_eq!(next_header, ipv6::next_header::TCP);
                let t = tcp::Packet::new_checked(l4).unwrap();
                prop_assert_eq!((t.src_port(), t.dst_port(), t.seq(), t.window()), (sport, dport, seq, window));
                prop_assert!(t.verify_checksum_v6(&src, &dst));
                // Our fill gives etherparse's checksum.
                let mut mine = l4.to_vec();
                tcp::Packet::new_checked(&mut mine[..]).unwrap().fill_checksum_v6(&src, &dst);
                prop_assert_eq!(&mine[..], l4);
            }
            1 => {
                prop_assert_eq!(next_header, ipv6::next_header::UDP);
                let u = udp::Packet::new_checked(l4).unwrap();
                prop_assert_eq!((u.src_port(), u.dst_port()), (sport, dport));
                prop_assert!(u.verify_checksum_v6(&src, &dst));
                let mut mine = l4.to_vec();
                udp::Packet::new_checked(&mut mine[..]).unwrap().fill_checksum_v6(&src, &dst);
                prop_assert_eq!(&mine[..], l4);
            }
            _ => {
                prop_assert_eq!(next_header, icmpv6::PROTOCOL);
                let m = icmpv6::Packet::new_checked(l4).unwrap();
                prop_assert_eq!(
                    icmpv6::Repr::parse(&m, &src, &dst),
                    Ok(icmpv6::Repr::Echo { request: true, ident: sport, seq: dport })
                );
            }
        }
    }

    /// Chains of hop-by-hop (first), routing and destination options headers of random
    /// lengths, and at most one fragment header: the walk ends where etherparse's does.
    #[test]
    fn the_extension_header_walk_agrees_with_etherparse(
        hop_by_hop in any::<bool>(),
        middle in prop::collection::vec((prop::bool::ANY, 0u8..4), 0..6),
        fragment in prop::option::of((0u16..8192, any::<bool>(), any::<u32>())),
        body in prop::collection::vec(any::<u8>(), 8..40),
    ) {
        use ipv6::next_header::*;
        // (next header value, bytes) of each extension header, in order.
        let mut headers: Vec<(u8, Vec<u8>)> = Vec::new();
        if hop_by_hop {
            headers.push((HOP_BY_HOP, vec![0u8; 8]));
        }
        for (routing, units) in middle {
            let len = (usize::from(units) + 1) * 8;
            let mut h = vec![0u8; len];
            h[1] = units;
            if routing {
                // Routing type 253 (experimental), no segments left: nothing to process.
                h[2] = 253;
            } else {
                // Padding options: PadN over the rest.
                h[2] = 1;
                h[3] = (len - 4) as u8;
            }
            headers.push((if routing { ROUTING } else { DESTINATION_OPTIONS }, h));
        }
        if let Some((offset, more, id)) = fragment {
            let mut h = vec![0u8; 8];
            h[2..4].copy_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
            h[4..8].copy_from_slice(&id.to_be_bytes());
            headers.push((FRAGMENT, h));
        }
        let mut chain = Vec::new();
        for (i, (_, h)) in headers.iter().enumerate() {
            let mut h = h.clone();
            h[0] = headers.get(i + 1).map_or(UDP, |(n, _)| *n);
            chain.extend(h);
        }
        let ext_len = chain.len();
        chain.extend(&body);
        let first = headers.first().map_or(UDP, |(n, _)| *n);
        let mut packet = vec![0u8; ipv6::HEADER_LEN];
        ipv6::Repr {
            src: [0xfd; 16].into(),
            dst: [0xfe; 16].into(),
            next_header: first,
            hop_limit: 64,
            payload_len: chain.len() as u16,
        }
        .emit(&mut packet)
        .unwrap();
        packet.extend(&chain);
        let ours = ipv6::Packet::new_checked(&packet[..]).unwrap().upper_layer().unwrap();
        let theirs = etherparse::Ipv6Slice::from_slice(&packet).unwrap();
        match (ours, fragment) {
            (ipv6::UpperLayer::Protocol { next_header, offset }, None) => {
                prop_assert_eq!(next_header, theirs.payload().ip_number.0);
                prop_assert_eq!(offset, ext_len);
                prop_assert_eq!(&chain[offset..], theirs.payload().payload);
            }
            (ipv6::UpperLayer::Fragment { next_header, fragment_offset, more, id, offset }, Some((o, m, i))) => {
                prop_assert_eq!((next_header, fragment_offset, more, id), (UDP, o << 3, m, i));
                prop_assert_eq!(offset, ext_len - 8);
                prop_assert_eq!(theirs.is_payload_fragmented(), o != 0 || m);
                // Up to 0.19 etherparse read these bits in the wrong order (etherparse#150).
                let theirs_fragment = theirs.extensions().clone().into_iter().find_map(|e| match e {
                    etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                    _ => None,
                });
                let theirs_fragment = theirs_fragment.expect("etherparse walked to the fragment header");
                prop_assert_eq!(theirs_fragment.fragment_offset().value(), o);
                prop_assert_eq!(theirs_fragment.more_fragments(), m);
                prop_assert_eq!(theirs_fragment.identification(), i);
            }
            (ours, _) => prop_assert!(false, "{:?} for {:?}", ours, fragment),
        }
    }
}

proptest! {
    /// Geneve over an IPv6 underlay carrying an IPv6 pod packet (an IPv6-only cluster): the
    /// outer headers and the inner packet built by etherparse, the Geneve header (with OVN's
    /// option) by this crate; every layer reads back through the views, both UDP/TCP checksums
    /// hold, and a zero outer UDP checksum is refused by the IPv6 check (a tunnel that agrees
    /// to zero checksums, RFC 6935, must say so itself).
    #[test]
    fn geneve_over_ipv6_reads_back_layer_by_layer(
        node_a in any::<[u8; 16]>(), node_b in any::<[u8; 16]>(),
        pod in any::<[u8; 16]>(), remote in any::<[u8; 16]>(),
        entropy in any::<u16>(), vni in 0u32..0x0100_0000, ports in any::<(u16, u16)>(),
        sport in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut inner = Vec::new();
        PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv6(pod, remote, 64)
            .tcp(sport, 443, 1, 1000)
            .syn()
            .write(&mut inner, &payload)
            .unwrap();
        let g = geneve::Repr { vni, ovn_ports: Some((ports.0 & 0x7fff, ports.1)) };
        let mut udp_payload = vec![0u8; g.header_len()];
        g.emit(&mut udp_payload).unwrap();
        udp_payload.extend(&inner);
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(node_a, node_b, 64)
            .udp(entropy, geneve::UDP_PORT)
            .write(&mut frame, &udp_payload)
            .unwrap();

        let outer = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
        prop_assert_eq!(
            outer.upper_layer(),
            Ok(ipv6::UpperLayer::Protocol { next_header: ipv6::next_header::UDP, offset: 0 })
        );
        let u = udp::Packet::new_checked(outer.payload()).unwrap();
        prop_assert_eq!(u.dst_port(), geneve::UDP_PORT);
        prop_assert!(u.verify_checksum_v6(&node_a, &node_b));
        let h = geneve::Header::new_checked(u.payload()).unwrap();
        prop_assert_eq!((h.vni(), h.protocol()), (vni, geneve::PROTO_ETHERNET));
        prop_assert_eq!(h.ovn_ports(), g.ovn_ports);
        let ie = ethernet::Frame::new_checked(h.payload()).unwrap();
        prop_assert_eq!(ie.ethertype(), ethernet::EtherType::Ipv6);
        let ip = ipv6::Packet::new_checked(ie.payload()).unwrap();
        prop_assert_eq!((ip.src_bytes(), ip.dst_bytes()), (pod, remote));
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        prop_assert_eq!((t.src_port(), t.dst_port()), (sport, 443));
        prop_assert!(t.verify_checksum_v6(&pod, &remote));

        let mut zero = outer.payload().to_vec();
        udp::Packet::new_checked(&mut zero[..]).unwrap().set_checksum(0);
        prop_assert!(!udp::Packet::new_checked(&zero[..]).unwrap().verify_checksum_v6(&node_a, &node_b));
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_ipv6_views(
        bytes in prop::collection::vec(any::<u8>(), 0..200), first in any::<u8>(),
    ) {
        let _ = ipv6::walk(first, &bytes);
        if let Ok(inv) = icmpv6::Invoking::parse(&bytes) {
            let _ = (inv.ports(), inv.echo_ident());
        }
        if let Ok(ip) = ipv6::Packet::new_checked(&bytes[..]) {
            let (src, dst) = (ip.src_bytes(), ip.dst_bytes());
            if let Ok(ipv6::UpperLayer::Protocol { offset, .. }) = ip.upper_layer() {
                if let Ok(m) = icmpv6::Packet::new_checked(&ip.payload()[offset..]) {
                    let _ = icmpv6::Repr::parse(&m, &src, &dst);
                    let _ = (m.rest(), m.data().len());
                }
            }
        }
    }
}

proptest! {
    /// A packet etherparse wrote, quoted cut short as an ICMPv6 error quotes it (at least
    /// its headers and 8 bytes of the upper layer): the quote gives etherparse's addresses and
    /// ports, or the echo's identifier.
    #[test]
    fn a_quoted_packet_reads_as_etherparse_wrote_it(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
        sport in any::<u16>(), dport in any::<u16>(), kind in 0u8..3,
        payload in prop::collection::vec(any::<u8>(), 0..64), cut in 0usize..64,
    ) {
        let base = PacketBuilder::ipv6(src, dst, 64);
        let mut bytes = Vec::new();
        match kind {
            0 => base.tcp(sport, dport, 1, 1000).syn().write(&mut bytes, &payload).unwrap(),
            1 => base.udp(sport, dport).write(&mut bytes, &payload).unwrap(),
            _ => base.icmpv6_echo_request(sport, dport).write(&mut bytes, &payload).unwrap(),
        }
        let quote = &bytes[..(ipv6::HEADER_LEN + 8 + cut).min(bytes.len())];
        let inv = icmpv6::Invoking::parse(quote).unwrap();
        prop_assert_eq!((inv.src, inv.dst, inv.upper_offset), (src, dst, ipv6::HEADER_LEN));
        match kind {
            0 | 1 => prop_assert_eq!(inv.ports(), Some((sport, dport))),
            _ => prop_assert_eq!(inv.echo_ident(), Some(sport)),
        }
        // Cut inside the upper layer's first 8 bytes, it says so.
        prop_assert_eq!(
            icmpv6::Invoking::parse(&bytes[..ipv6::HEADER_LEN + 7]),
            Err(icmpv6::InvokingError::Truncated)
        );
    }
}
