//! Replies find their owner (issue 16): a reply that reaches a member of the gateway set with
//! no session for it is sent once, in Geneve with the forwarding VNI, to the member that owns
//! its port's block; that member translates it as its own; a forwarded reply with no session
//! there is dropped and counted, never forwarded again. IPv6 replies the same way, over
//! either underlay: a set on the IPv6 underlay forwards in Geneve over IPv6, with the UDP
//! checksum Linux and OVS require there.

use gateway::drop::DropReason;
use gateway::nat::blocks::{BlockPlan, MemberId, Ownership, PortBlocks};
use gateway::nat::{NatConfig, SessionTable};
use gateway::pipeline::forward::FORWARD_VNI;
use gateway::pipeline::{Iface, Tables, Worker};
use gateway::testutil::*;
use gateway::wire::tcp::flags::{ACK, SYN};
use gateway::wire::{geneve, ipv6, udp};
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

fn plan() -> BlockPlan {
    BlockPlan::new(1024..=65535, 64).unwrap()
}

fn ownership() -> Ownership {
    Ownership::compute(plan(), &[1, 2], 1)
}

/// Member `me` of the set {1 (NODE_IP), 2 (NODE2_IP)}.
fn member(me: MemberId) -> (Worker, Tables) {
    let v4 = |a: u32| a.to_be_bytes().into();
    member_of(me, [v4(NODE_IP), v4(NODE2_IP)], seed_tables_dual())
}

/// Member `me` of a set whose members 1 and 2 are master-01 and master-02 at `addresses`,
/// with master-01's tables `t` (master-02's addresses and MAC in place for member 2).
fn member_of(me: MemberId, addresses: [IpAddr; 2], mut t: Tables) -> (Worker, Tables) {
    let table = SessionTable::new(NatConfig {
        max_sessions: 1024,
        max_sessions_v6: 1024,
        ..NatConfig::default()
    });
    let blocks = Arc::new(PortBlocks {
        ownership: ownership(),
        me,
        addresses: vec![(1, addresses[0]), (2, addresses[1])],
    });
    if me == 2 {
        t.node.node_ip = NODE2_IP;
        t.node.underlay_mac = NODE2_MAC;
        t.underlay.set_neighbor(NODE_IP, NODE_MAC);
        if t.node.node_ip6 != 0 {
            t.node.node_ip6 = NODE2_V6;
            t.ipv6.underlay.set_neighbor(NODE_V6, NODE_MAC);
        }
    }
    let mut nat = table.worker(0);
    nat.set_blocks(blocks);
    (Worker::new(nat), t)
}

fn reply(ext_port: u16) -> Vec<u8> {
    external_frame(&ipv4_packet(
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
    ))
}

/// Pod 10.133.0.3's SYN to the server from port 40000, or its IPv6 address's (`ipv6`).
fn pod_syn(ipv6: bool) -> Vec<u8> {
    let tcp = L4::Tcp {
        src_port: 40000,
        dst_port: 80,
        flags: SYN,
    };
    if ipv6 {
        ipv6_packet(POD3_V6, SERVER_V6, 64, tcp, b"")
    } else {
        ipv4_packet(POD3, SERVER_IP, 64, true, tcp, b"")
    }
}

/// The pod's flow (from its IPv6 address with `ipv6`), tunnelled by master-03 (over the
/// IPv6 underlay with `over_ipv6`), leaving through member 2: out by the external interface,
/// from a port of member 2's blocks, which it returns.
fn leaves_through_2(w2: &mut Worker, t2: &Tables, ipv6: bool, over_ipv6: bool) -> u16 {
    let syn = pod_syn(ipv6);
    let tunnelled = if over_ipv6 {
        readdress6(&geneve6_frame(NODE3_V6, NODE3_MAC, 5, &syn), NODE2_V6)
    } else {
        readdress(&geneve_frame(NODE3_IP, NODE3_MAC, 5, &syn), NODE2_IP)
    };
    let (iface, out) = run(w2, t2, 1, &tunnelled).unwrap();
    assert_eq!(iface, Iface::External);
    // Ethernet, the IP header (20 or 40 bytes), then the TCP source port.
    let ext_port = be16(&out, if ipv6 { 54 } else { 34 });
    assert_eq!(
        ownership().owner_of_port(ext_port),
        Some(2),
        "allocated from its own blocks"
    );
    ext_port
}

/// A port of `member`'s blocks.
fn port_of(member: MemberId) -> u16 {
    *plan()
        .ports(ownership().blocks_of(member).next().unwrap())
        .start()
}

#[test]
fn a_reply_for_another_members_port_is_forwarded_once_and_translated_there() {
    let (mut w1, t1) = member(1);
    let (mut w2, t2) = member(2);
    // The pod's flow leaves through member 2, from one of member 2's ports.
    let ext_port = leaves_through_2(&mut w2, &t2, false, false);

    // The router's ECMP hands the SYN-ACK to member 1, which has no session for it.
    let frame = reply(ext_port);
    let (iface, fwd) = run(&mut w1, &t1, 1, &frame).expect("forwarded");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(w1.counters.replies_forwarded.load(Relaxed), 1);
    assert_eq!(w1.counters.drops(DropReason::NoSession), 0);
    // Outer: to member 2's MAC and node IP, UDP 6081, Geneve with the forwarding VNI and no
    // options; inside, the reply exactly as it arrived.
    assert_eq!(&fwd[0..6], &NODE2_MAC.0);
    assert_eq!(&fwd[6..12], &NODE_MAC.0);
    assert_eq!((be32(&fwd, 26), be32(&fwd, 30)), (NODE_IP, NODE2_IP));
    assert!(ipv4_header_ok(&fwd[14..34]));
    assert_eq!(be16(&fwd, 36), geneve::UDP_PORT);
    assert_eq!(usize::from(be16(&fwd, 38)), fwd.len() - 34);
    let g = geneve::Header::new_checked(&fwd[42..]).unwrap();
    assert_eq!((g.vni(), g.header_len()), (FORWARD_VNI, 8));
    assert_eq!(&fwd[50..], &frame[..]);

    // Member 2 takes it as its own reply: un-NATed and tunnelled to the pod's node.
    let (iface, back) = run(&mut w2, &t2, 2, &fwd).expect("translated by the owner");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(be32(&back, 30), NODE3_IP);
    let inner = 14 + 20 + 8 + 16 + 14;
    assert_eq!(be32(&back, inner + 16), POD3);
    assert_eq!(be16(&back, inner + 22), 40000);
    assert!(checksums_verify(&back[inner..]));
    assert_eq!(w2.counters.replies_forwarded.load(Relaxed), 0);
}

#[test]
fn a_forwarded_reply_with_no_session_at_the_owner_is_dropped_not_forwarded_again() {
    let (mut w1, t1) = member(1);
    let (mut w2, t2) = member(2);
    let (_, fwd) = run(&mut w1, &t1, 1, &reply(port_of(2))).expect("forwarded");
    assert_eq!(
        run(&mut w2, &t2, 1, &fwd).unwrap_err(),
        DropReason::ForwardedNoSession
    );
    assert_eq!(w2.counters.replies_forwarded.load(Relaxed), 0);
    // Even one that arrives at a member that does not own the port (a stale ownership).
    let to_1 = readdress(&fwd, NODE_IP);
    assert_eq!(
        run(&mut w1, &t1, 1, &to_1).unwrap_err(),
        DropReason::ForwardedNoSession
    );
    assert_eq!(w1.counters.replies_forwarded.load(Relaxed), 1);
}

#[test]
fn a_reply_for_this_members_own_port_with_no_session_is_a_counted_drop() {
    let (mut w1, t1) = member(1);
    assert_eq!(
        run(&mut w1, &t1, 1, &reply(port_of(1))).unwrap_err(),
        DropReason::NoSession
    );
    // Without failover nothing is forwarded either.
    let mut plain = worker(64);
    assert_eq!(
        run(&mut plain, &seed_tables(), 1, &reply(port_of(2))).unwrap_err(),
        DropReason::NoSession
    );
}

#[test]
fn a_forwarded_frame_to_no_egress_ip_or_unresolved_owner_is_named() {
    let (mut w1, t1) = member(1);
    let (mut w2, mut t2) = member(2);
    let (_, mut fwd) = run(&mut w1, &t1, 1, &reply(port_of(2))).expect("forwarded");
    // The inner destination rewritten to an address member 2 does not serve.
    let inner_ip = 50 + 14;
    fwd[inner_ip + 16..inner_ip + 20].copy_from_slice(&SERVER_IP.to_be_bytes());
    let sum = ipv4_checksum(&fwd[inner_ip..inner_ip + 20]);
    fwd[inner_ip + 10..inner_ip + 12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        run(&mut w2, &t2, 1, &fwd).unwrap_err(),
        DropReason::NotForGateway
    );
    // Member 1 not yet resolved at member 2: the forward waits for the neighbour.
    t2.underlay = {
        let mut fib = gateway::pipeline::Fib::new(ip(192, 168, 99, 0), 24, Some(ROUTER_IP));
        fib.set_neighbor(ROUTER_IP, ROUTER_MAC);
        fib
    };
    assert_eq!(
        run(&mut w2, &t2, 1, &reply(port_of(1))).unwrap_err(),
        DropReason::NeighborUnresolved
    );
}

/// `frame` with its outer IPv4 destination set to `dst`.
fn readdress(frame: &[u8], dst: u32) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[30..34].copy_from_slice(&dst.to_be_bytes());
    let sum = ipv4_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The IPv4 header checksum of `h` (20 bytes) with its checksum field taken as zero.
fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for i in (0..20).step_by(2) {
        if i != 10 {
            s += u32::from(be16(h, i));
        }
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn ipv4_header_ok(h: &[u8]) -> bool {
    ipv4_checksum(h) == be16(h, 10)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn in_a_gateway_set_a_mid_stream_segment_of_either_family_never_makes_a_session() {
    let tcp = |flags| L4::Tcp {
        src_port: 40001,
        dst_port: 80,
        flags,
    };
    let v4 = |flags| ipv4_packet(POD3, SERVER_IP, 64, true, tcp(flags), b"data");
    let v6 = |flags| ipv6_packet(POD3_V6, SERVER_V6, 64, tcp(flags), b"data");
    let families: [&dyn Fn(u8) -> Vec<u8>; 2] = [&v4, &v6];
    for (family, packet) in families.into_iter().enumerate() {
        let (mut w1, t1) = member(1);
        let segment = |flags| geneve_frame(NODE3_IP, NODE3_MAC, 5, &packet(flags));
        assert_eq!(
            run(&mut w1, &t1, 1, &segment(ACK)).unwrap_err(),
            DropReason::MidStreamNoSession,
            "family {family}"
        );
        assert_eq!(w1.counters.sessions_created.load(Relaxed), 0);
        // A SYN does, and then the flow's segments pass.
        assert!(run(&mut w1, &t1, 1, &segment(SYN)).is_ok());
        assert!(run(&mut w1, &t1, 1, &segment(ACK)).is_ok());
        // Alone (no gateway set), a mid-stream segment is taken up, as conntrack's loose
        // mode does.
        let mut plain = worker_dual(64);
        assert!(run(&mut plain, &seed_tables_dual(), 1, &segment(ACK)).is_ok());
    }
}

fn reply6(ext_port: u16) -> Vec<u8> {
    external_frame(&ipv6_packet(
        SERVER_V6,
        EGRESS_V6,
        63,
        L4::Tcp {
            src_port: 80,
            dst_port: ext_port,
            flags: SYN | ACK,
        },
        b"",
    ))
}

#[test]
fn an_ipv6_reply_for_another_members_port_is_forwarded_once_and_translated_there() {
    let (mut w1, t1) = member(1);
    let (mut w2, t2) = member(2);
    let ext_port = leaves_through_2(&mut w2, &t2, true, false);

    // Member 1 has no session: the reply goes to member 2 in Geneve over IPv4, untouched.
    let frame = reply6(ext_port);
    let (iface, fwd) = run(&mut w1, &t1, 1, &frame).expect("forwarded");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(w1.counters.replies_forwarded.load(Relaxed), 1);
    assert_eq!(&fwd[0..6], &NODE2_MAC.0);
    assert_eq!((be32(&fwd, 26), be32(&fwd, 30)), (NODE_IP, NODE2_IP));
    assert!(ipv4_header_ok(&fwd[14..34]));
    assert_eq!(usize::from(be16(&fwd, 16)), fwd.len() - 14);
    assert_eq!(usize::from(be16(&fwd, 38)), fwd.len() - 34);
    let g = geneve::Header::new_checked(&fwd[42..]).unwrap();
    assert_eq!((g.vni(), g.header_len()), (FORWARD_VNI, 8));
    assert_eq!(&fwd[50..], &frame[..]);

    // Member 2 un-NATs it and tunnels it to the pod's node.
    let (iface, back) = run(&mut w2, &t2, 2, &fwd).expect("translated by the owner");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(be32(&back, 30), NODE3_IP);
    let inner = 14 + 20 + 8 + 16 + 14;
    assert_eq!(&back[inner + 24..inner + 40], &POD3_V6.to_be_bytes());
    assert_eq!(be16(&back, inner + 42), 40000);
    assert!(checksums_verify_v6(&back[inner..]));
    assert_eq!(w2.counters.replies_forwarded.load(Relaxed), 0);
}

#[test]
fn an_ipv6_reply_is_never_forwarded_twice_nor_for_an_own_port() {
    let (mut w1, t1) = member(1);
    let (mut w2, t2) = member(2);
    let (_, fwd) = run(&mut w1, &t1, 1, &reply6(port_of(2))).expect("forwarded");
    assert_eq!(
        run(&mut w2, &t2, 1, &fwd).unwrap_err(),
        DropReason::ForwardedNoSession
    );
    assert_eq!(w2.counters.replies_forwarded.load(Relaxed), 0);
    assert_eq!(
        run(&mut w1, &t1, 1, &reply6(port_of(1))).unwrap_err(),
        DropReason::NoSession
    );
    // A forwarded IPv6 frame to an address member 2 does not serve.
    let mut stray = fwd.clone();
    let inner_ip = 50 + 14;
    stray[inner_ip + 24..inner_ip + 40].copy_from_slice(&SERVER_V6.to_be_bytes());
    assert_eq!(
        run(&mut w2, &t2, 1, &stray).unwrap_err(),
        DropReason::NotForGateway
    );
}

/// Member `me` of the set {1 (NODE_V6), 2 (NODE2_V6)} on the IPv6 underlay (each node with
/// its IPv4 address too, as a dual-stack underlay has).
fn member6(me: MemberId) -> (Worker, Tables) {
    let v6 = |a: u128| a.to_be_bytes().into();
    member_of(me, [v6(NODE_V6), v6(NODE2_V6)], seed_tables_underlay6())
}

/// `frame` (Geneve over IPv6) with its outer destination set to `dst`, the UDP checksum
/// filled again.
fn readdress6(frame: &[u8], dst: u128) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[38..54].copy_from_slice(&dst.to_be_bytes());
    let src: [u8; 16] = f[22..38].try_into().unwrap();
    udp::Packet::new_checked(&mut f[54..])
        .unwrap()
        .fill_checksum_v6(&src, &dst.to_be_bytes());
    f
}

/// The forwarding tunnel over IPv6 from member 1 to member 2: every outer field, the UDP
/// checksum verified from scratch; returns the frame inside.
fn forwarded6(fwd: &[u8]) -> &[u8] {
    assert_eq!(&fwd[0..6], &NODE2_MAC.0);
    assert_eq!(&fwd[6..12], &NODE_MAC.0);
    assert_eq!(be16(fwd, 12), 0x86dd);
    let outer = ipv6::Packet::new_checked(&fwd[14..]).unwrap();
    assert_eq!(
        (outer.src_bytes(), outer.dst_bytes()),
        (NODE_V6.to_be_bytes(), NODE2_V6.to_be_bytes())
    );
    assert_eq!((outer.next_header(), outer.hop_limit()), (17, 64));
    assert_eq!(usize::from(outer.payload_len()), fwd.len() - 54);
    let u = udp::Packet::new_checked(outer.payload()).unwrap();
    assert_eq!(u.dst_port(), geneve::UDP_PORT);
    assert_ne!(u.checksum(), 0);
    assert!(u.verify_checksum_v6(&outer.src_bytes(), &outer.dst_bytes()));
    let g = geneve::Header::new_checked(&fwd[62..]).unwrap();
    assert_eq!((g.vni(), g.header_len()), (FORWARD_VNI, 8));
    &fwd[70..]
}

#[test]
fn on_the_ipv6_underlay_a_reply_is_forwarded_over_ipv6_and_goes_back_over_it() {
    let (mut w1, t1) = member6(1);
    let (mut w2, t2) = member6(2);
    let ext_port = leaves_through_2(&mut w2, &t2, true, true);

    let frame = reply6(ext_port);
    let (iface, fwd) = run(&mut w1, &t1, 1, &frame).expect("forwarded");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(w1.counters.replies_forwarded.load(Relaxed), 1);
    assert_eq!(forwarded6(&fwd), &frame[..]);

    // Member 2 un-NATs it and tunnels it to the pod's node over IPv6.
    let (iface, back) = run(&mut w2, &t2, 2, &fwd).expect("translated by the owner");
    assert_eq!(iface, Iface::Underlay);
    let outer = ipv6::Packet::new_checked(&back[14..]).unwrap();
    assert_eq!(
        (outer.src_bytes(), outer.dst_bytes()),
        (NODE2_V6.to_be_bytes(), NODE3_V6.to_be_bytes())
    );
    let u = udp::Packet::new_checked(outer.payload()).unwrap();
    assert!(u.verify_checksum_v6(&outer.src_bytes(), &outer.dst_bytes()));
    let inner = 14 + 40 + 8 + 16 + 14;
    assert_eq!(&back[inner + 24..inner + 40], &POD3_V6.to_be_bytes());
    assert_eq!(be16(&back, inner + 42), 40000);
    assert!(checksums_verify_v6(&back[inner..]));
    assert_eq!(w2.counters.replies_forwarded.load(Relaxed), 0);

    // A forwarded reply with no session at the owner is dropped, never sent on.
    let free = port_of(2) + 5;
    assert_ne!(free, ext_port);
    let (_, stray) = run(&mut w1, &t1, 1, &reply6(free)).expect("forwarded");
    assert_eq!(
        run(&mut w2, &t2, 1, &stray).unwrap_err(),
        DropReason::ForwardedNoSession
    );
}

/// A dual-stack underlay whose set runs over IPv6: an IPv4 pod's flow (over the IPv4
/// underlay) has its reply forwarded over IPv6, and the owner takes it, though a pod's own
/// IPv4 packet over the IPv6 underlay stays a named drop.
#[test]
fn on_the_ipv6_underlay_an_ipv4_reply_is_forwarded_and_translated_too() {
    let (mut w1, t1) = member6(1);
    let (mut w2, t2) = member6(2);
    let ext_port = leaves_through_2(&mut w2, &t2, false, false);
    let frame = reply(ext_port);
    let (_, fwd) = run(&mut w1, &t1, 1, &frame).expect("forwarded");
    assert_eq!(forwarded6(&fwd), &frame[..]);
    let (iface, back) = run(&mut w2, &t2, 2, &fwd).expect("translated by the owner");
    assert_eq!(iface, Iface::Underlay);
    assert_eq!(be32(&back, 30), NODE3_IP);
    let inner = 14 + 20 + 8 + 16 + 14;
    assert_eq!(be32(&back, inner + 16), POD3);
    assert!(checksums_verify(&back[inner..]));
    // The pod's packet itself over the IPv6 underlay.
    let syn = pod_syn(false);
    let pod6 = readdress6(&geneve6_frame(NODE3_V6, NODE3_MAC, 5, &syn), NODE2_V6);
    assert_eq!(
        run(&mut w2, &t2, 1, &pod6).unwrap_err(),
        DropReason::Ipv4OverIpv6Underlay
    );
    // A forwarded IPv4 frame to no egress IP here.
    let mut stray = fwd.clone();
    let inner_ip = 70 + 14;
    stray[inner_ip + 16..inner_ip + 20].copy_from_slice(&SERVER_IP.to_be_bytes());
    let sum = ipv4_checksum(&stray[inner_ip..inner_ip + 20]);
    stray[inner_ip + 10..inner_ip + 12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        run(&mut w2, &t2, 1, &stray).unwrap_err(),
        DropReason::NotForGateway
    );
}

#[test]
fn over_ipv6_the_forward_counts_its_larger_header_against_the_mtu() {
    let (mut w1, mut t1) = member6(1);
    let (mut w4, mut t4) = member(1);
    let frame = reply(port_of(2));
    // Room for the IPv4 tunnel's 36 bytes over the reply, not for IPv6's 56.
    let mtu = (frame.len() - 14 + 14 + 36 + 10) as u16;
    t1.node.underlay_mtu = mtu;
    t4.node.underlay_mtu = mtu;
    assert!(run(&mut w4, &t4, 1, &frame).is_ok());
    assert_eq!(
        run(&mut w1, &t1, 1, &frame).unwrap_err(),
        DropReason::ForwardTooBig
    );
}

#[test]
fn a_reply_in_fragments_for_another_members_port_follows_its_first_there_cut_to_fit() {
    let (mut w1, t1) = member(1);
    let (mut w2, t2) = member(2);
    // The flow leaves through member 2; its first answer, 3000 bytes the server's stack cut
    // into three fragments, reaches member 1 before the session's replica does.
    let ext_port = leaves_through_2(&mut w2, &t2, false, false);
    let body: Vec<u8> = (0..3000).map(|i| (i * 13 + i / 256) as u8).collect();
    let l4 = L4::Tcp {
        src_port: 80,
        dst_port: ext_port,
        flags: ACK,
    };
    let answer = ipv4_packet(SERVER_IP, EGRESS_IP, 63, false, l4, &body);
    let fragments = fragments_of(&answer, 1480);
    let mut forwarded = Vec::new();
    for f in &fragments {
        for (iface, frame) in run_all(&mut w1, &t1, 1, &external_frame(f)).expect("forwarded") {
            // Within the underlay's MTU, though a 1500-byte fragment and the forwarding
            // tunnel's 64 bytes are not.
            assert_eq!(iface, Iface::Underlay);
            assert!(
                frame.len() - 14 <= usize::from(UNDERLAY_MTU),
                "{}",
                frame.len()
            );
            assert_eq!(be32(&frame, 30), NODE2_IP);
            forwarded.push(frame);
        }
    }
    assert_eq!(w1.counters.drops(DropReason::ForwardTooBig), 0);
    assert_eq!(w1.counters.drops(DropReason::FragmentNoFirst), 0);
    // Forwarded, not translated here.
    assert_eq!(w1.counters.fragments_translated.load(Relaxed), 0);
    assert_eq!(w1.counters.replies_forwarded.load(Relaxed), 3);
    // Member 2 translates every piece as its own reply, cut again to the pods' MTU.
    let mut pieces = Vec::new();
    for f in &forwarded {
        for (iface, back) in run_all(&mut w2, &t2, 2, f).expect("translated by the owner") {
            assert_eq!(iface, Iface::Underlay);
            assert_eq!(be32(&back, 30), NODE3_IP);
            pieces.push(back[14 + 20 + 8 + 16 + 14..].to_vec());
        }
    }
    let whole = reassemble(&pieces).expect("the pieces make one datagram");
    assert!(checksums_verify(&whole));
    assert_eq!((be32(&whole, 12), be32(&whole, 16)), (SERVER_IP, POD3));
    assert_eq!(be16(&whole, 22), 40000);
    assert_eq!(&whole[40..], &body[..]);
    assert_eq!(w2.counters.drops(DropReason::FragmentNoFirst), 0);
    assert_eq!(w2.counters.drops(DropReason::ForwardedNoSession), 0);
}
