//! TCP connection cycles for the connection-rate mode, answered without state: every segment
//! says what comes next (its flags, sequence and acknowledgement numbers, and the trailer's
//! [`FLAG_LAST`]), so neither side of the tester keeps a connection table.
//!
//! The pod opens with a SYN; the server answers SYN-ACK; the pod sends its ACK and then its
//! FIN-ACK; the server answers FIN-ACK; the pod's last ACK reaching the server side completes
//! the connection (7 segments, the pod's 4 out through the gateway, the server's 2 back, as
//! CSIT's TCP cps counts a cycle: open, close, no data). Every segment carries the same bytes
//! after its header (padding and the trailer), counted in the sequence space as data, so a
//! connection tracker that follows the windows (the kernel's) sees a consistent exchange.

use super::frames::{swap, Trailer, FLAG_REPLY, GENEVE_OVERHEAD, TRAILER_LEN, VXLAN_OVERHEAD};
use gateway::testutil;
use gateway::wire::tcp::{self, flags};
use gateway::wire::{ethernet, geneve, ipv4};

/// Set on the pod's last ACK: the server side counts the connection complete.
pub const FLAG_LAST: u8 = 4;
/// The server's initial sequence number (any will do: every answer derives from the segment).
const SERVER_ISN: u32 = 0x5e40_0000;
/// The smallest frame that holds a TCP segment and the trailer.
pub const MIN_SIZE: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp::HEADER_LEN + TRAILER_LEN;
const WINDOW: u16 = 65535;

/// What the server side made of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtServer {
    /// Answered (SYN-ACK to a SYN, FIN-ACK to a FIN): send the frame back.
    Answered,
    /// The pod's last ACK: the connection is complete.
    Completed,
    /// Nothing to answer (the pod's ACK of the SYN-ACK, or not a TCP segment).
    Nothing,
}

/// Where the inner IPv4 header of `frame` starts: at 14 for a plain frame, after the Geneve
/// or VXLAN encapsulation for a tunnelled one; `None` for what is neither.
fn inner_ip(frame: &[u8]) -> Option<usize> {
    if frame.len() < ethernet::HEADER_LEN + ipv4::HEADER_LEN || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let at = match frame[23] {
        6 => ethernet::HEADER_LEN,
        17 if frame.len() >= 38 => match u16::from_be_bytes([frame[36], frame[37]]) {
            geneve::UDP_PORT => GENEVE_OVERHEAD + ethernet::HEADER_LEN,
            super::frames::VXLAN_PORT => VXLAN_OVERHEAD + ethernet::HEADER_LEN,
            _ => return None,
        },
        _ => return None,
    };
    let fits = frame.len() >= at + ipv4::HEADER_LEN + tcp::HEADER_LEN + TRAILER_LEN;
    (fits && frame[at] == 0x45 && frame[at + 9] == 6).then_some(at)
}

/// The segment at `ip` (its IPv4 header): flags, sequence, acknowledgement, bytes of data.
fn segment(frame: &[u8], ip: usize) -> (u8, u32, u32, u32) {
    let t = &frame[ip + ipv4::HEADER_LEN..];
    let seg = tcp::Packet::new_unchecked(t);
    let total = u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]) as usize;
    let data = total.saturating_sub(ipv4::HEADER_LEN + seg.header_len());
    (seg.flags(), seg.seq(), seg.ack(), data as u32)
}

/// Writes flags, sequence and acknowledgement into the segment at `ip` and its checksum.
fn set_segment(frame: &mut [u8], ip: usize, tcp_flags: u8, seq: u32, ack: u32) {
    let src = u32::from_be_bytes([
        frame[ip + 12],
        frame[ip + 13],
        frame[ip + 14],
        frame[ip + 15],
    ]);
    let dst = u32::from_be_bytes([
        frame[ip + 16],
        frame[ip + 17],
        frame[ip + 18],
        frame[ip + 19],
    ]);
    let total = u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]) as usize;
    let t = &mut frame[ip + ipv4::HEADER_LEN..ip + total];
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = (tcp::HEADER_LEN as u8 / 4) << 4;
    t[13] = tcp_flags;
    t[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    tcp::Packet::new_unchecked(t).fill_checksum(src, dst);
}

/// The server's answer to a segment that reached the server side, written in place into
/// `frame` (a copy the caller owns, already turned around by `frames::reflect`: addresses,
/// ports and MACs swapped, the reply flag set).
pub fn answer_as_server(frame: &mut [u8]) -> AtServer {
    let Some(ip) = inner_ip(frame) else {
        return AtServer::Nothing;
    };
    let (f, seq, ack, data) = segment(frame, ip);
    let next = seq.wrapping_add(data);
    if f & flags::SYN != 0 && f & flags::ACK == 0 {
        set_segment(
            frame,
            ip,
            flags::SYN | flags::ACK,
            SERVER_ISN,
            next.wrapping_add(1),
        );
        AtServer::Answered
    } else if f & flags::FIN != 0 {
        set_segment(
            frame,
            ip,
            flags::FIN | flags::ACK,
            ack,
            next.wrapping_add(1),
        );
        AtServer::Answered
    } else if Trailer::read(frame).is_some_and(|t| t.flags & FLAG_LAST != 0) {
        AtServer::Completed
    } else {
        AtServer::Nothing
    }
}

/// Whether a segment that reached the server side completes its connection (the pod's last
/// ACK), read without answering.
pub fn completes(frame: &[u8]) -> bool {
    inner_ip(frame).is_some()
        && Trailer::read(frame)
            .is_some_and(|t| t.flags & FLAG_LAST != 0 && t.flags & FLAG_REPLY == 0)
}

/// The pod's answers to a server segment tunnelled back to it (`reply`): to a SYN-ACK its ACK
/// and its FIN-ACK, to a FIN-ACK its last ACK. Each is written into a buffer of `out` (the
/// reply's length), turned into a request again: outer and inner addresses, ports, MACs and
/// OVN's port keys back the way the pod's node sends them, the reply flag cleared. Returns
/// how many it wrote (0 for anything else).
pub fn answer_as_pod(reply: &[u8], out: [&mut [u8]; 2]) -> usize {
    let Some(ip) = inner_ip(reply).filter(|&ip| ip > ethernet::HEADER_LEN) else {
        return 0;
    };
    let (f, seq, ack, data) = segment(reply, ip);
    let next = seq.wrapping_add(data).wrapping_add(1);
    let answers: &[(u8, u32, u32, u8)] = if f & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK
    {
        &[
            (flags::ACK, ack, next, 0),
            (flags::FIN | flags::ACK, ack.wrapping_add(data), next, 0),
        ]
    } else if f & flags::FIN != 0 {
        &[(flags::ACK, ack, next, FLAG_LAST)]
    } else {
        return 0;
    };
    let [a, b] = out;
    for ((tcp_flags, s, k, extra), buf) in answers.iter().zip([a, b]) {
        let frame = &mut buf[..reply.len()];
        frame.copy_from_slice(reply);
        turn_to_request(frame, ip);
        let at = frame.len() - TRAILER_LEN;
        frame[at + 2] = (frame[at + 2] & !FLAG_REPLY) | extra;
        // Last: the checksum covers the trailer.
        set_segment(frame, ip, *tcp_flags, *s, *k);
    }
    answers.len()
}

/// Turns a tunnelled frame that came back toward the pod's node into one that goes from it:
/// swaps whatever the path turned around (the floor turns only the MACs around; the gateways
/// the addresses too).
fn turn_to_request(frame: &mut [u8], ip: usize) {
    swap(frame, 0, 6, 6);
    let outer_dst = u32::from_be_bytes([frame[30], frame[31], frame[32], frame[33]]);
    if outer_dst == testutil::NODE3_IP {
        swap(frame, 26, 30, 4);
        if ip == GENEVE_OVERHEAD + ethernet::HEADER_LEN {
            // OVN's port keys: the gateway swapped them for the way back.
            swap(frame, 54, 56, 2);
        }
    }
    // The outer UDP checksum (optional in IPv4) would not cover the changed segment.
    frame[40..42].fill(0);
    let inner_dst = u32::from_be_bytes([
        frame[ip + 16],
        frame[ip + 17],
        frame[ip + 18],
        frame[ip + 19],
    ]);
    if inner_dst != testutil::SERVER_IP {
        swap(
            frame,
            ip - ethernet::HEADER_LEN,
            ip - ethernet::HEADER_LEN + 6,
            6,
        );
        swap(frame, ip + 12, ip + 16, 4);
        let t = ip + ipv4::HEADER_LEN;
        swap(frame, t, t + 2, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linerate::frames::{reflect, Encap, Flows, Generator, FLAG_MEASURED};
    use gateway::pipeline::Iface;
    use gateway::testutil::{self, checksums_verify};

    const FLOWS: Flows = Flows { pods: 2, flows: 8 };

    fn syn(encap: Encap, size: usize) -> Vec<u8> {
        let g = Generator::tcp(encap, FLOWS, size, testutil::NODE3_MAC);
        let mut buf = vec![0u8; 2048];
        let trailer = Trailer {
            flags: FLAG_MEASURED,
            sender: 0,
            seq: 7,
            stamp_ns: 99,
        };
        let n = g.write(&mut buf, 5, &trailer);
        buf.truncate(n);
        buf
    }

    /// (flags, seq, ack) of a frame's segment, after checking every checksum from scratch.
    fn seg(frame: &[u8]) -> (u8, u32, u32) {
        let ip = inner_ip(frame).expect("a TCP segment");
        assert!(checksums_verify(&frame[ip..]), "checksums of {frame:02x?}");
        let (f, s, a, _) = segment(frame, ip);
        (f, s, a)
    }

    /// The server side's answer to `frame`.
    fn at_server(frame: &[u8]) -> (AtServer, Vec<u8>) {
        let mut copy = frame.to_vec();
        reflect(&mut copy);
        (answer_as_server(&mut copy), copy)
    }

    fn at_pod(reply: &[u8]) -> Vec<Vec<u8>> {
        let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
        let n = answer_as_pod(reply, [&mut a, &mut b]);
        [a, b]
            .into_iter()
            .take(n)
            .map(|mut f| {
                f.truncate(reply.len());
                f
            })
            .collect()
    }

    /// One cycle through egressgw's own pipeline (in process): every segment translated both
    /// ways, the sequence numbers consistent, the last ACK completing it.
    #[test]
    fn a_cycle_through_the_gateway_pipeline_completes() {
        let mut tables = testutil::seed_tables();
        for pod in 0..FLOWS.pods {
            tables.egress.set(Flows::pod_ip(pod), testutil::EGRESS_IP);
        }
        let mut w = testutil::worker(1024);
        let mut through = |frame: &[u8], to: Iface| {
            let (iface, out) = testutil::run(&mut w, &tables, 10, frame).expect("forwarded");
            assert_eq!(iface, to);
            out
        };
        let syn = syn(Encap::Geneve, 64);
        let (f, isn, _) = seg(&syn);
        assert_eq!(f, flags::SYN);
        let data = (syn.len() - GENEVE_OVERHEAD - (MIN_SIZE - TRAILER_LEN)) as u32;

        let out = through(&syn, Iface::External);
        assert_eq!(classify_source(&out), testutil::EGRESS_IP);
        let (done, syn_ack) = at_server(&out);
        assert_eq!(done, AtServer::Answered);
        let (f, server_isn, ack) = seg(&syn_ack);
        assert_eq!((f, ack), (flags::SYN | flags::ACK, isn + 1 + data));

        let back = through(&syn_ack, Iface::Underlay);
        let answers = at_pod(&back);
        assert_eq!(answers.len(), 2);
        let (f, s, a) = seg(&answers[0]);
        assert_eq!(
            (f, s, a),
            (flags::ACK, isn + 1 + data, server_isn + 1 + data)
        );
        let (f, s, _) = seg(&answers[1]);
        assert_eq!((f, s), (flags::FIN | flags::ACK, isn + 1 + 2 * data));

        let out = through(&answers[0], Iface::External);
        assert_eq!(at_server(&out).0, AtServer::Nothing);
        assert!(!completes(&out));
        let out = through(&answers[1], Iface::External);
        let (done, fin_ack) = at_server(&out);
        assert_eq!(done, AtServer::Answered);
        let (f, s, a) = seg(&fin_ack);
        assert_eq!(
            (f, s, a),
            (
                flags::FIN | flags::ACK,
                server_isn + 1 + data,
                isn + 2 + 3 * data
            )
        );

        let back = through(&fin_ack, Iface::Underlay);
        let last = at_pod(&back);
        assert_eq!(last.len(), 1);
        let (f, s, a) = seg(&last[0]);
        assert_eq!(
            (f, s, a),
            (flags::ACK, isn + 2 + 3 * data, server_isn + 2 + 2 * data)
        );
        let out = through(&last[0], Iface::External);
        assert!(completes(&out));
        assert_eq!(at_server(&out).0, AtServer::Completed);
        // The trailer came through every step: the SYN's time stamp times the whole cycle.
        let t = Trailer::read(&out).unwrap();
        assert_eq!(
            (t.seq, t.stamp_ns, t.flags),
            (7, 99, FLAG_MEASURED | FLAG_LAST)
        );
    }

    fn classify_source(frame: &[u8]) -> u32 {
        match crate::linerate::frames::classify(frame) {
            crate::linerate::frames::Arrival::Plain {
                source: std::net::IpAddr::V4(source),
            } => source.into(),
            other => panic!("{other:?}"),
        }
    }

    /// Through the floor (which turns only the MACs around) the same cycle completes, the
    /// answers written into the tunnel as it is.
    #[test]
    fn a_cycle_through_the_floor_completes() {
        let bounce = |f: &[u8]| {
            let mut f = f.to_vec();
            swap(&mut f, 0, 6, 6);
            f
        };
        let syn = syn(Encap::Geneve, 100);
        let (done, syn_ack) = at_server(&bounce(&syn));
        assert_eq!(done, AtServer::Answered);
        let answers = at_pod(&bounce(&syn_ack));
        assert_eq!(answers.len(), 2);
        assert_eq!(at_server(&bounce(&answers[0])).0, AtServer::Nothing);
        let (done, fin_ack) = at_server(&bounce(&answers[1]));
        assert_eq!(done, AtServer::Answered);
        let last = at_pod(&bounce(&fin_ack));
        assert_eq!(last.len(), 1);
        assert!(completes(&bounce(&last[0])));
        // Still addressed pod -> server, inside and out.
        let ip = inner_ip(&last[0]).unwrap();
        assert_eq!(&last[0][ip + 12..ip + 16], &Flows::pod_ip(1).to_be_bytes());
        assert_eq!(&last[0][30..34], &testutil::NODE_IP.to_be_bytes());
    }

    /// VXLAN frames (the kernel path's) hold a segment where the answers look for it, and a
    /// frame that is no segment draws no answer.
    #[test]
    fn vxlan_segments_are_found_and_other_frames_are_not_answered() {
        let syn = syn(Encap::Vxlan, 64);
        assert_eq!(inner_ip(&syn), Some(VXLAN_OVERHEAD + ethernet::HEADER_LEN));
        assert_eq!(seg(&syn).0, flags::SYN);
        let mut udp = vec![0u8; 120];
        assert_eq!(answer_as_server(&mut udp), AtServer::Nothing);
        assert_eq!(answer_as_pod(&udp, [&mut [0u8; 2048], &mut [0u8; 2048]]), 0);
        assert_eq!(
            answer_as_pod(&syn[..40], [&mut [0u8; 2048], &mut [0u8; 2048]]),
            0
        );
    }
}
