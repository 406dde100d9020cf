//! Latency from a Kubernetes watch event to the dataplane using the new map, for 1, 100 and
//! 10,000 pods: the fake API server (the real list/watch protocol) announces an EndpointSlice
//! change, `egressgw-watch` turns it into control requests, and the time is taken when the
//! daemon's map (answered only after the workers have it) shows all the pods.
//!
//! `cargo run --release -p tests --bin watch_latency -- SOCKET` against a running daemon that
//! serves nothing yet (for example `lab/seed-lab up` with its map emptied; see docs/watcher.md).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use control::client::Client;
use control::proto::{Request, Response};
use serde_json::json;
use tests::fake_apiserver::FakeApiServer;

fn pods(n: u32, round: u32) -> Vec<Ipv4Addr> {
    // A different set each round, so every round is a real change.
    (0..n)
        .map(|i| Ipv4Addr::from(0x0a00_0000 + (round << 16) + i))
        .collect()
}

fn slices(pods: &[Ipv4Addr]) -> Vec<serde_json::Value> {
    pods.chunks(1000)
        .enumerate()
        .map(|(i, chunk)| {
            let endpoints: Vec<_> = chunk
                .iter()
                .map(|p| json!({"addresses": [p.to_string()], "nodeName": "master-03-demo"}))
                .collect();
            json!({"metadata": {"name": format!("bench-{i}"), "namespace": "demo-egress",
                                "labels": {"kubernetes.io/service-name": "egress-identity"}},
                   "addressType": "IPv4", "endpoints": endpoints})
        })
        .collect()
}

fn mapped(c: &mut Client) -> Vec<IpAddr> {
    match c.request(Request::MapList) {
        Ok(Response::Map { entries }) => entries.into_iter().map(|e| e.pod).collect(),
        _ => vec![],
    }
}

fn main() {
    let socket = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: watch_latency SOCKET"),
    );
    let api = FakeApiServer::start();
    api.apply(
        "Node",
        "ADDED",
        json!({"metadata": {"name": "master-03-demo"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.99.25"}]}}),
    );
    api.apply(
        "Service",
        "ADDED",
        json!({"metadata": {"name": "egress-identity", "namespace": "demo-egress"},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.66.100"}]}}}),
    );
    api.apply(
        "EgressService",
        "ADDED",
        json!({"metadata": {"name": "egress-identity", "namespace": "demo-egress"},
        "spec": {"sourceIPBy": "LoadBalancerIP"}, "status": {"host": "master-01-demo"}}),
    );
    let mut watcher = Command::new(tests::workspace_bin("egressgw-watch"))
        .args(["--node", "master-01-demo", "--api-server", &api.url(), "-s"])
        .arg(&socket)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = Client::connect(Path::new(&socket)).expect("daemon socket");
    println!("| pods changed by one watch event | median | p99 (max) | runs |\n|---|---|---|---|");
    let mut round = 1;
    for (n, runs) in [(1u32, 21), (100, 21), (10_000, 7)] {
        let mut times = Vec::new();
        let mut previous: Vec<serde_json::Value> = Vec::new();
        for _ in 0..runs {
            let want = pods(n, round);
            round += 1;
            let new = slices(&want);
            // Old slices that the new set does not reuse go away first (not timed).
            for old in previous.iter().skip(new.len()) {
                api.apply("EndpointSlice", "DELETED", old.clone());
            }
            let t = Instant::now();
            for s in &new {
                api.apply(
                    "EndpointSlice",
                    if previous.is_empty() {
                        "ADDED"
                    } else {
                        "MODIFIED"
                    },
                    s.clone(),
                );
            }
            let end = t + Duration::from_secs(60);
            loop {
                let got = mapped(&mut c);
                if got.len() == want.len()
                    && want
                        .iter()
                        .all(|p| got.binary_search(&IpAddr::V4(*p)).is_ok())
                {
                    break;
                }
                assert!(Instant::now() < end, "the map never showed the {n} pods");
                // Listing 10,000 entries costs the daemon too: poll those less often.
                std::thread::sleep(Duration::from_micros(if n >= 10_000 { 5000 } else { 500 }));
            }
            times.push(t.elapsed());
            previous = new;
        }
        for old in &previous {
            api.apply("EndpointSlice", "DELETED", old.clone());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p99 = times[((times.len() * 99).div_ceil(100)).min(times.len()) - 1];
        println!(
            "| {n} | {:.1} ms | {:.1} ms | {runs} |",
            ms(times[times.len() / 2]),
            ms(p99)
        );
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
}
