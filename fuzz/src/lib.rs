//! Coverage-guided fuzz targets (issue 19), one per decoder of untrusted bytes: frames through
//! the whole pipeline (both directions, a session table holding sessions), BGP messages fed to
//! an established session's state machine, BFD packets fed to a session, control-protocol
//! frames and requests, the daemon's TOML, and the gateways' sync messages. Each target must
//! return, whatever the bytes: a panic or a hang is a finding.
//!
//! The binaries (`src/bin/fuzz_*.rs`, built by `cargo afl build`) call these; `fuzz_seeds`
//! writes each target's starting corpus from golden bytes; the inputs kept in `corpus/` and
//! `regressions/` run through every target in the ordinary test suite (`tests` below), so a
//! finding stays fixed. `scripts/fuzz` builds, runs and keeps what is found.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::bfd::{BfdConfig, BfdSession, ControlPacket, SessionState};
use bgp::fsm::{Neighbor, NeighborConfig, Output};
use bgp::wire::{self, Capability, Codec, Message, Open};
use gateway::sync::wire::SyncKey;
use gateway::testutil::*;
use gateway::wire::icmp;

/// A target: takes any bytes, and must return.
pub type Target = fn(&[u8]);

/// Every target by name, as the binaries and `scripts/fuzz` know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("pipeline", pipeline),
    ("bgp", self::bgp),
    ("bfd", bfd),
    ("control", self::control),
    ("config", config),
    ("sync", sync),
];

/// The first byte chooses how the rest arrives: 0 a whole frame on the uplink, 1 an inner
/// IP packet (either family) tunnelled by master-03, 2 an IP packet from outside (a reply),
/// 3 an inner IP packet tunnelled by master-03 over the IPv6 underlay (node.ip6 is set), 4 a
/// reply (an IP packet from outside, either family) another member forwarded over the IPv6
/// underlay.
/// Dual stack: a TCP, a UDP and an ICMP echo session of pod 10.133.0.3 and the same of its
/// IPv6 address exist beforehand, and the first fragments of a datagram each way of the UDP
/// flow have passed (so later fragments find their flow); what is transmitted goes through
/// once more. The per-pod limits are on and tight: each pod may open one flow more. With the
/// mode's top bit set the external interface's MTU is small (68 + 8 × the mode's low seven
/// bits).
pub fn pipeline(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut tables = seed_tables_underlay6();
    // The mode's top bit: an external interface of 68 to 1084 bytes, so that small inputs
    // reach the answers to pods' packets too big for it.
    if mode & 0x80 != 0 {
        tables.node.external_mtu = 68 + u16::from(mode & 0x7f) * 8;
    }
    let mut w = primed_worker(&tables);
    let frame = match mode % 5 {
        0 => rest.to_vec(),
        1 => tunnelled(rest),
        2 => external_frame(rest),
        3 => geneve6_frame(NODE3_V6, NODE3_MAC, 0xc001, rest),
        _ => forwarded6_frame(
            &external_frame(rest),
            gateway::pipeline::forward::FORWARD_VNI,
        ),
    };
    if let Ok((_, out)) = run(&mut w, &tables, 2, &frame) {
        let _ = run(&mut w, &tables, 3, &out);
    }
}

/// The fuzz target's worker, its sessions made and its fragments' first passed
/// ([`pipeline`]); and the later fragments of those datagrams (the pod's, the reply's).
fn primed(tables: &gateway::pipeline::Tables) -> (gateway::pipeline::Worker, [Vec<u8>; 2]) {
    let mut w = gateway::pipeline::Worker::new(
        gateway::nat::SessionTable::new(gateway::nat::NatConfig {
            max_sessions: 64,
            max_sessions_v6: 64,
            fair: gateway::nat::FairLimits {
                pod_sessions: 4,
                pod_new_flows_per_s: 4,
                pod_new_flow_burst: 4,
                pod_destination_share: 50,
            },
            ..Default::default()
        })
        .worker(0),
    );
    let mut udp_port = 0;
    for f in egress_packets() {
        if let Ok((_, out)) = run(&mut w, tables, 1, &tunnelled(&f)) {
            if out[14] == 0x45 && out[14 + 9] == 17 {
                udp_port = u16::from_be_bytes([out[34], out[35]]);
            }
        }
    }
    let udp = |src_port, dst_port| L4::Udp { src_port, dst_port };
    let pod = ipv4_packet(POD3, SERVER_IP, 64, false, udp(40001, 9999), &[b'a'; 2000]);
    let reply = ipv4_packet(
        SERVER_IP,
        EGRESS_IP,
        64,
        false,
        udp(9999, udp_port),
        &[b'A'; 2000],
    );
    let [pod, reply] = [fragments_of(&pod, 1376), fragments_of(&reply, 1480)];
    let _ = run(&mut w, tables, 1, &tunnelled(&pod[0]));
    let _ = run(&mut w, tables, 1, &external_frame(&reply[0]));
    w.pieces.spill.clear();
    (w, [pod[1].clone(), reply[1].clone()])
}

fn primed_worker(tables: &gateway::pipeline::Tables) -> gateway::pipeline::Worker {
    primed(tables).0
}

fn tunnelled(inner: &[u8]) -> Vec<u8> {
    geneve_frame(NODE3_IP, NODE3_MAC, 0xc001, inner)
}

/// The pod's first packets, from its IPv4 and its IPv6 address: a TCP SYN, a UDP datagram,
/// an ICMP (ICMPv6) echo request.
fn egress_packets() -> Vec<Vec<u8>> {
    let l4s = [
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags: 0x02,
        },
        L4::Udp {
            src_port: 40001,
            dst_port: 9999,
        },
        L4::Echo {
            request: true,
            ident: 7,
            seq: 1,
        },
    ];
    let v4 = l4s.map(|l4| ipv4_packet(POD3, SERVER_IP, 64, true, l4, b"hello"));
    let v6 = l4s.map(|l4| ipv6_packet(POD3_V6, SERVER_V6, 64, l4, b"hello"));
    v4.into_iter().chain(v6).collect()
}

/// BGP messages, split as the stream delimits them, fed to a session established with FRR's
/// OPEN; each decoding error is fed too (the NOTIFICATION it produces).
pub fn bgp(data: &[u8]) {
    let t0 = Instant::now();
    let mut n = Neighbor::new(NeighborConfig {
        local_as: 64512,
        peer_as: 64512,
        router_id: Ipv4Addr::new(192, 168, 99, 23),
        hold_time: 9,
        connect_retry: Duration::from_secs(5),
        passive: false,
        families: bgp::wire::Family::ALL.to_vec(),
    });
    let Some(Output::Connect(id)) = n.start(t0).into_iter().next() else {
        return;
    };
    n.connected(id, t0);
    n.received(id, Ok(Message::Open(router_open())), t0);
    n.received(id, Ok(Message::Keepalive), t0);
    let codec = Codec {
        four_octet_as: true,
    };
    let mut rest = data;
    while !rest.is_empty() {
        let len = match wire::frame_len(rest) {
            Ok(Some(len)) => len,
            Ok(None) => break,
            Err(notification) => {
                n.received(id, Err(notification), t0);
                break;
            }
        };
        n.received(id, Message::decode(&rest[..len], codec), t0);
        rest = &rest[len..];
    }
    n.poll(t0 + Duration::from_secs(1));
}

fn router_open() -> Open {
    Open {
        version: 4,
        my_as: 64512,
        hold_time: 90,
        router_id: Ipv4Addr::new(192, 168, 99, 12),
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(64512),
        ],
    }
}

/// BFD control packets (24 bytes each, the rest of the input the next) fed to a session.
pub fn bfd(data: &[u8]) {
    let t0 = Instant::now();
    let mut s = BfdSession::new(BfdConfig::default(), 1, t0);
    for (i, chunk) in data.chunks(24).enumerate() {
        let now = t0 + Duration::from_millis(10 * i as u64);
        if let Ok(p) = ControlPacket::parse(chunk) {
            s.receive(&p, now);
        }
        s.poll(now);
    }
}

/// Control-protocol frames as a connection delivers them (length, JSON), each request parsed.
pub fn control(data: &[u8]) {
    let mut buf = data.to_vec();
    while let Ok(Some(frame)) = control::proto::take_frame(&mut buf) {
        let _ = control::proto::parse_request(&frame);
    }
    let _ = control::proto::parse_request(data);
}

/// The daemon's configuration file.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gateway::daemon::config::Config::parse(text);
    }
}

/// A sync datagram, checked with the set's key; signed by it from the second byte on when the
/// first is odd, so the fuzzer also reaches the body's parser.
pub fn sync(data: &[u8]) {
    let key = SyncKey::new(SYNC_KEY).expect("a long enough key");
    let Some((&sign, rest)) = data.split_first() else {
        return;
    };
    let datagram = if sign & 1 == 1 {
        signed(rest, &key)
    } else {
        rest.to_vec()
    };
    if let Ok(m) = gateway::sync::wire::decode(&datagram, &key) {
        m.records().for_each(drop);
        m.nacks().for_each(drop);
    }
}

const SYNC_KEY: &[u8] = b"the fuzz target's pre-shared key";

/// `body` with the MAC the key gives it in place of its last 16 bytes.
fn signed(body: &[u8], key: &SyncKey) -> Vec<u8> {
    let mut d = body.to_vec();
    if d.len() >= gateway::sync::wire::MAC_LEN {
        let at = d.len() - gateway::sync::wire::MAC_LEN;
        let tag = key.tag(&d[..at]);
        d[at..].copy_from_slice(&tag);
    }
    d
}

/// Each target's starting inputs: the golden bytes the unit tests use, in the target's framing.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "pipeline" => pipeline_seeds(),
        "bgp" => {
            let mut out = Vec::new();
            for m in [
                Message::Keepalive,
                Message::Open(router_open()),
                Message::Update(bgp::wire::Update {
                    nlri: vec!["192.168.55.0/24".parse().expect("a prefix")],
                    ..Default::default()
                }),
            ] {
                let mut b = Vec::new();
                let _ = m.encode(
                    Codec {
                        four_octet_as: true,
                    },
                    &mut b,
                );
                out.push(b);
            }
            out
        }
        "bfd" => [SessionState::Down, SessionState::Init, SessionState::Up]
            .into_iter()
            .map(|state| {
                ControlPacket {
                    diag: bgp::bfd::Diag::NONE,
                    state,
                    poll: false,
                    final_: false,
                    detect_mult: 3,
                    my_discr: 7,
                    your_discr: 1,
                    desired_min_tx: Duration::from_millis(300),
                    required_min_rx: Duration::from_millis(300),
                }
                .emit()
                .to_vec()
            })
            .collect(),
        "control" => [
            r#"{"version":3,"request":{"op":"map_set","entry":{"pod":"10.133.0.3","egress_ip":"192.168.66.100","comment":"demo-egress/egress-identity"}}}"#,
            r#"{"version":3,"request":{"op":"map_set","entry":{"pod":"fd00:10:128:3::3","egress_ip":"fd00:66::100","node":"192.168.99.25"}}}"#,
            r#"{"version":3,"request":{"op":"map_update","set":[],"delete":["10.133.0.3","fd00:10:128:3::3"]}}"#,
            r#"{"version":3,"request":{"op":"egress_add","ip":"192.168.66.100","service_ports":["8080/tcp"]}}"#,
            r#"{"version":3,"request":{"op":"cluster_set","networks":["10.128.0.0/14","fd00:10:128::/48"]}}"#,
            r#"{"version":3,"request":{"op":"ha_drain","drain":true}}"#,
        ]
        .iter()
        .map(|json| {
            let mut b = (json.len() as u32).to_be_bytes().to_vec();
            b.extend_from_slice(json.as_bytes());
            b
        })
        .collect(),
        "config" => vec![include_bytes!("../../deploy/egressgw.toml").to_vec()],
        "sync" => sync_seeds(),
        _ => Vec::new(),
    }
}

fn pipeline_seeds() -> Vec<Vec<u8>> {
    let with_mode = |mode: u8, bytes: &[u8]| {
        let mut b = vec![mode];
        b.extend_from_slice(bytes);
        b
    };
    let mut out = Vec::new();
    // The later fragments of the datagrams whose first fragments the target's worker has seen.
    let [pod_later, reply_later] = primed(&seed_tables_underlay6()).1;
    out.push(with_mode(1, &pod_later));
    out.push(with_mode(2, &reply_later));
    let tables = seed_tables_dual();
    let mut w = worker_dual(64);
    for p in egress_packets() {
        out.push(with_mode(1, &p));
        out.push(with_mode(0, &tunnelled(&p)));
        // Over the IPv6 underlay the gateway serves IPv6 pods alone.
        if p[0] >> 4 == 6 {
            out.push(with_mode(3, &p));
        }
        // The reply to what left: addresses and ports swapped (the echo id stays).
        let Ok((_, sent)) = run(&mut w, &tables, 1, &tunnelled(&p)) else {
            continue;
        };
        let ip = &sent[14..];
        let mut reply = ip.to_vec();
        if ip[0] >> 4 == 6 {
            // Addresses at 8 and 24, ports after the 40-byte header (an echo keeps its id).
            reply[8..24].copy_from_slice(&ip[24..40]);
            reply[24..40].copy_from_slice(&ip[8..24]);
            if ip[6] != 58 {
                reply[40..42].copy_from_slice(&ip[42..44]);
                reply[42..44].copy_from_slice(&ip[40..42]);
            }
            out.push(with_mode(2, &reply));
            out.push(with_mode(4, &reply));
            out.push(with_mode(
                2,
                &icmpv6_error(SERVER_V6, EGRESS_V6, 1, 4, 0, ip),
            ));
            continue;
        }
        reply[12..16].copy_from_slice(&ip[16..20]);
        reply[16..20].copy_from_slice(&ip[12..16]);
        if ip[9] != 1 {
            reply[20..22].copy_from_slice(&ip[22..24]);
            reply[22..24].copy_from_slice(&ip[20..22]);
        }
        out.push(with_mode(2, &reply));
        out.push(with_mode(4, &reply));
        out.push(with_mode(
            2,
            &icmp_error(
                SERVER_IP,
                EGRESS_IP,
                icmp::Message::DstUnreachable,
                3,
                0,
                ip,
            ),
        ));
    }
    out
}

/// One record of each kind and family.
fn sync_records() -> Vec<gateway::sync::wire::Record> {
    use gateway::nat::{Entry, FlowKey, FlowKey6, InsideKey, SessionData, SessionData6};
    use gateway::sync::wire::{Record, Upsert};
    let v4 = FlowKey {
        src: POD3,
        dst: SERVER_IP,
        src_port: 40000,
        dst_port: 80,
        proto: 6,
    };
    let v6 = FlowKey6 {
        src: POD3_V6,
        dst: SERVER_V6,
        src_port: 40000,
        dst_port: 80,
        proto: 6,
    };
    let tunnel = gateway::nat::TunnelEndpoint {
        node_ip: NODE3_IP,
        vni: 5,
        ovn_ports: Some(OVN_PORTS),
        ..Default::default()
    };
    vec![
        Record::Upsert(Upsert {
            session: Entry::V4(SessionData {
                inside: v4,
                ext_ip: EGRESS_IP,
                ext_port: 1024,
                tunnel,
            }),
            tcp_flags: 3,
            age: 1,
        }),
        Record::Upsert(Upsert {
            session: Entry::V6(SessionData6 {
                inside: v6,
                ext_ip: EGRESS_V6,
                ext_port: 1025,
                tunnel,
            }),
            tcp_flags: 3,
            age: 1,
        }),
        // A session from a node on the IPv6 underlay (version 3's record).
        Record::Upsert(Upsert {
            session: Entry::V6(SessionData6 {
                inside: v6,
                ext_ip: EGRESS_V6,
                ext_port: 1026,
                tunnel: gateway::nat::TunnelEndpoint {
                    node_ip: 0,
                    node_ip6: NODE3_V6,
                    ..tunnel
                },
            }),
            tcp_flags: 3,
            age: 1,
        }),
        Record::Refresh {
            inside: InsideKey::V6(v6),
            age: 2,
        },
        Record::Delete {
            inside: InsideKey::V4(v4),
        },
        Record::Delete {
            inside: InsideKey::V6(v6),
        },
    ]
}

fn sync_seeds() -> Vec<Vec<u8>> {
    use gateway::sync::wire::{flags, Encoder, Header, Kind};
    let key = SyncKey::new(SYNC_KEY).expect("a long enough key");
    let mut out = Vec::new();
    for kind in [Kind::Records, Kind::Control] {
        let mut buf = vec![0u8; 1472];
        let header = Header {
            kind,
            sender: 2,
            epoch: 7,
            seq: 1,
            ack: 1,
            highest: 1,
            low_water: 0,
            flags: flags::ACKS,
            acked_epoch: 7,
        };
        let Some(mut enc) = Encoder::new(&mut buf, header) else {
            continue;
        };
        if kind == Kind::Records {
            for record in sync_records() {
                enc.push(&record);
            }
        }
        let bytes = enc.finish(&key).to_vec();
        // Unsigned (the MAC as it is) and to be signed by the target (odd first byte).
        out.push([&[0u8][..], &bytes].concat());
        out.push([&[1u8][..], &bytes].concat());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every seed and every input kept in `corpus/` and `regressions/` runs through its target
    /// without a panic: what the fuzzer found once stays fixed.
    #[test]
    fn every_seed_and_kept_input_runs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut ran = 0;
        for (name, target) in TARGETS {
            for seed in seeds(name) {
                target(&seed);
                ran += 1;
            }
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for e in entries.flatten() {
                    target(&std::fs::read(e.path()).expect("readable"));
                    ran += 1;
                }
            }
        }
        assert!(ran >= 6 * 3, "{ran} inputs");
    }

    /// The seeds reach past the first checks: the pipeline seeds are forwarded, the sync
    /// seeds decode, the BGP and BFD seeds parse.
    #[test]
    fn the_later_fragment_seeds_find_their_flows() {
        let tables = seed_tables_underlay6();
        let (mut w, [pod, reply]) = primed(&tables);
        let out = run(&mut w, &tables, 2, &tunnelled(&pod)).expect("the pod's");
        assert_eq!(out.0, gateway::pipeline::Iface::External);
        let back = run(&mut w, &tables, 2, &external_frame(&reply)).expect("the reply's");
        assert_eq!(back.0, gateway::pipeline::Iface::Underlay);
        assert_eq!(
            w.counters
                .fragments_translated
                .load(std::sync::atomic::Ordering::Relaxed),
            4
        );
    }

    #[test]
    fn seeds_are_valid_inputs() {
        let tables = seed_tables_underlay6();
        for s in seeds("pipeline") {
            // Later fragments need their first's worker (`the_later_fragment_seeds_...`).
            if s[0] == 1 && s[1] == 0x45 && u16::from_be_bytes([s[7], s[8]]) & 0x1fff != 0 {
                continue;
            }
            let mut w = worker_dual(64);
            let frame = match s[0] {
                1 => tunnelled(&s[1..]),
                3 => geneve6_frame(NODE3_V6, NODE3_MAC, 0xc001, &s[1..]),
                4 => {
                    // A forwarded reply finds the session its flow made here.
                    for f in egress_packets() {
                        assert!(run(&mut w, &tables, 1, &tunnelled(&f)).is_ok());
                    }
                    let fwd = gateway::pipeline::forward::FORWARD_VNI;
                    forwarded6_frame(&external_frame(&s[1..]), fwd)
                }
                _ => continue,
            };
            let r = run(&mut w, &tables, 1, &frame);
            // The echo replies keep the request's type (a pointer for the fuzzer, not an
            // answer): past every check of the forwarding tunnel all the same.
            let echo =
                s[0] == 4 && r.as_ref().err() == Some(&gateway::drop::DropReason::IcmpUnsupported);
            assert!(r.is_ok() || echo, "mode {}: {:?}", s[0], r.err());
        }
        let key = SyncKey::new(SYNC_KEY).unwrap();
        for s in seeds("sync") {
            assert!(gateway::sync::wire::decode(&s[1..], &key).is_ok());
        }
        for s in seeds("bgp") {
            assert!(Message::decode(
                &s,
                Codec {
                    four_octet_as: true
                }
            )
            .is_ok());
        }
        for s in seeds("bfd") {
            assert!(ControlPacket::parse(&s).is_ok());
        }
        for s in seeds("control") {
            assert!(control::proto::parse_request(&s[4..]).is_ok());
        }
        assert!(gateway::daemon::config::Config::parse(
            std::str::from_utf8(&seeds("config")[0]).unwrap()
        )
        .is_ok());
    }
}
