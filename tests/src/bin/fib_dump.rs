//! Test helper run inside a network namespace: reads the next hops of an interface from the
//! kernel (`gateway::daemon::next_hops::fib_for`) and prints, for each address given, the MAC a packet to
//! it would be sent to: `IP -> MAC` or `IP -> unresolved`. With `--resolve IP` first, it asks
//! the kernel to resolve that address (`next_hops::request_resolution`) and waits (5 s at most)
//! until the neighbour table has it. With `--watch` first, it subscribes to the kernel's
//! announcements (`next_hops::NextHopEvents`), prints `ready`, waits for an announcement (5 s at
//! most), prints `announced` or `silent`, then the table, so a test can change a neighbour
//! in between.

use gateway::daemon::next_hops::{fib_for, request_resolution, NextHopEvents};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--watch") {
        args.remove(0);
        let mut events = NextHopEvents::open().expect("rtnetlink groups");
        println!("ready");
        let end = Instant::now() + Duration::from_secs(5);
        let mut heard = 0;
        while heard == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
            heard = events.drain();
        }
        println!("{}", if heard > 0 { "announced" } else { "silent" });
    }
    if args.first().is_some_and(|a| a == "--resolve") && args.len() >= 3 {
        let ip: Ipv4Addr = args[1].parse().expect("an IPv4 address");
        let ifname = args[2].clone();
        request_resolution(&ifname, ip).expect("RTM_NEWNEIGH with NTF_USE");
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let fib = fib_for(&ifname).expect("fib");
            if fib.next_hop_mac(u32::from(ip)).is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        args.drain(..2);
    }
    let Some((ifname, ips)) = args.split_first() else {
        eprintln!("usage: fib_dump [--resolve IP] IFNAME IP...");
        std::process::exit(2);
    };
    let fib = fib_for(ifname).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    for ip in ips {
        let addr: Ipv4Addr = ip.parse().expect("an IPv4 address");
        match fib.next_hop_mac(u32::from(addr)) {
            Some(mac) => println!("{ip} -> {mac}"),
            None => println!("{ip} -> unresolved"),
        }
    }
}
