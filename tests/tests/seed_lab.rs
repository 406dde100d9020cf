//! The fast seed lab (`lab/seed-lab`, pod nodes imitated by `lab/podnode.py`): real curl from pod
//! 10.133.0.3 on master-03, through egressgw on master-01's br-ex over AF_XDP, to the server's
//! `python3 -m http.server` on 80 and 8080, which must log 192.168.66.100 as the client (also
//! for master-02's pod 10.132.0.13); a UDP request gets its response, from the egress IP; a
//! 10 MB download arrives intact; ping works through the NAT; 3000 bytes of UDP and a ping of
//! 3000 bytes go through in IPv4 fragments both ways; a pod without a mapping gets
//! nothing out (a counted drop); remapping the pod at run time (egressctl) moves its new flows
//! to the new egress
//! IP; TCP to master-01's own address keeps working; the router (FRR 8.4 with the seed's
//! frr.conf) learns the egress IPs over BGP from egressgw's speaker and the gateway accepts the
//! server network through its filter; a capture on the router's side shows nothing leaving with
//! a pod or node address; nothing is left behind.

use tests::lab::SEED_LAB;

#[test]
fn seed_lab_curl_from_the_pod_reaches_the_server_as_the_egress_ip() {
    // The demo, every check; nothing the lab started outlives it (`Lab::run` checks).
    let text = SEED_LAB.run(&["demo"], &[]);
    // Both server ports from master-03's pod, port 80 from master-02's, the node's own
    // service, master-01's pod east-west, the Service's ingress on the egress IP, and both
    // pods over IPv6, and the Service on its IPv6 LB IP.
    assert_eq!(text.matches("HTTP/1.0 200 OK").count(), 9, "{text}");
    // Dual stack: the server saw the IPv6 LoadBalancer IP; FRR learned its /128.
    assert!(text.contains("fd00:66::100 - - ["), "{text}");
    assert!(
        text.contains("B>* fd00:66::100/128 [200/0] via fd00:99::23, eth0"),
        "{text}"
    );
    // The server saw the egress IP: both ports from master-03's pod, master-02's pod twice.
    assert_eq!(text.matches("192.168.66.100 - - [").count(), 4, "{text}");
    assert!(
        text.contains("reply: EGRESS?") && text.contains("the echo service saw: 192.168.66.100"),
        "{text}"
    );
    assert!(text.contains("sha256 matches (10485760 bytes)"), "{text}");
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{text}"
    );
    // IPv4 fragments both ways: 3000 bytes of UDP and a ping of 3000 bytes, the answers cut
    // again by the gateway to fit the tunnel back (lib.sh's check_fragments).
    assert!(
        text.contains("answer: 3000 bytes, in upper case")
            && text.contains("2 packets transmitted, 2 received, 0% packet loss"),
        "{text}"
    );
    assert!(text.contains("nothing got out"), "{text}");
    // After the pod was remapped (egressctl), its next flow left as the new IP.
    assert!(text.contains("192.168.66.101 - - ["), "{text}");
    // FRR learned both egress IPs from the gateway over BGP, as in the seed's section 3.2.
    assert!(
        text.contains("B>* 192.168.66.100/32 [200/0] via 192.168.99.23, eth0"),
        "{text}"
    );
    assert!(
        text.contains("B>* 192.168.66.101/32 [200/0] via 192.168.99.23, eth0"),
        "{text}"
    );
    // egressctl: the seed's map as nftables shows it, the counted drop of the unmapped pod,
    // the BGP session and the route the gateway accepted through its filter.
    assert!(
        text.contains("map egress-service-snat-v4 {")
            && text.contains(
                r#"elements = { 10.132.0.13 comment "demo-egress/egress-identity" : 192.168.66.100,"#
            )
            && text.contains(r#"10.133.0.3 comment "demo-egress/egress-identity" : 192.168.66.100 }"#),
        "{text}"
    );
    // The unmapped pod's frames were left to the node, and counted there; the steering
    // program's verdicts show in the metrics.
    let passed = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("the steering program passed ")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no steering count for the unmapped pod: {text}"));
    assert!(passed >= 1, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(
            "egressgw_steering_packets_total{interface=\"br-ex\",verdict=\"geneve_redirected\"} "
        ) && !l.ends_with(" 0")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("tcp    10.133.0.3:")
            && l.contains(" 192.168.66.100:")
            && l.contains(" 192.168.55.13:80 ")
            && l.ends_with(" 192.168.99.25")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.168.99.12  64512  Established")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.168.55.0/24") && l.ends_with("192.168.99.12")),
        "{text}"
    );
    // Everything toward the server's network left with the egress IPs as source.
    let capture = text
        .lines()
        .find(|l| l.contains("packets captured"))
        .unwrap_or_else(|| panic!("no capture summary: {text}"));
    assert!(
        capture.ends_with(", 0 with a pod or node source"),
        "{capture}"
    );
    assert!(!capture.starts_with("0 packets"), "{capture}");
    // A flush frees the pod's sessions (its curl made one) and leaves none behind.
    let flushed = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("flushed ")?
                .strip_suffix(" sessions")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no flush output: {text}"));
    assert!(flushed >= 1, "{text}");
    assert!(text.contains("0 of 0 matching sessions shown"), "{text}");
    // The trace shows the pipeline's steps; the capture is a pcap tcpdump reads, with the
    // tunnelled request as received and the translated one as sent.
    assert!(
        text.contains("  map   10.133.0.3 -> 192.168.66.100"),
        "{text}"
    );
    assert!(
        text.contains("  out   external: icmp 192.168.66.100 -> 192.168.55.13"),
        "{text}"
    );
    assert!(
        text.contains("  out   underlay: 192.168.99.23 -> 192.168.99.25 geneve vni 0xff0003"),
        "{text}"
    );
    assert!(
        text.contains("wrote 8 packets to /run/egwlab/capture.pcap (4 as received, 4 as sent)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("IP 192.168.66.100 > 192.168.55.13: ICMP echo request")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("IP 192.168.99.25.")
                && l.contains("> 192.168.99.23.6081: Geneve")),
        "{text}"
    );
}
