//! The steering program's decisions, frame by frame: every case of
//! `tests::steering_cases` run through the loaded program (`BPF_PROG_TEST_RUN`, on a veth in
//! a namespace, an AF_XDP socket bound so that a redirect is real) must get its verdict and
//! bump exactly its counter.

use tests::netns::{self, Netns};
use tests::steering_cases::cases;

#[test]
fn steering_decisions() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let peer = Netns::new("steerpeer").unwrap();
    let gw = Netns::new("steer").unwrap();
    // No IPv6 on the link: the kernel's own neighbour discovery and MLD frames would run
    // the program too, between a case's counter reads (a case once read "several").
    for ns in [&peer, &gw] {
        for key in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            assert!(ns.run("sysctl", &["-qw", key]).unwrap().status.success());
        }
    }
    netns::veth((&peer, "eth0", None), (&gw, "eth0", None)).unwrap();
    let out = gw.run(env!("CARGO_BIN_EXE_steer_run"), &["eth0"]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "steer_run failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = cases();
    assert!(table.len() >= 25, "{} cases", table.len());
    let mut wrong = Vec::new();
    for c in &table {
        let want = format!(
            "{} {} {}",
            c.name,
            if c.redirect { "redirect" } else { "pass" },
            c.verdict
        );
        let got = text
            .lines()
            .find(|l| l.split(' ').next() == Some(c.name))
            .map(|l| l.rsplit_once(' ').map_or(l, |(head, _ns)| head));
        if got != Some(want.as_str()) {
            wrong.push(format!("want {want:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        table.len(),
        wrong.join("\n")
    );
    // Every verdict the program has is exercised.
    for v in gateway::xdp::steer::VERDICTS {
        assert!(table.iter().any(|c| c.verdict == v), "no case for {v}");
    }
    // The program left with the helper.
    let link = gw.run("ip", &["-d", "link", "show", "eth0"]).unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("prog/xdp"));
}
