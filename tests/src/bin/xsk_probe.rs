//! Test helper run inside a network namespace: binds an AF_XDP socket to queue 0 of an
//! interface and counts the frames carrying a marker, until it has enough or 5 s pass.
//!
//! `xsk_probe IFNAME COUNT MARKER` prints `mode=...`, then `ready`, then `received N`; exits 0
//! when N >= COUNT.

use gateway::xdp::port::XskPort;
use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, ifname, count, marker] = args.as_slice() else {
        eprintln!("usage: xsk_probe IFNAME COUNT MARKER");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("COUNT is a number");
    let mut port = match XskPort::open(ifname, 0, 1024) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
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
