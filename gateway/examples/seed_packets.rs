//! The seed's traffic through the pipeline, in-process: pod 10.133.0.3 on master-03 opens a
//! TCP connection to 192.168.55.13:80 through the egress node, the server answers, a pod with
//! no EgressService mapping tries too. Prints each frame as tcpdump would summarise it.
//! (The network-namespace lab with real curl, FRR and AF_XDP is the dataplane issue's demo.)

use gateway::drop::DropReason;
use gateway::pipeline::Iface;
use gateway::testutil::*;
use gateway::wire::ipv4::{self, fmt_addr};
use gateway::wire::tcp::flags::{ACK, SYN};
use gateway::wire::{ethernet, geneve, tcp, udp};

fn show(label: &str, frame: &[u8]) {
    let eth = ethernet::Frame::new_checked(frame).unwrap();
    let outer = ipv4::Packet::new_checked(eth.payload()).unwrap();
    let mut line = format!(
        "{label:<30} {} > {}",
        fmt_addr(outer.src()),
        fmt_addr(outer.dst())
    );
    let mut ip_bytes = eth.payload().to_vec();
    if let Ok(u) = udp::Packet::new_checked(outer.payload()) {
        if u.dst_port() == geneve::UDP_PORT {
            let g = geneve::Header::new_checked(u.payload()).unwrap();
            line += &format!(
                " Geneve vni {:#x} ovn {:?} |",
                g.vni(),
                g.ovn_ports().unwrap_or_default()
            );
            ip_bytes = g.payload()[ethernet::HEADER_LEN..].to_vec();
        }
    }
    let ip = ipv4::Packet::new_checked(&ip_bytes[..]).unwrap();
    if ip.protocol() == ipv4::Protocol::Tcp {
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        line += &format!(
            " {}.{} > {}.{} flags {:#04x} ttl {}",
            fmt_addr(ip.src()),
            t.src_port(),
            fmt_addr(ip.dst()),
            t.dst_port(),
            t.flags(),
            ip.ttl()
        );
    }
    println!("{line}");
}

fn main() {
    let tables = seed_tables();
    let mut w = worker(1 << 16);
    println!("egress map (the seed's egress-service-snat-v4):");
    for (pod, egress) in tables.egress.pods() {
        println!("  {} : {}", fmt_addr(pod), fmt_addr(egress));
    }
    println!();
    let syn = ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags: SYN,
        },
        b"",
    );
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, 51234, &syn);
    show("in  br-ex (from master-03)", &frame);
    let (iface, out) = run(&mut w, &tables, 1, &frame).expect("forwarded");
    assert_eq!(iface, Iface::External);
    show("out br-ex (to the router)", &out);
    let ext_port = u16::from_be_bytes([out[34], out[35]]);

    let syn_ack = ipv4_packet(
        SERVER_IP,
        EGRESS_IP,
        63,
        true,
        L4::Tcp {
            src_port: 80,
            dst_port: ext_port,
            flags: SYN | ACK,
        },
        b"",
    );
    let reply = external_frame(&syn_ack);
    show("in  br-ex (from the router)", &reply);
    let (_, back) = run(&mut w, &tables, 1, &reply).expect("forwarded");
    show("out br-ex (to master-03)", &back);

    let stranger = ipv4_packet(
        ip(10, 133, 0, 9),
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 1,
            dst_port: 80,
            flags: SYN,
        },
        b"",
    );
    let frame = geneve_frame(NODE3_IP, NODE3_MAC, 51235, &stranger);
    show("in  br-ex (unmapped pod)", &frame);
    assert_eq!(
        run(&mut w, &tables, 1, &frame),
        Err(DropReason::NoEgressMapping)
    );
    println!("{:<30} dropped: {}", "", DropReason::NoEgressMapping.name());
    println!();
    println!("sessions: {}", w.nat.live());
    for r in DropReason::ALL.iter().filter(|r| w.counters.drops(**r) > 0) {
        println!("drop {:<24} {}", r.name(), w.counters.drops(*r));
    }
}
