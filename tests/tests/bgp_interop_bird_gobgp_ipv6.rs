//! IPv6 with BIRD 2 and GoBGP 3 (issue 17, item 5):
//! - BIRD over an IPv6 session (one session per family) with single-hop BFD over IPv6: BIRD
//!   learns the egress IPv6 address as a /128 via the node, its BFD session is up, and BFD
//!   disabled at BIRD takes our session down at once; the speaker takes BIRD's IPv6 prefix
//!   (sent with a global and a link-local next hop) through its filter;
//! - GoBGP with both families over one IPv4 session (multiprotocol BGP).

use std::time::Duration;

use tests::bgp_peer::{Lan, SpeakerProcess};
use tests::netns::{self, Netns};
use tests::routers::{require, wait_until, Bird, Gobgp};

const BIRD_CONF: &str = r#"
router id 192.168.99.12;
protocol device {}
protocol direct { ipv6; interface "lo"; }
protocol bfd {
  interface "eth0" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };
}
protocol bgp gw1 {
  local fd00:99::12 as 64512;
  neighbor fd00:99::23 as 64512;
  direct;
  bfd on;
  hold time 9;
  ipv6 { import all; export where source = RTS_DEVICE; };
}
"#;

/// GoBGP with IPv4 and IPv6 unicast on its IPv4 neighbour, hold 9 s.
const GOBGP_CONF: &str = r#"
[global.config]
  as = 64512
  router-id = "192.168.99.12"
  local-address-list = ["192.168.99.12"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.168.99.23"
    peer-as = 64512
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#;

const EGRESS_V6: &str = "fd00:66::100";

fn lab() -> (Netns, Netns, Lan) {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let router = Netns::new("router").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let lan = Lan::dual_stack(&[
        (&router, "192.168.99.12/24", "fd00:99::12/64"),
        (&m01, "192.168.99.23/24", "fd00:99::23/64"),
    ])
    .unwrap();
    for net in ["192.168.55.12/24", "fd00:55::12/64", "fd00:77::12/64"] {
        router.ip(&["addr", "add", net, "dev", "lo"]).unwrap();
    }
    (router, m01, lan)
}

#[test]
fn bgp_interop_bird_ipv6_with_bfd() {
    require(Bird::BINARY).expect("BIRD 2");
    let (router, m01, _lan) = lab();
    let bird = Bird::start(&router, BIRD_CONF).unwrap();
    let mut gw = SpeakerProcess::start(
        &m01,
        &[
            "--as",
            "64512",
            "--router-id",
            "192.168.99.23",
            "--listen",
            "fd00:99::23",
            "--neighbor",
            "[fd00:99::12]:64512:9",
            "--import",
            "fd00:55::/64",
            "--bfd",
            "3:300",
            "--announce",
            EGRESS_V6,
        ],
    )
    .expect("bgp_speaker starts");
    assert!(
        wait_until(Duration::from_secs(30), || gw
            .established_with(&["ipv6-unicast"])
            && gw.status().is_ok_and(|s| s[0].bfd == "Up")),
        "{:?}\n{}",
        gw.status(),
        bird.birdc("show protocols all gw1").unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || bird
            .birdc("show bfd sessions")
            .is_ok_and(|o| o.contains("fd00:99::23") && o.contains(" Up "))),
        "{}",
        bird.birdc("show bfd sessions").unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || bird
            .birdc(&format!("show route {EGRESS_V6}/128"))
            .is_ok_and(|o| o.contains("via fd00:99::23"))),
        "{}",
        bird.birdc("show route all").unwrap_or_default()
    );
    // BIRD's fd00:55::/64 passes the filter (its global next hop recorded); fd00:77::/64 not.
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .status()
            .is_ok_and(
                |s| s[0].accepted == ["fd00:55::/64@fd00:99::12"] && s[0].rejected >= 1
            )),
        "{:?}",
        gw.status()
    );

    bird.birdc("disable bfd1").unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || gw
            .status()
            .is_ok_and(|s| s[0].bfd != "Up" && s[0].state != "Established")),
        "{:?}",
        gw.status()
    );
}

#[test]
fn bgp_interop_gobgp_ipv6_over_an_ipv4_session() {
    require(Gobgp::BINARY).expect("GoBGP");
    let (router, m01, _lan) = lab();
    let gobgp = Gobgp::start(&router, GOBGP_CONF).unwrap();
    gobgp
        .cli(&["global", "rib", "add", "-a", "ipv6", "fd00:55::/64"])
        .unwrap();
    gobgp
        .cli(&["global", "rib", "add", "-a", "ipv6", "fd00:77::/64"])
        .unwrap();
    let mut gw = SpeakerProcess::start(
        &m01,
        &[
            "--as",
            "64512",
            "--router-id",
            "192.168.99.23",
            "--listen",
            "192.168.99.23",
            "--neighbor",
            "192.168.99.12:64512:9",
            "--mp",
            "on",
            "--next-hop-v6",
            "fd00:99::23",
            "--import",
            "fd00:55::/64",
            "--announce",
            "192.168.66.100",
            "--announce",
            EGRESS_V6,
        ],
    )
    .expect("bgp_speaker starts");
    assert!(
        wait_until(Duration::from_secs(30), || gw
            .established_with(&["ipv4-unicast", "ipv6-unicast"])),
        "{:?}\n{}",
        gw.status(),
        gobgp.cli(&["neighbor"]).unwrap_or_default()
    );
    let rib6 = || {
        gobgp
            .cli(&["global", "rib", "-a", "ipv6", &format!("{EGRESS_V6}/128")])
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(10), || rib6().contains("fd00:99::23")),
        "{}",
        gobgp
            .cli(&["global", "rib", "-a", "ipv6"])
            .unwrap_or_default()
    );
    assert!(gobgp
        .cli(&["global", "rib", "192.168.66.100/32"])
        .is_ok_and(|o| o.contains("192.168.99.23")));
    assert!(
        wait_until(Duration::from_secs(10), || gw.status().is_ok_and(|s| {
            s[0].accepted.iter().any(|r| r.starts_with("fd00:55::/64@"))
                && !s[0].accepted.iter().any(|r| r.starts_with("fd00:77::"))
                && s[0].rejected >= 1
        })),
        "{:?}",
        gw.status()
    );
    // Withdrawn over MP_UNREACH_NLRI; the IPv4 route stays.
    gw.command("announce 192.168.66.100").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !rib6().contains("fd00:99::23")),
        "{}",
        rib6()
    );
    assert!(gobgp
        .cli(&["global", "rib", "192.168.66.100/32"])
        .is_ok_and(|o| o.contains("192.168.99.23")));
}
