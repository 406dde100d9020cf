//! Malformed and hostile IPv6 frames (issue 17): replies from outside and pods' packets in
//! Geneve over either underlay, each a counted drop with its reason, never a panic, never a transmitted frame; and
//! arbitrary bytes behind IPv6's headers never panic.

use gateway::drop::DropReason::{self, *};
use gateway::testutil::*;
use gateway::wire::checksum;
use gateway::wire::ipv6::next_header as nh;
use gateway::wire::tcp::flags::SYN;
use proptest::prelude::*;

const TCP_SYN: L4 = L4::Tcp {
    src_port: 40000,
    dst_port: 443,
    flags: SYN,
};

const UDP_L4: L4 = L4::Udp {
    src_port: 443,
    dst_port: 2000,
};

/// A reply from the server to the egress IPv6 address.
fn reply(l4: L4) -> Vec<u8> {
    ipv6_packet(SERVER_V6, EGRESS_V6, 64, l4, b"payload!")
}

/// `ip` (an IPv6 packet) with `headers` (next header, body) inserted after its fixed header,
/// the chain and the payload length fixed up.
fn with_extensions(mut ip: Vec<u8>, headers: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut chain = Vec::new();
    let mut first = ip[6];
    for (kind, body) in headers.iter().rev() {
        let mut h = body.clone();
        h[0] = first;
        first = *kind;
        chain.splice(0..0, h);
    }
    ip[6] = first;
    ip.splice(40..40, chain);
    let payload = (ip.len() - 40) as u16;
    ip[4..6].copy_from_slice(&payload.to_be_bytes());
    ip
}

/// An 8-byte extension header of the options kind (hop-by-hop, destination options).
fn options() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

fn fragment(offset: u16, more: bool) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[2..4].copy_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h[4..8].copy_from_slice(&7u32.to_be_bytes());
    h
}

/// `ip` with its bytes changed by `f` (checksums left as they are: the checks aimed at come
/// first).
fn patched(mut ip: Vec<u8>, f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut ip);
    ip
}

fn pod(l4: L4) -> Vec<u8> {
    ipv6_packet(POD3_V6, SERVER_V6, 64, l4, b"payload!")
}

fn tunnel(inner: &[u8]) -> Vec<u8> {
    geneve_frame(NODE3_IP, NODE3_MAC, 50000, inner)
}

/// A Geneve frame with the outer IPv4 header's checksum made right after `f`.
fn tunnel_patched(inner: &[u8], f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = tunnel(inner);
    f(&mut b);
    b[24..26].fill(0);
    let c = checksum::checksum(&b[14..34]);
    b[24..26].copy_from_slice(&c.to_be_bytes());
    b
}

/// `ip` as the router delivers it, marked IPv6 whatever its first byte says.
fn ext(ip: &[u8]) -> Vec<u8> {
    let mut f = external_frame(ip);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f
}

fn cases() -> Vec<(&'static str, Vec<u8>, DropReason)> {
    let tcp = L4::Tcp {
        src_port: 443,
        dst_port: 2000,
        flags: SYN,
    };
    let echo_request = L4::Echo {
        request: true,
        ident: 1,
        seq: 1,
    };
    vec![
        (
            "cut inside Ethernet",
            ext(&reply(UDP_L4))[..13].to_vec(),
            FrameTruncated,
        ),
        (
            "cut at 10 bytes of IPv6",
            ext(&reply(UDP_L4))[..24].to_vec(),
            Ipv6Truncated,
        ),
        (
            "cut at 39 bytes of IPv6",
            ext(&reply(UDP_L4))[..53].to_vec(),
            Ipv6Truncated,
        ),
        (
            "payload length beyond the frame",
            ext(&patched(reply(UDP_L4), |b| {
                b[4..6].copy_from_slice(&[0x10, 0])
            })),
            Ipv6Truncated,
        ),
        (
            "version 4 under IPv6's type",
            ext(&patched(reply(UDP_L4), |b| b[0] = 0x45)),
            Ipv6Truncated,
        ),
        (
            "to an address not served",
            ext(&ipv6_packet(SERVER_V6, EGRESS_V6 + 1, 64, UDP_L4, b"")),
            NotForGateway,
        ),
        (
            "hop limit 1",
            ext(&ipv6_packet(SERVER_V6, EGRESS_V6, 1, UDP_L4, b"")),
            TtlExpired,
        ),
        (
            "hop limit 0",
            ext(&ipv6_packet(SERVER_V6, EGRESS_V6, 0, UDP_L4, b"")),
            TtlExpired,
        ),
        (
            "first fragment",
            ext(&with_extensions(
                reply(UDP_L4),
                &[(nh::FRAGMENT, fragment(0, true))],
            )),
            Fragment,
        ),
        (
            "a later fragment",
            ext(&with_extensions(
                reply(UDP_L4),
                &[(nh::FRAGMENT, fragment(185, false))],
            )),
            Fragment,
        ),
        (
            "hop-by-hop after destination options",
            ext(&with_extensions(
                reply(UDP_L4),
                &[
                    (nh::DESTINATION_OPTIONS, options()),
                    (nh::HOP_BY_HOP, options()),
                ],
            )),
            Ipv6ExtensionChain,
        ),
        (
            "an extension header overrunning the payload",
            ext(&patched(
                with_extensions(reply(UDP_L4), &[(nh::DESTINATION_OPTIONS, options())]),
                |b| b[41] = 200,
            )),
            Ipv6ExtensionChain,
        ),
        (
            "nine extension headers",
            ext(&with_extensions(
                reply(UDP_L4),
                &vec![(nh::DESTINATION_OPTIONS, options()); 9],
            )),
            Ipv6ExtensionChain,
        ),
        (
            "ESP",
            ext(&patched(reply(UDP_L4), |b| b[6] = nh::ESP)),
            Ipv6ExtensionChain,
        ),
        (
            "AH",
            ext(&patched(reply(UDP_L4), |b| b[6] = nh::AH)),
            Ipv6ExtensionChain,
        ),
        (
            "no next header",
            ext(&patched(reply(UDP_L4), |b| b[6] = nh::NO_NEXT_HEADER)),
            ProtocolUnsupported,
        ),
        (
            "SCTP",
            ext(&patched(reply(UDP_L4), |b| b[6] = 132)),
            ProtocolUnsupported,
        ),
        (
            "TCP cut at 10 bytes",
            ext(&patched(reply(tcp)[..50].to_vec(), |b| {
                b[4..6].copy_from_slice(&[0, 10])
            })),
            L4Truncated,
        ),
        (
            "TCP data offset 4",
            ext(&patched(reply(tcp), |b| b[52] = 0x40)),
            TcpMalformed,
        ),
        (
            "UDP cut at 6 bytes",
            ext(&patched(reply(UDP_L4)[..46].to_vec(), |b| {
                b[4..6].copy_from_slice(&[0, 6])
            })),
            L4Truncated,
        ),
        (
            "UDP length 7",
            ext(&patched(reply(UDP_L4), |b| {
                b[44..46].copy_from_slice(&[0, 7])
            })),
            UdpMalformed,
        ),
        (
            "UDP checksum zero",
            ext(&patched(reply(UDP_L4), |b| b[46..48].fill(0))),
            UdpZeroChecksum,
        ),
        (
            "ICMPv6 cut at 3 bytes",
            ext(&patched(reply(echo_request)[..43].to_vec(), |b| {
                b[4..6].copy_from_slice(&[0, 3])
            })),
            L4Truncated,
        ),
        (
            "an echo request from outside",
            ext(&reply(echo_request)),
            IcmpUnsupported,
        ),
        (
            "Packet Too Big quoting a truncated packet",
            ext(&patched(reply(echo_request), |b| b[40] = 2)),
            IcmpErrorTruncated,
        ),
        ("a reply with no session", ext(&reply(UDP_L4)), NoSession),
        (
            "an error quoting a fragment",
            ext(&icmpv6_error(
                SERVER_V6,
                EGRESS_V6,
                1,
                4,
                0,
                &with_extensions(
                    ipv6_packet(EGRESS_V6, SERVER_V6, 64, UDP_L4, b""),
                    &[(nh::FRAGMENT, fragment(0, true))],
                ),
            )),
            IcmpErrorNoSession,
        ),
        (
            "an error quoting IPv4",
            ext(&icmpv6_error(
                SERVER_V6,
                EGRESS_V6,
                1,
                4,
                0,
                &ipv4_packet(EGRESS_IP, SERVER_IP, 64, true, UDP_L4, b""),
            )),
            IcmpErrorTruncated,
        ),
        (
            "an error about someone else's packet",
            ext(&icmpv6_error(
                SERVER_V6,
                EGRESS_V6,
                1,
                4,
                0,
                &ipv6_packet(SERVER_V6 + 1, SERVER_V6, 64, UDP_L4, b""),
            )),
            IcmpErrorNoSession,
        ),
        (
            "802.1Q-tagged",
            {
                let mut f = ext(&reply(UDP_L4));
                f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
                f
            },
            VlanTagged,
        ),
        (
            "a pod's packet cut at 20 bytes",
            tunnel(&pod(UDP_L4)[..20]),
            Ipv6Truncated,
        ),
        (
            "a pod's packet with hop limit 1",
            tunnel(&ipv6_packet(POD3_V6, SERVER_V6, 1, UDP_L4, b"")),
            TtlExpired,
        ),
        (
            "a pod's UDP with checksum zero",
            tunnel(&patched(pod(UDP_L4), |b| b[46..48].fill(0))),
            UdpZeroChecksum,
        ),
        (
            "a pod's fragment",
            tunnel(&with_extensions(
                pod(UDP_L4),
                &[(nh::FRAGMENT, fragment(0, true))],
            )),
            Fragment,
        ),
        (
            "an unmapped pod",
            tunnel(&ipv6_packet(POD3_V6 + 1, SERVER_V6, 64, UDP_L4, b"")),
            NoEgressMapping,
        ),
        (
            "a pod's echo reply",
            tunnel(&pod(L4::Echo {
                request: false,
                ident: 1,
                seq: 1,
            })),
            IcmpUnsupported,
        ),
        (
            "an unknown critical Geneve option",
            tunnel_patched(&pod(UDP_L4), |b| b[50..52].copy_from_slice(&[0x7f, 0x7f])),
            GeneveCriticalOption,
        ),
        (
            "the forwarding VNI around a pod's packet (not to an egress IP)",
            tunnel_patched(&pod(UDP_L4), |b| {
                b[46..49].copy_from_slice(&[0xee, 0x67, 0x01])
            }),
            NotForGateway,
        ),
        (
            "Geneve over an IPv6 underlay",
            ext(&ipv6_packet(
                0xfd00_0099 << 96 | 0x25,
                0xfd00_0099 << 96 | 0x23,
                64,
                L4::Udp {
                    src_port: 1,
                    dst_port: 6081,
                },
                &[0; 40],
            )),
            NotForGateway,
        ),
    ]
}

#[test]
fn hostile_frames_over_the_ipv6_underlay() {
    let t = seed_tables_underlay6();
    let mut w = worker_dual(1024);
    let pod6 = ipv6_packet(POD3_V6, SERVER_V6, 64, TCP_SYN, b"");
    let good = geneve6_frame(NODE3_V6, NODE3_MAC, 1, &pod6);
    let mut cases: Vec<(&str, Vec<u8>, DropReason)> = Vec::new();
    // An IPv4 pod's packet: an IPv4 session has no room for an IPv6 node address.
    let pod4 = ipv4_packet(POD3, SERVER_IP, 64, true, TCP_SYN, b"");
    cases.push((
        "ipv4 pod over ipv6",
        geneve6_frame(NODE3_V6, NODE3_MAC, 1, &pod4),
        Ipv4OverIpv6Underlay,
    ));
    // Truncated in the outer header, in UDP, in Geneve.
    for (name, cut, why) in [
        ("outer ipv6 cut", 14 + 39, Ipv6Truncated),
        ("udp cut", 14 + 40 + 7, Ipv6Truncated),
    ] {
        cases.push((name, good[..cut].to_vec(), why));
    }
    // The outer payload length claiming less than UDP's.
    let mut short_udp = good.clone();
    short_udp[14 + 4..14 + 6].copy_from_slice(&7u16.to_be_bytes());
    cases.push(("udp beyond the payload", short_udp, UdpTruncated));
    // An unknown critical Geneve option in place of OVN's.
    let mut critical = good.clone();
    critical[62 + 8..62 + 12].copy_from_slice(&[0xff, 0x01, 0x80, 0x01]);
    cases.push(("critical option", critical, GeneveCriticalOption));
    // Options that overrun the header.
    let mut overrun = good.clone();
    overrun[62 + 11] = 0x1f;
    cases.push(("option overrun", overrun, GeneveOptionOverrun));
    let mut version = good.clone();
    version[62] |= 0x40;
    cases.push(("geneve version 1", version, GeneveBadVersion));
    let mut oam = good.clone();
    oam[63] |= 0x80;
    cases.push(("geneve oam", oam, GeneveOam));
    // A fragment header in the outer packet.
    let mut frag = good[..54].to_vec();
    frag[20] = nh::FRAGMENT;
    frag.extend_from_slice(&[nh::UDP, 0, 0, 1, 0, 0, 0, 1]);
    frag.extend_from_slice(&good[54..]);
    let plen = (frag.len() - 54) as u16;
    frag[18..20].copy_from_slice(&plen.to_be_bytes());
    cases.push(("outer fragment", frag, Fragment));
    // Not UDP to the node's address.
    let mut tcp_to_node = good.clone();
    tcp_to_node[20] = nh::TCP;
    cases.push(("tcp to the node", tcp_to_node, NotForGateway));
    // The inner hop limit at 1.
    let mut hop1 = good.clone();
    hop1[92 + 7] = 1;
    cases.push(("inner hop limit 1", hop1, TtlExpired));
    for (name, frame, why) in &cases {
        assert_eq!(run(&mut w, &t, 1, frame).err(), Some(*why), "{name}");
    }
    assert_eq!(w.nat.table().check_consistency(), Ok(0));
    // A pod whose map entry names another node is refused from this one, by its IPv6 address.
    let mut pinned = t.clone();
    pinned
        .ipv6
        .egress
        .set_node(POD3_V6, NODE2_V6.to_be_bytes().into());
    assert_eq!(run(&mut w, &pinned, 1, &good).err(), Some(PodWrongNode));
    pinned
        .ipv6
        .egress
        .set_node(POD3_V6, NODE3_V6.to_be_bytes().into());
    assert!(run(&mut w, &pinned, 1, &good).is_ok());
    // A zero outer UDP checksum is accepted (RFC 6935: tunnels may send it).
    let mut zero = good.clone();
    zero[60..62].copy_from_slice(&[0, 0]);
    assert!(run(&mut w, &t, 1, &zero).is_ok());
    // Geneve over IPv6 with no node.ip6 configured is not the gateway's.
    let mut v4_only = t.clone();
    v4_only.node.node_ip6 = 0;
    assert_eq!(run(&mut w, &v4_only, 1, &good).err(), Some(NotForGateway));
}

/// IPv4 replies another member forwarded over the IPv6 underlay (a set there forwards both
/// families): each malformed one a counted drop by name, checked like a reply from outside.
#[test]
fn hostile_forwarded_ipv4_replies_over_the_ipv6_underlay() {
    let t = seed_tables_underlay6();
    let mut w = worker_dual(1024);
    let fwd = gateway::pipeline::forward::FORWARD_VNI;
    let reply =
        |ttl: u8, dst: u32| external_frame(&ipv4_packet(SERVER_IP, dst, ttl, true, TCP_SYN, b""));
    let mut bad_sum = reply(64, EGRESS_IP);
    bad_sum[14 + 10] ^= 0xff;
    let mut arp = reply(64, EGRESS_IP);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "no session at the owner either",
            forwarded6_frame(&reply(64, EGRESS_IP), fwd),
            ForwardedNoSession,
        ),
        (
            "cut in its ipv4 header",
            forwarded6_frame(&reply(64, EGRESS_IP)[..14 + 12], fwd),
            Ipv4Truncated,
        ),
        (
            "bad ipv4 checksum",
            forwarded6_frame(&bad_sum, fwd),
            Ipv4BadChecksum,
        ),
        (
            "ttl 1",
            forwarded6_frame(&reply(1, EGRESS_IP), fwd),
            TtlExpired,
        ),
        (
            "to no egress ip here",
            forwarded6_frame(&reply(64, SERVER_IP), fwd),
            NotForGateway,
        ),
        ("not ip inside", forwarded6_frame(&arp, fwd), InnerNotIpv4),
        (
            "ipv4 under another vni (a pod's, not forwarded)",
            forwarded6_frame(&reply(64, EGRESS_IP), 5),
            Ipv4OverIpv6Underlay,
        ),
    ];
    for (name, frame, why) in &cases {
        assert_eq!(run(&mut w, &t, 1, frame).err(), Some(*why), "{name}");
        // Every prefix is a counted drop too, never a panic.
        for len in 0..frame.len() {
            assert!(
                run(&mut w, &t, 1, &frame[..len]).is_err(),
                "{name} cut at {len}"
            );
        }
    }
    assert_eq!(w.nat.table().check_consistency(), Ok(0));
    assert_eq!(
        w.counters
            .replies_forwarded
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn hostile_ipv6_frames() {
    let t = seed_tables_dual();
    let mut w = worker_dual(256);
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert_counted_drops(&mut w, &t, &cases);
    assert_eq!(w.counters.total_drops(), cases.len() as u64);
    // A pod's new flow through another node's tunnel than its map entry names.
    let mut t = t;
    t.ipv6
        .egress
        .set_node(POD3_V6, NODE2_IP.to_be_bytes().into());
    assert_eq!(
        run(&mut w, &t, 1, &tunnel(&pod(UDP_L4))).err(),
        Some(PodWrongNode)
    );
}

proptest! {
    /// Arbitrary bytes behind an IPv6 reply's Ethernet header, or behind a Geneve frame's
    /// (over either underlay) inner Ethernet header marked IPv6, never panic and are never both dropped and counted
    /// wrong: every frame gets an action.
    #[test]
    fn arbitrary_bytes_behind_ipv6_headers_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..160), inner in any::<bool>(),
        served in any::<bool>(), over_ipv6 in any::<bool>(),
    ) {
        let t = seed_tables_underlay6();
        let mut w = worker_dual(64);
        let mut ip = body.clone();
        if served && ip.len() >= 40 {
            ip[0] = 0x60 | (ip[0] & 0x0f);
            ip[24..40].copy_from_slice(&EGRESS_V6.to_be_bytes());
        }
        let frame = match (inner, over_ipv6) {
            (true, true) => geneve6_frame(NODE3_V6, NODE3_MAC, 1, &ip),
            (true, false) => tunnel(&ip),
            _ => external_frame(&ip),
        };
        let mut frame = frame;
        if !inner && frame.len() >= 14 {
            frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        }
        let _ = run(&mut w, &t, 1, &frame);
    }
}
