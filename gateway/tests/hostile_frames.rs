//! Malformed and hostile frames: each is a counted drop with the expected reason, never a
//! panic, and never a transmitted frame.

use gateway::drop::DropReason::{self, *};
use gateway::testutil::*;
use gateway::wire::checksum;
use gateway::wire::tcp::flags::{ACK, SYN};

// Offsets in a Geneve frame built by `geneve_frame` (with the 8-byte OVN option).
const OUTER_IP: usize = 14;
const UDP: usize = 34;
const GENEVE: usize = 42;
const INNER_ETH: usize = 58;
const INNER_IP: usize = 72;
const INNER_L4: usize = 92;

fn tcp(flags: u8) -> Vec<u8> {
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
        b"hello",
    )
}

fn tunnel(inner: &[u8]) -> Vec<u8> {
    geneve_frame(NODE3_IP, NODE3_MAC, 50000, inner)
}

fn fix_ip_checksum(b: &mut [u8], at: usize) {
    let hl = usize::from(b[at] & 0x0f) * 4;
    b[at + 10..at + 12].fill(0);
    let c = checksum::checksum(&b[at..at + hl.max(20).min(b.len() - at)]);
    b[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
}

/// A valid tunnel frame with `f` applied to its bytes, then both IPv4 checksums made right
/// again (so a test hits the check it aims at, not the checksum).
fn tunnel_patched(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = tunnel(&tcp(SYN));
    f(&mut b);
    if b.len() >= OUTER_IP + 20 {
        fix_ip_checksum(&mut b, OUTER_IP);
    }
    if b.len() >= INNER_IP + 20 && b[INNER_IP] >> 4 == 4 {
        fix_ip_checksum(&mut b, INNER_IP);
    }
    b
}

/// Sets the outer IPv4 and UDP lengths after the frame was cut to `len`.
fn cut(b: &mut Vec<u8>, len: usize) {
    b.truncate(len);
    let ip_len = (len - OUTER_IP) as u16;
    b[OUTER_IP + 2..OUTER_IP + 4].copy_from_slice(&ip_len.to_be_bytes());
    if len >= UDP + 8 {
        b[UDP + 4..UDP + 6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    }
}

fn inner_patched(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut inner = tcp(SYN);
    f(&mut inner);
    if inner.len() >= 20 && inner[0] >> 4 == 4 {
        fix_ip_checksum(&mut inner, 0);
    }
    tunnel(&inner)
}

/// `inner` (a whole Ethernet frame) as another gateway of the set forwards it: Geneve with the
/// forwarding VNI and no options.
fn forwarded(inner: &[u8]) -> Vec<u8> {
    let mut b = underlay_udp_frame(NODE2_IP, NODE2_MAC, 50001, 6081, 8 + inner.len());
    gateway::wire::geneve::Repr {
        vni: gateway::pipeline::forward::FORWARD_VNI,
        ovn_ports: None,
    }
    .emit(&mut b[GENEVE..])
    .unwrap();
    b[GENEVE + 8..].copy_from_slice(inner);
    b
}

/// POD3's port-unreachable about a UDP datagram the server sent to `pod` (port 9 to 9).
fn port_unreachable_about_udp_to(pod: u32) -> Vec<u8> {
    let about = ipv4_packet(
        SERVER_IP,
        pod,
        64,
        false,
        L4::Udp {
            src_port: 9,
            dst_port: 9,
        },
        b"",
    );
    let unreachable = gateway::wire::icmp::Message::DstUnreachable;
    tunnel(&icmp_error(POD3, SERVER_IP, unreachable, 3, 0, &about))
}

fn reply(ttl: u8, dst_port: u16) -> Vec<u8> {
    external_frame(&ipv4_packet(
        SERVER_IP,
        EGRESS_IP,
        ttl,
        true,
        L4::Tcp {
            src_port: 80,
            dst_port,
            flags: ACK,
        },
        b"",
    ))
}

fn cases() -> Vec<(&'static str, Vec<u8>, DropReason)> {
    let valid = tunnel(&tcp(SYN));
    vec![
        ("empty frame", vec![], FrameTruncated),
        ("13 bytes", valid[..13].to_vec(), FrameTruncated),
        (
            "802.1Q tag",
            {
                let mut b = valid[..12].to_vec();
                b.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
                b.extend_from_slice(&valid[12..]);
                b
            },
            VlanTagged,
        ),
        (
            "IPv4 bytes under IPv6's Ethernet type",
            tunnel_patched(|b| b[12..14].copy_from_slice(&[0x86, 0xdd])),
            Ipv6Truncated,
        ),
        (
            "ARP",
            tunnel_patched(|b| b[12..14].copy_from_slice(&[0x08, 0x06])),
            NotIpv4,
        ),
        (
            "outer IPv4 cut at 10 bytes",
            valid[..OUTER_IP + 10].to_vec(),
            Ipv4Truncated,
        ),
        (
            "outer IHL 4",
            tunnel_patched(|b| b[OUTER_IP] = 0x44),
            Ipv4Malformed,
        ),
        (
            "outer version 6 in an IPv4 frame",
            tunnel_patched(|b| b[OUTER_IP] = 0x65),
            Ipv4Malformed,
        ),
        (
            "outer total length beyond the frame",
            tunnel_patched(|b| b[OUTER_IP + 2] = 0x7f),
            Ipv4Truncated,
        ),
        (
            "outer total length below the header",
            tunnel_patched(|b| b[OUTER_IP + 2..OUTER_IP + 4].copy_from_slice(&[0, 12])),
            Ipv4Malformed,
        ),
        (
            "outer bad checksum",
            {
                let mut b = valid.clone();
                b[OUTER_IP + 10] ^= 0xff;
                b
            },
            Ipv4BadChecksum,
        ),
        (
            "outer IPv4 options",
            tunnel_patched(|b| b[OUTER_IP] = 0x46),
            Ipv4Options,
        ),
        (
            "outer first fragment",
            tunnel_patched(|b| b[OUTER_IP + 6] = 0x20),
            Fragment,
        ),
        (
            "to nobody we serve",
            tunnel_patched(|b| b[OUTER_IP + 16..OUTER_IP + 20].copy_from_slice(&[10, 9, 9, 9])),
            NotForGateway,
        ),
        (
            "UDP to the node, not 6081",
            tunnel_patched(|b| b[UDP + 2..UDP + 4].copy_from_slice(&53u16.to_be_bytes())),
            NotForGateway,
        ),
        (
            "UDP header cut",
            tunnel_patched(|b| cut(b, UDP + 4)),
            UdpTruncated,
        ),
        (
            "UDP length 0",
            tunnel_patched(|b| b[UDP + 4..UDP + 6].fill(0)),
            UdpMalformed,
        ),
        (
            "UDP length beyond IP payload",
            tunnel_patched(|b| b[UDP + 4] = 0x40),
            UdpTruncated,
        ),
        (
            "Geneve header cut",
            tunnel_patched(|b| cut(b, GENEVE + 4)),
            GeneveTruncated,
        ),
        (
            "Geneve version 1",
            tunnel_patched(|b| b[GENEVE] |= 0x40),
            GeneveBadVersion,
        ),
        (
            "Geneve options beyond the packet",
            tunnel_patched(|b| b[GENEVE] = 0x3f),
            GeneveTruncated,
        ),
        (
            "Geneve option overruns the options area",
            tunnel_patched(|b| b[GENEVE + 11] = 0x05),
            GeneveOptionOverrun,
        ),
        (
            "unknown critical Geneve option",
            tunnel_patched(|b| b[GENEVE + 9] = 0x99),
            GeneveCriticalOption,
        ),
        (
            "Geneve OAM",
            tunnel_patched(|b| b[GENEVE + 1] |= 0x80),
            GeneveOam,
        ),
        (
            "Geneve carrying IPv4, not Ethernet",
            tunnel_patched(|b| b[GENEVE + 2..GENEVE + 4].copy_from_slice(&[8, 0])),
            GeneveNotEthernet,
        ),
        (
            "inner Ethernet cut",
            tunnel_patched(|b| cut(b, INNER_ETH + 10)),
            InnerFrameTruncated,
        ),
        (
            "inner IPv4 bytes under IPv6's Ethernet type",
            tunnel_patched(|b| b[INNER_ETH + 12..INNER_ETH + 14].copy_from_slice(&[0x86, 0xdd])),
            Ipv6Truncated,
        ),
        (
            "inner frame is ARP",
            tunnel_patched(|b| b[INNER_ETH + 12..INNER_ETH + 14].copy_from_slice(&[0x08, 0x06])),
            InnerNotIpv4,
        ),
        (
            "inner IPv4 cut",
            tunnel_patched(|b| cut(b, INNER_IP + 12)),
            Ipv4Truncated,
        ),
        ("inner IHL 3", inner_patched(|b| b[0] = 0x43), Ipv4Malformed),
        (
            "inner total length beyond the frame",
            inner_patched(|b| b[2] = 0x10),
            Ipv4Truncated,
        ),
        (
            "inner bad checksum",
            {
                let mut b = valid.clone();
                b[INNER_IP + 10] ^= 0x01;
                b
            },
            Ipv4BadChecksum,
        ),
        ("inner TTL 1", inner_patched(|b| b[8] = 1), TtlExpired),
        ("inner TTL 0", inner_patched(|b| b[8] = 0), TtlExpired),
        (
            "inner IPv4 options",
            inner_patched(|b| {
                b.splice(20..20, [1, 1, 1, 0]);
                b[0] = 0x46;
                let l = b.len() as u16;
                b[2..4].copy_from_slice(&l.to_be_bytes());
            }),
            Ipv4Options,
        ),
        (
            "inner non-first fragment of an unknown flow",
            inner_patched(|b| b[6..8].copy_from_slice(&[0x00, 0x10])),
            FragmentNoFirst,
        ),
        (
            "inner protocol GRE",
            inner_patched(|b| b[9] = 47),
            ProtocolUnsupported,
        ),
        (
            "TCP data offset 4",
            tunnel_patched(|b| b[INNER_L4 + 12] = 0x40),
            TcpMalformed,
        ),
        (
            "TCP header cut",
            {
                let mut inner = tcp(SYN);
                inner.truncate(30);
                inner[2..4].copy_from_slice(&30u16.to_be_bytes());
                fix_ip_checksum(&mut inner, 0);
                tunnel(&inner)
            },
            L4Truncated,
        ),
        (
            "TCP options beyond the segment",
            tunnel_patched(|b| b[INNER_L4 + 12] = 0xf0),
            L4Truncated,
        ),
        (
            "inner UDP length 0",
            {
                let mut inner = ipv4_packet(
                    POD3,
                    SERVER_IP,
                    64,
                    false,
                    L4::Udp {
                        src_port: 1,
                        dst_port: 2,
                    },
                    b"x",
                );
                inner[24..26].fill(0);
                tunnel(&inner)
            },
            UdpMalformed,
        ),
        (
            "ICMP cut at 4 bytes",
            {
                let mut inner = ipv4_packet(
                    POD3,
                    SERVER_IP,
                    64,
                    false,
                    L4::Echo {
                        request: true,
                        ident: 1,
                        seq: 1,
                    },
                    b"",
                );
                inner.truncate(24);
                inner[2..4].copy_from_slice(&24u16.to_be_bytes());
                fix_ip_checksum(&mut inner, 0);
                tunnel(&inner)
            },
            L4Truncated,
        ),
        (
            "ICMP timestamp request",
            {
                let mut inner = ipv4_packet(
                    POD3,
                    SERVER_IP,
                    64,
                    false,
                    L4::Echo {
                        request: true,
                        ident: 1,
                        seq: 1,
                    },
                    b"",
                );
                inner[20] = 13;
                tunnel(&inner)
            },
            IcmpUnsupported,
        ),
        (
            "ICMP error with a truncated embedded header",
            {
                let about = tcp(ACK);
                let mut e = icmp_error(
                    POD3,
                    SERVER_IP,
                    gateway::wire::icmp::Message::DstUnreachable,
                    3,
                    0,
                    &about,
                );
                e.truncate(20 + 8 + 12);
                e[2..4].copy_from_slice(&40u16.to_be_bytes());
                fix_ip_checksum(&mut e, 0);
                tunnel(&e)
            },
            IcmpErrorTruncated,
        ),
        (
            "ICMP error about an unknown flow",
            port_unreachable_about_udp_to(POD3),
            IcmpErrorNoSession,
        ),
        (
            "ICMP error quoting another host's packet",
            port_unreachable_about_udp_to(POD2),
            IcmpErrorNoSession,
        ),
        (
            "pod without an egress mapping",
            tunnel(&ipv4_packet(
                ip(10, 128, 9, 9),
                SERVER_IP,
                64,
                true,
                L4::Tcp {
                    src_port: 1,
                    dst_port: 80,
                    flags: SYN,
                },
                b"",
            )),
            NoEgressMapping,
        ),
        (
            "forwarded reply matching no session here either",
            forwarded(&reply(64, 1024)),
            ForwardedNoSession,
        ),
        (
            "forwarded frame to an address not served",
            forwarded(&external_frame(&ipv4_packet(
                SERVER_IP,
                ip(192, 168, 66, 7),
                64,
                true,
                L4::Tcp {
                    src_port: 80,
                    dst_port: 1024,
                    flags: ACK,
                },
                b"",
            ))),
            NotForGateway,
        ),
        (
            "forwarded reply with TTL 1",
            forwarded(&reply(1, 1024)),
            TtlExpired,
        ),
        (
            "forwarded reply cut inside its IPv4 header",
            forwarded(&reply(64, 1024)[..14 + 12]),
            Ipv4Truncated,
        ),
        (
            "forwarded frame with no Ethernet header inside",
            forwarded(&[0u8; 6]),
            InnerFrameTruncated,
        ),
        ("reply with TTL 1", reply(1, 1024), TtlExpired),
        ("reply matching no session", reply(64, 1024), NoSession),
        (
            "reply's first fragment matching no session",
            {
                let mut b = reply(64, 1024);
                b[14 + 6] = 0x20;
                fix_ip_checksum(&mut b, 14);
                b
            },
            NoSession,
        ),
        (
            "reply's later fragment of a datagram never seen",
            {
                let mut b = reply(64, 1024);
                b[14 + 6..14 + 8].copy_from_slice(&[0x20, 0x10]);
                fix_ip_checksum(&mut b, 14);
                b
            },
            FragmentNoFirst,
        ),
    ]
}

#[test]
fn hostile_frames() {
    let t = seed_tables();
    let mut w = worker(256);
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert_counted_drops(&mut w, &t, &cases);
    assert_eq!(w.counters.total_drops(), cases.len() as u64);
    assert_eq!(
        w.counters
            .tx_external
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // Every frame cut at every length: no panic, and a prefix of a valid frame is never sent.
    let valid = tunnel(&tcp(SYN));
    for len in 0..valid.len() {
        let mut b = valid[..len].to_vec();
        if len > OUTER_IP + 20 {
            cut(&mut b, len);
            fix_ip_checksum(&mut b, OUTER_IP);
        }
        assert!(
            run(&mut w, &t, 1, &b).is_err(),
            "prefix of {len} bytes forwarded"
        );
    }
}
