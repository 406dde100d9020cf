//! Control-socket throughput against a running daemon: `map_set` requests per second over one
//! connection and over several, and the time of a `map_replace` of 100 and 10,000 pods (the
//! watcher's path). The daemon must serve 192.168.66.100.
//!
//! `cargo run --release -p tests --bin control_bench -- SOCKET`

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use control::client::Client;
use control::proto::{MapEntry, Request};

const EGRESS: Ipv4Addr = Ipv4Addr::new(192, 168, 66, 100);

fn entry(i: u32) -> MapEntry {
    MapEntry {
        pod: Ipv4Addr::from(0x0a80_0000 + i).into(),
        egress_ip: EGRESS.into(),
        comment: "bench".into(),
        node: None,
    }
}

/// `map_set` for `n` distinct pods over one connection; requests per second.
fn sets(socket: &Path, base: u32, n: u32) -> f64 {
    let mut c = Client::connect(socket).expect("connect");
    let t = Instant::now();
    for i in 0..n {
        loop {
            match c.request(Request::MapSet {
                entry: entry(base + i),
            }) {
                Ok(_) => break,
                // The per-connection limit answers rate_limited: back off and retry.
                Err(control::client::ClientError::Daemon(e))
                    if e.kind == control::proto::ErrorKind::RateLimited =>
                {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

fn main() {
    let socket = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: control_bench SOCKET"),
    );
    let mut c = Client::connect(&socket).expect("connect");
    let list = c.request(Request::MapList).expect("map list");
    println!("| measurement | result |\n|---|---|");
    let one = sets(&socket, 0, 2000);
    println!("| map_set, 1 connection, 2000 requests | {one:.0} req/s |");
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let s = socket.clone();
            std::thread::spawn(move || sets(&s, 10_000 * (k + 1), 2000))
        })
        .collect();
    let total: f64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!("| map_set, 4 connections at once, 2000 requests each | {total:.0} req/s in all |");
    for n in [100u32, 10_000] {
        let entries: Vec<MapEntry> = (0..n).map(|i| entry(100_000 + i)).collect();
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            c.request(Request::MapReplace {
                entries: entries.clone(),
            })
            .expect("replace");
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| map_replace of {n} pods (median of 5, request to answer) | {:.2} ms |",
            times[2].as_secs_f64() * 1e3
        );
    }
    // Leave the map as it was.
    if let control::proto::Response::Map { entries } = list {
        c.request(Request::MapReplace { entries }).expect("restore");
    }
}
