//! Load for the overload tests (issue 19), bounded in packets and in time:
//!
//! `flood pod GATEWAY NODE POD DST PORT tcp|udp SECONDS MAX [PPS]`: a pod opening a new flow to
//! `DST` with every packet (a TCP SYN or a UDP datagram from the next of its 64512 source
//! ports, to `PORT`, then `PORT + 1` once they are all used, and so on), as OVN would tunnel
//! it: Geneve from the pod's node `NODE` to the gateway `GATEWAY`.
//!
//! `flood outside EGRESS SECONDS MAX [PPS]`: TCP SYNs from this host to random ports of the
//! egress IP, as a scan or a SYN flood from the outside would send them.
//!
//! Sends as fast as one core can (or at `PPS`), stops at `MAX` packets, after `SECONDS` or on
//! SIGINT or SIGTERM, and prints `sent N in S s (R pps)`.

use nix::sys::socket::{
    sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Geneve as OVN sends it between transit switch ports (as `lab/podnode.py`): version 0, two
/// option words, Ethernet payload, VNI 0xff0003, OVN's option with port keys 2 and 4; then
/// the inner Ethernet header between the transit router ports.
const GENEVE: [u8; 16] = [
    0x02, 0x40, 0x65, 0x58, 0xff, 0x00, 0x03, 0x00, 0x01, 0x02, 0x80, 0x01, 0x00, 0x02, 0x00, 0x04,
];
const INNER_ETH: [u8; 14] = [
    0x0a, 0x58, 0x64, 0x58, 0x00, 0x04, 0x0a, 0x58, 0x64, 0x58, 0x00, 0x02, 0x08, 0x00,
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ip = |s: &String| s.parse::<Ipv4Addr>().unwrap_or_else(|_| usage());
    let num = |s: &String| s.parse::<u64>().unwrap_or_else(|_| usage());
    let (sent, took) = match args.get(1).map(String::as_str) {
        Some("pod") if (10..=11).contains(&args.len()) => pod(
            ip(&args[2]),
            ip(&args[3]),
            ip(&args[4]),
            SocketAddrV4::new(ip(&args[5]), args[6].parse().unwrap_or_else(|_| usage())),
            match args[7].as_str() {
                "tcp" => 6,
                "udp" => 17,
                _ => usage(),
            },
            Duration::from_secs(num(&args[8])),
            num(&args[9]),
            args.get(10).map(num),
        ),
        Some("outside") if (5..=6).contains(&args.len()) => outside(
            ip(&args[2]),
            Duration::from_secs(num(&args[3])),
            num(&args[4]),
            args.get(5).map(num),
        ),
        _ => usage(),
    };
    let secs = took.as_secs_f64().max(1e-9);
    println!("sent {sent} in {secs:.2} s ({:.0} pps)", sent as f64 / secs);
}

fn usage() -> ! {
    eprintln!(
        "usage: flood pod GATEWAY NODE POD DST PORT tcp|udp SECONDS MAX [PPS] | flood outside EGRESS SECONDS MAX [PPS]"
    );
    std::process::exit(2)
}

/// Calls `send(i)` for i = 0.. until `max` or `limit`, paced at `pps` if given; returns the
/// count sent and the time taken.
fn pace(limit: Duration, max: u64, pps: Option<u64>, mut send: impl FnMut(u64)) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).expect("a signal handler");
    }
    let start = Instant::now();
    let mut i = 0;
    while i < max {
        // The clock is read once every 64 packets.
        if i % 64 == 0 {
            let elapsed = start.elapsed();
            if elapsed >= limit || stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(pps) = pps {
                let due = Duration::from_secs_f64(i as f64 / pps as f64);
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                }
            }
        }
        send(i);
        i += 1;
    }
    (i, start.elapsed())
}

#[allow(clippy::too_many_arguments)]
fn pod(
    gateway: Ipv4Addr,
    node: Ipv4Addr,
    pod: Ipv4Addr,
    dst: SocketAddrV4,
    protocol: u8,
    limit: Duration,
    max: u64,
    pps: Option<u64>,
) -> (u64, Duration) {
    let sock = UdpSocket::bind(SocketAddrV4::new(node, 0)).expect("bind to the node address");
    let to = SocketAddrV4::new(gateway, 6081);
    let l4_len = if protocol == 6 { 20 } else { 8 };
    let payload = b"egressgw flood pod";
    let mut frame = Vec::with_capacity(100);
    frame.extend_from_slice(&GENEVE);
    frame.extend_from_slice(&INNER_ETH);
    let l4 = frame.len() + 20;
    frame.extend_from_slice(&ipv4_header(
        pod,
        *dst.ip(),
        protocol,
        (l4_len + payload.len()) as u16,
    ));
    frame.extend_from_slice(&vec![0; l4_len]);
    frame.extend_from_slice(payload);
    if protocol == 6 {
        frame[l4 + 12] = 5 << 4;
        frame[l4 + 13] = 0x02; // SYN
        frame[l4 + 14..l4 + 16].copy_from_slice(&64240u16.to_be_bytes());
    } else {
        // No checksum (0), as IPv4 allows.
        frame[l4 + 4..l4 + 6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    pace(limit, max, pps, |i| {
        // Every packet a new flow: each source port, then the next destination port.
        let sport = 1024 + (i % 64512) as u16;
        let dport = dst.port().wrapping_add((i / 64512) as u16);
        frame[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
        frame[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
        if protocol == 6 {
            frame[l4 + 4..l4 + 8].copy_from_slice(&(i as u32).to_be_bytes());
            frame[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
            let sum = tcp_checksum(pod, *dst.ip(), &frame[l4..]);
            frame[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
        }
        // A full socket buffer is a lost packet, as on a wire.
        let _ = sock.send_to(&frame, to);
    })
}

fn outside(egress: Ipv4Addr, limit: Duration, max: u64, pps: Option<u64>) -> (u64, Duration) {
    // IPPROTO_RAW: this program writes the IP header (the kernel fills its checksum).
    let fd = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::empty(),
        SockProtocol::Raw,
    )
    .expect("a raw socket (needs root)");
    let src = local_address_towards(egress);
    let to = SockaddrIn::from(SocketAddrV4::new(egress, 0));
    let mut packet = ipv4_header(src, egress, 6, 20).to_vec();
    packet.extend_from_slice(&[0; 20]);
    let tcp = 20;
    packet[tcp + 12] = 5 << 4;
    packet[tcp + 13] = 0x02; // SYN
    packet[tcp + 14..tcp + 16].copy_from_slice(&64240u16.to_be_bytes());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    pace(limit, max, pps, |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let sport = 1024 + (x % 64512) as u16;
        let dport = 1024 + ((x >> 20) % 64512) as u16;
        packet[tcp..tcp + 2].copy_from_slice(&sport.to_be_bytes());
        packet[tcp + 2..tcp + 4].copy_from_slice(&dport.to_be_bytes());
        packet[tcp + 4..tcp + 8].copy_from_slice(&((x >> 32) as u32).to_be_bytes());
        packet[tcp + 16..tcp + 18].copy_from_slice(&[0, 0]);
        let sum = tcp_checksum(src, egress, &packet[tcp..]);
        packet[tcp + 16..tcp + 18].copy_from_slice(&sum.to_be_bytes());
        let _ = sendto(fd.as_raw_fd(), &packet, &to, MsgFlags::empty());
    })
}

/// The address this host sends from towards `dst` (what a connected UDP socket is given).
fn local_address_towards(dst: Ipv4Addr) -> Ipv4Addr {
    let s = UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    s.connect(SocketAddrV4::new(dst, 9))
        .expect("a route to the egress IP");
    match s.local_addr().expect("a local address") {
        std::net::SocketAddr::V4(a) => *a.ip(),
        std::net::SocketAddr::V6(_) => unreachable!("an IPv4 socket"),
    }
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(20 + payload).to_be_bytes());
    h[6] = 0x40; // don't fragment
    h[8] = 64;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = fold(sum16(&h));
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    fold(sum16(&pseudo) + sum16(segment))
}

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}
