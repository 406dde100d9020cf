//! IPv4 fragments through the pipeline: a reply the server's stack cut into fragments reaches
//! the pod whole once its pieces are put together, a pod's fragmented datagram leaves with its
//! egress IP, a reply too big for the tunnel is cut to fit, and a later fragment with no first
//! is a counted drop. Fragments are cut and reassembled here by the test's own helpers
//! (`testutil::fragments_of`, `reassemble`), not by the code under test.

use gateway::drop::DropReason;
use gateway::pipeline::{Iface, Tables, Worker};
use gateway::testutil::*;
use gateway::wire::{ipv4, udp};
use std::sync::atomic::Ordering::Relaxed;

const ENTROPY: u16 = 51234;
const POD_PORT: u16 = 40000;
const ECHO_PORT: u16 = 9999;

fn from_pod(inner: &[u8]) -> Vec<u8> {
    geneve_frame(NODE3_IP, NODE3_MAC, ENTROPY, inner)
}

/// Bytes counting up, so that a piece out of place changes the datagram.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The pod's UDP flow to the server's echo port: its egress port.
fn open_flow(w: &mut Worker, t: &Tables) -> u16 {
    let l4 = L4::Udp {
        src_port: POD_PORT,
        dst_port: ECHO_PORT,
    };
    let (iface, out) = run(
        w,
        t,
        1,
        &from_pod(&ipv4_packet(POD3, SERVER_IP, 64, false, l4, b"big?")),
    )
    .unwrap();
    assert_eq!(iface, Iface::External);
    udp::Packet::new_checked(&out[14 + 20..])
        .unwrap()
        .src_port()
}

/// The server's UDP answer to the egress port: `len` bytes, DF clear.
fn answer(ext_port: u16, payload: &[u8]) -> Vec<u8> {
    let l4 = L4::Udp {
        src_port: ECHO_PORT,
        dst_port: ext_port,
    };
    ipv4_packet(SERVER_IP, EGRESS_IP, 64, false, l4, payload)
}

/// The inner IPv4 packet of a frame tunnelled back to master-03, its outer headers checked
/// against the underlay's MTU.
fn inner_of(frame: &[u8]) -> Vec<u8> {
    let outer = ipv4::Packet::new_checked(&frame[14..]).unwrap();
    assert!(outer.verify_checksum());
    assert_eq!((outer.src(), outer.dst()), (NODE_IP, NODE3_IP));
    // Within the underlay's MTU, and inside within the pod's.
    assert!(
        frame.len() - 14 <= usize::from(UNDERLAY_MTU),
        "{}",
        frame.len()
    );
    assert!(frame.len() - 72 <= usize::from(POD_MTU), "{}", frame.len());
    assert_eq!(usize::from(outer.total_len()), frame.len() - 14);
    let geneve = 14 + 20 + 8;
    let options = usize::from(frame[geneve] & 0x3f) * 4;
    frame[geneve + 8 + options + 14..].to_vec()
}

/// Runs each fragment in, returns every frame that came out.
fn run_each(w: &mut Worker, t: &Tables, now: u32, fragments: &[Vec<u8>]) -> Vec<(Iface, Vec<u8>)> {
    fragments
        .iter()
        .flat_map(|f| run_all(w, t, now, &external_frame(f)).expect("translated"))
        .collect()
}

#[test]
fn a_reply_in_fragments_reaches_the_pod_whole_cut_to_fit_the_tunnel() {
    let t = seed_tables();
    let mut w = worker(1024);
    let ext_port = open_flow(&mut w, &t);
    let body = pattern(3000);
    // As the server's stack sends it over a 1500-byte link: 1480, 1480 and 48 bytes.
    let fragments = fragments_of(&answer(ext_port, &body), 1480);
    assert_eq!(fragments.len(), 3);
    let out = run_each(&mut w, &t, 1, &fragments);
    // The two full fragments do not fit the tunnel (1500 + 72 bytes): each is cut in two.
    assert_eq!(out.len(), 5);
    let pieces: Vec<Vec<u8>> = out
        .iter()
        .map(|(iface, frame)| {
            assert_eq!(*iface, Iface::Underlay);
            inner_of(frame)
        })
        .collect();
    let whole = reassemble(&pieces).expect("the pieces make one datagram");
    let ip = ipv4::Packet::new_checked(&whole[..]).unwrap();
    assert_eq!((ip.src(), ip.dst(), ip.ttl()), (SERVER_IP, POD3, 63));
    assert!(
        checksums_verify(&whole),
        "the UDP checksum, over the whole datagram"
    );
    let u = udp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((u.src_port(), u.dst_port()), (ECHO_PORT, POD_PORT));
    assert_eq!(u.payload(), &body[..]);
    assert_eq!(w.counters.fragments_translated.load(Relaxed), 3);
    assert_eq!(w.counters.replies_fragmented.load(Relaxed), 2);
}

#[test]
fn a_whole_reply_too_big_for_the_tunnel_without_df_is_cut_to_fit() {
    let t = seed_tables();
    let mut w = worker(1024);
    let ext_port = open_flow(&mut w, &t);
    let body = pattern(1472);
    let out = run_all(&mut w, &t, 1, &external_frame(&answer(ext_port, &body))).unwrap();
    assert_eq!(out.len(), 2);
    let pieces: Vec<Vec<u8>> = out.iter().map(|(_, f)| inner_of(f)).collect();
    // The first piece fills what the pod takes (its MTU, 1400), to a multiple of eight.
    assert_eq!(pieces[0].len(), 20 + (usize::from(POD_MTU) - 20) / 8 * 8);
    let whole = reassemble(&pieces).unwrap();
    assert!(checksums_verify(&whole));
    let ip = ipv4::Packet::new_checked(&whole[..]).unwrap();
    assert_eq!(&ip.payload()[8..], &body[..]);
    assert_eq!(w.counters.replies_fragmented.load(Relaxed), 1);
    // The first piece keeps the reply's frame; the spill was cleared by `run_all`.
    assert!(w.pieces.spill.outputs().is_empty());
}

#[test]
fn a_pods_datagram_in_fragments_leaves_with_the_egress_ip() {
    let t = seed_tables();
    let mut w = worker(1024);
    let body = pattern(3000);
    let l4 = L4::Udp {
        src_port: POD_PORT,
        dst_port: ECHO_PORT,
    };
    let datagram = ipv4_packet(POD3, SERVER_IP, 64, false, l4, &body);
    // The pod's stack cuts for its 1400-byte interface.
    let fragments = fragments_of(&datagram, 1376);
    assert_eq!(fragments.len(), 3);
    let out: Vec<Vec<u8>> = fragments
        .iter()
        .map(|f| {
            let (iface, frame) = run(&mut w, &t, 1, &from_pod(f)).expect("forwarded");
            assert_eq!(iface, Iface::External);
            assert_eq!(&frame[0..6], &ROUTER_MAC.0);
            frame[14..].to_vec()
        })
        .collect();
    let whole = reassemble(&out).expect("one datagram");
    let ip = ipv4::Packet::new_checked(&whole[..]).unwrap();
    assert_eq!((ip.src(), ip.dst(), ip.ttl()), (EGRESS_IP, SERVER_IP, 63));
    assert!(checksums_verify(&whole));
    let u = udp::Packet::new_checked(ip.payload()).unwrap();
    assert!(w.nat.ports().contains(u.src_port()));
    assert_eq!(u.payload(), &body[..]);
    // One session, made by the first fragment, and the reply finds it.
    assert_eq!(w.counters.sessions_created.load(Relaxed), 1);
    assert_eq!(w.counters.fragments_translated.load(Relaxed), 3);
    let back = run_all(&mut w, &t, 1, &external_frame(&answer(u.src_port(), b"ok"))).unwrap();
    assert_eq!(back.len(), 1);
}

#[test]
fn a_later_fragment_with_no_first_is_a_counted_drop() {
    let t = seed_tables();
    let mut w = worker(1024);
    let ext_port = open_flow(&mut w, &t);
    let fragments = fragments_of(&answer(ext_port, &pattern(3000)), 1480);
    let cases = [
        // Its first fragment lost (or behind it).
        ("no first", fragments[1].clone()),
        // A datagram whose first fragment reached no session.
        ("first dropped", {
            let stray = fragments_of(&answer(ext_port.wrapping_add(1), &pattern(3000)), 1480);
            let first = run(&mut w, &t, 1, &external_frame(&stray[0]));
            assert!(first.is_err(), "{first:?}");
            let mut later = stray[1].clone();
            later[4] ^= 0x40; // and another identification than the datagram below
            ipv4::Packet::new_unchecked(&mut later[..]).fill_checksum();
            later
        }),
    ];
    for (name, later) in cases {
        assert_eq!(
            run(&mut w, &t, 1, &external_frame(&later)),
            Err(DropReason::FragmentNoFirst),
            "{name}"
        );
    }
    // Once the first has passed, its later fragments follow it, until the entry expires.
    run_all(&mut w, &t, 10, &external_frame(&fragments[0])).unwrap();
    assert!(run_all(&mut w, &t, 11, &external_frame(&fragments[1])).is_ok());
    assert_eq!(
        run(&mut w, &t, 13, &external_frame(&fragments[2])),
        Err(DropReason::FragmentNoFirst)
    );
    assert_eq!(w.counters.drops(DropReason::FragmentNoFirst), 3);
    // A pod's later fragment alone, likewise.
    let l4 = L4::Udp {
        src_port: POD_PORT + 1,
        dst_port: ECHO_PORT,
    };
    let pod = fragments_of(
        &ipv4_packet(POD3, SERVER_IP, 64, false, l4, &pattern(2000)),
        1376,
    );
    assert_eq!(
        run(&mut w, &t, 13, &from_pod(&pod[1])),
        Err(DropReason::FragmentNoFirst)
    );
}

#[test]
fn fragments_the_gateway_does_not_translate_are_named() {
    let t = seed_tables();
    let mut w = worker(1024);
    let ext_port = open_flow(&mut w, &t);
    let fragments = fragments_of(&answer(ext_port, &pattern(3000)), 1480);
    // A first fragment too short to hold the UDP header's ports.
    let mut short = fragments[0][..20 + 8].to_vec();
    short.truncate(20 + 8);
    let stub = {
        let mut f = short[..20].to_vec();
        f.extend_from_slice(&short[20..24]);
        f[2..4].copy_from_slice(&24u16.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut f[..]).fill_checksum();
        f
    };
    // A later fragment whose offset runs past the largest datagram once cut.
    let mut far = fragments[1].clone();
    far[6..8].copy_from_slice(&0x1ff0u16.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut far[..]).fill_checksum();
    run_all(&mut w, &t, 1, &external_frame(&fragments[0])).unwrap();
    let cases = [
        (
            "first fragment without ports",
            external_frame(&stub),
            DropReason::L4Truncated,
        ),
        (
            "offset past the largest datagram",
            external_frame(&far),
            DropReason::Ipv4Malformed,
        ),
    ];
    assert_counted_drops(&mut w, &t, &cases);
}
