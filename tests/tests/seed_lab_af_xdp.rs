//! The first real packets through egressgw over AF_XDP, one-armed on a veth: a pod node sends
//! a Geneve-encapsulated UDP datagram from pod 10.133.0.3; the server (the same namespace, as
//! the one peer of the link) sees it come from the egress IP 192.168.66.100, answers, and the
//! answer comes back Geneve-encapsulated to the pod node, addressed to the pod. (`gw_forward`
//! stands in for the daemon, which comes next.)

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tests::daemon::{one_armed_sections, signal_and_wait, start_daemon};
use tests::netns::{self, Netns};
use tests::pod_node::EXCHANGE;

#[test]
fn seed_lab_af_xdp_udp_round_trip() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let node = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&node, "eth0", Some("10.77.4.1/24")),
        (&gw, "eth0", Some("10.77.4.2/24")),
    )
    .unwrap();
    node.ip(&["route", "add", "192.168.66.100/32", "via", "10.77.4.2"])
        .unwrap();
    let node_mac = node.run("cat", &["/sys/class/net/eth0/address"]).unwrap();
    let node_mac = String::from_utf8_lossy(&node_mac.stdout).trim().to_owned();

    let (mut fwd, out) = netns::spawn_ready(
        gw.command(env!("CARGO_BIN_EXE_gw_forward"))
            .args([
                "eth0",
                "10.77.4.2",
                "192.168.66.100",
                "10.133.0.3",
                "10.77.4.1",
                &node_mac,
                "2",
            ])
            .stderr(Stdio::piped()),
    )
    .expect("gateway did not start");
    let lines = out.lines();

    let out = node
        .run(
            "python3",
            &[
                "-c",
                EXCHANGE,
                "10.77.4.1",
                "10.77.4.2",
                "10.77.4.1",
                "serve",
            ],
        )
        .expect("pod node exchange");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = fwd.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gateway did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let report: Vec<String> = lines.map_while(Result::ok).collect();
    eprintln!("{text}{report:?}");
    assert!(status.success(), "gateway: {report:?}");
    // The server saw the egress IP, never the pod or the node.
    assert!(text.contains("server saw 192.168.66.100 "), "{text}");
    assert!(text.contains(" ping"), "{text}");
    // The reply came back through the tunnel from the gateway's node IP, to the pod.
    assert!(text.contains("tunnel from 10.77.4.2 vni 0xff0003 inner 10.77.4.1 -> 10.133.0.3 5555 -> 4000 pong checksum ok"), "{text}");
}

/// The same exchange through the real daemon, configured from TOML; SIGTERM then stops it
/// and leaves no program attached, and so does kill -9.
#[test]
fn seed_lab_daemon_round_trip_then_clean_exit() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let node = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&node, "eth0", Some("10.77.6.1/24")),
        (&gw, "eth0", Some("10.77.6.2/24")),
    )
    .unwrap();
    node.ip(&["route", "add", "192.168.66.100/32", "via", "10.77.6.2"])
        .unwrap();
    let config = std::env::temp_dir().join(format!("egressgw-test-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "egress_ips = [\"192.168.66.100\"]\n{}{}",
            one_armed_sections("10.77.6.2", "eth0"),
            r#"
[control]
socket = "/tmp/egw-seed-lab-af-xdp.sock"

[[pods]]
ip = "10.133.0.3"
egress_ip = "192.168.66.100"
comment = "demo-egress/egress-identity"
"#
        ),
    )
    .unwrap();

    let mut daemon = start_daemon(&gw, &config);
    // The daemon learns the pod node's MAC from the kernel's neighbour table (filled by the
    // node's ARP, and read again when the kernel announces it): the exchange retries until then.
    let out = node
        .run(
            "python3",
            &[
                "-c",
                EXCHANGE,
                "10.77.6.1",
                "10.77.6.2",
                "10.77.6.1",
                "serve",
            ],
        )
        .expect("pod node exchange");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("server saw 192.168.66.100 "), "{text}");
    assert!(
        text.contains("tunnel from 10.77.6.2 vni 0xff0003 inner 10.77.6.1 -> 10.133.0.3 5555 -> 4000 pong checksum ok"),
        "{text}"
    );

    let status = signal_and_wait(&mut daemon, "-TERM");
    assert!(status.success(), "daemon exit after SIGTERM: {status:?}");
    assert!(
        !xdp_attached(&gw),
        "XDP program left attached after SIGTERM"
    );
    // kill -9 gives the daemon no chance to clean up: the program hangs on a bpf link owned by
    // the process, so the kernel detaches it when the process dies.
    let mut daemon = start_daemon(&gw, &config);
    assert!(xdp_attached(&gw), "daemon running without its program");
    signal_and_wait(&mut daemon, "-KILL");
    let _ = std::fs::remove_file(&config);
    assert!(
        !xdp_attached(&gw),
        "XDP program left attached after kill -9"
    );
}

fn xdp_attached(ns: &Netns) -> bool {
    let link = ns.run("ip", &["-d", "link", "show", "eth0"]).unwrap();
    String::from_utf8_lossy(&link.stdout).contains("prog/xdp")
}
