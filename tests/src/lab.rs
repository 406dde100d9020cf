//! Running the seed labs (`lab/seed-lab`, `lab/ovn-lab`) from a test: with the workspace's
//! binaries, one at a time (their namespaces have fixed names), and checking afterwards that
//! nothing they started is left: no namespace, no process.

use std::process::Command;
use std::sync::Mutex;

/// Held while a lab runs, across every test of a test binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A lab script and the names its namespaces and run directory start with.
#[derive(Debug, Clone, Copy)]
pub struct Lab {
    pub script: &'static str,
    /// `egwlab` for the fast lab, `egwovn` for the real-OVN lab, `egwha` for the failover lab.
    pub prefix: &'static str,
}

pub const SEED_LAB: Lab = Lab {
    script: "lab/seed-lab",
    prefix: "egwlab",
};

pub const HA_LAB: Lab = Lab {
    script: "lab/ha-lab",
    prefix: "egwha",
};

pub const OVN_LAB: Lab = Lab {
    script: "lab/ovn-lab",
    prefix: "egwovn",
};

impl Lab {
    /// Runs the script with `args` and `env`, asserts it succeeded and left nothing behind,
    /// and returns what it printed.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        crate::netns::available().expect("these tests need root and iproute2");
        let out = Command::new(self.script)
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("EGRESSGW", crate::workspace_bin("egressgw"))
            .env("EGRESSCTL", crate::workspace_bin("egressctl"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let errors = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "lab failed:\n{text}\n{errors}");
        self.assert_gone();
        text
    }

    /// No namespace of the lab and no process started in it or from its run directory.
    pub fn assert_gone(&self) {
        let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&left.stdout).contains(&format!("{}-", self.prefix)),
            "lab namespaces left behind"
        );
        let stray = Command::new("pgrep")
            .args([
                "-f",
                &format!("{}|podnode.py|/run/{}", self.prefix, self.prefix),
            ])
            .output()
            .unwrap();
        assert!(
            stray.stdout.is_empty(),
            "lab processes left running: {}",
            String::from_utf8_lossy(&stray.stdout)
        );
    }
}

/// The numbers on the first line of a lab's output that starts with `prefix`, after it, in
/// order (`"pod flood: download 30.5 MB/s, new connections 50 of 50"` -> 30.5, 50, 50; words
/// that are not numbers, addresses among them, are skipped).
pub fn numbers(text: &str, prefix: &str) -> Vec<f64> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}:\n{text}"));
    line.split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// A gateway set on the IPv6 underlay, as `lab/ha-lab` and `lab/ovn-lab` report it: the sync
/// channel between the members' IPv6 addresses, and every session on both gateways, the
/// replicas included, naming the pod's node master-03 by its IPv6 address alone.
pub fn assert_set_on_the_ipv6_underlay(text: &str) {
    assert!(text.contains(" [fd00:99::24]:4790 "), "{text}");
    assert!(text.contains(" [fd00:99::23]:4790 "), "{text}");
    for gw in ["gw1", "gw2"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{gw}: sessions by the pod's node: ")))
            .unwrap_or_else(|| panic!("no sessions of {gw}:\n{text}"));
        let nodes = line.rsplit(": ").next().unwrap_or_default();
        let (count, node) = nodes.split_once(' ').unwrap_or_default();
        assert!(count.parse::<u32>().is_ok_and(|n| n > 0), "{line}");
        assert_eq!(node, "\"fd00:99::25\"; ", "{line}");
    }
}
