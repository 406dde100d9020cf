//! The steering program's decision table: crafted frames, each with the verdict the program
//! must give it, run through the loaded program with `BPF_PROG_TEST_RUN` by the `steer_run`
//! helper (the `steering_decisions` test asserts them; `scripts/steer-cost` times them).
//!
//! The state the frames are judged against is the seed's: node 192.168.99.23, egress IP
//! 192.168.66.100 with SNAT ports 1024-65535 and the Service's ports 8080/tcp and 53/udp,
//! served pods 10.133.0.3 and 10.132.0.13, and the cluster's networks (pods 10.128.0.0/13,
//! services 172.22.0.0/16, OVN-Kubernetes' join, transit and masquerade subnets, the nodes'
//! 192.168.99.0/24); and for IPv6 (dual stack over the IPv4 underlay): egress IP
//! 2001:db8:66::100 with the same ports, served pod fd00:10:133::3, the cluster's IPv6
//! networks fd00:10:128::/45, fd00:172:22::/112, fd98::/64, fd97::/64 and fd69::/112.
//! The node's IPv6 underlay address is fd00:99::23 (`Steering::set_node_ip6`): Geneve over
//! IPv6 arrives there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gateway::xdp::steer::SteeringState;

pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 99, 23);
pub const NODE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x23);
const NODE3_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x25);
pub const EGRESS_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 66, 100);
pub const EGRESS_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x66, 0, 0, 0, 0, 0x100);
const POD6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x133, 0, 0, 0, 0, 3);
const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x55, 0, 0, 0, 0, 0x13);

/// What the program decides with, for every case.
pub fn state() -> SteeringState {
    let net = |s: &str| s.parse().expect("a network");
    let port = |s: &str| s.parse().expect("a port");
    SteeringState {
        egress_ips: [
            (IpAddr::V4(EGRESS_IP), 1024..=65535),
            (IpAddr::V6(EGRESS_IP6), 1024..=65535),
        ]
        .into(),
        service_ports: [
            (IpAddr::V4(EGRESS_IP), port("8080/tcp")),
            (IpAddr::V4(EGRESS_IP), port("53/udp")),
            (IpAddr::V6(EGRESS_IP6), port("8080/tcp")),
            (IpAddr::V6(EGRESS_IP6), port("53/udp")),
        ]
        .into(),
        served_pods: [
            IpAddr::V4(Ipv4Addr::new(10, 133, 0, 3)),
            IpAddr::V4(Ipv4Addr::new(10, 132, 0, 13)),
            IpAddr::V6(POD6),
        ]
        .into(),
        cluster_networks: [
            net("10.128.0.0/13"),
            net("172.22.0.0/16"),
            net("100.64.0.0/16"),
            net("100.88.0.0/16"),
            net("169.254.0.0/17"),
            net("192.168.99.0/24"),
            net("fd00:10:128::/45"),
            net("fd00:172:22::/112"),
            net("fd98::/64"),
            net("fd97::/64"),
            net("fd69::/112"),
        ]
        .into(),
    }
}

/// One crafted frame and what the program must do with it.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// To the AF_XDP socket (`XDP_REDIRECT`), else to the node (`XDP_PASS`).
    pub redirect: bool,
    /// The counter it must bump (`xdp::steer::VERDICTS`).
    pub verdict: &'static str,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const MF: u16 = 0x2000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("an address")
}

fn eth(ether_type: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x23, 0x02, 0, 0, 0, 0, 0x25];
    f.extend_from_slice(&ether_type.to_be_bytes());
    f
}

/// An IPv4 header (checksum left zero: the program does not check it) and `payload`.
fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    frag: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 1]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(options);
    h.extend_from_slice(payload);
    h
}

/// An IPv6 header and `payload` (`next` names its first header).
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// An 8-byte hop-by-hop, routing or destination options header (padding only), then `rest`.
fn ext(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0, 1, 4, 0, 0, 0, 0];
    h.extend_from_slice(rest);
    h
}

/// A fragment header at `offset` (in 8-byte units), more fragments following, then `rest`.
fn fragment6(next: u8, offset: u16, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset << 3) | 1).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x12, 0x34]);
    h.extend_from_slice(rest);
    h
}

/// Ethernet / IPv6 from the router to `dst` / `payload`.
fn plain6(dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend(ipv6(SERVER6, dst, next, payload));
    f
}

/// What OVN sends for an IPv6 pod: Geneve over the IPv4 underlay, its option, `src` -> `dst`.
fn ovn6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    body.extend(inner_frame(0x86dd, &ipv6(src, dst, next, payload)));
    tunnel(6081, 0, &[], &body)
}

/// An IPv6 reply forwarded by another gateway of the set (as [`forwarded`]).
fn forwarded6(dst: Ipv6Addr) -> Vec<u8> {
    let mut body = vec![0, 0, 0x65, 0x58];
    body.extend_from_slice(&(gateway::pipeline::forward::FORWARD_VNI << 8).to_be_bytes());
    body.extend(plain6(dst, TCP, &l4(80, 40000)));
    tunnel(6081, 0, &[], &body)
}

/// Outer Ethernet / IPv6 (master-03 -> `dst`) / UDP to `dport` / `body`: the IPv6 underlay.
fn tunnel_over6(dst: Ipv6Addr, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut udp = 51000u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0x12, 0x34]);
    udp.extend_from_slice(body);
    let mut f = eth(0x86dd);
    f.extend(ipv6(NODE3_IP6, dst, UDP, &udp));
    f
}

/// What OVN sends on the IPv6 underlay: Geneve over IPv6 with its option around `inner`.
fn ovn_over6(ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut body = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    body.extend(inner_frame(ether_type, inner));
    tunnel_over6(NODE_IP6, 6081, &body)
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().expect("an address")
}

const ICMPV6: u8 = 58;
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DEST_OPTS: u8 = 60;

/// The IPv6 cases (dual stack over the IPv4 underlay).
fn cases_v6() -> Vec<Case> {
    let case = |name, frame, redirect, verdict| Case {
        name,
        frame,
        redirect,
        verdict,
    };
    let (to_dp, pass) = (true, false);
    let egress = "geneve_redirected";
    let overlay = "geneve_passed";
    let reply = "reply_redirected";
    let other_dp = "egress_ip_other_redirected";
    let service = "service_port_passed";
    let ndp = "ndp_passed";
    let mut inner_short = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    inner_short.extend(inner_frame(0x86dd, &ipv6(POD6, SERVER6, TCP, &[])[..30]));
    let mut short = eth(0x86dd);
    short.extend_from_slice(&ipv6(SERVER6, EGRESS_IP6, TCP, &[])[..39]);
    let long_chain = ext(
        DEST_OPTS,
        &ext(
            ROUTING,
            &ext(DEST_OPTS, &ext(DEST_OPTS, &ext(TCP, &l4(80, 40000)))),
        ),
    );
    vec![
        // An IPv6 reply another gateway forwarded: the dataplane's, if it is to an egress IP.
        case(
            "forwarded6_reply",
            forwarded6(EGRESS_IP6),
            to_dp,
            "forwarded_redirected",
        ),
        case(
            "forwarded6_to_another_address",
            forwarded6(SERVER6),
            pass,
            overlay,
        ),
        // Egress traffic of a served IPv6 pod: the dataplane's.
        case(
            "egress6_tcp",
            ovn6(POD6, SERVER6, TCP, &l4(40000, 80)),
            to_dp,
            egress,
        ),
        case(
            "egress6_icmpv6_echo",
            ovn6(POD6, SERVER6, ICMPV6, &icmp(128)),
            to_dp,
            egress,
        ),
        case(
            "egress6_behind_hop_by_hop",
            ovn6(POD6, SERVER6, HOP_BY_HOP, &ext(UDP, &l4(40000, 53))),
            to_dp,
            egress,
        ),
        // Everything else in the tunnel: the node's OVS.
        case(
            "unmapped_pod6",
            ovn6(ip6("fd00:10:133::99"), SERVER6, TCP, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "east_west_pod6",
            ovn6(POD6, ip6("fd00:10:128::5"), TCP, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "to_a_service_cluster_ip6",
            ovn6(POD6, ip6("fd00:172:22::4a"), TCP, &l4(40000, 8080)),
            pass,
            overlay,
        ),
        case(
            "to_the_join_subnet6",
            ovn6(POD6, ip6("fd98::4"), TCP, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "pod6_to_link_local",
            ovn6(POD6, ip6("fe80::1"), ICMPV6, &icmp(128)),
            pass,
            overlay,
        ),
        case(
            "pod6_neighbor_solicitation",
            ovn6(POD6, ip6("ff02::1:ff00:1"), ICMPV6, &icmp(135)),
            pass,
            overlay,
        ),
        case(
            "inner_ipv6_truncated",
            tunnel(6081, 0, &[], &inner_short),
            pass,
            overlay,
        ),
        // To the IPv6 egress IP: replies are the dataplane's, the Service's ports and
        // neighbour discovery the node's.
        case(
            "reply6_tcp",
            plain6(EGRESS_IP6, TCP, &l4(80, 40000)),
            to_dp,
            reply,
        ),
        case(
            "reply6_udp_behind_hop_by_hop_and_dest_opts",
            plain6(
                EGRESS_IP6,
                HOP_BY_HOP,
                &ext(DEST_OPTS, &ext(UDP, &l4(53, 1024))),
            ),
            to_dp,
            reply,
        ),
        case(
            "reply6_echo_reply",
            plain6(EGRESS_IP6, ICMPV6, &icmp(129)),
            to_dp,
            reply,
        ),
        case(
            "reply6_packet_too_big",
            plain6(EGRESS_IP6, ICMPV6, &icmp(2)),
            to_dp,
            reply,
        ),
        case(
            "reply6_unreachable",
            plain6(EGRESS_IP6, ICMPV6, &icmp(1)),
            to_dp,
            reply,
        ),
        case(
            "service_port6_tcp",
            plain6(EGRESS_IP6, TCP, &l4(51234, 8080)),
            pass,
            service,
        ),
        case(
            "service_port6_behind_routing_header",
            plain6(EGRESS_IP6, ROUTING, &ext(UDP, &l4(51234, 53))),
            pass,
            service,
        ),
        case(
            "service_port6_first_fragment",
            plain6(EGRESS_IP6, FRAGMENT, &fragment6(TCP, 0, &l4(51234, 8080))),
            pass,
            service,
        ),
        case(
            "fragment6_non_first",
            plain6(EGRESS_IP6, FRAGMENT, &fragment6(UDP, 185, &[0; 16])),
            pass,
            "fragment_passed",
        ),
        case(
            "neighbor_solicitation6",
            plain6(EGRESS_IP6, ICMPV6, &icmp(135)),
            pass,
            ndp,
        ),
        case(
            "neighbor_advertisement6",
            plain6(EGRESS_IP6, ICMPV6, &icmp(136)),
            pass,
            ndp,
        ),
        case(
            "below_the_snat_range6",
            plain6(EGRESS_IP6, TCP, &l4(51234, 22)),
            to_dp,
            other_dp,
        ),
        case(
            "echo_request6",
            plain6(EGRESS_IP6, ICMPV6, &icmp(128)),
            to_dp,
            other_dp,
        ),
        case(
            "extension_header_truncated6",
            plain6(EGRESS_IP6, DEST_OPTS, &[TCP]),
            to_dp,
            other_dp,
        ),
        // Past the walk's four headers: the dataplane judges it (ipv6_extension_chain).
        case(
            "extension_chain_too_long6",
            plain6(EGRESS_IP6, HOP_BY_HOP, &long_chain),
            to_dp,
            other_dp,
        ),
        // Neither.
        case(
            "ipv6_another_address",
            plain6(SERVER6, TCP, &l4(80, 40000)),
            pass,
            "other_passed",
        ),
        case("ipv6_truncated", short, pass, "other_passed"),
        // The IPv6 underlay: Geneve over IPv6 to the node's IPv6 address, by the same rules.
        case(
            "underlay6_egress6_tcp",
            ovn_over6(0x86dd, &ipv6(POD6, SERVER6, TCP, &l4(40000, 80))),
            to_dp,
            egress,
        ),
        case(
            "underlay6_east_west6",
            ovn_over6(
                0x86dd,
                &ipv6(POD6, ip6("fd00:10:128:1::5"), TCP, &l4(40000, 80)),
            ),
            pass,
            overlay,
        ),
        case(
            "underlay6_unmapped_pod6",
            ovn_over6(
                0x86dd,
                &ipv6(ip6("fd00:10:133::99"), SERVER6, TCP, &l4(40000, 80)),
            ),
            pass,
            overlay,
        ),
        // A served IPv4 pod's packet over the IPv6 underlay: the dataplane's, which counts it
        // (ipv4_over_ipv6_underlay) rather than let it out some other way.
        case(
            "underlay6_egress4",
            ovn_over6(
                0x0800,
                &ipv4(
                    ip("10.133.0.3"),
                    ip("192.168.55.13"),
                    TCP,
                    0,
                    &[],
                    &l4(40000, 80),
                ),
            ),
            to_dp,
            egress,
        ),
        case(
            "underlay6_other_udp_port",
            tunnel_over6(NODE_IP6, 4789, &[0; 32]),
            pass,
            "other_passed",
        ),
        case(
            "underlay6_tcp_to_node",
            plain6(NODE_IP6, TCP, &l4(40000, 22)),
            pass,
            "other_passed",
        ),
        case(
            "underlay6_geneve_to_another_node",
            {
                let mut body = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
                body.extend(inner_frame(
                    0x86dd,
                    &ipv6(POD6, SERVER6, TCP, &l4(40000, 80)),
                ));
                tunnel_over6(NODE3_IP6, 6081, &body)
            },
            pass,
            "other_passed",
        ),
    ]
}

/// TCP or UDP: the ports, then enough of a header for either.
fn l4(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0; 16]);
    h
}

fn icmp(kind: u8) -> Vec<u8> {
    vec![kind, 0, 0, 0, 0, 1, 0, 1]
}

/// Ethernet / IPv4 to `dst` / `payload`, from the router.
fn plain(dst: Ipv4Addr, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4(ip("192.168.55.13"), dst, proto, frag, &[], payload));
    f
}

/// OVN's option: class 0x0102, type 0x80, one word; ingress key 2, egress key 4.
const OVN_OPTION: [u8; 8] = [0x01, 0x02, 0x80, 0x01, 0x00, 0x02, 0x00, 0x04];

/// A Geneve header: version, OAM flag, protocol type, VNI 0xff0003, then `options`.
fn geneve_header(version: u8, oam: bool, proto: u16, options: &[u8], opt_words: u8) -> Vec<u8> {
    let mut g = vec![(version << 6) | opt_words, if oam { 0xc0 } else { 0x40 }];
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(&[0xff, 0x00, 0x03, 0x00]);
    g.extend_from_slice(options);
    g
}

/// The inner frame OVN sends: transit MACs, then `inner`.
fn inner_frame(ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x0a, 0x58, 0x64, 0x58, 0x00, 0x04, 0x0a, 0x58, 0x64, 0x58, 0x00, 0x02,
    ];
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(inner);
    f
}

/// Outer Ethernet / IPv4 (master-03 -> master-01) / UDP to `dport` / `body`.
fn tunnel(dport: u16, frag: u16, outer_options: &[u8], body: &[u8]) -> Vec<u8> {
    let mut udp = 51000u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(body);
    let mut f = eth(0x0800);
    f.extend(ipv4(
        ip("192.168.99.25"),
        NODE_IP,
        UDP,
        frag,
        outer_options,
        &udp,
    ));
    f
}

/// What OVN sends: Geneve with its option around `src` -> `dst`.
fn ovn(src: &str, dst: &str, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let inner = ipv4(ip(src), ip(dst), proto, frag, &[], payload);
    let mut body = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    body.extend(inner_frame(0x0800, &inner));
    tunnel(6081, 0, &[], &body)
}

/// Geneve around a TCP packet from the served pod to the server, with its header changed.
fn geneve_with(g: Vec<u8>) -> Vec<u8> {
    let inner = ipv4(
        ip("10.133.0.3"),
        ip("192.168.55.13"),
        TCP,
        0,
        &[],
        &l4(40000, 80),
    );
    let mut body = g;
    body.extend(inner_frame(0x0800, &inner));
    tunnel(6081, 0, &[], &body)
}

/// A reply forwarded by another gateway of the set: Geneve with the forwarding VNI
/// (`pipeline::forward::FORWARD_VNI`) and no options around the reply as it arrived there.
fn forwarded(vni: u32, dst: Ipv4Addr) -> Vec<u8> {
    let mut body = vec![0, 0, 0x65, 0x58];
    body.extend_from_slice(&(vni << 8).to_be_bytes());
    body.extend(plain(dst, TCP, 0, &l4(80, 40000)));
    tunnel(6081, 0, &[], &body)
}

pub fn cases() -> Vec<Case> {
    let case = |name, frame, redirect, verdict| Case {
        name,
        frame,
        redirect,
        verdict,
    };
    let to_dp = true;
    let pass = false;
    let egress = "geneve_redirected";
    let overlay = "geneve_passed";
    let reply = "reply_redirected";
    let other_dp = "egress_ip_other_redirected";
    let other = "other_passed";
    let pod = "10.133.0.3";
    let server = "192.168.55.13";
    let mut two_options = OVN_OPTION.to_vec();
    two_options.extend_from_slice(&[0x01, 0x03, 0x01, 0x01, 0, 0, 0, 0]);
    let mut non_ovn = OVN_OPTION;
    non_ovn[1] = 0x01;
    let mut arp = eth(0x0806);
    arp.extend_from_slice(&[0; 28]);
    let mut ipv6 = eth(0x86dd);
    ipv6.extend_from_slice(&[0x60; 40]);
    let mut inner_arp = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    inner_arp.extend(inner_frame(0x0806, &[0; 28]));
    let mut inner_v6 = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    inner_v6.extend(inner_frame(0x86dd, &[0x60; 48]));
    let mut inner_short = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
    inner_short.extend(inner_frame(0x0800, &[0x45; 10]));
    let mut overrun = geneve_header(0, false, 0x6558, &OVN_OPTION, 63);
    overrun.extend(inner_frame(0x0800, &[0x45; 20]));
    let mut short_eth = eth(0x0800);
    short_eth.extend_from_slice(&[0x45, 0, 0]);
    let mut ihl4 = eth(0x0800);
    ihl4.extend(ipv4(ip(server), EGRESS_IP, TCP, 0, &[], &l4(80, 40000)));
    ihl4[14] = 0x44;
    vec![
        // Egress traffic of served pods: the dataplane's.
        case(
            "egress_tcp",
            ovn(pod, server, TCP, 0, &l4(40000, 80)),
            to_dp,
            egress,
        ),
        case(
            "egress_udp_other_pod",
            ovn("10.132.0.13", server, UDP, 0, &l4(40000, 9999)),
            to_dp,
            egress,
        ),
        case(
            "egress_icmp_echo",
            ovn(pod, server, ICMP, 0, &icmp(8)),
            to_dp,
            egress,
        ),
        case(
            "egress_to_the_egress_ips_own_net",
            ovn(pod, "192.168.66.7", TCP, 0, &l4(40000, 443)),
            to_dp,
            egress,
        ),
        case(
            "egress_inner_fragment",
            ovn(pod, server, UDP, 100, &[0; 32]),
            to_dp,
            egress,
        ),
        case(
            "egress_two_options",
            geneve_with(geneve_header(0, false, 0x6558, &two_options, 4)),
            to_dp,
            egress,
        ),
        case(
            "egress_outer_ip_options",
            {
                let inner = ipv4(ip(pod), ip(server), TCP, 0, &[], &l4(40000, 80));
                let mut body = geneve_header(0, false, 0x6558, &OVN_OPTION, 2);
                body.extend(inner_frame(0x0800, &inner));
                tunnel(6081, 0, &[1, 1, 1, 0], &body)
            },
            to_dp,
            egress,
        ),
        // A reply another gateway forwarded: the dataplane's, if it is to an egress IP.
        case(
            "forwarded_reply",
            forwarded(gateway::pipeline::forward::FORWARD_VNI, EGRESS_IP),
            to_dp,
            "forwarded_redirected",
        ),
        case(
            "forwarded_to_another_address",
            forwarded(gateway::pipeline::forward::FORWARD_VNI, ip("192.168.55.99")),
            pass,
            overlay,
        ),
        case(
            "no_options_another_vni",
            forwarded(0x00ff_0003, EGRESS_IP),
            pass,
            overlay,
        ),
        // Everything else in the tunnel: the node's OVS.
        case(
            "unmapped_pod",
            ovn("10.133.0.99", server, TCP, 0, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "east_west_pod",
            ovn(pod, "10.128.0.5", TCP, 0, &l4(40000, 5000)),
            pass,
            overlay,
        ),
        case(
            "east_west_other_pod_subnet",
            ovn(pod, "10.135.255.1", UDP, 0, &l4(40000, 53)),
            pass,
            overlay,
        ),
        case(
            "to_a_service_cluster_ip",
            ovn(pod, "172.22.74.226", TCP, 0, &l4(40000, 8080)),
            pass,
            overlay,
        ),
        case(
            "to_the_join_subnet",
            ovn(pod, "100.64.0.4", TCP, 0, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "to_the_transit_subnet",
            ovn(pod, "100.88.0.2", TCP, 0, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "to_the_masquerade_subnet",
            ovn(pod, "169.254.0.2", TCP, 0, &l4(40000, 80)),
            pass,
            overlay,
        ),
        case(
            "to_a_node",
            ovn(pod, "192.168.99.24", TCP, 0, &l4(40000, 10250)),
            pass,
            overlay,
        ),
        case(
            "ovn_bfd_between_chassis",
            ovn("192.168.99.25", "192.168.99.23", UDP, 0, &l4(49152, 3784)),
            pass,
            overlay,
        ),
        case(
            "geneve_truncated",
            tunnel(6081, 0, &[], &[0x02, 0x40, 0x65, 0x58]),
            pass,
            overlay,
        ),
        case(
            "geneve_option_overrun",
            tunnel(6081, 0, &[], &overrun),
            pass,
            overlay,
        ),
        case(
            "geneve_non_ovn_option",
            geneve_with(geneve_header(0, false, 0x6558, &non_ovn, 2)),
            pass,
            overlay,
        ),
        case(
            "geneve_no_options",
            geneve_with(geneve_header(0, false, 0x6558, &[], 0)),
            pass,
            overlay,
        ),
        case(
            "geneve_version_1",
            geneve_with(geneve_header(1, false, 0x6558, &OVN_OPTION, 2)),
            pass,
            overlay,
        ),
        case(
            "geneve_oam",
            geneve_with(geneve_header(0, true, 0x6558, &OVN_OPTION, 2)),
            pass,
            overlay,
        ),
        case(
            "geneve_not_ethernet",
            geneve_with(geneve_header(0, false, 0x0800, &OVN_OPTION, 2)),
            pass,
            overlay,
        ),
        case("inner_arp", tunnel(6081, 0, &[], &inner_arp), pass, overlay),
        case("inner_ipv6", tunnel(6081, 0, &[], &inner_v6), pass, overlay),
        case(
            "inner_ipv4_truncated",
            tunnel(6081, 0, &[], &inner_short),
            pass,
            overlay,
        ),
        // Not Geneve, or not readable as such, to the node IP.
        case(
            "udp_to_the_node_not_6081",
            tunnel(53, 0, &[], &[0; 16]),
            pass,
            other,
        ),
        case(
            "geneve_outer_non_first_fragment",
            tunnel(6081, 185, &[], &[0; 40]),
            pass,
            other,
        ),
        case(
            "bgp_to_the_node",
            {
                let mut f = eth(0x0800);
                f.extend(ipv4(
                    ip("192.168.99.12"),
                    NODE_IP,
                    TCP,
                    0,
                    &[],
                    &l4(40000, 179),
                ));
                f
            },
            pass,
            other,
        ),
        // To the egress IP: replies are the dataplane's, the Service's ports the node's.
        case(
            "reply_tcp",
            plain(EGRESS_IP, TCP, 0, &l4(80, 40000)),
            to_dp,
            reply,
        ),
        case(
            "reply_udp_first_port",
            plain(EGRESS_IP, UDP, 0, &l4(9999, 1024)),
            to_dp,
            reply,
        ),
        case(
            "reply_udp_last_port",
            plain(EGRESS_IP, UDP, 0, &l4(9999, 65535)),
            to_dp,
            reply,
        ),
        case(
            "reply_icmp_echo",
            plain(EGRESS_IP, ICMP, 0, &icmp(0)),
            to_dp,
            reply,
        ),
        case(
            "icmp_unreachable",
            plain(EGRESS_IP, ICMP, 0, &icmp(3)),
            to_dp,
            reply,
        ),
        case(
            "icmp_time_exceeded",
            plain(EGRESS_IP, ICMP, 0, &icmp(11)),
            to_dp,
            reply,
        ),
        case(
            "icmp_parameter_problem",
            plain(EGRESS_IP, ICMP, 0, &icmp(12)),
            to_dp,
            reply,
        ),
        case(
            "service_port_tcp",
            plain(EGRESS_IP, TCP, 0, &l4(51234, 8080)),
            pass,
            "service_port_passed",
        ),
        case(
            "service_port_udp",
            plain(EGRESS_IP, UDP, 0, &l4(51234, 53)),
            pass,
            "service_port_passed",
        ),
        // A reply's later fragments follow its first to the dataplane; a Service port's
        // first fragment of the same identification (the helper's frames all have 1) takes
        // the entry away again, and its later fragments go to the node.
        case(
            "reply_first_fragment",
            plain(EGRESS_IP, TCP, MF, &l4(80, 40000)),
            to_dp,
            reply,
        ),
        case(
            "reply_later_fragment",
            plain(EGRESS_IP, TCP, MF | 185, &[0; 32]),
            to_dp,
            "fragment_redirected",
        ),
        case(
            "reply_last_fragment",
            plain(EGRESS_IP, TCP, 370, &[0; 32]),
            to_dp,
            "fragment_redirected",
        ),
        case(
            "service_first_fragment",
            plain(EGRESS_IP, TCP, MF, &l4(51234, 8080)),
            pass,
            "service_port_passed",
        ),
        case(
            "service_later_fragment",
            plain(EGRESS_IP, TCP, 185, &[0; 32]),
            pass,
            "fragment_passed",
        ),
        case(
            "udp_on_a_tcp_service_port",
            plain(EGRESS_IP, UDP, 0, &l4(51234, 8080)),
            to_dp,
            reply,
        ),
        case(
            "below_the_snat_range",
            plain(EGRESS_IP, TCP, 0, &l4(51234, 22)),
            to_dp,
            other_dp,
        ),
        case(
            "icmp_echo_request",
            plain(EGRESS_IP, ICMP, 0, &icmp(8)),
            to_dp,
            other_dp,
        ),
        case(
            "other_protocol",
            plain(EGRESS_IP, 47, 0, &[0; 8]),
            to_dp,
            other_dp,
        ),
        case(
            "l4_truncated",
            plain(EGRESS_IP, TCP, 0, &[0, 80]),
            to_dp,
            other_dp,
        ),
        case(
            "non_first_fragment",
            plain(EGRESS_IP, UDP, 185, &[0; 32]),
            pass,
            "fragment_passed",
        ),
        // Neither.
        case("arp", arp, pass, other),
        case("ipv6", ipv6, pass, other),
        case(
            "another_address",
            plain(ip("192.168.99.24"), TCP, 0, &l4(80, 40000)),
            pass,
            other,
        ),
        case("ipv4_truncated", short_eth, pass, other),
        case("ipv4_ihl_below_5", ihl4, pass, other),
    ]
    .into_iter()
    .chain(cases_v6())
    .collect()
}
