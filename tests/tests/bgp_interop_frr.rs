//! The BGP speaker against FRR 8.4 configured with the seed's frr.conf, all in namespaces on
//! one LAN as in the seed: FRR learns each egress IP as a /32 via the node that announces it,
//! installs ECMP when two nodes announce the same IP, drops the route on withdraw, on
//! NOTIFICATION cease and on kill -9; the speaker accepts 192.168.55.0/24 through its filter
//! and rejects a prefix outside it.

use std::time::Duration;

use tests::bgp_peer::{Lan, SpeakerProcess};
use tests::netns::{self, Netns};
use tests::routers::{require, wait_until, Frr};

/// The seed's frr.conf (section 1.2), with a second network for the filter test and hold 9 s
/// so a lost session shows within the test's patience.
const FRR_CONF: &str = "frr defaults traditional
router bgp 64512
 bgp router-id 192.168.99.12
 neighbor 192.168.99.23 remote-as 64512
 neighbor 192.168.99.24 remote-as 64512
 neighbor 192.168.99.25 remote-as 64512
 address-family ipv4 unicast
  network 192.168.55.0/24
  network 10.99.0.0/16
  maximum-paths ibgp 4
 exit-address-family
!
";

const EGRESS_IP: &str = "192.168.66.100";

fn speaker(ns: &Netns, node_ip: &str) -> SpeakerProcess {
    SpeakerProcess::start(
        ns,
        &[
            "--as",
            "64512",
            "--router-id",
            node_ip,
            "--listen",
            node_ip,
            "--neighbor",
            "192.168.99.12:64512:9",
            "--import",
            "192.168.55.0/24",
        ],
    )
    .expect("bgp_speaker starts")
}

fn vias(frr: &Frr) -> Vec<String> {
    let routes = frr.bgp_routes_to(&format!("{EGRESS_IP}/32"));
    let mut v: Vec<String> = routes
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].trim_end_matches(',').to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bgp_interop_frr_seed_router() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    require(Frr::BGPD).expect("FRR");
    let router = Netns::new("router").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let m02 = Netns::new("m02").unwrap();
    let _lan = Lan::new(&[
        (&router, "192.168.99.12/24"),
        (&m01, "192.168.99.23/24"),
        (&m02, "192.168.99.24/24"),
    ])
    .unwrap();
    // The networks FRR originates must be in its RIB.
    router
        .ip(&["addr", "add", "192.168.55.12/24", "dev", "lo"])
        .unwrap();
    router
        .ip(&["addr", "add", "10.99.0.1/16", "dev", "lo"])
        .unwrap();
    let frr = Frr::start(&router, FRR_CONF, false).unwrap();

    let mut gw1 = speaker(&m01, "192.168.99.23");
    let mut gw2 = speaker(&m02, "192.168.99.24");
    assert!(
        wait_until(Duration::from_secs(30), || gw1.state() == "Established"
            && gw2.state() == "Established"),
        "sessions did not come up: {:?} {:?}\n{}",
        gw1.status(),
        gw2.status(),
        frr.vtysh(&["show bgp summary"]).unwrap_or_default()
    );

    // Import filter: the seed's allowed prefix in, anything else out.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = gw1.status().unwrap();
            s[0].accepted == ["192.168.55.0/24@192.168.99.12"] && s[0].rejected >= 1
        }),
        "{:?}",
        gw1.status()
    );

    // One node announces: FRR has the /32 via that node, as the seed shows.
    gw1.command(&format!("announce {EGRESS_IP}")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || vias(&frr) == ["192.168.99.23"]),
        "{}",
        frr.vtysh(&["show ip route bgp", "show bgp ipv4 unicast"])
            .unwrap_or_default()
    );
    let table = frr.vtysh(&["show ip route bgp"]).unwrap();
    assert!(
        table.contains(&format!("B>* {EGRESS_IP}/32 [200/0] via 192.168.99.23")),
        "{table}"
    );

    // FRR asks for our routes again (ROUTE-REFRESH); we answer inside BoRR/EoRR (RFC 7313,
    // both sides support it), the session stays up and so does the route.
    frr.vtysh(&["clear bgp 192.168.99.23 soft in"]).unwrap();
    let refreshes_received = || {
        let n = frr
            .vtysh(&["show bgp neighbors 192.168.99.23"])
            .unwrap_or_default();
        let line = n
            .lines()
            .find(|l| l.trim_start().starts_with("Route Refresh:"))
            .unwrap_or("");
        let nums: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (nums.get(1).copied().unwrap_or(0), n)
    };
    assert!(
        wait_until(Duration::from_secs(5), || refreshes_received().0 >= 2),
        "no BoRR/EoRR at FRR: {}",
        refreshes_received().1
    );
    let n = refreshes_received().1;
    assert!(n.contains("Connections established 1; dropped 0"), "{n}");
    assert_eq!(vias(&frr), ["192.168.99.23"]);

    // Both announce with identical attributes: ECMP.
    gw2.command(&format!("announce {EGRESS_IP}")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || vias(&frr)
            == ["192.168.99.23", "192.168.99.24"]),
        "no ECMP: {}",
        frr.vtysh(&["show ip route bgp", "show bgp ipv4 unicast"])
            .unwrap_or_default()
    );

    // Withdraw from one: only the other remains.
    gw1.command("announce").unwrap();
    assert!(wait_until(Duration::from_secs(10), || vias(&frr) == ["192.168.99.24"]));

    // NOTIFICATION cease on shutdown: FRR drops the route at once (no hold-time wait).
    assert!(gw2.quit().unwrap().success());
    assert!(wait_until(Duration::from_secs(3), || vias(&frr).is_empty()));
    let neighbor = frr.vtysh(&["show bgp neighbors 192.168.99.24"]).unwrap();
    assert!(neighbor.contains("Administrative Shutdown"), "{neighbor}");

    // kill -9: the kernel closes the TCP connection, FRR drops the route.
    gw1.command(&format!("announce {EGRESS_IP}")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || vias(&frr) == ["192.168.99.23"]));
    gw1.kill9();
    assert!(wait_until(Duration::from_secs(3), || vias(&frr).is_empty()));
}
