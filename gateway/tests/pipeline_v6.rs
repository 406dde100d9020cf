//! IPv6 through the pipeline (issue 17, item 2): a pod's IPv6 packet in Geneve over the IPv4
//! underlay leaves with the egress IPv6 address, its reply comes back un-NATed in the tunnel
//! it came by, a reply too big for the tunnel draws Packet Too Big, and what cannot be
//! translated is a counted drop with its reason. Outputs are read back with etherparse and
//! this crate's views, checksums verified from scratch.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use gateway::drop::DropReason;
use gateway::pipeline::{Iface, Worker};
use gateway::testutil::*;
use gateway::wire::tcp::flags::{ACK, SYN};
use gateway::wire::{ethernet, geneve, icmpv6, ipv4, ipv6, udp};
use proptest::prelude::*;

const ENTROPY: u16 = 51234;

fn pod_packet(l4: L4, payload: &[u8]) -> Vec<u8> {
    ipv6_packet(POD3_V6, SERVER_V6, 64, l4, payload)
}

fn tcp(src_port: u16, dst_port: u16, flags: u8) -> L4 {
    L4::Tcp {
        src_port,
        dst_port,
        flags,
    }
}

/// The egress output for `inner`: its IPv6 packet (after the Ethernet header), checked to
/// leave by the external interface to the router from the node's MAC as IPv6.
fn egress(w: &mut Worker, t: &gateway::pipeline::Tables, inner: &[u8]) -> Vec<u8> {
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, ENTROPY, inner);
    let (iface, out) = run(w, t, 1, &frame).expect("translated");
    assert_eq!(iface, Iface::External);
    let eth = ethernet::Frame::new_checked(&out[..]).unwrap();
    assert_eq!(
        (eth.dst(), eth.src(), eth.ethertype()),
        (ROUTER_MAC, NODE_MAC, ethernet::EtherType::Ipv6)
    );
    out[ethernet::HEADER_LEN..].to_vec()
}

/// The return output for a reply `ip` from outside: the inner IPv6 packet, after checking
/// the tunnel back to master-03 (outer IPv4 to its node IP, Geneve with the OVN ports
/// swapped, inner MACs swapped, IPv6's Ethernet type).
fn reply(w: &mut Worker, t: &gateway::pipeline::Tables, ip: &[u8]) -> Vec<u8> {
    let (iface, out) = run(w, t, 2, &external_frame(ip)).expect("translated");
    assert_eq!(iface, Iface::Underlay);
    tunnel_back(&out)
}

/// The inner IPv6 packet of a frame tunnelled back to master-03, its tunnel checked as
/// [`reply`] says.
fn tunnel_back(out: &[u8]) -> Vec<u8> {
    let outer = ipv4::Packet::new_checked(&out[ethernet::HEADER_LEN..]).unwrap();
    assert!(outer.verify_checksum());
    assert_eq!((outer.src(), outer.dst()), (NODE_IP, NODE3_IP));
    let u = udp::Packet::new_checked(outer.payload()).unwrap();
    assert_eq!((u.src_port(), u.dst_port()), (ENTROPY, geneve::UDP_PORT));
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

#[test]
fn a_tcp_connection_out_and_back() {
    let t = seed_tables_dual();
    let mut w = worker_dual(1024);
    let out = egress(&mut w, &t, &pod_packet(tcp(40000, 443, SYN), b"hello"));
    assert!(checksums_verify_v6(&out));
    let p = SlicedPacket::from_ip(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!("ipv6")
    };
    assert_eq!(ip.header().source(), EGRESS_V6.to_be_bytes());
    assert_eq!(ip.header().destination(), SERVER_V6.to_be_bytes());
    assert_eq!(ip.header().hop_limit(), 63);
    let Some(TransportSlice::Tcp(seg)) = p.transport else {
        panic!("tcp")
    };
    let ext_port = seg.source_port();
    assert!(w.nat.ports().contains(ext_port));
    assert_eq!(
        (seg.destination_port(), seg.payload()),
        (443, &b"hello"[..])
    );

    // The server's SYN-ACK to the egress IPv6 address comes back to the pod.
    let back = reply(
        &mut w,
        &t,
        &ipv6_packet(
            SERVER_V6,
            EGRESS_V6,
            64,
            tcp(443, ext_port, SYN | ACK),
            b"hi",
        ),
    );
    assert!(checksums_verify_v6(&back));
    let ip = ipv6::Packet::new_checked(&back[..]).unwrap();
    assert_eq!(
        (ip.src_bytes(), ip.dst_bytes(), ip.hop_limit()),
        (SERVER_V6.to_be_bytes(), POD3_V6.to_be_bytes(), 63)
    );
    let p = SlicedPacket::from_ip(&back).unwrap();
    let Some(TransportSlice::Tcp(seg)) = p.transport else {
        panic!("tcp")
    };
    assert_eq!((seg.source_port(), seg.destination_port()), (443, 40000));
    // One session made, found again by both directions.
    let created = |w: &Worker| {
        w.counters
            .sessions_created
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(created(&w), 1);
    egress(&mut w, &t, &pod_packet(tcp(40000, 443, ACK), b""));
    assert_eq!(created(&w), 1);
    assert_eq!(w.nat.table().check_consistency(), Ok(1));
}

#[test]
fn udp_and_icmpv6_echo_out_and_back() {
    let t = seed_tables_dual();
    let mut w = worker_dual(1024);
    let out = egress(
        &mut w,
        &t,
        &pod_packet(
            L4::Udp {
                src_port: 5353,
                dst_port: 53,
            },
            b"query",
        ),
    );
    assert!(checksums_verify_v6(&out));
    let u = udp::Packet::new_checked(&out[ipv6::HEADER_LEN..]).unwrap();
    let port = u.src_port();
    assert_ne!(u.checksum(), 0, "never a zero UDP checksum in IPv6");
    let l4 = L4::Udp {
        src_port: 53,
        dst_port: port,
    };
    let back = reply(
        &mut w,
        &t,
        &ipv6_packet(SERVER_V6, EGRESS_V6, 64, l4, b"answer"),
    );
    assert!(checksums_verify_v6(&back));
    let u = udp::Packet::new_checked(&back[ipv6::HEADER_LEN..]).unwrap();
    assert_eq!((u.dst_port(), u.payload()), (5353, &b"answer"[..]));

    // Echo: the identifier is the port; ICMPv6's checksum covers the addresses.
    let ping = L4::Echo {
        request: true,
        ident: 77,
        seq: 1,
    };
    let out = egress(&mut w, &t, &pod_packet(ping, b"ping"));
    assert!(checksums_verify_v6(&out));
    let m = icmpv6::Packet::new_checked(&out[ipv6::HEADER_LEN..]).unwrap();
    assert_eq!(m.msg_type(), icmpv6::Message::EchoRequest);
    let id = m.echo_ident();
    let pong = L4::Echo {
        request: false,
        ident: id,
        seq: 1,
    };
    let back = reply(
        &mut w,
        &t,
        &ipv6_packet(SERVER_V6, EGRESS_V6, 64, pong, b"ping"),
    );
    assert!(checksums_verify_v6(&back));
    let m = icmpv6::Packet::new_checked(&back[ipv6::HEADER_LEN..]).unwrap();
    assert_eq!(
        (m.msg_type(), m.echo_ident()),
        (icmpv6::Message::EchoReply, 77)
    );
}

#[test]
fn a_reply_too_big_for_the_tunnel_draws_packet_too_big() {
    let mut t = seed_tables_dual();
    // The pods' MTU out of the way: the underlay's limit alone (below, the pods').
    t.node.pod_mtu = UNDERLAY_MTU;
    let mut w = worker_dual(1024);
    let out = egress(&mut w, &t, &pod_packet(tcp(40000, 443, SYN), b""));
    let port = u16::from_be_bytes([out[40], out[41]]);
    // 1500 bytes of IPv6 do not fit a 1500-byte underlay once wrapped (by 58 bytes).
    let big = ipv6_packet(SERVER_V6, EGRESS_V6, 64, tcp(443, port, ACK), &[7; 1440]);
    assert_eq!(big.len(), 1500);
    let (iface, msg) = run(&mut w, &t, 3, &external_frame(&big)).expect("answered");
    assert_eq!(iface, Iface::External);
    let eth = ethernet::Frame::new_checked(&msg[..]).unwrap();
    assert_eq!(
        (eth.dst(), eth.src()),
        (ROUTER_MAC, NODE_MAC),
        "back where it came from"
    );
    let ip = ipv6::Packet::new_checked(&msg[ethernet::HEADER_LEN..]).unwrap();
    assert_eq!(
        (ip.src_bytes(), ip.dst_bytes()),
        (EGRESS_V6.to_be_bytes(), SERVER_V6.to_be_bytes())
    );
    assert_eq!(
        ethernet::HEADER_LEN + 1280,
        msg.len(),
        "quoted up to IPv6's minimum MTU"
    );
    assert!(checksums_verify_v6(&msg[ethernet::HEADER_LEN..]));
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(m.msg_type(), icmpv6::Message::PacketTooBig);
    let encap = 20 + 8 + 8 + 8 + 14; // outer IPv4, UDP, Geneve, OVN option, inner Ethernet
    assert_eq!(m.rest(), (1500 - encap) as u32);
    // The quote begins with the offending packet, untranslated.
    assert_eq!(&m.data()[..40], &big[..40]);
    assert_eq!(
        w.counters
            .icmp_frag_needed_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // One byte smaller than the limit passes.
    let fits = ipv6_packet(
        SERVER_V6,
        EGRESS_V6,
        64,
        tcp(443, port, ACK),
        &[7; 1440 - 58],
    );
    reply(&mut w, &t, &fits);
    // With the pods' own MTU (1400) in place, that same packet is too big for the pod: the
    // message announces the pod's MTU.
    t.node.pod_mtu = POD_MTU;
    let (iface, msg) = run(&mut w, &t, 3, &external_frame(&fits)).expect("answered");
    assert_eq!(iface, Iface::External);
    let ip = ipv6::Packet::new_checked(&msg[ethernet::HEADER_LEN..]).unwrap();
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (m.msg_type(), m.rest()),
        (icmpv6::Message::PacketTooBig, u32::from(POD_MTU))
    );
}

#[test]
fn what_cannot_be_translated_is_a_counted_drop() {
    let t = seed_tables_dual();
    let mut w = worker_dual(1024);
    let udp = L4::Udp {
        src_port: 1,
        dst_port: 2,
    };
    let mut zero = pod_packet(udp, b"x");
    zero[46..48].copy_from_slice(&[0, 0]);
    let mut fragment = pod_packet(udp, b"xxxxxxxx");
    // A Fragment header (offset 0, more) between the fixed header and UDP.
    fragment[6] = ipv6::next_header::FRAGMENT;
    fragment.splice(40..40, [17, 0, 0, 1, 0, 0, 0, 9]);
    let payload_len = (fragment.len() - 40) as u16;
    fragment[4..6].copy_from_slice(&payload_len.to_be_bytes());
    let mut esp = pod_packet(udp, b"x");
    esp[6] = ipv6::next_header::ESP;
    let unmapped = ipv6_packet(POD3_V6 + 1, SERVER_V6, 64, udp, b"x");
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "unmapped pod",
            geneve_frame(NODE3_IP, NODE3_MAC, 1, &unmapped),
            DropReason::NoEgressMapping,
        ),
        (
            "hop limit 1",
            geneve_frame(
                NODE3_IP,
                NODE3_MAC,
                1,
                &ipv6_packet(POD3_V6, SERVER_V6, 1, udp, b"x"),
            ),
            DropReason::TtlExpired,
        ),
        (
            "zero UDP checksum",
            geneve_frame(NODE3_IP, NODE3_MAC, 1, &zero),
            DropReason::UdpZeroChecksum,
        ),
        (
            "fragment",
            geneve_frame(NODE3_IP, NODE3_MAC, 1, &fragment),
            DropReason::Fragment,
        ),
        (
            "ESP",
            geneve_frame(NODE3_IP, NODE3_MAC, 1, &esp),
            DropReason::Ipv6ExtensionChain,
        ),
        (
            "cut in the header",
            geneve_frame(NODE3_IP, NODE3_MAC, 1, &pod_packet(udp, b"x")[..30]),
            DropReason::Ipv6Truncated,
        ),
        (
            "reply without a session",
            external_frame(&ipv6_packet(SERVER_V6, EGRESS_V6, 64, udp, b"x")),
            DropReason::NoSession,
        ),
        (
            "to an address not served",
            external_frame(&ipv6_packet(SERVER_V6, EGRESS_V6 + 1, 64, udp, b"x")),
            DropReason::NotForGateway,
        ),
        (
            "an echo request from outside",
            external_frame(&ipv6_packet(
                SERVER_V6,
                EGRESS_V6,
                64,
                L4::Echo {
                    request: true,
                    ident: 1,
                    seq: 1,
                },
                b"",
            )),
            DropReason::IcmpUnsupported,
        ),
    ];
    for (name, frame, reason) in cases {
        let before = w.counters.drops(reason);
        assert_eq!(run(&mut w, &t, 1, &frame).err(), Some(reason), "{name}");
        assert_eq!(w.counters.drops(reason), before + 1, "{name}: counted");
    }
    // A next hop whose MAC is unknown: dropped, counted, and left for the daemon to have
    // the kernel resolve (a neighbour solicitation). Here the on-link server itself.
    let mut on_link = seed_tables_dual();
    on_link.ipv6.external = gateway::pipeline::Fib6::new(SERVER_V6, 64, Some(ROUTER_V6));
    let before = w.counters.drops(DropReason::NeighborUnresolved);
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, 1, &pod_packet(udp, b"x"));
    assert_eq!(
        run(&mut w, &on_link, 1, &frame).err(),
        Some(DropReason::NeighborUnresolved)
    );
    assert_eq!(w.counters.drops(DropReason::NeighborUnresolved), before + 1);
    assert_eq!(w.counters.take_unresolved6(), Some(SERVER_V6));
    assert_eq!(w.counters.take_unresolved6(), None, "taken once");
    // Without IPv6 slots (nat.max_sessions_v6 = 0) a pod's IPv6 flow is refused, counted.
    let mut v4_only = worker(1024);
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, 1, &pod_packet(udp, b"x"));
    assert_eq!(
        run(&mut v4_only, &t, 1, &frame).err(),
        Some(DropReason::SessionTableFull)
    );
}

proptest! {
    /// Random IPv6 flows out and back: the pod gets back exactly what the remote sent, to
    /// its own address and port, every checksum verified from scratch.
    #[test]
    fn ipv6_flows_out_and_back_come_back_identical(
        pod_low in 1u32..1000, remote in any::<u128>(), sport in 1024u16.., dport in 1u16..,
        kind in 0u8..3, payload in prop::collection::vec(any::<u8>(), 0..200),
        traffic_class in any::<u8>(),
    ) {
        let pod = POD3_V6 + u128::from(pod_low);
        prop_assume!(remote >> 120 != 0xff && remote != EGRESS_V6);
        let mut t = seed_tables_dual();
        t.ipv6.egress.set(pod, EGRESS_V6);
        let mut w = worker_dual(1024);
        let (out_l4, back_l4) = flow_and_answer(kind, sport, dport);
        let with_class = |ip| with_traffic_class(ip, traffic_class);
        let inner = with_class(ipv6_packet(pod, remote, 64, out_l4, &payload));
        let out = egress(&mut w, &t, &inner);
        prop_assert!(checksums_verify_v6(&out));
        prop_assert_eq!(&out[..4], &inner[..4], "version, traffic class, flow label kept");
        prop_assert_eq!(&out[24..40], &remote.to_be_bytes()[..]);
        let ext_port = egress_port6(&out);
        let sent = with_class(ipv6_packet(remote, EGRESS_V6, 64, back_l4(ext_port, dport), &payload));
        let (iface, frame) = run(&mut w, &t, 2, &external_frame(&sent)).unwrap();
        prop_assert_eq!(iface, Iface::Underlay);
        // The outer IPv4 header carries the reply's traffic class.
        prop_assert_eq!(frame[15], traffic_class);
        let back = reply(&mut w, &t, &sent);
        prop_assert!(checksums_verify_v6(&back));
        let expected = with_class(ipv6_packet(remote, pod, 63, back_l4(sport, dport), &payload));
        prop_assert_eq!(back, expected);
    }
}

/// A batch mixing IPv4 and IPv6 frames (pods of both, an unmapped IPv6 pod, replies, a
/// frame with a Geneve shape the quick IPv6 look does not know) gives, frame by frame, the
/// bytes and drops that one frame at a time gives.
#[test]
fn a_mixed_batch_translates_as_frames_one_at_a_time() {
    let t = seed_tables_dual();
    let (mut one, mut batch) = (worker_dual(1024), worker_dual(1024));
    // Sessions for the replies, made the same way in both workers.
    let syn = pod_packet(tcp(40000, 443, SYN), b"");
    let out = egress(&mut one, &t, &syn);
    assert_eq!(egress(&mut batch, &t, &syn), out);
    let ext_port = u16::from_be_bytes([out[40], out[41]]);
    let mut frames = Vec::new();
    for i in 0..64u16 {
        let l4 = tcp(20_000 + i, 443, SYN);
        frames.push(match i % 6 {
            0 => geneve_frame(NODE3_IP, NODE3_MAC, i, &pod_packet(l4, b"v6")),
            1 => geneve_frame(
                NODE3_IP,
                NODE3_MAC,
                i,
                &ipv4_packet(POD3, SERVER_IP, 64, true, l4, b"v4"),
            ),
            2 => geneve_frame(
                NODE3_IP,
                NODE3_MAC,
                i,
                &ipv6_packet(POD3_V6 + 9, SERVER_V6, 64, l4, b""),
            ),
            3 => external_frame(&ipv6_packet(
                SERVER_V6,
                EGRESS_V6,
                64,
                tcp(443, ext_port, ACK),
                b"back",
            )),
            4 => {
                // Geneve without the OVN option: inner Ethernet 8 bytes earlier.
                let mut f = geneve_frame(NODE3_IP, NODE3_MAC, i, &pod_packet(l4, b"no option"));
                f.drain(50..58);
                f[42] = 0;
                let (udp_len, ip_len) = (f.len() as u16 - 34, f.len() as u16 - 14);
                f[38..40].copy_from_slice(&udp_len.to_be_bytes());
                f[16..18].copy_from_slice(&ip_len.to_be_bytes());
                f[24..26].copy_from_slice(&[0, 0]);
                let c = gateway::wire::checksum::checksum(&f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
                f
            }
            _ => external_frame(&ipv6_packet(
                SERVER_V6,
                EGRESS_V6,
                64,
                tcp(443, 9, ACK),
                b"",
            )),
        });
    }
    let expected: Vec<_> = frames.iter().map(|f| run(&mut one, &t, 1, f)).collect();
    assert!(
        expected.iter().filter(|r| r.is_ok()).count() >= 40,
        "{expected:?}"
    );
    let stride = 4096;
    let mut umem = vec![0u8; 64 * stride];
    let fs: Vec<_> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let start = i * stride + gateway::pipeline::HEADROOM;
            umem[start..start + f.len()].copy_from_slice(f);
            gateway::pipeline::Frame {
                start,
                len: f.len(),
                headroom: gateway::pipeline::HEADROOM,
            }
        })
        .collect();
    let mut actions = [gateway::pipeline::Action::Drop(DropReason::FrameTruncated); 64];
    batch.process_batch(&mut umem, &fs, &t, 1, &mut actions);
    for (i, (a, e)) in actions.iter().zip(&expected).enumerate() {
        let got = match a {
            gateway::pipeline::Action::Transmit(o) => {
                Ok((o.iface, umem[o.start..o.start + o.len].to_vec()))
            }
            gateway::pipeline::Action::Drop(r) => Err(*r),
        };
        assert_eq!(&got, e, "frame {i}");
    }
}

proptest! {
    /// The IPv6 fast parser takes only what the general one takes, and reads it the same:
    /// frames of both directions, pods' over either underlay, bytes changed anywhere in the
    /// headers.
    #[test]
    fn the_ipv6_fast_parser_agrees_with_the_general_one(
        out in any::<bool>(), udp in any::<bool>(), over_ipv6 in any::<bool>(),
        payload in prop::collection::vec(any::<u8>(), 0..40),
        edits in prop::collection::vec((0usize..160, any::<u8>()), 0..3),
    ) {
        let t = seed_tables_underlay6();
        let table = gateway::nat::SessionTable::new(gateway::nat::NatConfig {
            max_sessions: 16,
            max_sessions_v6: 16,
            ..Default::default()
        });
        let l4 = if udp { L4::Udp { src_port: 5000, dst_port: 53 } } else { tcp(5000, 443, SYN) };
        let mut frame = if out && over_ipv6 {
            geneve6_frame(NODE3_V6, NODE3_MAC, 1, &pod_packet(l4, &payload))
        } else if out {
            geneve_frame(NODE3_IP, NODE3_MAC, 1, &pod_packet(l4, &payload))
        } else {
            external_frame(&ipv6_packet(SERVER_V6, EGRESS_V6, 64, l4, &payload))
        };
        let pristine = edits.is_empty();
        for (at, byte) in edits {
            if let Some(b) = frame.get_mut(at) {
                *b = byte;
            }
        }
        let fast = gateway::pipeline::fast::parse6(&frame, &t);
        // The common shapes, untouched, are the fast parser's.
        prop_assert!(!pristine || fast.is_some());
        if let Some(fast) = fast {
            let general = gateway::pipeline::v6::general(&frame, &t, &table);
            prop_assert_eq!(general, Ok(gateway::pipeline::parsed::Parsed6 { hash: table.hash6(&fast.key), ..fast }));
        }
    }
}

/// ICMPv6 errors about tracked flows are translated both ways (RFC 4443, RFC 5508's rules
/// for IPv6): the outer address, the quoted packet's other end and port, the quoted L4
/// checksum and ICMPv6's, all verified from scratch.
#[test]
fn icmpv6_errors_about_tracked_flows_both_ways() {
    let t = seed_tables_dual();
    let mut w = worker_dual(1024);
    let udp = L4::Udp {
        src_port: 5353,
        dst_port: 53,
    };
    let out = egress(&mut w, &t, &pod_packet(udp, b"query"));
    let ext_port = u16::from_be_bytes([out[40], out[41]]);

    // The server answers our packet with port unreachable: back to the pod, about its own.
    let unreachable = icmpv6_error(SERVER_V6, EGRESS_V6, 1, 4, 0, &out);
    let back = reply(&mut w, &t, &unreachable);
    assert!(checksums_verify_v6(&back), "ICMPv6 checksum");
    let ip = ipv6::Packet::new_checked(&back[..]).unwrap();
    assert_eq!(ip.dst_bytes(), POD3_V6.to_be_bytes());
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (m.msg_type(), m.code()),
        (icmpv6::Message::DstUnreachable, 4)
    );
    let quoted = m.data();
    // The pod's packet as the gateway sent it on, back to the pod's tuple exactly.
    assert_eq!(
        quoted,
        &ipv6_packet(POD3_V6, SERVER_V6, 63, udp, b"query")[..]
    );
    let q = ipv6::Packet::new_checked(quoted).unwrap();
    assert_eq!(q.src_bytes(), POD3_V6.to_be_bytes());
    assert!(checksums_verify_v6(quoted), "the quoted UDP checksum");
    assert_eq!(u16::from_be_bytes([quoted[40], quoted[41]]), 5353);

    // A router on the path: the packet was too big. The pod learns the same MTU.
    let too_big = icmpv6_error(ROUTER_V6, EGRESS_V6, 2, 0, 1400, &out);
    let back = reply(&mut w, &t, &too_big);
    assert!(checksums_verify_v6(&back));
    let m = icmpv6::Packet::new_checked(&back[ipv6::HEADER_LEN..]).unwrap();
    assert_eq!(
        (m.msg_type(), m.rest()),
        (icmpv6::Message::PacketTooBig, 1400)
    );

    // The pod refuses the server's reply: its error leaves with the egress address, about
    // the reply as the server sent it (to the egress address and port).
    let answer = ipv6_packet(
        SERVER_V6,
        POD3_V6,
        63,
        L4::Udp {
            src_port: 53,
            dst_port: 5353,
        },
        b"answer",
    );
    let refusal = icmpv6_error(POD3_V6, SERVER_V6, 1, 4, 0, &answer);
    let out = egress(&mut w, &t, &refusal);
    assert!(checksums_verify_v6(&out));
    let ip = ipv6::Packet::new_checked(&out[..]).unwrap();
    assert_eq!(
        (ip.src_bytes(), ip.dst_bytes()),
        (EGRESS_V6.to_be_bytes(), SERVER_V6.to_be_bytes())
    );
    let quoted = icmpv6::Packet::new_checked(ip.payload())
        .unwrap()
        .data()
        .to_vec();
    let q = ipv6::Packet::new_checked(&quoted[..]).unwrap();
    assert_eq!(q.dst_bytes(), EGRESS_V6.to_be_bytes());
    assert_eq!(u16::from_be_bytes([quoted[42], quoted[43]]), ext_port);
    assert!(checksums_verify_v6(&quoted));

    // About no flow, or quoting too little: counted drops.
    let stranger = icmpv6_error(
        SERVER_V6,
        EGRESS_V6,
        1,
        4,
        0,
        &ipv6_packet(
            EGRESS_V6,
            SERVER_V6,
            64,
            L4::Udp {
                src_port: 9,
                dst_port: 53,
            },
            b"",
        ),
    );
    assert_eq!(
        run(&mut w, &t, 1, &external_frame(&stranger)).err(),
        Some(DropReason::IcmpErrorNoSession)
    );
    let cut = icmpv6_error(SERVER_V6, EGRESS_V6, 1, 4, 0, &out[..44]);
    assert_eq!(
        run(&mut w, &t, 1, &external_frame(&cut)).err(),
        Some(DropReason::IcmpErrorTruncated)
    );
    let about_another = icmpv6_error(SERVER_V6, EGRESS_V6, 1, 4, 0, &pod_packet(udp, b"query"));
    assert_eq!(
        run(&mut w, &t, 1, &external_frame(&about_another)).err(),
        Some(DropReason::IcmpErrorNoSession)
    );
    let unknown_flow = icmpv6_error(
        POD3_V6,
        SERVER_V6,
        1,
        4,
        0,
        &ipv6_packet(
            SERVER_V6,
            POD3_V6,
            63,
            L4::Udp {
                src_port: 53,
                dst_port: 1,
            },
            b"",
        ),
    );
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, 1, &unknown_flow);
    assert_eq!(
        run(&mut w, &t, 1, &frame).err(),
        Some(DropReason::IcmpErrorNoSession)
    );
}

/// In a gateway set the peers hear of an IPv6 session's creation and of its TCP state
/// changes, and of nothing on its established packets.
#[test]
fn a_replicating_worker_reports_ipv6_sessions_and_their_state_changes_only() {
    use gateway::mailbox::sync_queue::{SyncEvent, SyncQueue};
    use gateway::nat::{NatConfig, SessionTable};
    let table = SessionTable::new(NatConfig {
        max_sessions: 64,
        max_sessions_v6: 64,
        ..NatConfig::default()
    });
    let queue = SyncQueue::new(64);
    let mut w = Worker::new(table.worker(0).with_events(queue.clone()));
    let t = seed_tables_dual();
    let out = egress(&mut w, &t, &pod_packet(tcp(40000, 443, SYN), b""));
    let ext_port = u16::from_be_bytes([out[40], out[41]]);
    let mut events = Vec::new();
    queue.drain_into(&mut events, 64);
    let [SyncEvent::Upsert { slot, .. }] = events[..] else {
        panic!("one upsert for the new session: {events:?}")
    };
    assert!(slot >= 64, "an IPv6 slot: {slot}");
    let from_server = |flags, payload: &[u8]| {
        ipv6_packet(SERVER_V6, EGRESS_V6, 64, tcp(443, ext_port, flags), payload)
    };
    reply(&mut w, &t, &from_server(SYN | ACK, b""));
    egress(&mut w, &t, &pod_packet(tcp(40000, 443, ACK), b""));
    events.clear();
    queue.drain_into(&mut events, 64);
    assert!(!events.is_empty(), "the handshake changed the TCP state");
    assert!(events
        .iter()
        .all(|e| matches!(e, SyncEvent::Upsert { slot: s, .. } if *s == slot)));
    events.clear();
    for _ in 0..10 {
        egress(&mut w, &t, &pod_packet(tcp(40000, 443, ACK), b"x"));
        reply(&mut w, &t, &from_server(ACK, b"y"));
    }
    queue.drain_into(&mut events, 64);
    assert!(
        events.is_empty(),
        "established packets report nothing: {events:?}"
    );
    // Its expiry is a delete of its IPv6 key.
    assert_eq!(w.nat.expire(u32::MAX, 1024), 1);
    queue.drain_into(&mut events, 64);
    assert!(
        matches!(events[..], [SyncEvent::Delete { inside: gateway::nat::InsideKey::V6(k) }] if k.src == POD3_V6),
        "{events:?}"
    );
}

/// A pod's IPv6 packet larger than the external interface carries: Packet Too Big from the
/// pod's egress IPv6 address, back through the tunnel it came in (as IPv4's, `pipeline.rs`).
#[test]
fn a_pods_packet_too_big_for_the_external_interface_draws_packet_too_big_through_its_tunnel() {
    let mut t = seed_tables_dual();
    t.node.external_mtu = 1300;
    let mut w = worker_dual(1024);
    let udp = L4::Udp {
        src_port: 5353,
        dst_port: 53,
    };
    let big = pod_packet(udp, &[7; 1300 - 48 + 1]);
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, ENTROPY, &big);
    let (iface, out) = run(&mut w, &t, 1, &frame).expect("answered");
    assert_eq!(iface, Iface::Underlay);
    let eth = ethernet::Frame::new_checked(&out[..]).unwrap();
    assert_eq!((eth.dst(), eth.src()), (NODE3_MAC, NODE_MAC));
    let inner = &tunnel_back(&out)[..];
    assert!(checksums_verify_v6(inner));
    let ip = ipv6::Packet::new_checked(inner).unwrap();
    assert_eq!(
        (ip.src_bytes(), ip.dst_bytes()),
        (EGRESS_V6.to_be_bytes(), POD3_V6.to_be_bytes())
    );
    assert_eq!(inner.len(), 1280, "quoted up to IPv6's minimum MTU");
    let m = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (m.msg_type(), m.rest()),
        (icmpv6::Message::PacketTooBig, 1300)
    );
    assert_eq!(&m.data()[..40], &big[..40]);
    assert_eq!(
        w.counters
            .sessions_created
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // An ICMPv6 error is never answered with one; exactly the MTU leaves.
    let about = ipv6_packet(SERVER_V6, POD3_V6, 64, udp, &[0; 1300]);
    let error = icmpv6_error(POD3_V6, SERVER_V6, 1, 4, 0, &about);
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, ENTROPY, &error);
    assert_eq!(run(&mut w, &t, 1, &frame), Err(DropReason::EgressTooBig));
    let fits = pod_packet(udp, &[7; 1300 - 48]);
    assert_eq!(egress(&mut w, &t, &fits).len(), 1300);
}
