//! The seed lab with master-01 as the node it is on a real cluster: its own pod behind its own
//! tunnel endpoint (its OVS), the seed's DNAT for the Service on the egress IP, and the gateway
//! beside them taking only egress traffic (`lab/seed-lab run CHECK...`).

use tests::lab::SEED_LAB;

/// Brings the lab up with `env`, runs `checks`, tears it down; returns what it printed.
fn run_lab(env: &[(&str, &str)], checks: &str) -> String {
    SEED_LAB.run(&["run", checks], env)
}

/// The steering program's count of `verdict` on `interface`, from `egressctl stats`.
fn verdict(text: &str, interface: &str, verdict: &str) -> u64 {
    text.lines()
        .rev()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == interface && w.next()? == verdict).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {verdict} count on {interface} in:\n{text}"))
}

#[test]
fn seed_lab_coexists_with_the_node_overlay() {
    let text = run_lab(&[], "overlay");
    // The mapped pod's east-west request reached master-01's pod with its own address.
    assert!(text.contains("HTTP/1.0 200 OK"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("10.133.0.3 - - [") && l.contains("\"HEAD / HTTP/1.1\" 200")),
        "{text}"
    );
    // East-west, an unmapped pod, OVN's BFD and a foreign option layout reached the node's
    // own endpoint byte for byte, and the program counted them as the node's.
    assert!(
        text.contains("4 of 4 frames arrived byte for byte"),
        "{text}"
    );
    assert!(verdict(&text, "br-ex", "geneve_passed") >= 4, "{text}");
}

#[test]
fn seed_lab_service_ingress_on_the_egress_ip() {
    let text = run_lab(&[], "service");
    // The server's curl to 192.168.66.100:8080 was answered by the backend behind the DNAT,
    // while a pod's egress to the server left as 192.168.66.100.
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.168.55.13 - - [") && l.contains("\"HEAD / HTTP/1.1\" 200")),
        "the backend did not answer the server:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("192.168.66.100 - - [") && l.contains("\"HEAD / HTTP/1.1\" 200")),
        "egress not SNATed:\n{text}"
    );
    assert!(text.contains("none does"), "{text}");
    assert!(
        verdict(&text, "br-ex", "service_port_passed") >= 1,
        "{text}"
    );
    assert!(verdict(&text, "br-ex", "reply_redirected") >= 1, "{text}");
}

/// As on a real node: br-ex a bridge carrying the node IP, the NIC eth0 under it, XDP and
/// AF_XDP on eth0 (`underlay_uplink`), neighbours and the node's MAC from br-ex.
#[test]
fn seed_lab_uplink_apart_from_the_bridge() {
    let text = run_lab(&[("BRIDGE", "1")], "egress overlay service");
    assert_eq!(text.matches("HTTP/1.0 200 OK").count(), 6, "{text}");
    assert!(text.contains("sha256 matches (10485760 bytes)"), "{text}");
    assert!(
        text.contains("4 of 4 frames arrived byte for byte"),
        "{text}"
    );
    assert!(text.contains(", 0 with a pod or node source"), "{text}");
    // The program sits on the uplink, not on the bridge.
    assert!(verdict(&text, "eth0", "geneve_redirected") > 0, "{text}");
    assert!(verdict(&text, "eth0", "service_port_passed") >= 1, "{text}");
}
