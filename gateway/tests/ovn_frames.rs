//! Frames real OVN sent and accepted, as golden bytes: captured in the real-OVN lab
//! (`lab/ovn-lab`, OVN 23.03.1 in interconnect mode, `egressctl capture` on master-01,
//! 2026-12-04) while pod 10.133.0.3 on master-03 sent "egress?" over UDP 40001 -> 9999 to the
//! server. Our wire views must read OVN's frame as OVN meant it, the pipeline must translate
//! it, and the reply we build must carry exactly the tunnel bytes OVN accepted.

use gateway::pipeline::Iface;
use gateway::testutil::{self, checksums_verify, run, seed_tables, worker};
use gateway::wire::{ethernet, geneve, ipv4, udp};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// master-03's OVN to master-01: the rerouted datagram, as egressgw received it.
const FROM_OVN: &str = "3a20a9dd0e428a874f627c4608004500005d000040004011f30ec0a86319c0a86317999117c1004938dc02406558ff00030001028001000200040a58645800040a58645800020800450000231cba40003f111cd30a850003c0a8370d9c41270f000fb0016567726573733f";
/// The server's answer to 192.168.66.100:1025, as it reached master-01.
const FROM_SERVER: &str = "3a20a9dd0e42ca821dcec431080045000023e76e40003f115999c0a8370dc0a84264270f0401000fb01d4547524553533f";
/// egressgw's reply toward master-03, which master-03's OVN delivered to the pod.
const ACCEPTED_BY_OVN: &str = "8a874f627c463a20a9dd0e4208004500005d000040004011f30ec0a86317c0a86319999117c10049000002406558ff00030001028001000400020a58645800020a5864580004080045000023e76e40003e11531ec0a8370d0a850003270f9c41000f10624547524553533f";

#[test]
fn ovns_frame_reads_as_ovn_meant_it() {
    let f = hex(FROM_OVN);
    let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
    assert_eq!(eth.ethertype(), ethernet::EtherType::Ipv4);
    let outer = ipv4::Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(outer.src(), testutil::NODE3_IP);
    assert_eq!(outer.dst(), testutil::NODE_IP);
    assert!(outer.verify_checksum());
    let u = udp::Packet::new_checked(&f[34..]).unwrap();
    assert_eq!(u.dst_port(), 6081);
    // OVN sets the outer UDP checksum (LAB.md); ours need not.
    assert_ne!(u.checksum(), 0);
    let g = geneve::Header::new_checked(&f[42..]).unwrap();
    assert_eq!(g.vni(), 0xff0003, "the transit switch's key");
    assert_eq!(
        g.ovn_ports(),
        Some(testutil::OVN_PORTS),
        "ingress 2 (master-03), egress 4"
    );
    let inner = ethernet::Frame::new_checked(&f[58..]).unwrap();
    assert_eq!(inner.src(), testutil::TRANSIT3_MAC);
    assert_eq!(inner.dst(), testutil::TRANSIT1_MAC);
    let ip = ipv4::Packet::new_checked(&f[72..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (testutil::POD3, testutil::SERVER_IP));
    assert_eq!(ip.ttl(), 63, "routed on master-03 already");
}

#[test]
fn ovns_frame_is_translated_and_our_reply_is_what_ovn_accepted() {
    let t = seed_tables();
    let mut w = worker(64);
    let (iface, out) = run(&mut w, &t, 1, &hex(FROM_OVN)).expect("translated");
    assert_eq!(iface, Iface::External);
    let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.ttl()),
        (testutil::EGRESS_IP, testutil::SERVER_IP, 62)
    );
    assert!(checksums_verify(&out[14..]));
    assert_eq!(&out[out.len() - 7..], b"egress?");
    let port = udp::Packet::new_checked(&out[34..]).unwrap().src_port();

    // The server's answer, sent to the port this worker chose (the lab's chose 1025).
    let mut reply = hex(FROM_SERVER);
    reply[36..38].copy_from_slice(&port.to_be_bytes());
    reply[40..42].copy_from_slice(&[0, 0]); // no UDP checksum: the port changed
    let (iface, back) = run(&mut w, &t, 2, &reply).expect("un-NATed");
    assert_eq!(iface, Iface::Underlay);
    let accepted = hex(ACCEPTED_BY_OVN);
    // Outer IPv4 from master-01 to master-03, UDP from OVN's own entropy port to 6081, and
    // the Geneve header and inner Ethernet header byte for byte as OVN accepted them: VNI as
    // received, the port keys swapped (4 -> 2), the inner MACs swapped.
    assert_eq!(&back[26..34], &accepted[26..34], "outer addresses");
    assert_eq!(&back[34..38], &accepted[34..38], "outer ports");
    assert_eq!(
        &back[42..72],
        &accepted[42..72],
        "Geneve and inner Ethernet"
    );
    let inner = ipv4::Packet::new_checked(&back[72..]).unwrap();
    assert_eq!(
        (inner.src(), inner.dst()),
        (testutil::SERVER_IP, testutil::POD3)
    );
    assert_eq!(&back[back.len() - 7..], b"EGRESS?");
    assert_eq!(
        &back[back.len() - 15..back.len() - 11],
        &accepted[accepted.len() - 15..accepted.len() - 11],
        "pod ports"
    );
}
