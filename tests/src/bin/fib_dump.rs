//! Test helper run inside a network namespace: reads the next hops of an interface from the
//! kernel (`gateway::neigh::fib_for`) and prints, for each address given, the MAC a packet to
//! it would be sent to: `IP -> MAC` or `IP -> unresolved`.

use gateway::neigh::fib_for;
use std::net::Ipv4Addr;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some((ifname, ips)) = args[1..].split_first() else {
        eprintln!("usage: fib_dump IFNAME IP...");
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
