//! IPv6 with FRR 8.4 (issue 17, item 5), on the seed's LAN made dual-stack:
//! - one session per family, as the seed's `disableMP: true` asks: an IPv4 session carrying
//!   IPv4 and an IPv6 session (between the nodes' and the router's IPv6 addresses) carrying
//!   IPv6, each with single-hop BFD (RFC 5881, hop limit 255 for IPv6). FRR learns the egress
//!   IPv6 address as a /128 via each announcing node (ECMP), drops it on withdraw, and drops
//!   both families at once when BFD sees a node vanish, well inside the 9 s hold time; the
//!   speaker takes FRR's IPv6 prefix through its filter and rejects another;
//! - multiprotocol BGP: IPv6 routes over the IPv4 session, with the node's IPv6 address as
//!   their next hop.

use std::time::Duration;

use tests::bgp_peer::{Lan, SpeakerProcess};
use tests::netns::{self, Netns};
use tests::routers::{require, wait_until, Frr};

/// The seed's frr.conf with IPv6 neighbours beside the IPv4 ones (FRR activates IPv4 unicast
/// for every neighbour; our IPv6 sessions offer IPv6 alone, so they carry IPv6 alone).
const FRR_CONF: &str = "frr defaults traditional
router bgp 64512
 bgp router-id 192.168.99.12
 neighbor 192.168.99.23 remote-as 64512
 neighbor 192.168.99.23 bfd
 neighbor 192.168.99.24 remote-as 64512
 neighbor 192.168.99.24 bfd
 neighbor fd00:99::23 remote-as 64512
 neighbor fd00:99::23 bfd
 neighbor fd00:99::24 remote-as 64512
 neighbor fd00:99::24 bfd
 address-family ipv4 unicast
  network 192.168.55.0/24
  maximum-paths ibgp 4
 exit-address-family
 address-family ipv6 unicast
  network fd00:55::/64
  network fd00:77::/64
  neighbor fd00:99::23 activate
  neighbor fd00:99::24 activate
  maximum-paths ibgp 4
 exit-address-family
!
";

/// IPv6 routes over the IPv4 sessions (multiprotocol BGP, no IPv6 session).
const FRR_MP_CONF: &str = "frr defaults traditional
router bgp 64512
 bgp router-id 192.168.99.12
 neighbor 192.168.99.23 remote-as 64512
 address-family ipv6 unicast
  network fd00:55::/64
  neighbor 192.168.99.23 activate
 exit-address-family
!
";

const EGRESS_V4: &str = "192.168.66.100";
const EGRESS_V6: &str = "fd00:66::100";

/// The router and two nodes on one dual-stack LAN; the router's networks on its loopback.
fn lab() -> (Netns, Netns, Netns, Lan) {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    require(Frr::BGPD).expect("FRR");
    let router = Netns::new("router").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let m02 = Netns::new("m02").unwrap();
    let lan = Lan::dual_stack(&[
        (&router, "192.168.99.12/24", "fd00:99::12/64"),
        (&m01, "192.168.99.23/24", "fd00:99::23/64"),
        (&m02, "192.168.99.24/24", "fd00:99::24/64"),
    ])
    .unwrap();
    for net in ["192.168.55.12/24", "fd00:55::12/64", "fd00:77::12/64"] {
        router.ip(&["addr", "add", net, "dev", "lo"]).unwrap();
    }
    (router, m01, m02, lan)
}

fn speaker(ns: &Netns, node: &str, extra: &[&str]) -> SpeakerProcess {
    let v4 = format!("192.168.99.{node}");
    let v6 = format!("fd00:99::{node}");
    let mut args = vec![
        "--as",
        "64512",
        "--router-id",
        &v4,
        "--listen",
        &v4,
        "--import",
        "192.168.55.0/24",
        "--import",
        "fd00:55::/64",
    ];
    args.extend(extra);
    let listen6 = ["--listen", v6.as_str()];
    if !extra.contains(&"--mp") {
        args.extend(listen6);
    }
    SpeakerProcess::start(ns, &args).expect("bgp_speaker starts")
}

/// The next hops of FRR's BGP route to `prefix` in its IPv6 table.
fn vias6(frr: &Frr, prefix: &str) -> Vec<String> {
    let out = frr.vtysh(&["show ipv6 route bgp"]).unwrap_or_default();
    let mut v: Vec<String> = out
        .lines()
        .skip_while(|l| !l.contains(prefix))
        .take_while(|l| l.contains(prefix) || l.trim_start().starts_with('*'))
        .flat_map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] == "via")
                .map(|w| w[1].trim_end_matches(',').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

fn established_with(gw: &mut SpeakerProcess, families: [&str; 2]) -> bool {
    gw.status().is_ok_and(|s| {
        s.len() == 2
            && s.iter()
                .zip(families)
                .all(|(n, f)| n.state == "Established" && n.families == [f] && n.bfd == "Up")
    })
}

#[test]
fn bgp_interop_frr_ipv6_one_session_per_family_with_bfd() {
    let (router, m01, m02, _lan) = lab();
    let frr = Frr::start(&router, FRR_CONF, true).unwrap();
    let neighbors = [
        "--neighbor",
        "192.168.99.12:64512:9",
        "--neighbor",
        "[fd00:99::12]:64512:9",
        "--bfd",
        "3:300",
    ];
    let mut gw1 = speaker(&m01, "23", &neighbors);
    let mut gw2 = speaker(&m02, "24", &neighbors);
    let families = ["ipv4-unicast", "ipv6-unicast"];
    assert!(
        wait_until(Duration::from_secs(30), || established_with(
            &mut gw1, families
        ) && established_with(
            &mut gw2, families
        )),
        "{:?}\n{:?}\n{}\ngw1:\n{}\ngw2:\n{}",
        gw1.status(),
        gw2.status(),
        frr.vtysh(&["show bgp summary", "show bfd peers brief"])
            .unwrap_or_default(),
        gw1.log(40),
        gw2.log(40)
    );
    let peers = frr.vtysh(&["show bfd peers brief"]).unwrap();
    assert!(
        peers
            .lines()
            .any(|l| l.contains("fd00:99::23") && l.contains(" up")),
        "FRR's BFD session over IPv6: {peers}"
    );

    // The import filter, per family: FRR's fd00:55::/64 in, fd00:77::/64 out.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = gw1.status().unwrap();
            s[1].accepted == ["fd00:55::/64@fd00:99::12"] && s[1].rejected >= 1
        }),
        "{:?}",
        gw1.status()
    );
    assert_eq!(
        gw1.status().unwrap()[0].accepted,
        ["192.168.55.0/24@192.168.99.12"]
    );

    // Both nodes announce both egress IPs: FRR has each family's route via each node's
    // address of that family, as ECMP.
    for gw in [&mut gw1, &mut gw2] {
        gw.command(&format!("announce {EGRESS_V4} {EGRESS_V6}"))
            .unwrap();
    }
    let both6 = ["fd00:99::23", "fd00:99::24"];
    assert!(
        wait_until(Duration::from_secs(10), || vias6(&frr, EGRESS_V6) == both6),
        "{}",
        frr.vtysh(&["show ipv6 route bgp", "show bgp ipv6 unicast"])
            .unwrap_or_default()
    );
    let table = frr.vtysh(&["show ipv6 route bgp"]).unwrap();
    assert!(
        table.contains(&format!("B>* {EGRESS_V6}/128 [200/0] via fd00:99::2")),
        "{table}"
    );
    assert!(
        frr.bgp_routes_to(&format!("{EGRESS_V4}/32"))
            .contains("via 192.168.99.24"),
        "{}",
        frr.vtysh(&["show ip route bgp"]).unwrap_or_default()
    );
    // The IPv4 session carries no IPv6 route, the IPv6 session no IPv4 one.
    let s = gw1.status().unwrap();
    assert_eq!(
        (s[0].advertised.clone(), s[1].advertised.clone()),
        (
            vec![format!("{EGRESS_V4}/32")],
            vec![format!("{EGRESS_V6}/128")]
        )
    );

    // Withdraw the IPv6 address from one node: only the other remains.
    gw1.command(&format!("announce {EGRESS_V4}")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || vias6(&frr, EGRESS_V6)
            == ["fd00:99::24"]),
        "{}",
        frr.vtysh(&["show ipv6 route bgp"]).unwrap_or_default()
    );

    // The other node's link goes: BFD (900 ms) takes both its sessions down, and with them
    // the routes, long before the 9 s hold time would.
    m02.ip(&["link", "set", "eth0", "down"]).unwrap();
    let gone = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || vias6(&frr, EGRESS_V6).is_empty()
            && !frr
                .bgp_routes_to(&format!("{EGRESS_V4}/32"))
                .contains("192.168.99.24")),
        "{}",
        frr.vtysh(&["show ipv6 route bgp", "show bfd peers brief"])
            .unwrap_or_default()
    );
    // --nocapture prints it: docs/bgp.md's figure.
    eprintln!(
        "link lost -> both families' routes gone from FRR's RIB in {} ms (BFD 300 ms x 3)",
        gone.elapsed().as_millis()
    );
    let peer = frr
        .vtysh(&["show bgp neighbors fd00:99::24"])
        .unwrap_or_default();
    assert!(
        peer.contains("Notification sent (Cease/BFD Down)"),
        "{peer}"
    );
}

#[test]
fn bgp_interop_frr_ipv6_over_an_ipv4_session() {
    let (router, m01, _m02, _lan) = lab();
    let frr = Frr::start(&router, FRR_MP_CONF, false).unwrap();
    let mut gw = speaker(
        &m01,
        "23",
        &[
            "--neighbor",
            "192.168.99.12:64512:9",
            "--mp",
            "on",
            "--next-hop-v6",
            "fd00:99::23",
            "--announce",
            EGRESS_V4,
            "--announce",
            EGRESS_V6,
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || gw
            .established_with(&["ipv4-unicast", "ipv6-unicast"])),
        "{:?}\n{}",
        gw.status(),
        frr.vtysh(&["show bgp summary"]).unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || vias6(&frr, EGRESS_V6)
            == ["fd00:99::23"]),
        "{}",
        frr.vtysh(&["show ipv6 route bgp", "show bgp ipv6 unicast"])
            .unwrap_or_default()
    );
    assert!(frr
        .bgp_routes_to(&format!("{EGRESS_V4}/32"))
        .contains("via 192.168.99.23"));
    // FRR's IPv6 prefix came over the IPv4 session too, with FRR's IPv6 next hop.
    assert!(
        wait_until(Duration::from_secs(10), || gw.status().is_ok_and(|s| s[0]
            .accepted
            .iter()
            .any(|r| r.starts_with("fd00:55::/64@")))),
        "{:?}",
        gw.status()
    );
    gw.command(&format!("announce {EGRESS_V4}")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || vias6(&frr, EGRESS_V6)
            .is_empty()),
        "{}",
        frr.vtysh(&["show ipv6 route bgp"]).unwrap_or_default()
    );
    assert!(frr
        .bgp_routes_to(&format!("{EGRESS_V4}/32"))
        .contains("via 192.168.99.23"));
}
