//! The `egressgw` daemon as a child process of a test: started inside a namespace, watched
//! until it reports running, signalled and reaped.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::netns::Netns;

/// The `[node]`, `[dataplane]` and `[cluster]` sections of a one-armed daemon on `ifname` with
/// node IP `node_ip`, one queue on core 0, the seed's pod and service networks: the part every
/// small daemon test shares. Top-level keys
/// (`egress_ips`) go before it, other sections after.
pub fn one_armed_sections(node_ip: &str, ifname: &str) -> String {
    format!(
        "[node]\nip = \"{node_ip}\"\nunderlay_interface = \"{ifname}\"\n\
         external_interface = \"{ifname}\"\n\n[dataplane]\nqueues = [0]\ncores = [0]\n\
         frames_per_queue = 1024\n\n[cluster]\npod_networks = [\"10.128.0.0/13\"]\n\
         service_networks = [\"172.22.0.0/16\"]\n"
    )
}

/// Starts `egressgw --config` in `ns` and waits (10 s at most) until it reports running.
pub fn start_daemon(ns: &Netns, config: &std::path::Path) -> std::process::Child {
    let mut daemon = ns
        .command(crate::workspace_bin("egressgw").to_str().unwrap())
        .args(["--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, log) = std::sync::mpsc::channel();
    let stdout = daemon.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("egressgw running")) {
        match log.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = daemon.kill();
                let out = daemon.wait_with_output().unwrap();
                panic!(
                    "daemon did not start: {seen:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    daemon
}

/// Sends `signal` (as `kill` spells it) and waits (10 s at most) for the process to exit.
pub fn signal_and_wait(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let kill = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "process ignored {signal}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
