//! Test helper run inside a network namespace: a one-armed egressgw on one interface and
//! queue, without the daemon around it: the steering program and one `DataplaneWorker` (an
//! AF_XDP socket and the pipeline). Forwards until `COUNT` frames went out or 10 s passed.
//!
//! `gw_forward IFNAME NODE_IP EGRESS_IP POD_IP PEER_IP PEER_MAC COUNT` prints `ready`, then
//! `forwarded N` and any drop counters; exits 0 when N >= COUNT.

use gateway::drop::DropReason;
use gateway::mailbox::published::Published;
use gateway::nat::{NatConfig, SessionTable};
use gateway::pipeline::{EgressMap, Fib, NodeConfig, Tables, Worker};
use gateway::wire::ethernet::MacAddr;
use gateway::xdp::port::XskPort;
use gateway::xdp::steer::{Steering, SteeringState, XdpAttach};
use gateway::xdp::worker::DataplaneWorker;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, ifname, node, egress, pod, peer, peer_mac, count] = args.as_slice() else {
        eprintln!("usage: gw_forward IFNAME NODE_IP EGRESS_IP POD_IP PEER_IP PEER_MAC COUNT");
        std::process::exit(2);
    };
    let ip = |s: &str| s.parse::<Ipv4Addr>().expect("an IPv4 address");
    let (node, egress, pod, peer) = (ip(node), ip(egress), ip(pod), ip(peer));
    let count: u64 = count.parse().expect("COUNT");
    let own_mac = gateway::daemon::next_hops::interface_mac(ifname).expect("interface MAC");

    // One-armed: the peer is both the pod's node (underlay) and the next hop outside.
    let mut fib = Fib::new(u32::from(peer), 24, None);
    fib.set_neighbor(
        u32::from(peer),
        peer_mac.parse::<MacAddr>().expect("PEER_MAC"),
    );
    let mut egress_map = EgressMap::default();
    egress_map.serve(u32::from(egress));
    egress_map.set(u32::from(pod), u32::from(egress));
    let tables = Published::new(Tables {
        node: NodeConfig {
            node_ip: u32::from(node),
            node_ip6: 0,
            underlay_mac: own_mac,
            underlay_mtu: 1500,
            pod_mtu: 1400,
            external_mac: own_mac,
            external_mtu: 1500,
        },
        egress: egress_map,
        external: fib.clone(),
        underlay: fib,
        ipv6: Default::default(),
    });
    let mut reader = tables.reader();
    let worker = Worker::new(
        SessionTable::new(NatConfig {
            max_sessions: 4096,
            ..NatConfig::default()
        })
        .worker(0),
    );

    let fail = |e: std::io::Error| -> ! {
        eprintln!("{e}");
        std::process::exit(1);
    };
    let mut steering = Steering::attach(ifname, node, XdpAttach::Auto).unwrap_or_else(|e| fail(e));
    let port = XskPort::open_steered(ifname, 0, 1024).unwrap_or_else(|e| fail(e));
    steering
        .bind_queue(0, port.fd())
        .unwrap_or_else(|e| fail(e));
    let state = SteeringState {
        egress_ips: [(egress.into(), 1024..=65535)].into(),
        served_pods: [pod.into()].into(),
        cluster_networks: ["10.128.0.0/14".parse().expect("a network")].into(),
        ..SteeringState::default()
    };
    steering.sync(&state).unwrap_or_else(|e| fail(e));
    println!("ready");
    std::io::stdout().flush().unwrap();

    let mut dp = DataplaneWorker::new(port, worker);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(10);
    let mut forwarded = 0u64;
    while forwarded < count && Instant::now() < deadline {
        let now = start.elapsed().as_secs() as u32;
        forwarded += dp
            .poll(&mut reader, now, 100)
            .unwrap_or_else(|e| fail(e))
            .transmitted as u64;
    }
    println!("forwarded {forwarded}");
    let counters = &dp.pipeline.counters;
    for r in DropReason::ALL.iter().filter(|r| counters.drops(**r) > 0) {
        println!("drop {} {}", r.name(), counters.drops(*r));
    }
    std::process::exit(if forwarded >= count { 0 } else { 1 });
}
