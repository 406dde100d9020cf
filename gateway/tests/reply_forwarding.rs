//! Replies find their owner (issue 16): a reply that reaches a member of the gateway set with
//! no session for it is sent once, in Geneve with the forwarding VNI, to the member that owns
//! its port's block; that member translates it as its own; a forwarded reply with no session
//! there is dropped and counted, never forwarded again. IPv6 replies the same way (the
//! underlay stays IPv4).

use gateway::drop::DropReason;
use gateway::nat::blocks::{BlockPlan, MemberId, Ownership, PortBlocks};
use gateway::nat::{NatConfig, SessionTable};
use gateway::pipeline::forward::FORWARD_VNI;
use gateway::pipeline::{Iface, Tables, Worker};
use gateway::testutil::*;
use gateway::wire::geneve;
use gateway::wire::tcp::flags::{ACK, SYN};
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
    let table = SessionTable::new(NatConfig {
        max_sessions: 1024,
        max_sessions_v6: 1024,
        ..NatConfig::default()
    });
    let blocks = Arc::new(PortBlocks {
        ownership: ownership(),
        me,
        addresses: vec![(1, NODE_IP), (2, NODE2_IP)],
    });
    let mut t = seed_tables_dual();
    if me == 2 {
        t.node.node_ip = NODE2_IP;
        t.node.underlay_mac = NODE2_MAC;
        t.underlay.set_neighbor(NODE_IP, NODE_MAC);
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
    let syn = ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags: SYN,
        },
        b"",
    );
    let tunnelled = readdress(&geneve_frame(NODE3_IP, NODE3_MAC, 5, &syn), NODE2_IP);
    let (iface, out) = run(&mut w2, &t2, 1, &tunnelled).unwrap();
    assert_eq!(iface, Iface::External);
    let ext_port = be16(&out, 34);
    assert_eq!(
        ownership().owner_of_port(ext_port),
        Some(2),
        "allocated from its own blocks"
    );

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
    let syn = ipv6_packet(
        POD3_V6,
        SERVER_V6,
        64,
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags: SYN,
        },
        b"",
    );
    let tunnelled = readdress(&geneve_frame(NODE3_IP, NODE3_MAC, 5, &syn), NODE2_IP);
    let (iface, out) = run(&mut w2, &t2, 1, &tunnelled).unwrap();
    assert_eq!(iface, Iface::External);
    // Ethernet, IPv6 (40), then the TCP source port.
    let ext_port = be16(&out, 54);
    assert_eq!(ownership().owner_of_port(ext_port), Some(2));

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
