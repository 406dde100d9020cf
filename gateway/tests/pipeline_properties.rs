//! Properties of the pipeline over random flows and random bytes.

use gateway::pipeline::Iface;
use gateway::testutil::*;
use gateway::wire::tcp::flags::{ACK, PSH};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Flow {
    pod: u32,
    remote: u32,
    l4: L4,
    ttl: u8,
    df: bool,
    payload: Vec<u8>,
}

fn flow() -> impl Strategy<Value = Flow> {
    let l4 = prop_oneof![
        (1u16.., 1u16.., any::<u8>()).prop_map(|(s, d, f)| L4::Tcp {
            src_port: s,
            dst_port: d,
            flags: f & 0x3f
        }),
        (1u16.., 1u16..).prop_map(|(s, d)| L4::Udp {
            src_port: s,
            dst_port: d
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(i, s)| L4::Echo {
            request: true,
            ident: i,
            seq: s
        }),
    ];
    (
        prop::sample::select(vec![POD2, POD3]),
        // Remote hosts outside the node's and the egress IP's addresses.
        (1u32..0xdfff_ffff).prop_filter("not ours", |r| *r != NODE_IP && *r != EGRESS_IP),
        l4,
        3u8..=255,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(pod, remote, l4, ttl, df, payload)| Flow {
            pod,
            remote,
            l4,
            ttl,
            df,
            payload,
        })
}

fn port_of(l4: L4) -> (u16, u16) {
    match l4 {
        L4::Tcp {
            src_port, dst_port, ..
        }
        | L4::Udp { src_port, dst_port } => (src_port, dst_port),
        L4::Echo { ident, .. } => (ident, ident),
    }
}

/// The same L4 header with the source port (or echo id) replaced.
fn with_src(l4: L4, p: u16) -> L4 {
    match l4 {
        L4::Tcp {
            dst_port, flags, ..
        } => L4::Tcp {
            src_port: p,
            dst_port,
            flags,
        },
        L4::Udp { dst_port, .. } => L4::Udp {
            src_port: p,
            dst_port,
        },
        L4::Echo { seq, request, .. } => L4::Echo {
            request,
            ident: p,
            seq,
        },
    }
}

/// The reply to `l4` as the remote sends it, addressed to port `to`.
fn reply_of(l4: L4, to: u16) -> L4 {
    match l4 {
        L4::Tcp { dst_port, .. } => L4::Tcp {
            src_port: dst_port,
            dst_port: to,
            flags: ACK | PSH,
        },
        L4::Udp { dst_port, .. } => L4::Udp {
            src_port: dst_port,
            dst_port: to,
        },
        L4::Echo { seq, .. } => L4::Echo {
            request: false,
            ident: to,
            seq,
        },
    }
}

const ENCAP: usize = 14 + 20 + 8 + 16 + 14;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Out and back: what leaves is exactly the pod's packet with the egress IP and port, and
    /// what comes back is exactly the remote's reply with the pod's address and port.
    #[test]
    fn flows_translate_out_and_back_identically(f in flow()) {
        let t = seed_tables();
        let mut w = worker(1024);
        let inner = ipv4_packet(f.pod, f.remote, f.ttl, f.df, f.l4, &f.payload);
        let (iface, out) = run(&mut w, &t, 1, &geneve_frame(NODE3_IP, NODE3_MAC, 40000, &inner)).unwrap();
        prop_assert_eq!(iface, Iface::External);
        let ext_port = match f.l4 {
            L4::Echo { .. } => u16::from_be_bytes([out[38], out[39]]),
            _ => u16::from_be_bytes([out[34], out[35]]),
        };
        let expected_out = ipv4_packet(EGRESS_IP, f.remote, f.ttl - 1, f.df, with_src(f.l4, ext_port), &f.payload);
        prop_assert!(checksums_verify(&out[14..]));
        prop_assert_eq!(&out[14..], &expected_out[..]);

        let reply = ipv4_packet(f.remote, EGRESS_IP, f.ttl, f.df, reply_of(f.l4, ext_port), &f.payload);
        // What the pod takes, and the underlay carries once wrapped (`NodeConfig::reply_limit`).
        let fits = reply.len() <= usize::from(POD_MTU).min(usize::from(UNDERLAY_MTU) + 14 - ENCAP);
        match run(&mut w, &t, 2, &external_frame(&reply)) {
            Ok((Iface::Underlay, back)) => {
                prop_assert!(fits);
                let got = &back[ENCAP..];
                let pod_port = port_of(f.l4).0;
                let expected = ipv4_packet(f.remote, f.pod, f.ttl - 1, f.df, reply_of(f.l4, pod_port), &f.payload);
                prop_assert!(checksums_verify(got));
                prop_assert!(checksums_verify(&back[14..]));
                prop_assert_eq!(got, &expected[..]);
            }
            other => prop_assert!(!fits, "reply that fits was not tunnelled: {:?}", other),
        }
    }

    /// Arbitrary bytes never panic and are never forwarded.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let t = seed_tables();
        let mut w = worker(64);
        prop_assert!(run(&mut w, &t, 1, &bytes).is_err());
    }

    /// Valid frames with random bytes changed: whatever is still forwarded is well formed, and
    /// nothing leaves on the external side with any source but the egress IP.
    #[test]
    fn mutated_frames_fail_closed(f in flow(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let t = seed_tables();
        let mut w = worker(64);
        let inner = ipv4_packet(f.pod, f.remote, f.ttl, f.df, f.l4, &f.payload);
        let mut frame = geneve_frame(NODE3_IP, NODE3_MAC, 40000, &inner);
        for (at, v) in &edits {
            let i = at.index(frame.len());
            frame[i] = *v;
        }
        if let Ok((iface, out)) = run(&mut w, &t, 1, &frame) {
            prop_assert_eq!(iface, Iface::External);
            prop_assert_eq!(&out[26..30], &EGRESS_IP.to_be_bytes());
            prop_assert!(gateway::wire::ipv4::Packet::new_checked(&out[14..]).unwrap().verify_checksum());
        }
    }

    /// The fast parser and the general one agree wherever the fast one answers, on valid,
    /// mutated and reply frames alike.
    #[test]
    fn fast_parse_agrees_with_general(
        f in flow(),
        reply in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let t = seed_tables();
        let table = gateway::nat::SessionTable::new(gateway::nat::NatConfig { max_sessions: 16, ..Default::default() });
        let mut frame = if reply {
            external_frame(&ipv4_packet(f.remote, EGRESS_IP, f.ttl, f.df, f.l4, &f.payload))
        } else {
            geneve_frame(NODE3_IP, NODE3_MAC, 40000, &ipv4_packet(f.pod, f.remote, f.ttl, f.df, f.l4, &f.payload))
        };
        for (at, v) in &edits {
            let i = at.index(frame.len());
            frame[i] = *v;
        }
        if let Some(fast) = gateway::pipeline::fast::parse(&frame, &t) {
            let general = gateway::pipeline::parse::general(&frame, &t, &table).map(|p| gateway::pipeline::parsed::Parsed { hash: 0, ..p });
            prop_assert_eq!(Ok(fast), general);
            // New flows read the tunnel back: the fixed offsets say what the views say.
            if fast.dir == gateway::nat::Direction::Out {
                let fixed = gateway::pipeline::fast::tunnel_endpoint(&frame, &fast);
                prop_assert!(fixed.is_some());
                prop_assert_eq!(fixed, Some(gateway::pipeline::parse::tunnel_endpoint_general(&frame, &fast)));
            }
        }
    }

    /// Whatever start, length and headroom a caller claims, a frame is processed or dropped,
    /// never a panic, and nothing is written outside `start - headroom .. start + len`.
    #[test]
    fn frame_geometry_never_panics(
        f in flow(),
        reply in any::<bool>(),
        at in 0usize..200,
        len_delta in -40i32..40,
        headroom in 0usize..300,
    ) {
        let t = seed_tables();
        let mut w = worker(64);
        // Establish the flow first so replies reach the encapsulation path.
        let inner = ipv4_packet(f.pod, f.remote, f.ttl, f.df, f.l4, &f.payload);
        let (_, out) = run(&mut w, &t, 1, &geneve_frame(NODE3_IP, NODE3_MAC, 40000, &inner)).unwrap();
        let bytes = if reply {
            let ext_port = u16::from_be_bytes([out[34], out[35]]);
            let ext = match f.l4 {
                L4::Echo { .. } => u16::from_be_bytes([out[38], out[39]]),
                _ => ext_port,
            };
            external_frame(&ipv4_packet(f.remote, EGRESS_IP, f.ttl, f.df, reply_of(f.l4, ext), &f.payload))
        } else {
            geneve_frame(NODE3_IP, NODE3_MAC, 40000, &inner)
        };
        let mut buf = vec![0xa5u8; at + bytes.len() + 64];
        buf[at..at + bytes.len()].copy_from_slice(&bytes);
        let len = (bytes.len() as i32 + len_delta).max(0) as usize;
        let frame = gateway::pipeline::Frame { start: at, len, headroom };
        let before = buf.clone();
        let _ = w.process(&mut buf, frame, &t, 2);
        let lo = at.saturating_sub(headroom.min(at));
        prop_assert_eq!(&buf[..lo], &before[..lo]);
        let hi = (at + len).min(buf.len());
        prop_assert_eq!(&buf[hi..], &before[hi..]);
    }
}
