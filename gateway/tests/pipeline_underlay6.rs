//! The IPv6 underlay (issue 17; a single-stack IPv6 cluster's overlay): a pod's IPv6 packet in
//! Geneve over IPv6 to the node's IPv6 address leaves with the egress IPv6 address, and its
//! reply goes back in Geneve over IPv6 to the pod's node, the outer UDP checksum (which Linux
//! requires there) verified from scratch; a reply too big for the tunnel draws Packet Too Big
//! for the larger outer header. (What cannot be served there: `hostile_frames_v6`.)

use gateway::pipeline::{Iface, Worker};
use gateway::testutil::*;
use gateway::wire::tcp::flags::{ACK, SYN};
use gateway::wire::{ethernet, geneve, icmpv6, ipv6, udp};
use proptest::prelude::*;

const ENTROPY: u16 = 51234;

fn tcp(src_port: u16, dst_port: u16, flags: u8) -> L4 {
    L4::Tcp {
        src_port,
        dst_port,
        flags,
    }
}

/// The egress output of `inner` tunnelled from master-03 over IPv6: its IPv6 packet, checked
/// to leave by the external interface to the router.
fn egress(w: &mut Worker, t: &gateway::pipeline::Tables, inner: &[u8]) -> Vec<u8> {
    let frame = geneve6_frame(NODE3_V6, NODE3_MAC, ENTROPY, inner);
    let (iface, out) = run(w, t, 1, &frame).expect("translated");
    assert_eq!(iface, Iface::External);
    let eth = ethernet::Frame::new_checked(&out[..]).unwrap();
    assert_eq!((eth.dst(), eth.src()), (ROUTER_MAC, NODE_MAC));
    out[ethernet::HEADER_LEN..].to_vec()
}

/// The tunnel back of a reply: outer Ethernet to master-03's MAC, IPv6 from the node's IPv6
/// address to master-03's with hop limit 64 and the reply's traffic class, UDP from the pod
/// node's entropy port to 6081 with a checksum that verifies from scratch, Geneve with the
/// OVN ports swapped, inner MACs swapped. Returns the inner IPv6 packet and the outer frame.
fn reply_frame(frame: &[u8], traffic_class: u8) -> Vec<u8> {
    let eth = ethernet::Frame::new_checked(frame).unwrap();
    assert_eq!(
        (eth.dst(), eth.src(), eth.ethertype()),
        (NODE3_MAC, NODE_MAC, ethernet::EtherType::Ipv6)
    );
    let outer = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]).unwrap();
    assert_eq!(
        (outer.src_bytes(), outer.dst_bytes()),
        (NODE_V6.to_be_bytes(), NODE3_V6.to_be_bytes())
    );
    assert_eq!(
        (
            outer.next_header(),
            outer.hop_limit(),
            outer.traffic_class()
        ),
        (ipv6::next_header::UDP, 64, traffic_class)
    );
    assert_eq!(
        outer.flow_label(),
        u32::from(ENTROPY),
        "the entropy as the flow label"
    );
    let u = udp::Packet::new_checked(outer.payload()).unwrap();
    assert_eq!((u.src_port(), u.dst_port()), (ENTROPY, geneve::UDP_PORT));
    assert_eq!(usize::from(u.len()), outer.payload().len());
    assert_ne!(u.checksum(), 0);
    assert!(
        u.verify_checksum_v6(&outer.src_bytes(), &outer.dst_bytes()),
        "outer UDP checksum"
    );
    let g = geneve::Header::new_checked(u.payload()).unwrap();
    assert_eq!(g.vni(), geneve::OVN_TRANSIT_VNI);
    assert_eq!(g.ovn_ports(), Some((OVN_PORTS.1, OVN_PORTS.0)));
    let ie = ethernet::Frame::new_checked(g.payload()).unwrap();
    assert_eq!(
        (ie.dst(), ie.src(), ie.ethertype()),
        (TRANSIT3_MAC, TRANSIT1_MAC, ethernet::EtherType::Ipv6)
    );
    ie.payload().to_vec()
}

fn reply(w: &mut Worker, t: &gateway::pipeline::Tables, ip: &[u8]) -> Vec<u8> {
    let (iface, out) = run(w, t, 2, &external_frame(ip)).expect("translated");
    assert_eq!(iface, Iface::Underlay);
    reply_frame(&out, ip[0] << 4 | ip[1] >> 4)
}

/// Opens a TCP flow from the pod to the server; returns its egress port.
fn open_flow(w: &mut Worker, t: &gateway::pipeline::Tables) -> u16 {
    let syn = ipv6_packet(POD3_V6, SERVER_V6, 64, tcp(40000, 443, SYN), b"");
    egress_port6(&egress(w, t, &syn))
}

#[test]
fn a_tcp_connection_out_and_back_over_the_ipv6_underlay() {
    let t = seed_tables_underlay6();
    let mut w = worker_dual(1024);
    let syn = ipv6_packet(POD3_V6, SERVER_V6, 64, tcp(40000, 443, SYN), b"hello");
    let out = egress(&mut w, &t, &syn);
    assert!(checksums_verify_v6(&out));
    assert_eq!(&out[8..24], &EGRESS_V6.to_be_bytes());
    let ext_port = egress_port6(&out);
    let synack = ipv6_packet(
        SERVER_V6,
        EGRESS_V6,
        64,
        tcp(443, ext_port, SYN | ACK),
        b"hi",
    );
    let back = reply(&mut w, &t, &synack);
    assert!(checksums_verify_v6(&back));
    assert_eq!(
        back,
        ipv6_packet(SERVER_V6, POD3_V6, 63, tcp(443, 40000, SYN | ACK), b"hi")
    );
    // The session lists the pod's node by its IPv6 address.
    let mut nodes = Vec::new();
    let table = w.nat.table();
    table.scan(0, table.slot_count(), |_, e, _| {
        if let gateway::nat::Entry::V6(d) = e {
            nodes.push(d.tunnel.node());
        }
    });
    assert_eq!(nodes, [std::net::IpAddr::from(NODE3_V6.to_be_bytes())]);
    // The pod's next packet takes the same session.
    egress(
        &mut w,
        &t,
        &ipv6_packet(POD3_V6, SERVER_V6, 64, tcp(40000, 443, ACK), b""),
    );
    assert_eq!(w.nat.table().check_consistency(), Ok(1));
}

#[test]
fn a_reply_too_big_for_the_ipv6_tunnel_draws_packet_too_big_for_its_larger_header() {
    let mut t = seed_tables_underlay6();
    // The pods' MTU out of the way: the underlay's limit alone (pipeline_v6.rs has the pods').
    t.node.pod_mtu = UNDERLAY_MTU;
    let mut w = worker_dual(1024);
    let ext_port = open_flow(&mut w, &t);
    // Outer IPv6 (40) + UDP (8) + Geneve with OVN's option (16) + inner Ethernet (14).
    let fits = usize::from(UNDERLAY_MTU) - 78;
    let sized = |len: usize| {
        ipv6_packet(
            SERVER_V6,
            EGRESS_V6,
            64,
            tcp(443, ext_port, ACK),
            &vec![7u8; len - 60],
        )
    };
    reply(&mut w, &t, &sized(fits));
    let (iface, ptb) = run(&mut w, &t, 2, &external_frame(&sized(fits + 1))).unwrap();
    assert_eq!(iface, Iface::External);
    let ip = ipv6::Packet::new_checked(&ptb[ethernet::HEADER_LEN..]).unwrap();
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert!(m.verify_checksum(&ip.src_bytes(), &ip.dst_bytes()));
    assert_eq!(m.msg_type(), icmpv6::Message::PacketTooBig);
    assert_eq!(
        u32::from_be_bytes(ip.payload()[4..8].try_into().unwrap()),
        fits as u32
    );
}

#[test]
fn a_node_on_the_link_without_a_neighbour_entry_gets_its_reply_at_the_mac_it_sent_from() {
    let mut t = seed_tables_underlay6();
    let mut w = worker_dual(1024);
    let ext_port = open_flow(&mut w, &t);
    t.ipv6.underlay.remove_neighbor(NODE3_V6);
    let sent = ipv6_packet(SERVER_V6, EGRESS_V6, 64, tcp(443, ext_port, SYN | ACK), b"");
    let back = reply(&mut w, &t, &sent);
    assert!(checksums_verify_v6(&back));
    assert_eq!(w.counters.take_unresolved6(), Some(NODE3_V6));
}

proptest! {
    /// Random IPv6 flows out and back over the IPv6 underlay: the pod gets back exactly what
    /// the remote sent, and the outer UDP checksum, computed from the inner packet's own,
    /// verifies from scratch for every payload length, odd ones included.
    #[test]
    fn ipv6_flows_out_and_back_over_the_ipv6_underlay(
        pod_low in 1u32..1000, remote in any::<u128>(), sport in 1024u16.., dport in 1u16..,
        kind in 0u8..3, payload in prop::collection::vec(any::<u8>(), 0..300),
        traffic_class in any::<u8>(),
    ) {
        let pod = POD3_V6 + u128::from(pod_low);
        prop_assume!(remote >> 120 != 0xff && remote != EGRESS_V6);
        let mut t = seed_tables_underlay6();
        t.ipv6.egress.set(pod, EGRESS_V6);
        let mut w = worker_dual(1024);
        let (out_l4, back_l4) = flow_and_answer(kind, sport, dport);
        let with_class = |ip| with_traffic_class(ip, traffic_class);
        let out = egress(&mut w, &t, &with_class(ipv6_packet(pod, remote, 64, out_l4, &payload)));
        prop_assert!(checksums_verify_v6(&out));
        let sent = with_class(ipv6_packet(remote, EGRESS_V6, 64, back_l4(egress_port6(&out), dport), &payload));
        let back = reply(&mut w, &t, &sent);
        let expected = with_class(ipv6_packet(remote, pod, 63, back_l4(sport, dport), &payload));
        prop_assert_eq!(back, expected);
    }
}

/// A pod's packet too big for the external interface, tunnelled over IPv6: Packet Too Big
/// goes back over IPv6, its outer UDP checksum verifying from scratch (`reply_frame`).
#[test]
fn a_pods_packet_too_big_for_the_external_interface_goes_back_over_the_ipv6_underlay() {
    let mut t = seed_tables_underlay6();
    t.node.external_mtu = 1300;
    let mut w = worker_dual(1024);
    let big = ipv6_packet(POD3_V6, SERVER_V6, 64, tcp(40000, 443, SYN), &[7; 1300]);
    let frame = geneve6_frame(NODE3_V6, NODE3_MAC, ENTROPY, &big);
    let (iface, out) = run(&mut w, &t, 1, &frame).expect("answered");
    assert_eq!(iface, Iface::Underlay);
    let inner = reply_frame(&out, 0);
    assert!(checksums_verify_v6(&inner));
    let ip = ipv6::Packet::new_checked(&inner[..]).unwrap();
    assert_eq!(
        (ip.src_bytes(), ip.dst_bytes()),
        (EGRESS_V6.to_be_bytes(), POD3_V6.to_be_bytes())
    );
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (m.msg_type(), m.rest()),
        (icmpv6::Message::PacketTooBig, 1300)
    );
}
