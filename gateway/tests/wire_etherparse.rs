//! Packets built by etherparse read the same through this crate's views, and their checksums
//! verify with this crate's checksum code.

use etherparse::PacketBuilder;
use gateway::wire::{ethernet, icmp, ipv4, tcp, udp};
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
