//! Test helper run inside a network namespace: reads the next hops of an interface from the
//! kernel (`gateway::daemon::next_hops::fib_for`, `fib6_for` for IPv6 addresses) and prints,
//! for each address given, the MAC a packet to it would be sent to: `IP -> MAC` or
//! `IP -> unresolved`. With `--resolve IP` first, it asks the kernel to resolve that address
//! (`next_hops::request_resolution`, again each second) until the neighbour table has it (10 s
//! at most). With `--watch` first, it subscribes to the kernel's
//! announcements (`next_hops::NextHopEvents`), prints `ready`, waits for an announcement (5 s at
//! most), prints `announced` or `silent`, then the table, so a test can change a neighbour
//! in between.

use gateway::daemon::next_hops::{fib6_for, fib_for, request_resolution, NextHopEvents};
use gateway::wire::ethernet::MacAddr;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The MAC a packet to `ip` leaving `ifname` goes to, as the kernel's tables say now.
fn next_hop_mac(ifname: &str, ip: IpAddr) -> Result<Option<MacAddr>, std::io::Error> {
    Ok(match ip {
        IpAddr::V4(v4) => fib_for(ifname)?.next_hop_mac(u32::from(v4)),
        IpAddr::V6(v6) => fib6_for(ifname)?
            .next_hop_word(u128::from(v6))
            .map(MacAddr::from_word),
    })
}

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
        let ip: IpAddr = args[1].parse().expect("an IP address");
        let ifname = args[2].clone();
        // Asked again each second, as the daemon's control thread asks again while drops
        // for that next hop go on: a solicitation sent while a fresh veth was still coming
        // up is lost, and the kernel gives up after three.
        let end = Instant::now() + Duration::from_secs(10);
        let mut asked = Instant::now() - Duration::from_secs(1);
        while Instant::now() < end {
            if asked.elapsed() >= Duration::from_secs(1) {
                request_resolution(&ifname, ip).expect("RTM_NEWNEIGH with NTF_USE");
                asked = Instant::now();
            }
            if next_hop_mac(&ifname, ip).expect("fib").is_some() {
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
    for ip in ips {
        let addr: IpAddr = ip.parse().expect("an IP address");
        match next_hop_mac(ifname, addr) {
            Ok(Some(mac)) => println!("{ip} -> {mac}"),
            Ok(None) => println!("{ip} -> unresolved"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
}
