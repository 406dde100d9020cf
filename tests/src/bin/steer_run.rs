//! Test helper run inside a network namespace: loads the steering program onto `IFNAME`, binds
//! an AF_XDP socket to its queue 0 (so a redirect has somewhere to go), gives it the seed's
//! state (`tests::steering_cases::state`) and runs every case of the decision table through
//! it with `BPF_PROG_TEST_RUN`, `REPEAT` times each. Prints one line per case:
//! `NAME redirect|pass VERDICT NS_PER_RUN`, the verdict being the counter the case bumped.
//!
//! `steer_run IFNAME [REPEAT] [--object PATH]`: with `--object`, a steering program built
//! from another revision of `steer.c` (to time it side by side, `scripts/steer-cost`); its
//! maps are filled as far as it has them, and its verdicts print as `-`.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use aya::maps::{Array, HashMap, XskMap};
use aya::programs::Xdp;
use aya::Ebpf;
use gateway::xdp::port::XskPort;
use gateway::xdp::steer::{test_run, Steering, XdpAttach, VERDICTS, XDP_PASS, XDP_REDIRECT};
use tests::steering_cases::{cases, state, EGRESS_IP, NODE_IP, NODE_IP6};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("steer_run: {what}: {e}");
    std::process::exit(1);
}

fn action(a: u32) -> &'static str {
    match a {
        XDP_REDIRECT => "redirect",
        XDP_PASS => "pass",
        _ => "other",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(ifname) = args.first() else {
        eprintln!("usage: steer_run IFNAME [REPEAT] [--object PATH]");
        std::process::exit(2);
    };
    let repeat: u32 = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .map_or(1, |r| r.parse().unwrap_or_else(|e| fail("REPEAT", e)));
    let object = args.iter().position(|a| a == "--object").map(|i| {
        args.get(i + 1)
            .unwrap_or_else(|| fail("--object", "needs a path"))
    });
    let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .unwrap_or_else(|e| fail(ifname, e))
        .trim()
        .parse()
        .unwrap_or_else(|e| fail("ifindex", e));
    match object {
        None => current(ifname, ifindex, repeat),
        Some(path) => other(ifname, ifindex, repeat, path),
    }
}

fn current(ifname: &str, ifindex: u32, repeat: u32) {
    let mut s =
        Steering::attach(ifname, NODE_IP, XdpAttach::Generic).unwrap_or_else(|e| fail("attach", e));
    s.set_node_ip6(NODE_IP6)
        .unwrap_or_else(|e| fail("node_ip6", e));
    let port = XskPort::open_steered(ifname, 0, 256).unwrap_or_else(|e| fail("AF_XDP", e));
    s.bind_queue(0, port.fd())
        .unwrap_or_else(|e| fail("xsks", e));
    s.sync(&state()).unwrap_or_else(|e| fail("sync", e));
    for c in cases() {
        let before = s.verdicts().unwrap_or_else(|e| fail("verdicts", e));
        let run = s
            .test_run(&c.frame, ifindex, 0, repeat)
            .unwrap_or_else(|e| fail(c.name, e));
        let after = s.verdicts().unwrap_or_else(|e| fail("verdicts", e));
        let bumped: Vec<&str> = VERDICTS
            .iter()
            .zip(before.iter().zip(after))
            .filter(|(_, (b, a))| a > *b)
            .map(|(v, _)| *v)
            .collect();
        let verdict = match bumped.as_slice() {
            [one] => *one,
            [] => "none",
            _ => "several",
        };
        println!(
            "{} {} {verdict} {}",
            c.name,
            action(run.action),
            run.ns_per_run
        );
    }
}

/// Another build of the program: its own maps, as far as it has them.
fn other(ifname: &str, ifindex: u32, repeat: u32, path: &str) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(path, e));
    let mut ebpf = Ebpf::load(&bytes).unwrap_or_else(|e| fail("load", e));
    let wire = |ip: Ipv4Addr| u32::from_ne_bytes(ip.octets());
    {
        let mut node: Array<_, u32> = Array::try_from(ebpf.map_mut("node_ip").expect("node_ip"))
            .unwrap_or_else(|e| fail("node_ip", e));
        node.set(0, wire(NODE_IP), 0)
            .unwrap_or_else(|e| fail("node_ip", e));
    }
    {
        let map = ebpf.map_mut("egress_ips").expect("egress_ips");
        // The first program's value was a byte; later ones carry the SNAT range.
        if let Ok(mut m) = HashMap::<_, u32, u8>::try_from(&mut *map) {
            m.insert(wire(EGRESS_IP), 1, 0)
                .unwrap_or_else(|e| fail("egress_ips", e));
        } else {
            let mut m = HashMap::<_, u32, [u16; 2]>::try_from(map)
                .unwrap_or_else(|e| fail("egress_ips", e));
            m.insert(wire(EGRESS_IP), [1024, 65535], 0)
                .unwrap_or_else(|e| fail("egress_ips", e));
        }
    }
    let prog: &mut Xdp = ebpf
        .program_mut("steer")
        .expect("steer")
        .try_into()
        .unwrap_or_else(|e| fail("program", e));
    prog.load().unwrap_or_else(|e| fail("verifier", e));
    let port = XskPort::open_steered(ifname, 0, 256).unwrap_or_else(|e| fail("AF_XDP", e));
    {
        let mut xsks = XskMap::try_from(ebpf.map_mut("xsks").expect("xsks"))
            .unwrap_or_else(|e| fail("xsks", e));
        xsks.set(0, port.fd(), 0)
            .unwrap_or_else(|e| fail("xsks", e));
    }
    let prog: &Xdp = ebpf
        .program("steer")
        .expect("steer")
        .try_into()
        .unwrap_or_else(|e| fail("program", e));
    let fd = prog.fd().unwrap_or_else(|e| fail("program fd", e));
    for c in cases() {
        let run =
            test_run(fd.as_fd(), &c.frame, ifindex, 0, repeat).unwrap_or_else(|e| fail(c.name, e));
        println!("{} {} - {}", c.name, action(run.action), run.ns_per_run);
    }
}
