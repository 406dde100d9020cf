//! The seed lab with two RX queues on master-01's br-ex and two pinned workers. The pod's
//! tunnel traffic (one outer 5-tuple) always lands on one queue, while the server's replies,
//! one flow per connection, are spread over both queues by the kernel's flow hash: so replies
//! reach the worker that did not create their session. Every request must still succeed, and
//! the counters must show the other worker translating replies to sessions it never created.

use std::process::Command;

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/seed-lab");

/// Runs `lab/seed-lab down` when dropped, so a failing test leaves nothing behind.
struct LabGuard;

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = Command::new(LAB).arg("down").status();
    }
}

fn ctl_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(tests::workspace_bin("egressctl"))
        .args(["-s", "/run/egwlab/egressgw.sock", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn seed_lab_two_queues_replies_cross_workers() {
    tests::netns::available().expect("these tests need root and iproute2");
    let _guard = LabGuard;
    let up = Command::new(LAB)
        .arg("up")
        .env("QUEUES", "2")
        .env("EGRESSGW", tests::workspace_bin("egressgw"))
        .env("EGRESSCTL", tests::workspace_bin("egressctl"))
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "lab up: {}{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    let stats = ctl_json(&["stats"]);
    assert_eq!(stats["workers"].as_array().unwrap().len(), 2, "{stats}");

    // 24 connections: with replies hashed over two queues, all landing on the creating
    // worker's queue has a probability of 2^-23.
    for i in 0..24 {
        let port = if i % 2 == 0 { "80" } else { "8080" };
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                "egwlab-m03",
                "curl",
                "-sS",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_code}", "--max-time", "5", "--retry", "3"])
            .args([
                "--interface",
                "10.133.0.3",
                &format!("http://192.168.55.13:{port}/"),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "request {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let stats = ctl_json(&["stats"]);
    let workers = stats["workers"].as_array().unwrap();
    let made: Vec<u64> = workers
        .iter()
        .map(|w| w["sessions_created"].as_u64().unwrap())
        .collect();
    let rx: Vec<u64> = workers
        .iter()
        .map(|w| w["rx_packets"].as_u64().unwrap())
        .collect();
    // Egress arrives on one queue only, so one worker made every session ...
    assert!(
        made.contains(&0) && made.iter().sum::<u64>() >= 24,
        "sessions made per worker {made:?}"
    );
    // ... and the other still received packets: replies to sessions it did not create.
    let other = made.iter().position(|m| *m == 0).unwrap();
    assert!(
        rx[other] > 0,
        "the other worker received nothing: rx {rx:?}, made {made:?}"
    );
    eprintln!("rx per worker {rx:?}, sessions made per worker {made:?}");
}
