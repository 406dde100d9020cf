//! The seed lab on real OVN (`lab/ovn-lab`): master-01..03 are OVN 23.03 chassis in
//! interconnect mode, the pods OVN logical switch ports, OVN's own priority-101 reroute sends
//! them to master-01, where egressgw sits on the NIC under master-01's OVS bridge. OVN sends
//! the Geneve egressgw receives and judges the replies egressgw sends. The lab's namespaces
//! have fixed names, so the tests here run one at a time.

use tests::lab::OVN_LAB;

/// Brings the lab up, runs `checks`, tears it down; returns what it printed.
fn run_lab(checks: &str) -> String {
    OVN_LAB.run(&["run", checks], &[])
}

#[test]
fn seed_lab_ovn_pods_reach_the_server_as_the_egress_ip() {
    let text = run_lab("egress ipv6");
    // OVN's own reroute flow on master-03, as the seed shows it.
    assert!(
        text.contains("nw_src=10.133.0.3 actions=load:0x64580004->NXM_NX_XXREG0[96..127],load:0x64580002->NXM_NX_XXREG0[64..95],mod_dl_src:0a:58:64:58:00:02"),
        "{text}"
    );
    // Both pods, both ports: the server logged the egress IP each time (and both pods once
    // more over IPv6).
    assert_eq!(text.matches("HTTP/1.0 200 OK").count(), 6, "{text}");
    assert_eq!(text.matches("\n192.168.66.100 - - [").count(), 4, "{text}");
    assert!(
        text.contains("reply: EGRESS?") && text.contains("the echo service saw: 192.168.66.100"),
        "{text}"
    );
    assert!(text.contains("sha256 matches (10485760 bytes)"), "{text}");
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{text}"
    );
    // IPv4 fragments both ways through OVN: the answers, cut by the gateway to the pods' MTU
    // (a veth of 1400 bytes drops anything larger), put together by the pod's stack.
    assert!(
        text.contains("answer: 3000 bytes, in upper case")
            && text.contains("2 packets transmitted, 2 received, 0% packet loss"),
        "{text}"
    );
    // Dual stack: OVN's ip6.src reroute on master-03, both pods' IPv6 left as the IPv6 LB IP,
    // the IPv6 download and ping came back through OVN, the unmapped IPv6 pod got nothing
    // out, and FRR learned the /128.
    assert!(
        text.contains("priority=101,ipv6,metadata=0x1,ipv6_src=fd00:10:128:3::3 actions="),
        "{text}"
    );
    assert_eq!(text.matches("\nfd00:66::100 - - [").count(), 2, "{text}");
    assert_eq!(
        text.matches("sha256 matches (10485760 bytes)").count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("3 packets transmitted, 3 received, 0% packet loss")
            .count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("nothing got out").count(), 2, "{text}");
    assert!(
        text.contains("B>* fd00:66::100/128 [200/0] via fd00:99::23, eth0"),
        "{text}"
    );
    // The frames egressgw translated are OVN's: the transit switch's VNI, keys 2 -> 4, the
    // inner TTL already decremented by master-03's router; the replies go back mirrored.
    assert!(
        text.contains("in    192.168.99.25 -> 192.168.99.23 geneve vni 0xff0003 ovn 2/4 [icmp 10.133.0.3 -> 192.168.55.13 EchoRequest ttl 63]"),
        "{text}"
    );
    assert!(
        text.contains("out   underlay: 192.168.99.23 -> 192.168.99.25 geneve vni 0xff0003 ovn 4/2"),
        "{text}"
    );
    // Fail closed: OVN reroutes the unmapped pod too; nothing of it gets out.
    assert!(text.contains("nothing got out"), "{text}");
    // Remapped at run time; announced; nothing leaked; FRR's route via master-01.
    assert!(text.contains("\n192.168.66.101 - - ["), "{text}");
    assert!(text.contains(", 0 with a pod or node source"), "{text}");
    assert!(
        text.contains("B>* 192.168.66.100/32 [200/0] via 192.168.99.23, eth0"),
        "{text}"
    );
}

#[test]
fn seed_lab_ovn_east_west_and_the_service_beside_the_gateway() {
    let text = run_lab("overlay service");
    // master-03's mapped pod reached master-01's pod through OVN, with its own address, and
    // back; the server reached the Service's backend through master-01's DNAT and OVN.
    assert!(
        text.lines().any(|l| l.starts_with("10.133.0.3 - - [")),
        "{text}"
    );
    assert!(
        text.contains("2 packets transmitted, 2 received, 0% packet loss"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("192.168.55.13 - - [")),
        "{text}"
    );
}

#[test]
fn seed_lab_ovn_judges_the_replies() {
    let text = run_lab("replies");
    // Ours delivered; each wrong field dropped, as OVN's own pipeline decides.
    assert!(
        text.contains("delivered: the reply as egressgw builds it"),
        "{text}"
    );
    assert!(
        text.contains("dropped: the option's keys not swapped"),
        "{text}"
    );
    assert!(
        text.contains("dropped: the inner MACs not swapped"),
        "{text}"
    );
    assert!(text.contains("dropped: another VNI"), "{text}");
}

/// Issue 16 on real OVN: master-01 and master-02 are a gateway set, and master-03's OVN
/// spreads pod 10.133.0.3's flows over both with one ECMP reroute policy (OVN's own
/// active-active). Each gateway in turn is killed (kill -9), the policy moved to the survivor as
/// OVN-Kubernetes would, the gateway restarted, resynced and put back into the policy: no
/// connection breaks, no reset, no UDP flow changes its source port, both gateways carried the
/// pod's traffic, and OVN accepted every reply from either.
#[test]
fn seed_lab_ovn_ha_failover_over_ovns_ecmp_reroute() {
    ha_failover("4", "192.168.66.100");
}

/// Real OVN on the IPv6 underlay (issue 17; `UNDERLAY=6 lab/ovn-lab run ipv6`): the chassis
/// encapsulate at their IPv6 addresses as on a single-stack IPv6 cluster, so OVS sends the
/// pods' IPv6 to egressgw in Geneve over IPv6 and checks the outer UDP checksum of every reply
/// egressgw sends back; both pods leave as the IPv6 LB IP, ping -6 and the 10 MB download come
/// back through OVN, the unmapped pod gets nothing out, and the sessions name master-03 by
/// its IPv6 address.
#[test]
fn seed_lab_ovn_ipv6_underlay_ovs_tunnels_over_ipv6_to_the_gateway() {
    let text = OVN_LAB.run(&["run", "ipv6"], &[("UNDERLAY", "6")]);
    assert!(text.contains("geneve fd00:99::25"), "{text}");
    assert_eq!(text.matches("\nfd00:66::100 - - [").count(), 2, "{text}");
    assert!(text.contains("sha256 matches (10485760 bytes)"), "{text}");
    assert!(
        text.contains("3 packets transmitted, 3 received, 0% packet loss"),
        "{text}"
    );
    assert!(text.contains("nothing got out"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("tcp    [fd00:10:128:3::3]:")
                && l.contains(" [fd00:66::100]:")
                && l.ends_with(" fd00:99::25")),
        "{text}"
    );
    assert!(
        text.contains("B>* fd00:66::100/128 [200/0] via fd00:99::23, eth0"),
        "{text}"
    );
}

/// The same with the pod's IPv6 flows (issue 17): OVN's `ip6.src` policy spreads them over
/// both gateways by ECMP, their sessions replicate, and the kills break none of them.
#[test]
fn seed_lab_ovn_ha_failover_of_ipv6_flows_over_ovns_ecmp_reroute() {
    ha_failover("6", "fd00:66::100");
}

/// And on the IPv6 underlay: OVS tunnels the pod's flows to both gateways over IPv6, the
/// gateways sync and forward replies over IPv6, and every session on both, the replicas
/// included, names master-03 by its IPv6 address.
#[test]
fn seed_lab_ovn_ha_failover_on_the_ipv6_underlay() {
    let text = ha_failover_on("6", "fd00:66::100", "6");
    tests::lab::assert_set_on_the_ipv6_underlay(&text);
}

/// Two kills with the traffic of `family` from pod 10.133.0.3 (or its IPv6 address), which
/// the server must see from `egress_ip` alone.
fn ha_failover(family: &str, egress_ip: &str) {
    ha_failover_on(family, egress_ip, "4");
}

/// [`ha_failover`] over the underlay of family `underlay`; returns the lab's output.
fn ha_failover_on(family: &str, egress_ip: &str, underlay: &str) -> String {
    let text = OVN_LAB.run(
        &["ha", "2"],
        &[
            ("FLOWS", "100"),
            ("DOWNLOADS", "4"),
            ("IDLE", "10"),
            ("FAMILY", family),
            ("UNDERLAY", underlay),
        ],
    );
    assert_eq!(
        text.matches(" back in sync, announced and in the ECMP policy again in ")
            .count(),
        2,
        "{text}"
    );
    let summary = text
        .lines()
        .find(|l| l.starts_with("{\"seconds\""))
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    for want in [
        "\"tcp_connected\": 100,",
        "\"tcp_broken\": 0,",
        "\"download_broken\": 0,",
        "\"idle_broken\": 0,",
    ] {
        assert!(summary.contains(want), "{want}: {text}");
    }
    assert!(
        text.contains(&format!(
            "0 reset, 0 from another address than {egress_ip}, 0 UDP flows seen from a new source port"
        )),
        "{text}"
    );
    assert_eq!(text.matches("in sync; owns ").count(), 2, "{text}");
    text
}
