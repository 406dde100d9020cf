//! The BGP speaker against BIRD 2 (iBGP with single-hop BFD, `direct;`) and GoBGP 3 (no BFD):
//! sessions come up, each router learns the egress IP as a /32 via the announcing node, and
//! the speaker receives the router's prefix through its filter.

use std::time::Duration;

use tests::bgp_peer::{Lan, SpeakerProcess};
use tests::netns::{self, Netns};
use tests::routers::{gobgp_config, require, wait_until, Bird, Gobgp};

const BIRD_CONF: &str = r#"
router id 192.168.99.12;
protocol device {}
protocol direct { ipv4; interface "lo"; }
protocol bfd {
  interface "eth0" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };
}
protocol bgp gw1 {
  local 192.168.99.12 as 64512;
  neighbor 192.168.99.23 as 64512;
  direct;
  bfd on;
  hold time 9;
  ipv4 { import all; export where source = RTS_DEVICE; };
}
"#;

fn lab() -> (Netns, Netns, Lan) {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let router = Netns::new("router").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let lan = Lan::new(&[(&router, "192.168.99.12/24"), (&m01, "192.168.99.23/24")]).unwrap();
    router
        .ip(&["addr", "add", "192.168.55.12/24", "dev", "lo"])
        .unwrap();
    (router, m01, lan)
}

fn speaker(ns: &Netns, bfd: bool) -> SpeakerProcess {
    let mut args = vec![
        "--as",
        "64512",
        "--router-id",
        "192.168.99.23",
        "--listen",
        "192.168.99.23",
        "--neighbor",
        "192.168.99.12:64512:9",
        "--import",
        "192.168.55.0/24",
        "--announce",
        "192.168.66.100",
    ];
    if bfd {
        args.extend(["--bfd", "3:300"]);
    }
    SpeakerProcess::start(ns, &args).expect("bgp_speaker starts")
}

#[test]
fn bgp_interop_bird_with_bfd() {
    require(Bird::BINARY).expect("BIRD 2");
    let (router, m01, _lan) = lab();
    let bird = Bird::start(&router, BIRD_CONF).unwrap();
    let mut gw = speaker(&m01, true);
    assert!(
        wait_until(Duration::from_secs(30), || {
            gw.status()
                .is_ok_and(|s| s[0].state == "Established" && s[0].bfd == "Up")
        }),
        "{:?}\n{}",
        gw.status(),
        bird.birdc("show protocols all gw1").unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || bird
            .birdc("show bfd sessions")
            .is_ok_and(|o| o.contains("192.168.99.23") && o.contains(" Up "))),
        "{}",
        bird.birdc("show bfd sessions").unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || bird
            .birdc("show route 192.168.66.100/32")
            .is_ok_and(|o| o.contains("via 192.168.99.23"))),
        "{}",
        bird.birdc("show route all").unwrap_or_default()
    );
    assert!(wait_until(Duration::from_secs(10), || gw
        .status()
        .is_ok_and(
            |s| s[0].accepted == ["192.168.55.0/24@192.168.99.12"]
        )));

    // BFD down at the router (its BFD protocol disabled) takes our BGP session down at once,
    // without waiting for the 9 s hold time.
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
fn bgp_interop_gobgp() {
    require(Gobgp::BINARY).expect("GoBGP");
    let (router, m01, _lan) = lab();
    let gobgp = Gobgp::start(
        &router,
        &gobgp_config("192.168.99.12", "192.168.99.23", 64512, None),
    )
    .unwrap();
    gobgp
        .cli(&["global", "rib", "add", "192.168.55.0/24"])
        .unwrap();
    gobgp
        .cli(&["global", "rib", "add", "10.99.0.0/16"])
        .unwrap();
    let mut gw = speaker(&m01, false);
    assert!(
        wait_until(Duration::from_secs(30), || gw.state() == "Established"),
        "{:?}\n{}",
        gw.status(),
        gobgp.cli(&["neighbor"]).unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || gobgp
            .cli(&["global", "rib", "192.168.66.100/32"])
            .is_ok_and(|o| o.contains("192.168.99.23"))),
        "{}",
        gobgp.cli(&["global", "rib"]).unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || gw.status().is_ok_and(|s| {
            s[0].accepted == ["192.168.55.0/24@192.168.99.23"]
                || s[0].accepted == ["192.168.55.0/24@192.168.99.12"]
        }) && gw
            .status()
            .is_ok_and(|s| s[0].rejected >= 1)),
        "{:?}",
        gw.status()
    );
    gw.command("announce").unwrap();
    assert!(wait_until(Duration::from_secs(5), || gobgp
        .cli(&["global", "rib", "192.168.66.100/32"])
        .is_ok_and(|o| !o.contains("192.168.99.23"))));
}

/// eBGP: the gateway in AS 65001 prepends its AS and sends no LOCAL_PREF; the router's routes
/// arrive with the router's AS first, which the speaker requires of eBGP peers.
#[test]
fn bgp_interop_gobgp_ebgp() {
    require(Gobgp::BINARY).expect("GoBGP");
    let (router, m01, _lan) = lab();
    let gobgp = Gobgp::start(
        &router,
        &gobgp_config("192.168.99.12", "192.168.99.23", 65001, None),
    )
    .unwrap();
    gobgp
        .cli(&["global", "rib", "add", "192.168.55.0/24"])
        .unwrap();
    let mut gw = SpeakerProcess::start(
        &m01,
        &[
            "--as",
            "65001",
            "--router-id",
            "192.168.99.23",
            "--listen",
            "192.168.99.23",
            "--neighbor",
            "192.168.99.12:64512:9",
            "--import",
            "192.168.55.0/24",
            "--announce",
            "192.168.66.100",
        ],
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || gobgp
            .cli(&["global", "rib", "192.168.66.100/32"])
            .is_ok_and(|o| o.contains("192.168.99.23") && o.contains("65001"))),
        "{:?}\n{}",
        gw.status(),
        gobgp.cli(&["global", "rib"]).unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .status()
            .is_ok_and(|s| s[0].accepted == ["192.168.55.0/24@192.168.99.12"])),
        "{:?}",
        gw.status()
    );
}

/// One speaker, two neighbours of different kinds on the same LAN: GoBGP (no BFD) and BIRD
/// (BFD). Both sessions come up independently, both routers learn the egress IP, and the
/// routes each sends are kept per neighbour.
#[test]
fn bgp_interop_two_neighbours() {
    require(Gobgp::BINARY).expect("GoBGP");
    require(Bird::BINARY).expect("BIRD 2");
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let r1 = Netns::new("gobgp").unwrap();
    let r2 = Netns::new("bird").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let _lan = Lan::new(&[
        (&r1, "192.168.99.12/24"),
        (&r2, "192.168.99.13/24"),
        (&m01, "192.168.99.23/24"),
    ])
    .unwrap();
    r2.ip(&["addr", "add", "192.168.56.13/24", "dev", "lo"])
        .unwrap();
    let gobgp = Gobgp::start(
        &r1,
        &gobgp_config("192.168.99.12", "192.168.99.23", 64512, None),
    )
    .unwrap();
    gobgp
        .cli(&["global", "rib", "add", "192.168.55.0/24"])
        .unwrap();
    let bird_conf = BIRD_CONF
        .replace("router id 192.168.99.12", "router id 192.168.99.13")
        .replace("local 192.168.99.12", "local 192.168.99.13");
    let bird = Bird::start(&r2, &bird_conf).unwrap();
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
            "--neighbor",
            "192.168.99.13:64512:9",
            "--import",
            "192.168.55.0/24",
            "--import",
            "192.168.56.0/24",
            "--bfd",
            "3:300",
            "--announce",
            "192.168.66.100",
        ],
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || gw.status().is_ok_and(|s| {
            s.len() == 2
                && s.iter().all(|n| n.state == "Established")
                && s[1].bfd == "Up"
                && s[0].accepted == ["192.168.55.0/24@192.168.99.12"]
                && s[1].accepted == ["192.168.56.0/24@192.168.99.13"]
        })),
        "{:?}\n{}",
        gw.status(),
        gw.log(40)
    );
    assert_eq!(gw.status().unwrap()[0].bfd, "Down", "GoBGP has no BFD");
    assert!(wait_until(Duration::from_secs(10), || gobgp
        .cli(&["global", "rib", "192.168.66.100/32"])
        .is_ok_and(|o| o.contains("192.168.99.23"))));
    assert!(wait_until(Duration::from_secs(10), || bird
        .birdc("show route 192.168.66.100/32")
        .is_ok_and(|o| o.contains("via 192.168.99.23"))));
    // Losing one neighbour leaves the other alone.
    drop(bird);
    r2.kill_all();
    assert!(wait_until(Duration::from_secs(5), || gw
        .status()
        .is_ok_and(
            |s| s[1].state != "Established" && s[0].state == "Established"
        )));
}
