//! The seed lab made dual-stack (issue 17, item 7; `lab/seed-lab run ipv6`), with master-01's
//! NIC under its br-ex as on a real node: the pods' IPv6 addresses (fd00:10:128:3::3 on
//! master-03, fd00:10:128:2::d on master-02) reach the server's `python3 -m http.server` on
//! [fd00:55::13]:80 through egressgw over AF_XDP, in Geneve over the IPv4 underlay, and the
//! server logs the Service's IPv6 LoadBalancer IP fd00:66::100; ping -6 works through the NAT;
//! a 10 MB download whose full-size segments do not fit the underlay once wrapped draws Packet
//! Too Big, the server learns the path MTU and the download arrives intact; an IPv6 pod without
//! a mapping gets nothing out; the Service's own port on the IPv6 LB IP is passed to the node,
//! whose DNAT answers it; FRR (the seed's frr.conf with an IPv6 neighbour, one session per
//! family as `disableMP: true` asks) learns fd00:66::100/128 via master-01's IPv6 address.

use tests::lab::SEED_LAB;

#[test]
fn seed_lab_ipv6_pods_leave_as_the_ipv6_lb_ip_with_path_mtu_discovery() {
    let text = SEED_LAB.run(&["run", "ipv6"], &[("BRIDGE", "1")]);
    // The pods' MTU (1400: OVN-Kubernetes's on a 1500-byte underlay), below what Geneve over
    // IPv4 leaves (1500 less outer IPv4, UDP, Geneve with OVN's option, inner Ethernet: 1442).
    assert_ipv6_lab(&text, 1400, "192.168.99.25");
}

/// What the `ipv6` check printed: both pods out as the IPv6 LB IP, ping -6, the download with
/// path MTU discovery to `path_mtu`, the sessions naming master-03 as `node`, the Service's
/// port the node's, FRR's route and the steering program's verdicts.
fn assert_ipv6_lab(text: &str, path_mtu: u32, node: &str) {
    // Both pods' curl -6 answered, and the server's curl -6 to the Service on the IPv6 LB IP;
    // the server saw the IPv6 egress IP, never a pod's address.
    assert_eq!(text.matches("HTTP/1.0 200 OK").count(), 3, "{text}");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("fd00:66::100 - - [") && l.contains("\"HEAD / HTTP/1.1\" 200"))
            .count()
            >= 2,
        "{text}"
    );
    assert!(!text.contains("fd00:10:128:3::3 - - ["), "{text}");
    // The v6 map as nftables prints egress-service-snat-v6.
    assert!(
        text.contains(
            "elements = { fd00:10:128:2::d comment \"demo-egress/egress-identity\" : fd00:66::100,"
        ),
        "{text}"
    );
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{text}"
    );
    // Path MTU discovery through the gateway: Packet Too Big sent, the server's route to the
    // egress IP carries the underlay's MTU less the tunnel (1500 less the tunnel), the download is whole.
    assert!(text.contains("sha256 matches (10485760 bytes)"), "{text}");
    let too_big: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("the gateway sent ")?
                .strip_suffix(" Packet Too Big to the server")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no Packet Too Big count: {text}"));
    assert!(too_big >= 1, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("fd00:66::100 from :: via fd00:55::12")
                && l.contains(&format!(" mtu {path_mtu} "))),
        "{text}"
    );
    assert!(text.contains("nothing got out"), "{text}");
    // The Service's own port on the IPv6 LB IP stayed the node's: its DNAT reached the backend.
    assert!(
        text.lines()
            .any(|l| l.starts_with("fd00:55::13 - - [") && l.contains("\"HEAD / HTTP/1.1\" 200")),
        "{text}"
    );
    let passed: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("the steering program passed ")?
                .strip_suffix(" frames to the node's load balancer (service_port_passed)")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no service_port_passed count: {text}"));
    assert!(passed >= 1, "{text}");
    // The sessions list shows IPv6 tuples, the tunnel from the pod's IPv4 node.
    assert!(
        text.lines()
            .any(|l| l.starts_with("tcp    [fd00:10:128:3::3]:")
                && l.contains(" [fd00:66::100]:")
                && l.contains(" [fd00:55::13]:80 ")
                && l.ends_with(&format!(" {node}"))),
        "{text}"
    );
    // FRR learned the /128 over the IPv6 session; each family has a session of its own.
    assert!(
        text.contains("B>* fd00:66::100/128 [200/0] via fd00:99::23, eth0"),
        "{text}"
    );
    for (neighbor, family) in [
        ("192.168.99.12", "ipv4-unicast"),
        ("fd00:99::12", "ipv6-unicast"),
    ] {
        assert!(
            text.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() > 3 && w[0] == neighbor && w[2] == "Established" && w[3] == family
            }),
            "{neighbor}: {text}"
        );
    }
    // The steering program on the NIC under the bridge sent the pods' IPv6 Geneve and the
    // replies to the dataplane.
    for verdict in ["geneve_redirected", "reply_redirected"] {
        assert!(
            text.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() == 3 && w[0] == "eth0" && w[1] == verdict && w[2] != "0"
            }),
            "{verdict}: {text}"
        );
    }
}

/// The same lab on the IPv6 underlay (`UNDERLAY=6`, egressgw's `node.ip6`): the pod nodes
/// tunnel to master-01 in Geneve over IPv6, as a single-stack IPv6 cluster's overlay does.
/// The pods' curl -6, ping -6 and the 10 MB download go through (the pod nodes' kernels check
/// the outer UDP checksum of every reply, which the gateway computes from the inner packet's);
/// Packet Too Big carries the pods' MTU (1400, below the 1500 - 78 the larger IPv6 tunnel
/// leaves, which `pipeline_underlay6.rs` checks); the
/// sessions name master-03 by its IPv6 address; an IPv4 pod's packet on that underlay is a
/// counted drop (`ipv4_over_ipv6_underlay`).
#[test]
fn seed_lab_ipv6_underlay_pods_tunnel_over_ipv6_and_leave_as_the_ipv6_lb_ip() {
    let text = SEED_LAB.run(&["run", "ipv6"], &[("BRIDGE", "1"), ("UNDERLAY", "6")]);
    assert_ipv6_lab(&text, 1400, "fd00:99::25");
    let dropped: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("ipv4_over_ipv6_underlay drops: ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no ipv4_over_ipv6_underlay count: {text}"));
    assert!(dropped >= 1, "{text}");
}
