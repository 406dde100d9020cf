//! One pod cannot starve the others (issue 19): the per-pod limits through the whole pipeline,
//! each checked against the same traffic with the limits off, which shows the starvation.

use gateway::drop::DropReason;
use gateway::nat::{FairLimits, NatConfig, SessionTable, Timeouts};
use gateway::pipeline::{Iface, Tables, Worker};
use gateway::testutil::*;
use gateway::wire::tcp::flags::{ACK, SYN};

fn worker(fair: FairLimits, ports: core::ops::RangeInclusive<u16>) -> Worker {
    Worker::new(
        SessionTable::new(NatConfig {
            max_sessions: 4096,
            port_range: ports,
            fair,
            ..NatConfig::default()
        })
        .worker(0),
    )
}

fn udp_from(pod: u32, src_port: u16, dst_port: u16) -> Vec<u8> {
    let l4 = L4::Udp { src_port, dst_port };
    geneve_frame(
        NODE3_IP,
        NODE3_MAC,
        1,
        &ipv4_packet(pod, SERVER_IP, 64, true, l4, b"x"),
    )
}

fn syn_from(pod: u32, src_port: u16) -> Vec<u8> {
    let l4 = L4::Tcp {
        src_port,
        dst_port: 443,
        flags: SYN,
    };
    geneve_frame(
        NODE3_IP,
        NODE3_MAC,
        1,
        &ipv4_packet(pod, SERVER_IP, 64, true, l4, b""),
    )
}

/// The source port of the egress output (Ethernet, IPv4, then the port).
fn ext_port(out: &[u8]) -> u16 {
    u16::from_be_bytes([out[34], out[35]])
}

/// How many of `frames` went out, and the drop reasons of the rest.
fn send(w: &mut Worker, t: &Tables, now: u32, frames: &[Vec<u8>]) -> (usize, Vec<DropReason>) {
    let mut sent = 0;
    let mut dropped = Vec::new();
    for f in frames {
        match run(w, t, now, f) {
            Ok((Iface::External, _)) => sent += 1,
            Ok(other) => panic!("egress went to {other:?}"),
            Err(r) => dropped.push(r),
        }
    }
    (sent, dropped)
}

fn scan(pod: u32, n: u16) -> Vec<Vec<u8>> {
    (0..n).map(|i| udp_from(pod, 5000 + i, 1000 + i)).collect()
}

#[test]
fn a_scanning_pod_meets_its_session_limit_and_the_others_do_not_notice() {
    let t = seed_tables();
    let limits = FairLimits {
        pod_sessions: 100,
        ..FairLimits::NONE
    };
    // Without the limit the scanner takes the table (4096 sessions) and the other pod's new
    // flow is refused.
    let mut open = worker(FairLimits::NONE, 1024..=65535);
    assert_eq!(send(&mut open, &t, 1, &scan(POD3, 4096)).0, 4096);
    assert_eq!(
        send(&mut open, &t, 1, &[udp_from(POD2, 7000, 53)]).1,
        [DropReason::SessionTableFull]
    );

    let mut w = worker(limits, 1024..=65535);
    let (sent, dropped) = send(&mut w, &t, 1, &scan(POD3, 4096));
    assert_eq!(sent, 100);
    assert!(dropped.iter().all(|r| *r == DropReason::PodSessionLimit));
    assert_eq!(w.counters.drops(DropReason::PodSessionLimit), 3996);
    // Everyone else's new flows go on; so do the scanner's established ones, both ways.
    assert_eq!(send(&mut w, &t, 1, &[udp_from(POD2, 7000, 53)]).0, 1);
    let (_, out) = run(&mut w, &t, 1, &udp_from(POD3, 5000, 1000)).unwrap();
    let reply = ipv4_packet(
        SERVER_IP,
        EGRESS_IP,
        64,
        true,
        L4::Udp {
            src_port: 1000,
            dst_port: ext_port(&out),
        },
        b"y",
    );
    assert_eq!(
        run(&mut w, &t, 1, &external_frame(&reply)).unwrap().0,
        Iface::Underlay
    );
    // Once its sessions expire, the scanner may open new ones again.
    let later = 1 + Timeouts::default().udp + 1;
    while w.nat.expire(later, 4096) > 0 {}
    let (sent, _) = send(&mut w, &t, later, &scan(POD3, 200)[100..]);
    assert_eq!(sent, 100);
}

#[test]
fn a_pod_opening_flows_too_fast_is_held_to_its_rate() {
    let t = seed_tables();
    let limits = FairLimits {
        pod_new_flows_per_s: 50,
        pod_new_flow_burst: 50,
        ..FairLimits::NONE
    };
    let mut w = worker(limits, 1024..=65535);
    let flood = scan(POD3, 300);
    let (sent, dropped) = send(&mut w, &t, 10, &flood[..100]);
    assert_eq!(sent, 50);
    assert!(dropped.iter().all(|r| *r == DropReason::PodRateLimit));
    assert_eq!(send(&mut w, &t, 10, &[udp_from(POD2, 7000, 53)]).0, 1);
    // Its established flows pass at any rate.
    assert_eq!(send(&mut w, &t, 10, &flood[..50]).0, 50);
    // A second later, another second's worth.
    assert_eq!(send(&mut w, &t, 11, &flood[100..200]).0, 50);
}

#[test]
fn a_pod_cannot_take_every_port_to_one_destination() {
    let t = seed_tables();
    // 200 ports: endpoint-dependent, so every flow to SERVER_IP:443 needs its own.
    let ports = 1024..=1223;
    let pod3_flows: Vec<_> = (0..200).map(|i| syn_from(POD3, 30000 + i)).collect();
    let pod2_flows: Vec<_> = (0..20).map(|i| syn_from(POD2, 30000 + i)).collect();

    let mut open = worker(FairLimits::NONE, ports.clone());
    assert_eq!(send(&mut open, &t, 1, &pod3_flows).0, 200);
    let (sent, dropped) = send(&mut open, &t, 1, &pod2_flows);
    assert_eq!(sent, 0);
    assert!(dropped.iter().all(|r| *r == DropReason::PortExhausted));

    let limits = FairLimits {
        pod_destination_share: 50,
        ..FairLimits::NONE
    };
    let mut w = worker(limits, ports);
    let (sent, dropped) = send(&mut w, &t, 1, &pod3_flows);
    assert_eq!(sent, 100);
    assert!(dropped
        .iter()
        .all(|r| *r == DropReason::PodDestinationShare));
    assert_eq!(send(&mut w, &t, 1, &pod2_flows).0, 20);
    // The same pod to another destination port is another share.
    let other = ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 30000,
            dst_port: 80,
            flags: SYN | ACK,
        },
        b"",
    );
    assert_eq!(
        send(
            &mut w,
            &t,
            1,
            &[geneve_frame(NODE3_IP, NODE3_MAC, 1, &other)]
        )
        .0,
        1
    );
    // What each pod holds, as `egressctl top` reads it.
    let usage: std::collections::HashMap<u32, _> = w
        .nat
        .pod_usage()
        .filter_map(|(ip, u)| match ip {
            std::net::IpAddr::V4(v4) => Some((u32::from(v4), *u)),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    assert_eq!(usage[&POD3].sessions, 101);
    assert_eq!(usage[&POD3].drops, [0, 0, 100]);
    assert_eq!((usage[&POD2].sessions, usage[&POD2].drops), (20, [0; 3]));
}
