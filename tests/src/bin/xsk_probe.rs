//! Test helper run inside a network namespace: binds an AF_XDP socket to queue 0 of an
//! interface and counts the frames carrying a marker, until it has enough or 5 s pass.
//!
//! `xsk_probe IFNAME COUNT MARKER [NODE_IP EGRESS_IP]` prints `mode=...`, then `ready`, then
//! `received N`; exits 0 when N >= COUNT. With NODE_IP and EGRESS_IP it attaches egressgw's
//! steering program instead of libxdp's (which takes every frame), serving EGRESS_IP (SNAT
//! ports 1024-65535) for the pod 10.133.0.3, with 10.128.0.0/14 the cluster's network.
//!
//! `xsk_probe --send IFNAME COUNT MARKER` queues COUNT broadcast frames carrying the marker
//! and hands them over with one `flush`, then prints `queued N sent N wakeups W budget B`
//! (what the TX ring took, the `sendto`s it took, the frames one wakeup may send).
//!
//! `xsk_probe --hold IFNAME`: binds a socket with 64 frames (rings of 32), prints `ready`,
//! reads nothing until a line arrives on standard input, then prints the socket's kernel
//! counters (`XDP_STATISTICS`) as `NAME=N` and exits.

use gateway::xdp::port::XskPort;
use gateway::xdp::socket_stats::StatsHandle;
use gateway::xdp::steer::{Steering, SteeringState, XdpAttach};
use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, ifname, count, marker] = args.as_slice() {
        if flag == "--send" {
            send(ifname, count.parse().expect("COUNT is a number"), marker);
        }
    }
    if let [_, flag, ifname] = args.as_slice() {
        if flag == "--hold" {
            hold(ifname);
        }
    }
    let (ifname, count, marker, steer) = match args.as_slice() {
        [_, i, c, m] => (i, c, m, None),
        [_, i, c, m, node, egress] => (
            i,
            c,
            m,
            Some((
                node.parse().expect("NODE_IP"),
                egress.parse().expect("EGRESS_IP"),
            )),
        ),
        _ => {
            eprintln!("usage: xsk_probe IFNAME COUNT MARKER [NODE_IP EGRESS_IP]");
            std::process::exit(2);
        }
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let fail = |e: std::io::Error| -> ! {
        eprintln!("{e}");
        std::process::exit(1);
    };
    // Kept alive until exit: dropping it detaches the program.
    let mut _steering = None;
    let mut port = match steer {
        None => XskPort::open(ifname, 0, 1024).unwrap_or_else(|e| fail(e)),
        Some((node, egress)) => {
            let mut s = Steering::attach(ifname, node, XdpAttach::Auto).unwrap_or_else(|e| fail(e));
            let port = XskPort::open_steered(ifname, 0, 1024).unwrap_or_else(|e| fail(e));
            s.bind_queue(0, port.fd()).unwrap_or_else(|e| fail(e));
            let state = SteeringState {
                egress_ips: [(egress, 1024..=65535)].into(),
                served_pods: ["10.133.0.3".parse().expect("an address")].into(),
                cluster_networks: ["10.128.0.0/14".parse().expect("a network")].into(),
                ..SteeringState::default()
            };
            s.sync(&state).unwrap_or_else(|e| fail(e));
            println!("steering={}", s.mode());
            _steering = Some(s);
            port
        }
    };
    println!("mode={:?}", port.mode());
    println!("ready");
    std::io::stdout().flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while seen < count && Instant::now() < deadline {
        port.receive(100, |frame| {
            if frame.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                seen += 1;
            }
        })
        .expect("receive");
    }
    println!("received {seen}");
    std::process::exit(if seen >= count { 0 } else { 1 });
}

/// A socket that never reads: what arrives past its rings is the kernel's loss, counted.
fn hold(ifname: &str) -> ! {
    let port = XskPort::open(ifname, 0, 64).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let stats = StatsHandle::new(port.fd()).expect("a duplicate of the socket");
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    let s = stats.read().expect("XDP_STATISTICS");
    let counts: Vec<String> = s.named().iter().map(|(n, v)| format!("{n}={v}")).collect();
    println!("{}", counts.join(" "));
    drop(port);
    std::process::exit(0);
}

/// Sends `count` frames with one flush, waits until the kernel has completed them, exits.
fn send(ifname: &str, count: usize, marker: &str) -> ! {
    let mut port = XskPort::open(ifname, 0, 1024).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let mut frame = vec![0xffu8; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
    frame.extend_from_slice(marker.as_bytes());
    frame.resize(64, 0);
    let queued = (0..count).filter(|_| port.queue(&frame)).count();
    let sent = port.flush().expect("flush");
    let budget = port
        .tx_budget()
        .map_or_else(|| "default".to_owned(), |b| b.to_string());
    println!(
        "queued {queued} sent {sent} wakeups {} budget {budget}",
        port.tx_wakeups()
    );
    // The frames leave when the kernel processes the ring; give it a moment before the socket
    // (and its UMEM) goes away.
    std::thread::sleep(Duration::from_millis(200));
    std::process::exit(0);
}
