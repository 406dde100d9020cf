//! The pipeline as data (Katran style): an input frame, the expected action and output bytes.
//! Outputs are read back with etherparse as well as this crate's views.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use gateway::drop::DropReason;
use gateway::pipeline::{Iface, HEADROOM};
use gateway::testutil::*;
use gateway::wire::tcp::flags::{ACK, SYN};
use gateway::wire::{geneve, icmp, ipv4};
use std::sync::atomic::Ordering::Relaxed;

const ENTROPY: u16 = 51234;

/// A TCP segment from the server's port 80 to the egress IP (a reply, as the router delivers it).
fn from_server(dst_port: u16, flags: u8, dont_frag: bool, payload: &[u8]) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port: 80,
        dst_port,
        flags,
    };
    ipv4_packet(SERVER_IP, EGRESS_IP, 64, dont_frag, l4, payload)
}

fn pod_tcp(flags: u8) -> Vec<u8> {
    ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags,
        },
        b"GET / HTTP/1.1\r\n\r\n",
    )
}

fn from_pod(inner: &[u8]) -> Vec<u8> {
    geneve_frame(NODE3_IP, NODE3_MAC, ENTROPY, inner)
}

/// The egress output's IPv4 packet (after the 14-byte Ethernet header).
fn egress(
    w: &mut gateway::pipeline::Worker,
    t: &gateway::pipeline::Tables,
    inner: &[u8],
) -> Vec<u8> {
    let (iface, out) = run(w, t, 1, &from_pod(inner)).expect("forwarded");
    assert_eq!(iface, Iface::External);
    out
}

#[test]
fn egress_tcp_syn_leaves_with_the_egress_ip() {
    let t = seed_tables();
    let mut w = worker(1024);
    let out = egress(&mut w, &t, &pod_tcp(SYN));
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else {
        panic!("ethernet")
    };
    assert_eq!(eth.destination(), ROUTER_MAC.0);
    assert_eq!(eth.source(), NODE_MAC.0);
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("ipv4")
    };
    assert_eq!(ip.header().source(), EGRESS_IP.to_be_bytes());
    assert_eq!(ip.header().destination(), SERVER_IP.to_be_bytes());
    assert_eq!(ip.header().ttl(), 63);
    let Some(TransportSlice::Tcp(tcp)) = p.transport else {
        panic!("tcp")
    };
    assert_eq!(tcp.destination_port(), 80);
    assert!(w.nat.ports().contains(tcp.source_port()));
    assert_eq!(tcp.payload(), b"GET / HTTP/1.1\r\n\r\n");
    assert!(checksums_verify(&out[14..]));
    assert_eq!(
        w.counters
            .sessions_created
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn reply_is_unnatted_and_tunnelled_back_mirrored() {
    let t = seed_tables();
    let mut w = worker(1024);
    let out = egress(&mut w, &t, &pod_tcp(SYN));
    let ext_port = u16::from_be_bytes([out[34], out[35]]);
    let reply = ipv4_packet(
        SERVER_IP,
        EGRESS_IP,
        63,
        true,
        L4::Tcp {
            src_port: 80,
            dst_port: ext_port,
            flags: SYN | ACK,
        },
        b"",
    );
    let (iface, back) = run(&mut w, &t, 2, &external_frame(&reply)).expect("forwarded");
    assert_eq!(iface, Iface::Underlay);
    let inner_frame = tunnel_back(&back);
    let inner = SlicedPacket::from_ethernet(&inner_frame).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(ieth)) = inner.link else {
        panic!()
    };
    assert_eq!(
        (ieth.source(), ieth.destination()),
        (TRANSIT1_MAC.0, TRANSIT3_MAC.0)
    );
    let Some(NetSlice::Ipv4(iip)) = inner.net else {
        panic!()
    };
    assert_eq!(iip.header().source(), SERVER_IP.to_be_bytes());
    assert_eq!(iip.header().destination(), POD3.to_be_bytes());
    assert_eq!(iip.header().ttl(), 62);
    let Some(TransportSlice::Tcp(tcp)) = inner.transport else {
        panic!()
    };
    assert_eq!((tcp.source_port(), tcp.destination_port()), (80, 40000));
    assert!(checksums_verify(&inner_frame[14..]));
}

/// The inner frame of a frame tunnelled back to master-03, its tunnel checked: outer
/// Ethernet to master-03, IPv4 node -> master-03 with DF, UDP entropy -> 6081, the same VNI,
/// OVN ports swapped (the inner MACs are the caller's to check).
fn tunnel_back(back: &[u8]) -> Vec<u8> {
    let p = SlicedPacket::from_ethernet(back).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else {
        panic!()
    };
    assert_eq!((eth.source(), eth.destination()), (NODE_MAC.0, NODE3_MAC.0));
    let Some(NetSlice::Ipv4(oip)) = p.net else {
        panic!()
    };
    assert_eq!(oip.header().source(), NODE_IP.to_be_bytes());
    assert_eq!(oip.header().destination(), NODE3_IP.to_be_bytes());
    assert!(oip.header().dont_fragment());
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!()
    };
    assert_eq!((u.source_port(), u.destination_port()), (ENTROPY, 6081));
    assert!(checksums_verify(&back[14..]));
    let g = geneve::Header::new_checked(u.payload()).unwrap();
    assert_eq!(g.vni(), geneve::OVN_TRANSIT_VNI);
    assert_eq!(g.ovn_ports(), Some((OVN_PORTS.1, OVN_PORTS.0)));
    g.payload().to_vec()
}

#[test]
fn udp_and_ping_round_trip() {
    let t = seed_tables();
    let mut w = worker(1024);
    for l4 in [
        L4::Udp {
            src_port: 5353,
            dst_port: 53,
        },
        L4::Echo {
            request: true,
            ident: 4,
            seq: 1,
        },
    ] {
        let out = egress(
            &mut w,
            &t,
            &ipv4_packet(POD2, SERVER_IP, 64, false, l4, b"abcd"),
        );
        assert!(checksums_verify(&out[14..]));
        assert_eq!(
            ipv4::Packet::new_checked(&out[14..]).unwrap().src(),
            EGRESS_IP
        );
        // UDP source port at 34, echo identifier at 38.
        let (reply_l4, pod_port, port_at) = match l4 {
            L4::Udp { src_port, dst_port } => (
                L4::Udp {
                    src_port: dst_port,
                    dst_port: u16::from_be_bytes([out[34], out[35]]),
                },
                src_port,
                22,
            ),
            L4::Echo { ident, seq, .. } => (
                L4::Echo {
                    request: false,
                    ident: u16::from_be_bytes([out[38], out[39]]),
                    seq,
                },
                ident,
                24,
            ),
            L4::Tcp { .. } => unreachable!(),
        };
        let reply = ipv4_packet(SERVER_IP, EGRESS_IP, 64, false, reply_l4, b"dcba");
        let (_, back) = run(&mut w, &t, 2, &external_frame(&reply)).expect("reply forwarded");
        let inner = &back[14 + 20 + 8 + 16 + 14..];
        assert!(checksums_verify(inner));
        assert_eq!(ipv4::Packet::new_checked(inner).unwrap().dst(), POD2);
        assert_eq!(
            u16::from_be_bytes([inner[port_at], inner[port_at + 1]]),
            pod_port
        );
    }
}

#[test]
fn icmp_frag_needed_from_the_outside_reaches_the_pod_translated() {
    let t = seed_tables();
    let mut w = worker(1024);
    let out = egress(&mut w, &t, &pod_tcp(ACK));
    // A router on the way says: too big, MTU 1280, quoting our translated packet.
    let err = icmp_error(
        ip(192, 168, 55, 12),
        EGRESS_IP,
        icmp::Message::DstUnreachable,
        4,
        1280,
        &out[14..],
    );
    let (iface, back) = run(&mut w, &t, 2, &external_frame(&err)).expect("translated");
    assert_eq!(iface, Iface::Underlay);
    let inner = &back[14 + 20 + 8 + 16 + 14..];
    assert!(checksums_verify(inner));
    let i = ipv4::Packet::new_checked(inner).unwrap();
    assert_eq!(i.dst(), POD3);
    let m = icmp::Packet::new_checked(i.payload()).unwrap();
    assert_eq!(m.next_hop_mtu(), 1280);
    let emb = ipv4::Packet::new_unchecked(m.data());
    assert_eq!((emb.src(), emb.dst()), (POD3, SERVER_IP));
    assert_eq!(u16::from_be_bytes([m.data()[20], m.data()[21]]), 40000);
}

#[test]
fn icmp_port_unreachable_from_the_pod_leaves_translated() {
    let t = seed_tables();
    let mut w = worker(1024);
    let out = egress(
        &mut w,
        &t,
        &ipv4_packet(
            POD3,
            SERVER_IP,
            64,
            false,
            L4::Udp {
                src_port: 7000,
                dst_port: 7001,
            },
            b"x",
        ),
    );
    let ext = u16::from_be_bytes([out[34], out[35]]);
    // The reply as the pod received it (after un-NAT), then the pod's port-unreachable about it.
    let reply_seen_by_pod = ipv4_packet(
        SERVER_IP,
        POD3,
        62,
        false,
        L4::Udp {
            src_port: 7001,
            dst_port: 7000,
        },
        b"y",
    );
    let err = icmp_error(
        POD3,
        SERVER_IP,
        icmp::Message::DstUnreachable,
        3,
        0,
        &reply_seen_by_pod,
    );
    let out = egress(&mut w, &t, &err);
    assert!(checksums_verify(&out[14..]));
    let o = ipv4::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!((o.src(), o.dst()), (EGRESS_IP, SERVER_IP));
    let m = icmp::Packet::new_checked(o.payload()).unwrap();
    let emb = ipv4::Packet::new_unchecked(m.data());
    assert_eq!((emb.src(), emb.dst()), (SERVER_IP, EGRESS_IP));
    assert_eq!(u16::from_be_bytes([m.data()[22], m.data()[23]]), ext);
}

#[test]
fn too_big_reply_gets_frag_needed_when_df_else_is_cut_to_fit() {
    // The pods' MTU (1400) binds first; with it out of the way, the underlay's less the
    // tunnel (1442).
    for (pod_mtu, limit) in [(POD_MTU, POD_MTU), (UNDERLAY_MTU, UNDERLAY_MTU - 58)] {
        let mut t = seed_tables();
        t.node.pod_mtu = pod_mtu;
        let mut w = worker(1024);
        let out = egress(&mut w, &t, &pod_tcp(SYN));
        let ext = u16::from_be_bytes([out[34], out[35]]);
        let big = vec![0x55u8; 1460];
        let reply = from_server(ext, ACK, true, &big);
        let (iface, icmp_out) = run(&mut w, &t, 2, &external_frame(&reply)).expect("answered");
        assert_eq!(iface, Iface::External);
        assert!(checksums_verify(&icmp_out[14..]));
        let o = ipv4::Packet::new_checked(&icmp_out[14..]).unwrap();
        assert_eq!((o.src(), o.dst()), (EGRESS_IP, SERVER_IP));
        let m = icmp::Packet::new_checked(o.payload()).unwrap();
        assert_eq!(
            (m.msg_type(), m.code()),
            (icmp::Message::DstUnreachable, icmp::CODE_FRAG_NEEDED)
        );
        assert_eq!(m.next_hop_mtu(), limit);
        assert_eq!(&icmp_out[0..6], &ROUTER_MAC.0);
        assert_eq!(w.counters.icmp_frag_needed_sent.load(Relaxed), 1);
        // The same size without DF is cut into two pieces that fit (pipeline_fragments.rs
        // has the pieces put back together).
        let reply = from_server(ext, ACK, false, &big);
        let pieces = run_all(&mut w, &t, 2, &external_frame(&reply)).unwrap();
        assert_eq!(pieces.len(), 2);
        for (iface, piece) in &pieces {
            assert_eq!(*iface, Iface::Underlay);
            assert!(piece.len() <= 14 + 58 + usize::from(limit));
        }
        assert_eq!(w.counters.replies_fragmented.load(Relaxed), 1);
        // The limit itself fits.
        let fits = vec![0u8; usize::from(limit) - 40];
        let reply = from_server(ext, ACK, true, &fits);
        let (iface, back) = run(&mut w, &t, 2, &external_frame(&reply)).unwrap();
        assert_eq!(
            (iface, back.len()),
            (Iface::Underlay, 14 + 58 + usize::from(limit))
        );
    }
}

#[test]
fn fails_closed_without_mapping_and_counts() {
    let t = seed_tables();
    let mut w = worker(1024);
    let stranger = ipv4_packet(
        ip(10, 133, 0, 99),
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 1,
            dst_port: 80,
            flags: SYN,
        },
        b"",
    );
    assert_eq!(
        run(&mut w, &t, 1, &from_pod(&stranger)),
        Err(DropReason::NoEgressMapping)
    );
    assert_eq!(w.counters.drops(DropReason::NoEgressMapping), 1);
    // A reply to the egress IP with no session is dropped too.
    let stray = from_server(2000, ACK, true, b"");
    assert_eq!(
        run(&mut w, &t, 1, &external_frame(&stray)),
        Err(DropReason::NoSession)
    );
}

#[test]
fn unresolved_next_hop_is_counted() {
    let mut t = seed_tables();
    t.external.remove_neighbor(ROUTER_IP);
    let mut w = worker(1024);
    assert_eq!(
        run(&mut w, &t, 1, &from_pod(&pod_tcp(SYN))),
        Err(DropReason::NeighborUnresolved)
    );
    assert_eq!(w.counters.drops(DropReason::NeighborUnresolved), 1);
}

#[test]
fn mapping_change_moves_new_flows_only() {
    let mut t = seed_tables();
    let mut w = worker(1024);
    let first = egress(&mut w, &t, &pod_tcp(SYN));
    let other = ip(192, 168, 66, 101);
    t.egress.serve(other);
    t.egress.set(POD3, other);
    // The established flow keeps its egress IP; a new flow takes the new one.
    let again = egress(&mut w, &t, &pod_tcp(ACK));
    assert_eq!(again[26..30], first[26..30]);
    let new_flow = ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 40001,
            dst_port: 80,
            flags: SYN,
        },
        b"",
    );
    let out = egress(&mut w, &t, &new_flow);
    assert_eq!(out[26..30], other.to_be_bytes());
}

#[test]
fn batch_matches_one_by_one() {
    let t = seed_tables();
    let mut one = worker(1024);
    let mut batch = worker(1024);
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            let pod = if i % 2 == 0 { POD3 } else { ip(10, 1, 1, 1) };
            from_pod(&ipv4_packet(
                pod,
                SERVER_IP,
                64,
                true,
                L4::Tcp {
                    src_port: 1000 + i,
                    dst_port: 80,
                    flags: SYN,
                },
                b"",
            ))
        })
        .collect();
    let expected: Vec<_> = frames
        .iter()
        .map(|f| run(&mut one, &t, 1, f).map(|(i, b)| (i, b.len())))
        .collect();
    // One shared buffer of 2 KiB chunks, as a UMEM is.
    let mut umem = vec![0u8; 64 * 2048];
    let fs: Vec<_> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let start = i * 2048 + HEADROOM;
            umem[start..start + f.len()].copy_from_slice(f);
            gateway::pipeline::Frame {
                start,
                len: f.len(),
                headroom: HEADROOM,
            }
        })
        .collect();
    let mut actions = [gateway::pipeline::Action::Drop(DropReason::FrameTruncated); 64];
    batch.process_batch(&mut umem, &fs, &t, 1, &mut actions);
    let got: Vec<_> = actions
        .iter()
        .map(|a| match a {
            gateway::pipeline::Action::Transmit(o) => Ok((o.iface, o.len)),
            gateway::pipeline::Action::Drop(r) => Err(*r),
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(batch.counters.drops(DropReason::NoEgressMapping), 32);
}

#[test]
fn reply_without_headroom_is_a_counted_drop_not_an_overwrite() {
    let t = seed_tables();
    let mut w = worker(1024);
    let out = egress(&mut w, &t, &pod_tcp(SYN));
    let ext_port = u16::from_be_bytes([out[34], out[35]]);
    let reply = external_frame(&from_server(ext_port, ACK, true, b""));
    // The frame sits at offset 64 of the buffer, but only 16 bytes before it are its own.
    let (mut buf, start, len) = with_headroom(&reply);
    let before = buf.clone();
    let frame = gateway::pipeline::Frame {
        start,
        len,
        headroom: 16,
    };
    assert_eq!(
        w.process(&mut buf, frame, &t, 2),
        gateway::pipeline::Action::Drop(DropReason::NoHeadroom)
    );
    assert_eq!(
        buf[..start],
        before[..start],
        "bytes before the frame's headroom were written"
    );
    assert_eq!(w.counters.drops(DropReason::NoHeadroom), 1);
}

/// With the pod's node known (the watcher sends it), a new flow of the pod is accepted only
/// through that node's tunnel: another node cannot borrow the pod's egress IP by using its
/// address. Without a node entry, any node's tunnel is accepted (as before).
#[test]
fn pod_node_entry_admits_only_that_nodes_tunnel() {
    let mut tables = seed_tables();
    tables.egress.set_node(POD3, NODE2_IP.to_be_bytes().into());
    let mut w = worker(1000);
    let frame = from_pod(&pod_tcp(SYN));
    assert_eq!(
        run(&mut w, &tables, 1, &frame).unwrap_err(),
        DropReason::PodWrongNode
    );
    assert_eq!(w.counters.drops(DropReason::PodWrongNode), 1);
    tables.egress.set_node(POD3, NODE3_IP.to_be_bytes().into());
    let (iface, _) = run(&mut w, &tables, 1, &frame).expect("from its own node");
    assert_eq!(iface, Iface::External);
}

#[test]
fn reply_to_a_node_missing_from_the_neighbour_table_goes_to_the_mac_its_flow_came_from() {
    let mut t = seed_tables();
    t.underlay.remove_neighbor(NODE3_IP);
    let mut w = worker(1024);
    let out = egress(&mut w, &t, &pod_tcp(SYN));
    let ext_port = u16::from_be_bytes([out[34], out[35]]);
    let reply = external_frame(&from_server(ext_port, SYN | ACK, true, b""));
    let (iface, back) = run(&mut w, &t, 2, &reply).expect("tunnelled back");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(back[..6], NODE3_MAC.0, "to the MAC the flow came from");
    assert_eq!(back[6..12], NODE_MAC.0);
    let c = &w.counters;
    assert_eq!(c.next_hop_from_flow.load(Relaxed), 1);
    // The kernel is still asked to resolve the node.
    assert_eq!(c.unresolved.load(Relaxed), NODE3_IP);
    assert_eq!(c.drops(DropReason::NeighborUnresolved), 0);

    // A node off the underlay's link: its frames came from the last router, which need not be
    // the way back, so an unresolved gateway is still a drop.
    let mut t = seed_tables();
    t.underlay.remove_neighbor(ROUTER_IP);
    let mut w = worker(1024);
    let far_node = ip(10, 9, 9, 9);
    let first = geneve_frame(far_node, NODE2_MAC, ENTROPY, &pod_tcp(SYN));
    let (_, out) = run(&mut w, &t, 1, &first).expect("forwarded");
    let ext_port = u16::from_be_bytes([out[34], out[35]]);
    let reply = external_frame(&from_server(ext_port, SYN | ACK, true, b""));
    assert_eq!(
        run(&mut w, &t, 2, &reply),
        Err(DropReason::NeighborUnresolved)
    );
    assert_eq!(w.counters.unresolved.load(Relaxed), ROUTER_IP);
    assert_eq!(w.counters.next_hop_from_flow.load(Relaxed), 0);
}

/// Replication hears of a session's creation and of each TCP state change, and of nothing
/// else: established packets cost the sync queue nothing.
#[test]
fn a_replicating_worker_reports_new_sessions_and_state_changes_only() {
    use gateway::mailbox::sync_queue::{SyncEvent, SyncQueue};
    use gateway::nat::{NatConfig, SessionTable};
    let table = SessionTable::new(NatConfig {
        max_sessions: 1024,
        ..NatConfig::default()
    });
    let queue = SyncQueue::new(64);
    let mut w = gateway::pipeline::Worker::new(table.worker(0).with_events(queue.clone()));
    let t = seed_tables();
    let out = egress(&mut w, &t, &pod_tcp(SYN));
    let ext_port = u16::from_be_bytes([out[34], out[35]]);
    let mut events = Vec::new();
    queue.drain_into(&mut events, 64);
    let [SyncEvent::Upsert { slot, .. }] = events[..] else {
        panic!("one upsert for the new session: {events:?}")
    };
    run(
        &mut w,
        &t,
        2,
        &external_frame(&from_server(ext_port, SYN | ACK, true, b"")),
    )
    .unwrap();
    egress(&mut w, &t, &pod_tcp(ACK));
    events.clear();
    queue.drain_into(&mut events, 64);
    assert!(!events.is_empty(), "the handshake changed the TCP state");
    assert!(events
        .iter()
        .all(|e| matches!(e, SyncEvent::Upsert { slot: s, .. } if *s == slot)));
    for _ in 0..10 {
        egress(&mut w, &t, &pod_tcp(ACK));
        run(
            &mut w,
            &t,
            2,
            &external_frame(&from_server(ext_port, ACK, true, b"x")),
        )
        .unwrap();
    }
    assert!(queue.is_empty(), "established packets report nothing");
}

/// A pod's packet larger than the external interface carries (a second interface with a
/// smaller MTU than the overlay's): the router on its path answers, so the gateway does, with
/// ICMP fragmentation-needed from the pod's egress IP, back through the tunnel it came in.
#[test]
fn a_pods_packet_too_big_for_the_external_interface_draws_frag_needed_through_its_tunnel() {
    let mut t = seed_tables();
    t.node.external_mtu = 1000;
    let mut w = worker(1024);
    let udp = L4::Udp {
        src_port: 5353,
        dst_port: 53,
    };
    let big = ipv4_packet(POD3, SERVER_IP, 64, true, udp, &[7; 1000 - 28 + 1]);
    assert_eq!(big.len(), 1001);
    let (iface, back) = run(&mut w, &t, 1, &from_pod(&big)).expect("answered");
    assert_eq!(iface, Iface::Underlay);
    // The tunnel back, as a reply's, the inner MACs swapped.
    let inner_frame = tunnel_back(&back);
    assert_eq!(
        &inner_frame[..12],
        &[TRANSIT3_MAC.0, TRANSIT1_MAC.0].concat()[..]
    );
    // Inside: ICMP from the egress IP to the pod, announcing the external MTU, quoting the
    // packet as the pod sent it, up to 576 bytes in all.
    let inner = &inner_frame[14..];
    assert!(checksums_verify(inner));
    let ip = ipv4::Packet::new_checked(inner).unwrap();
    assert_eq!((ip.src(), ip.dst()), (EGRESS_IP, POD3));
    assert_eq!(usize::from(ip.total_len()), 576);
    let m = icmp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (m.msg_type(), m.code(), m.next_hop_mtu()),
        (icmp::Message::DstUnreachable, icmp::CODE_FRAG_NEEDED, 1000)
    );
    assert_eq!(m.data(), &big[..576 - 28]);
    let c = &w.counters;
    assert_eq!(c.icmp_frag_needed_sent.load(Relaxed), 1);
    assert_eq!(c.sessions_created.load(Relaxed), 0, "no session for it");

    // Without DF it cannot be fragmented here; an ICMP error is never answered with one.
    let no_df = ipv4_packet(POD3, SERVER_IP, 64, false, udp, &[7; 1000 - 28 + 1]);
    assert_eq!(
        run(&mut w, &t, 1, &from_pod(&no_df)),
        Err(DropReason::EgressTooBig)
    );
    let about = ipv4_packet(SERVER_IP, POD3, 64, true, udp, b"");
    let error = icmp_error(POD3, SERVER_IP, icmp::Message::DstUnreachable, 3, 0, &about);
    let mut small = t.clone();
    small.node.external_mtu = (error.len() - 1) as u16;
    assert_eq!(
        run(&mut w, &small, 1, &from_pod(&error)),
        Err(DropReason::EgressTooBig)
    );
    // An unmapped pod gets nothing, the same as for any other packet.
    let stranger = ipv4_packet(POD3 + 1, SERVER_IP, 64, true, udp, &[7; 1000]);
    assert_eq!(
        run(&mut w, &t, 1, &from_pod(&stranger)),
        Err(DropReason::NoEgressMapping)
    );
    // Exactly the MTU leaves.
    let fits = ipv4_packet(POD3, SERVER_IP, 64, true, udp, &[7; 1000 - 28]);
    let (iface, out) = run(&mut w, &t, 1, &from_pod(&fits)).expect("forwarded");
    assert_eq!((iface, out.len()), (Iface::External, 14 + 1000));
}
