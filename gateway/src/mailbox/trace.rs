//! Packet trace and capture: AF_XDP takes our packets past tcpdump, so the dataplane records
//! them itself on request. The control thread arms a budget of packets; workers that see it
//! armed translate their batch one packet at a time (the same result as a batch, as the
//! pipeline tests hold) and record each packet before and after, with what happened to it.
//! Disarmed, the cost is one relaxed load per batch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::drop::DropReason;
use crate::pipeline::{Action, Iface, Tables};
use crate::wire::{ethernet, geneve, icmp, icmpv6, ipv4, ipv6, tcp, udp};

/// Bytes kept of each frame: headers and then some.
pub const SNAP_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Transmit { iface: Iface, frame: Vec<u8> },
    Drop(DropReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    pub queue: u32,
    /// Nanoseconds since the trace was armed.
    pub at_ns: u64,
    pub input: Vec<u8>,
    /// Full length of the input frame (`input` may be cut at `SNAP_LEN`).
    pub input_len: usize,
    pub outcome: Outcome,
    pub session_created: bool,
}

/// Shared by the workers (writers while armed) and the control thread.
#[derive(Debug)]
pub struct TraceBuffer {
    /// The arming's generation (high 32 bits) and the packets a worker may still claim
    /// (low 32 bits), in one word so that a claim names the arming it belongs to. Written
    /// only under `recorded`'s lock, so a record checks its claim against it there.
    budget: AtomicU64,
    recorded: Mutex<Recorded>,
}

/// What the current arming has recorded, and how many of its packets are not recorded yet: a
/// packet a worker has claimed but not finished is still to come, though the budget is spent.
#[derive(Debug)]
struct Recorded {
    armed_at: Instant,
    records: Vec<TraceRecord>,
    unrecorded: u32,
}

/// A worker's right to record one packet of one arming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    generation: u32,
}

const BUDGET_MASK: u64 = 0xffff_ffff;

impl Default for TraceBuffer {
    fn default() -> Self {
        TraceBuffer {
            budget: AtomicU64::new(0),
            recorded: Mutex::new(Recorded {
                armed_at: Instant::now(),
                records: Vec::new(),
                unrecorded: 0,
            }),
        }
    }
}

impl TraceBuffer {
    /// Arms the trace for the next `count` packets (any worker), dropping older records and
    /// any packet still claimed under an earlier arming (`record`). A count of 0 disarms.
    pub fn arm(&self, count: u32) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        *recorded = Recorded {
            armed_at: Instant::now(),
            records: Vec::new(),
            unrecorded: count,
        };
        let generation = (self.budget.load(Ordering::Relaxed) >> 32) as u32;
        self.budget.store(
            u64::from(generation.wrapping_add(1)) << 32 | u64::from(count),
            Ordering::Release,
        );
    }

    /// Whether a worker should trace its next batch (one load; the hot path's only cost).
    #[inline(always)]
    pub fn armed(&self) -> bool {
        self.budget.load(Ordering::Relaxed) & BUDGET_MASK > 0
    }

    /// Takes one packet from the budget; None when it ran out (another worker took it).
    pub fn claim(&self) -> Option<Claim> {
        self.budget
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |b| {
                (b & BUDGET_MASK > 0).then(|| b - 1)
            })
            .ok()
            .map(|b| Claim {
                generation: (b >> 32) as u32,
            })
    }

    /// Records a claimed packet, unless its arming has since ended (disarmed or re-armed:
    /// its packet belongs to no capture now).
    pub fn record(
        &self,
        claim: Claim,
        queue: u32,
        input: &[u8],
        action: Action,
        output: &[u8],
        session_created: bool,
    ) {
        let outcome = match action {
            Action::Transmit(out) => Outcome::Transmit {
                iface: out.iface,
                frame: output[..output.len().min(SNAP_LEN)].to_vec(),
            },
            Action::Drop(reason) => Outcome::Drop(reason),
        };
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if (self.budget.load(Ordering::Relaxed) >> 32) as u32 != claim.generation {
            return;
        }
        let at_ns = recorded.armed_at.elapsed().as_nanos() as u64;
        recorded.records.push(TraceRecord {
            queue,
            at_ns,
            input: input[..input.len().min(SNAP_LEN)].to_vec(),
            input_len: input.len(),
            outcome,
            session_created,
        });
        recorded.unrecorded = recorded.unrecorded.saturating_sub(1);
    }

    /// The records so far, and the packets still to come: not yet claimed, or claimed by a
    /// worker that has not recorded them yet (counting only the budget lost those).
    pub fn take(&self) -> (Vec<TraceRecord>, u32) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut recorded.records), recorded.unrecorded)
    }
}

/// A packet's path through the pipeline, in lines like VPP's trace: what arrived, the map
/// entry for its pod, the session, what left or why it was dropped. Either family, over either
/// underlay.
pub fn describe(r: &TraceRecord, tables: &Tables) -> Vec<String> {
    let mut lines = vec![format!("in    {}", summary(&r.input))];
    if let Some(pod) = geneve_inner(&r.input).and_then(|inner| Some(ip_of(inner)?.src)) {
        let egress: Option<IpAddr> = match pod {
            IpAddr::V4(v4) => tables
                .egress
                .egress_for(v4.into())
                .map(|e| Ipv4Addr::from(e).into()),
            IpAddr::V6(v6) => tables
                .ipv6
                .egress
                .egress_for(v6.into())
                .map(|e| Ipv6Addr::from(e).into()),
        };
        match egress {
            Some(e) => lines.push(format!("map   {pod} -> {e}")),
            None => lines.push(format!("map   {pod}: no entry")),
        }
    }
    match &r.outcome {
        Outcome::Transmit { iface, frame } => {
            if r.session_created {
                lines.push("nat   new session".into());
            } else {
                lines.push("nat   existing session".into());
            }
            lines.push(format!("out   {}: {}", iface.name(), summary(frame)));
        }
        Outcome::Drop(reason) => lines.push(format!("drop  {}", reason.name())),
    }
    lines
}

/// An IP packet as the trace prints it: its addresses, the hop count left, its protocol and
/// its upper layer (after IPv6's extension headers, where they can be walked).
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    proto: u8,
    upper: &'a [u8],
}

/// The IP packet after the Ethernet header of `frame`, of either family.
fn ip_of(frame: &[u8]) -> Option<Ip<'_>> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let offset = frame.len() - eth.payload().len();
    let payload = &frame[offset..];
    match eth.ethertype() {
        ethernet::EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(payload).ok()?;
            let upper = &payload[payload.len() - ip.payload().len()..];
            Some(Ip {
                src: Ipv4Addr::from(ip.src()).into(),
                dst: Ipv4Addr::from(ip.dst()).into(),
                ttl: ip.ttl(),
                proto: match ip.protocol() {
                    ipv4::Protocol::Tcp => 6,
                    ipv4::Protocol::Udp => 17,
                    ipv4::Protocol::Icmp => 1,
                    ipv4::Protocol::Unknown(p) => p,
                },
                upper,
            })
        }
        ethernet::EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(payload).ok()?;
            let (proto, skip) = match ip.upper_layer() {
                Ok(ipv6::UpperLayer::Protocol {
                    next_header,
                    offset,
                }) => (next_header, offset),
                _ => (ip.next_header(), 0),
            };
            let upper = &payload[payload.len() - ip.payload().len()..];
            Some(Ip {
                src: ip.src().into(),
                dst: ip.dst().into(),
                ttl: ip.hop_limit(),
                proto,
                upper: upper.get(skip..).unwrap_or_default(),
            })
        }
        _ => None,
    }
}

/// The inner frame of a Geneve frame (over either underlay), if it is one.
fn geneve_inner(frame: &[u8]) -> Option<&[u8]> {
    let ip = ip_of(frame)?;
    if ip.proto != 17 {
        return None;
    }
    let u = udp::Packet::new_checked(ip.upper).ok()?;
    if u.dst_port() != geneve::UDP_PORT {
        return None;
    }
    let g = geneve::Header::new_checked(u.payload()).ok()?;
    // The views borrow the frame; re-slice it at the same place.
    let offset = frame.len() - g.payload().len();
    Some(&frame[offset..])
}

/// One line for a frame: its outer IP packet and, for Geneve, the inner one.
pub fn summary(frame: &[u8]) -> String {
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return format!("{} bytes, not Ethernet", frame.len());
    };
    let Some(ip) = ip_of(frame) else {
        return format!("{} -> {} {:?}", eth.src(), eth.dst(), eth.ethertype());
    };
    let geneve = geneve_inner(frame).and_then(|inner| {
        let offset = frame.len() - inner.len();
        let u = udp::Packet::new_checked(ip.upper).ok()?;
        let g = geneve::Header::new_checked(u.payload()).ok()?;
        let ports = g
            .ovn_ports()
            .map_or(String::new(), |(i, e)| format!(" ovn {i}/{e}"));
        let inner_ip = ip_of(&frame[offset..])?;
        Some(format!(
            "geneve vni {:#x}{ports} [{}]",
            g.vni(),
            ip_line(&inner_ip)
        ))
    });
    match geneve {
        Some(g) => format!("{} -> {} {g}", ip.src, ip.dst),
        None => format!("{} (to {})", ip_line(&ip), eth.dst()),
    }
}

fn ip_line(ip: &Ip<'_>) -> String {
    let (src, dst) = (ip.src, ip.dst);
    let ttl = match src {
        IpAddr::V4(_) => format!("ttl {}", ip.ttl),
        IpAddr::V6(_) => format!("hop limit {}", ip.ttl),
    };
    // IPv6 addresses with a port are written in brackets.
    let at = |a: IpAddr, port: u16| match a {
        IpAddr::V4(_) => format!("{a}:{port}"),
        IpAddr::V6(_) => format!("[{a}]:{port}"),
    };
    match ip.proto {
        6 => match tcp::Packet::new_checked(ip.upper) {
            Ok(t) => format!(
                "tcp {} -> {} flags {:#04x} {ttl}",
                at(src, t.src_port()),
                at(dst, t.dst_port()),
                t.flags()
            ),
            Err(_) => format!("tcp {src} -> {dst} (truncated)"),
        },
        17 => match udp::Packet::new_checked(ip.upper) {
            Ok(u) => format!(
                "udp {} -> {} {ttl}",
                at(src, u.src_port()),
                at(dst, u.dst_port())
            ),
            Err(_) => format!("udp {src} -> {dst} (truncated)"),
        },
        1 => match icmp::Packet::new_checked(ip.upper) {
            Ok(i) => format!("icmp {src} -> {dst} {:?} {ttl}", i.msg_type()),
            Err(_) => format!("icmp {src} -> {dst} (truncated)"),
        },
        58 => match icmpv6::Packet::new_checked(ip.upper) {
            Ok(i) => format!("icmpv6 {src} -> {dst} {:?} {ttl}", i.msg_type()),
            Err(_) => format!("icmpv6 {src} -> {dst} (truncated)"),
        },
        p => format!("proto {p} {src} -> {dst}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    #[test]
    fn traces_a_new_flow_and_a_drop() {
        use testutil::*;
        let tables = seed_tables();
        let mut worker = worker(1000);
        let inner = ipv4_packet(
            POD3,
            SERVER_IP,
            64,
            true,
            L4::Udp {
                src_port: 40000,
                dst_port: 9999,
            },
            b"ping",
        );
        let frame = geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner);
        let buffer = TraceBuffer::default();
        buffer.arm(2);
        let first = buffer.claim().expect("armed");
        let second = buffer.claim().expect("two to claim");
        // Both claimed, neither recorded: the budget is spent but two packets are to come
        // (a capture that stopped here lost the packets its workers were translating).
        assert_eq!(buffer.take().1, 2);
        let (iface, out) = run(&mut worker, &tables, 1, &frame).expect("translated");
        let action = Action::Transmit(crate::pipeline::Output {
            iface,
            start: 0,
            len: out.len(),
        });
        buffer.record(first, 0, &frame, action, &out, true);
        let (records, left) = buffer.take();
        assert_eq!(left, 1);
        let lines = describe(&records[0], &tables);
        assert!(
            lines[0].starts_with("in    ") && lines[0].contains("geneve vni 0xff0003"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("map   10.133.0.3 -> 192.168.66.100"),
            "{lines:?}"
        );
        assert_eq!(lines[2], "nat   new session");
        assert!(
            lines[3].starts_with("out   external: udp 192.168.66.100:"),
            "{lines:?}"
        );

        let dropped = TraceRecord {
            outcome: Outcome::Drop(DropReason::NoEgressMapping),
            ..records[0].clone()
        };
        assert_eq!(
            describe(&dropped, &tables).last().unwrap(),
            "drop  no_egress_mapping"
        );
        assert!(
            buffer.claim().is_none() && !buffer.armed(),
            "the budget ran out"
        );
        buffer.record(second, 0, &frame, action, &out, false);
        let (last, left) = buffer.take();
        assert_eq!((last.len(), left), (1, 0), "all recorded");
        assert!(!last[0].session_created);

        // A packet claimed before a disarm or a re-arm is not the new capture's.
        buffer.arm(1);
        let stale = buffer.claim().expect("armed");
        buffer.arm(0); // disarmed
        assert!(!buffer.armed() && buffer.claim().is_none());
        buffer.record(stale, 0, &frame, action, &out, false);
        assert_eq!(buffer.take(), (vec![], 0));
        buffer.arm(1);
        let stale = buffer.claim().expect("armed");
        buffer.arm(1);
        buffer.record(stale, 0, &frame, action, &out, false);
        assert_eq!(
            buffer.take(),
            (vec![], 1),
            "the new arming still waits for its packet"
        );
    }

    #[test]
    fn traces_ipv6_over_the_ipv6_underlay() {
        use testutil::*;
        let tables = seed_tables_underlay6();
        let mut worker = worker_dual(1000);
        let inner = ipv6_packet(
            POD3_V6,
            SERVER_V6,
            64,
            L4::Tcp {
                src_port: 40000,
                dst_port: 443,
                flags: crate::wire::tcp::flags::SYN,
            },
            b"",
        );
        let frame = geneve6_frame(NODE3_V6, NODE3_MAC, 50000, &inner);
        let (iface, out) = run(&mut worker, &tables, 1, &frame).expect("translated");
        let record = TraceRecord {
            queue: 0,
            at_ns: 0,
            input_len: frame.len(),
            input: frame,
            outcome: Outcome::Transmit { iface, frame: out },
            session_created: true,
        };
        let lines = describe(&record, &tables);
        assert_eq!(
            lines[0],
            "in    fd00:99::25 -> fd00:99::23 geneve vni 0xff0003 ovn 2/4 [tcp [fd00:133::3]:40000 -> [2001:db8:55::d]:443 flags 0x02 hop limit 64]"
        );
        assert_eq!(lines[1], "map   fd00:133::3 -> fd00:66::100");
        assert!(
            lines[3].starts_with("out   external: tcp [fd00:66::100]:")
                && lines[3].ends_with(
                    "-> [2001:db8:55::d]:443 flags 0x02 hop limit 63 (to 02:ee:00:00:00:12)"
                ),
            "{lines:?}"
        );
    }
}
