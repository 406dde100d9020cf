//! Two gateways serve one egress IP (`lab/ha-lab`, issue 16): both announce it to FRR, which
//! spreads replies over them (ECMP, L4 hashing) and watches them with BFD; they replicate
//! their sessions over the sync channel. 200 long-lived TCP flows from pod 10.133.0.3, UDP
//! flows and new connections opening in the background run while the serving gateway is
//! killed (kill -9) three times, each time the pods' tunnel moving to the survivor and the
//! dead one restarting and resyncing before it is announced again. No connection breaks,
//! the server sees no reset and no source but the egress IP, and no flow waits more than
//! 1.5 s for an echo (the script checks these and fails otherwise); nothing is left behind.
//! The same with SIGTERM (a planned restart: the route withdrawn, the last sessions delivered,
//! the peer told), with a silent cut (the switch drops the serving gateway's frames: BFD and
//! the sync hellos notice), and with a drain (`egressctl drain`, the pods moved, then
//! `egressctl undrain`). And the same kill -9s with the flows over IPv6 (the lab is
//! dual-stack): IPv6 sessions replicate, and a reply without one is forwarded, as IPv4's;
//! and on the IPv6 underlay (a single-stack IPv6 cluster's set), where the pod node tunnels,
//! and the gateways sync and forward replies, over IPv6.

use tests::lab::HA_LAB;

#[test]
fn ha_failover_kill_the_serving_gateway_and_no_connection_breaks() {
    let text = HA_LAB.run(&["run", "3"], &[("FLOWS", "200")]);
    assert_survived(&text, 3);
}

#[test]
fn ha_failover_ipv6_flows_survive_kills_of_the_serving_gateway() {
    let text = HA_LAB.run(&["run", "3"], &[("FLOWS", "200"), ("FAMILY", "6")]);
    assert!(
        text.contains("from fd00:10:128:3::3 as fd00:66::100;"),
        "{text}"
    );
    assert_survived_as(&text, 3, "fd00:66::100");
}

#[test]
fn ha_failover_on_the_ipv6_underlay_flows_survive_kills_of_the_serving_gateway() {
    let text = HA_LAB.run(
        &["run", "3"],
        &[("FLOWS", "200"), ("FAMILY", "6"), ("UNDERLAY", "6")],
    );
    tests::lab::assert_set_on_the_ipv6_underlay(&text);
    assert_survived_as(&text, 3, "fd00:66::100");
}

#[test]
fn ha_failover_planned_restarts_lose_no_connection() {
    let text = HA_LAB.run(&["run", "3"], &[("FLOWS", "200"), ("SIGNAL", "TERM")]);
    assert_eq!(text.matches(" got SIGTERM;").count(), 3, "{text}");
    assert_survived(&text, 3);
}

#[test]
fn ha_failover_a_silent_cut_loses_no_connection() {
    let text = HA_LAB.run(&["run", "2"], &[("FLOWS", "200"), ("EVENT", "blackhole")]);
    assert_eq!(
        text.matches(" was cut off silently for 2 s;").count(),
        2,
        "{text}"
    );
    assert_survived(&text, 2);
}

#[test]
fn ha_failover_a_drain_loses_no_connection() {
    let text = HA_LAB.run(&["run", "2"], &[("FLOWS", "200"), ("EVENT", "drain")]);
    // Each drain ended because the pods moved, not by its timeout.
    assert_eq!(text.matches(", the pods moved);").count(), 2, "{text}");
    assert_survived(&text, 2);
}

fn assert_survived(text: &str, events: usize) {
    assert_survived_as(text, events, "192.168.66.100");
}

/// The set survived `events` events, the server seeing the flows from `egress_ip` alone.
fn assert_survived_as(text: &str, events: usize, egress_ip: &str) {
    assert_eq!(
        text.matches(" back in sync and announced in ").count(),
        events,
        "{text}"
    );
    let summary = text
        .lines()
        .find(|l| l.starts_with("{\"seconds\""))
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    assert!(summary.contains("\"tcp_connected\": 200"), "{text}");
    assert!(summary.contains("\"tcp_broken\": 0,"), "{text}");
    assert!(
        text.contains(&format!("0 reset, 0 from another address than {egress_ip}")),
        "{text}"
    );
    // egressctl shows the set: both in sync, the peer alive, the blocks split between them.
    assert_eq!(text.matches("in sync; owns ").count(), 2, "{text}");
    // Both gateways held the other's sessions.
    assert_eq!(text.matches("replicas installed ").count(), 2, "{text}");
    assert!(!text.contains("replicas installed 0\n"), "{text}");
}
