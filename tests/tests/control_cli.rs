//! `egressctl` against a real daemon over a real socket: every command, `-o json` parsed
//! back, refusals with their exit codes and messages, a garbage request answered with an error
//! while the daemon carries on, and a user outside the socket's group refused.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tests::daemon::{one_armed_sections, signal_and_wait, start_daemon};
use tests::netns::{self, Netns};

fn config(socket: &Path) -> String {
    format!(
        r#"
egress_ips = ["192.168.66.100"]

{}
[control]
socket = "{}"

[metrics]
listen = "127.0.0.1:9469"

[[pods]]
ip = "10.133.0.3"
egress_ip = "192.168.66.100"
comment = "demo-egress/egress-identity"
"#,
        one_armed_sections("10.77.8.2", "eth0"),
        socket.display()
    )
}

struct Ctl {
    socket: PathBuf,
}

impl Ctl {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(tests::workspace_bin("egressctl"))
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "egressctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("egressctl -o json prints JSON")
    }
}

fn refused(out: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in {stderr:?}"
    );
}

#[test]
fn control_cli_against_a_running_daemon() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let node = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&node, "eth0", Some("10.77.8.1/24")),
        (&gw, "eth0", Some("10.77.8.2/24")),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("egw-{}-ctl", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("egressgw.sock");
    let path = dir.join("egressgw.toml");
    std::fs::write(&path, config(&socket)).unwrap();
    let mut daemon = start_daemon(&gw, &path);
    let ctl = Ctl {
        socket: socket.clone(),
    };

    // The worker alone on its core (0); the daemon's other threads elsewhere, where there is
    // an elsewhere.
    let threads = thread_cores(daemon.id());
    let others_may_avoid_0 = std::thread::available_parallelism().unwrap().get() > 1;
    assert!(threads.len() > 2, "{threads:?}");
    for (name, cores) in &threads {
        if name == "egressgw-q0" {
            assert_eq!(cores, &[0], "the worker's cores");
        } else if others_may_avoid_0 {
            assert!(
                !cores.contains(&0),
                "{name} may run on the worker's core: {cores:?}"
            );
        }
    }

    // The seed's map, as nftables prints it.
    let list = ctl.ok(&["map", "list"]);
    assert!(
        list.starts_with("map egress-service-snat-v4 {\n\ttype ipv4_addr : ipv4_addr\n"),
        "{list}"
    );
    assert!(
        list.contains(r#"10.133.0.3 comment "demo-egress/egress-identity" : 192.168.66.100"#),
        "{list}"
    );

    // A reader that has left (`| grep -q` after its match): no panic, and the command's own
    // exit code, so a pipeline under `set -o pipefail` does not fail on it.
    for args in [&["map", "list"][..], &["-o", "json", "sessions"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(tests::workspace_bin("egressctl"))
            .arg("-s")
            .arg(&socket)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "egressctl {args:?} into a closed pipe: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    ctl.ok(&[
        "map",
        "add",
        "10.132.0.13",
        "192.168.66.100",
        "--comment",
        "demo-egress/egress-identity",
    ]);
    refused(
        &ctl.run(&["map", "add", "10.1.1.1", "192.168.66.101"]),
        1,
        "192.168.66.101 is not served",
    );
    ctl.ok(&["egress", "add", "192.168.66.101"]);
    assert_eq!(
        ctl.ok(&["egress", "list"]),
        "egress ip       service ports (the node's)\n192.168.66.100  -\n192.168.66.101  -\n"
    );
    // Service ports: set, shown, replaced by the next add; a bad one is a usage error.
    ctl.ok(&[
        "egress",
        "add",
        "192.168.66.101",
        "--service-port",
        "8080/tcp",
        "--service-port",
        "53/udp",
    ]);
    let row = |text: &str, want: &[&str]| {
        text.lines()
            .any(|l| l.split_whitespace().eq(want.iter().copied()))
    };
    let egress = ctl.ok(&["egress", "list"]);
    assert!(
        row(&egress, &["192.168.66.101", "8080/tcp,53/udp"]),
        "{egress}"
    );
    ctl.ok(&[
        "egress",
        "add",
        "192.168.66.101",
        "--service-port",
        "8443/tcp",
    ]);
    let egress = ctl.json(&["egress", "list"]);
    assert_eq!(
        egress["egress"][1]["service_ports"],
        serde_json::json!(["8443/tcp"]),
        "{egress}"
    );
    refused(
        &ctl.run(&[
            "egress",
            "add",
            "192.168.66.101",
            "--service-port",
            "8080/sctp",
        ]),
        2,
        "tcp or udp",
    );
    // The cluster's networks: the file's, and those learned at run time.
    ctl.ok(&["cluster", "set", "10.128.0.0/23", "100.88.0.0/16"]);
    let cluster = ctl.ok(&["cluster", "list"]);
    assert!(
        row(&cluster, &["10.128.0.0/13", "configuration"]),
        "{cluster}"
    );
    assert!(row(&cluster, &["10.128.0.0/23", "cluster"]), "{cluster}");
    refused(
        &ctl.run(&["cluster", "set", "0.0.0.0/0"]),
        1,
        "every destination",
    );
    refused(
        &ctl.run(&["cluster", "set", "192.168.66.0/24"]),
        1,
        "holds the egress IP",
    );
    refused(
        &ctl.run(&["cluster", "set", "10.128.0.1/23"]),
        2,
        "host bits",
    );
    assert_eq!(
        ctl.json(&["cluster", "list"])["learned"],
        serde_json::json!(["10.128.0.0/23", "100.88.0.0/16"])
    );
    ctl.ok(&["map", "add", "10.1.1.1", "192.168.66.101"]);
    refused(
        &ctl.run(&["egress", "del", "192.168.66.101"]),
        1,
        "still has 1 pod(s)",
    );
    let json = ctl.json(&["map", "list"]);
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{json}");
    assert_eq!(entries[0]["pod"], "10.1.1.1");

    // Replace-all from standard input; one bad entry refuses all of it.
    let bad = r#"[{"pod":"10.133.0.3","egress_ip":"192.168.66.100"},{"pod":"10.9.9.9","egress_ip":"192.168.66.199"}]"#;
    refused(
        &ctl.run_with_stdin(&["map", "replace", "-"], bad),
        1,
        "entries[1]",
    );
    assert_eq!(
        ctl.json(&["map", "list"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let good = r#"[{"pod":"10.133.0.3","egress_ip":"192.168.66.101","comment":"moved"}]"#;
    let out = ctl.run_with_stdin(&["map", "replace", "-"], good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = ctl.json(&["map", "list"]);
    let expected = serde_json::json!([
        {"pod": "10.133.0.3", "egress_ip": "192.168.66.101", "comment": "moved"}
    ]);
    assert_eq!(list["entries"], expected);
    ctl.ok(&["map", "del", "10.133.0.3"]);
    refused(&ctl.run(&["map", "del", "10.133.0.3"]), 1, "is not mapped");
    ctl.ok(&["egress", "del", "192.168.66.101"]);

    // IPv6 (dual stack): an IPv6 egress IP, an IPv6 pod mapped to it, both maps printed as
    // nftables prints egress-service-snat-v4 and -v6; families never mix.
    ctl.ok(&[
        "egress",
        "add",
        "2001:db8:66::100",
        "--service-port",
        "8080/tcp",
    ]);
    ctl.ok(&[
        "map",
        "add",
        "fd00:10:133::3",
        "2001:db8:66::100",
        "--comment",
        "demo-egress/egress-identity",
        "--node",
        "10.77.8.1",
    ]);
    refused(
        &ctl.run(&["map", "add", "fd00:10:133::4", "192.168.66.100"]),
        1,
        "different families",
    );
    refused(
        &ctl.run(&["map", "add", "10.133.0.9", "2001:db8:66::100"]),
        1,
        "different families",
    );
    refused(
        &ctl.run(&["map", "add", "fd00:10:133::4", "2001:db8:66::101"]),
        1,
        "2001:db8:66::101 is not served",
    );
    refused(
        &ctl.run(&["egress", "add", "fe80::1"]),
        1,
        "cannot be a source address",
    );
    ctl.ok(&["cluster", "set", "10.128.0.0/23", "fd00:10:128::/48"]);
    refused(
        &ctl.run(&["cluster", "set", "2001:db8:66::/64"]),
        1,
        "holds the egress IP 2001:db8:66::100",
    );
    let list = ctl.ok(&["map", "list"]);
    assert!(
        list.contains(
            "map egress-service-snat-v6 {\n\ttype ipv6_addr : ipv6_addr\n\telements = { fd00:10:133::3 comment \"demo-egress/egress-identity\" : 2001:db8:66::100 }\n}\n"
        ),
        "{list}"
    );
    assert!(
        list.starts_with("map egress-service-snat-v4 {")
            && !list[..list.find("-v6").unwrap()].contains("fd00"),
        "{list}"
    );
    let json = ctl.json(&["map", "list"]);
    let v6 = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pod"] == "fd00:10:133::3")
        .cloned();
    assert_eq!(
        v6,
        Some(
            serde_json::json!({"pod": "fd00:10:133::3", "egress_ip": "2001:db8:66::100",
            "comment": "demo-egress/egress-identity", "node": "10.77.8.1"})
        ),
        "{json}"
    );
    assert!(ctl
        .ok(&["egress", "list"])
        .lines()
        .any(|l| l.split_whitespace().eq(["2001:db8:66::100", "8080/tcp"])));
    let none = ctl.json(&["sessions", "--pod", "fd00:10:133::3"]);
    assert_eq!(none["matched"], 0, "{none}");
    refused(
        &ctl.run(&["egress", "del", "2001:db8:66::100"]),
        1,
        "still has 1 pod(s)",
    );
    ctl.ok(&["map", "del", "fd00:10:133::3"]);
    ctl.ok(&["egress", "del", "2001:db8:66::100"]);
    ctl.ok(&["cluster", "set", "10.128.0.0/23", "100.88.0.0/16"]);

    let stats = ctl.json(&["stats"]);
    assert_eq!(stats["workers"][0]["af_xdp_mode"], "copy", "{stats}");
    // Each of the steering program's verdicts, on the one interface.
    let steering = stats["steering"].as_array().unwrap();
    assert_eq!(
        steering.len(),
        gateway::xdp::steer::VERDICTS.len(),
        "{stats}"
    );
    assert!(steering.iter().all(|c| c["interface"] == "eth0"), "{stats}");
    assert!(ctl.ok(&["stats"]).contains("steering verdict"));
    // The kernel's side of the socket and the interface, beside the pipeline's drops.
    let sockets = stats["workers"][0]["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{stats}");
    assert_eq!(sockets[0]["interface"], "eth0", "{stats}");
    let names: Vec<&str> = sockets[0]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rx_dropped",
            "rx_ring_full",
            "rx_fill_ring_empty",
            "rx_invalid_descs",
            "tx_invalid_descs",
            "tx_ring_empty"
        ]
    );
    assert_eq!(stats["interfaces"][0]["interface"], "eth0", "{stats}");
    assert!(ctl.ok(&["stats"]).contains("socket on"));
    assert!(ctl.ok(&["stats"]).starts_with("queue  core  af_xdp"));
    // Both indexes hold exactly the live sessions.
    assert_eq!(stats["indexed"][0], stats["sessions"], "{stats}");
    assert_eq!(stats["indexed"][1], stats["sessions"], "{stats}");
    // The per-pod limits (the defaults) and the pods nearest them: none without traffic.
    let top = ctl.json(&["top", "-n", "5"]);
    assert_eq!(
        top["limits"][0],
        serde_json::json!(["pod_max_sessions", 100000]),
        "{top}"
    );
    assert_eq!(top["by_drops"], serde_json::json!([]), "{top}");
    assert!(ctl
        .ok(&["top"])
        .contains("most new flows refused\n(none)\n"));
    let health = ctl.run(&["health"]);
    assert!(health.status.success());
    assert!(String::from_utf8_lossy(&health.stdout).contains("dataplane: ok"));
    assert_eq!(ctl.json(&["health"])["dataplane_ok"], true);
    // Not in a gateway set: `ha` says so and fails.
    let ha = ctl.run(&["ha"]);
    assert_eq!(ha.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&ha.stderr).contains("[ha] is not configured"),
        "{ha:?}"
    );
    for args in [&["drain"][..], &["undrain"]] {
        let out = ctl.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("[ha] is not configured"),
            "{args:?}: {out:?}"
        );
    }
    assert!(ctl
        .ok(&["bgp", "neighbors"])
        .starts_with("neighbor  as  state"));
    let sessions = ctl.json(&["sessions", "--protocol", "tcp", "--pod", "10.133.0.3"]);
    assert_eq!(
        sessions["matched"], 0,
        "no traffic, no sessions: {sessions}"
    );
    assert!(ctl
        .ok(&["sessions"])
        .ends_with("0 of 0 matching sessions shown\n"));
    assert_eq!(
        ctl.json(&["bgp", "routes"])["routes"],
        serde_json::json!([])
    );

    // The Prometheus endpoint (inside the gateway's namespace).
    let metrics = gw
        .run(
            "curl",
            &["-sS", "--max-time", "5", "http://127.0.0.1:9469/metrics"],
        )
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.stdout);
    for line in [
        "# TYPE egressgw_rx_packets_total counter",
        "egressgw_rx_packets_total{queue=\"0\"} ",
        "egressgw_dataplane_healthy 1",
        "egressgw_sessions_max{family=\"ipv4\"} 1048576",
        "egressgw_sessions_max{family=\"ipv6\"} 262144",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from /metrics:\n{text}"
        );
    }
    let not_found = gw
        .run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://127.0.0.1:9469/",
            ],
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&not_found.stdout), "404");

    // Garbage on the socket gets an error response; the daemon carries on.
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.write_all(&[0, 0, 0, 5, b'{', b'x', b'y', b'z', b'!'])
        .unwrap();
    let mut len = [0u8; 4];
    raw.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    raw.read_exact(&mut body).unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["result"]["Err"]["kind"], "bad_request", "{reply}");
    raw.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap(); // a frame too large to accept
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    assert!(
        String::from_utf8_lossy(&rest).contains("exceeds"),
        "the oversized frame is refused"
    );
    assert!(
        ctl.ok(&["egress", "list"]).contains("192.168.66.100"),
        "daemon alive after garbage"
    );

    // Someone outside the socket's group (mode 0660, root's group) cannot connect.
    let nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(tests::workspace_bin("egressctl"))
        .arg("-s")
        .arg(&socket)
        .args(["map", "list"])
        .output()
        .unwrap();
    refused(&nobody, 3, "Permission denied");

    // No daemon there: exit 3 and a message saying so.
    refused(
        &ctl_at(&dir.join("missing.sock")).run(&["map", "list"]),
        3,
        "cannot reach the daemon",
    );

    assert!(signal_and_wait(&mut daemon, "-TERM").success());
    assert!(!socket.exists(), "the daemon removes its socket on exit");
    let _ = std::fs::remove_dir_all(&dir);
}

fn ctl_at(socket: &Path) -> Ctl {
    Ctl {
        socket: socket.to_owned(),
    }
}

/// Each thread of process `pid`: its name and the cores it may run on (a thread that ends
/// meanwhile, such as the table's prefault, is left out).
fn thread_cores(pid: u32) -> Vec<(String, Vec<usize>)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(name), Ok(status)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("status")),
        ) else {
            continue;
        };
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        let mut cores = Vec::new();
        for part in list.split(',') {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            cores.extend(lo.parse::<usize>().unwrap()..=hi.parse::<usize>().unwrap());
        }
        threads.push((name.trim().to_owned(), cores));
    }
    threads
}
