//! The Prometheus text endpoint (`GET /metrics`, exposition format 0.0.4), off by default. Its
//! own thread reads what the workers, the session table, the speaker and the health gate
//! already share; rendering is a pure function of that snapshot.

use crate::daemon::sync_thread::{SyncSample, SyncSources};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bgp::speaker::{SpeakerStatus, StatusReader};
use bgp::wire::Family;

use crate::daemon::control_handler::{HealthView, WorkerInfo};
use crate::mailbox::pods::PodReport;
use crate::nat::SessionTable;

/// Everything one scrape reports.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub workers: Vec<WorkerSample>,
    /// (family, protocol, state) -> live sessions.
    pub sessions: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// Egress IP -> live sessions translated to it (port bindings in use).
    pub bindings: BTreeMap<IpAddr, u64>,
    pub max_sessions: u64,
    pub max_sessions_v6: u64,
    pub port_range_size: u64,
    pub bgp: Option<SpeakerStatus>,
    pub healthy: bool,
    pub announced: Vec<IpAddr>,
    /// The steering program's verdicts, per interface.
    pub steering: Vec<control::proto::SteeringCount>,
    /// Receive drops of the interfaces the dataplane reads.
    pub interfaces: Vec<control::proto::InterfaceDrops>,
    /// Session replication, when `[ha]` is set.
    pub sync: Option<SyncSample>,
    /// The pods with the most live sessions, and with the most new flows refused by the
    /// per-pod limits ([`TOP_PODS`] of each: a label per pod, so bounded).
    pub pods_by_sessions: Vec<PodReport>,
    pub pods_by_drops: Vec<PodReport>,
}

/// Pods reported per ranking.
pub const TOP_PODS: usize = 10;

#[derive(Debug, Default)]
pub struct WorkerSample {
    pub queue: u32,
    pub rx: u64,
    pub rx_batches: u64,
    pub rx_bytes: u64,
    pub tx_external: u64,
    pub tx_underlay: u64,
    pub tx_bytes: u64,
    pub busy_ns: u64,
    pub sessions_created: u64,
    pub next_hop_from_flow: u64,
    pub replies_forwarded: u64,
    pub fragments_translated: u64,
    pub replies_fragmented: u64,
    pub too_big_sent: u64,
    pub drops: Vec<(&'static str, u64)>,
    /// The kernel's counters of the worker's AF_XDP sockets.
    pub sockets: Vec<control::proto::SocketCount>,
}

/// The exposition text for one snapshot.
/// The `family` label of an address.
fn family_of(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() {
        "ipv6"
    } else {
        "ipv4"
    }
}

pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_queue = |f: &dyn Fn(&WorkerSample) -> u64| -> Vec<(String, u64)> {
        s.workers
            .iter()
            .map(|w| (format!("{{queue=\"{}\"}}", w.queue), f(w)))
            .collect()
    };
    family(
        "egressgw_rx_packets_total",
        "counter",
        "Frames received by the dataplane.",
        per_queue(&|w| w.rx),
    );
    family(
        "egressgw_rx_batches_total",
        "counter",
        "Non-empty receive batches (packets over batches: frames a wakeup finds).",
        per_queue(&|w| w.rx_batches),
    );
    family(
        "egressgw_rx_bytes_total",
        "counter",
        "Bytes received by the dataplane.",
        per_queue(&|w| w.rx_bytes),
    );
    let mut tx = Vec::new();
    for w in &s.workers {
        tx.push((
            format!("{{queue=\"{}\",direction=\"external\"}}", w.queue),
            w.tx_external,
        ));
        tx.push((
            format!("{{queue=\"{}\",direction=\"underlay\"}}", w.queue),
            w.tx_underlay,
        ));
    }
    family(
        "egressgw_tx_packets_total",
        "counter",
        "Frames sent: translated egress (external) and tunnelled replies (underlay).",
        tx,
    );
    family(
        "egressgw_tx_bytes_total",
        "counter",
        "Bytes sent by the dataplane.",
        per_queue(&|w| w.tx_bytes),
    );
    let mut drops = Vec::new();
    for w in &s.workers {
        for (reason, n) in &w.drops {
            drops.push((format!("{{queue=\"{}\",reason=\"{reason}\"}}", w.queue), *n));
        }
    }
    family(
        "egressgw_drops_total",
        "counter",
        "Frames dropped, by reason.",
        drops,
    );
    let mut kernel = Vec::new();
    for w in &s.workers {
        for sock in &w.sockets {
            for (counter, n) in &sock.counters {
                kernel.push((
                    format!(
                        "{{queue=\"{}\",interface=\"{}\",counter=\"{counter}\"}}",
                        w.queue, sock.interface
                    ),
                    *n,
                ));
            }
        }
    }
    family(
        "egressgw_af_xdp_socket_total",
        "counter",
        "The kernel's counters of each AF_XDP socket (XDP_STATISTICS): frames lost before the dataplane saw them.",
        kernel,
    );
    family(
        "egressgw_interface_rx_dropped_total",
        "counter",
        "Frames an interface dropped on receive before any program or socket had them.",
        s.interfaces
            .iter()
            .map(|i| (format!("{{interface=\"{}\"}}", i.interface), i.rx_dropped))
            .collect(),
    );
    family(
        "egressgw_steering_packets_total",
        "counter",
        "Frames the steering program sent to the dataplane or passed to the node, by verdict.",
        s.steering
            .iter()
            .map(|c| {
                (
                    format!(
                        "{{interface=\"{}\",verdict=\"{}\"}}",
                        c.interface, c.verdict
                    ),
                    c.packets,
                )
            })
            .collect(),
    );
    family(
        "egressgw_sessions_created_total",
        "counter",
        "NAT sessions created.",
        per_queue(&|w| w.sessions_created),
    );
    family(
        "egressgw_next_hop_from_flow_total",
        "counter",
        "Replies sent to the MAC their flow arrived from while the node's neighbour entry was missing.",
        per_queue(&|w| w.next_hop_from_flow),
    );
    family(
        "egressgw_replies_forwarded_total",
        "counter",
        "Replies with no session here sent to the gateway that owns their port's block.",
        per_queue(&|w| w.replies_forwarded),
    );
    family(
        "egressgw_fragments_translated_total",
        "counter",
        "IPv4 fragments translated, pods' and replies', first and later (a later fragment follows the flow its datagram's first named).",
        per_queue(&|w| w.fragments_translated),
    );
    family(
        "egressgw_replies_fragmented_total",
        "counter",
        "Replies too big for the underlay once wrapped, DF clear, cut into fragments that fit (the pod reassembles them).",
        per_queue(&|w| w.replies_fragmented),
    );
    family(
        "egressgw_icmp_too_big_sent_total",
        "counter",
        "Packets too big for their way out, answered to their sender with ICMP fragmentation needed or ICMPv6 packet too big (path MTU discovery): replies too big for the underlay once wrapped, and pods' packets too big for the external interface (sent back through their tunnel).",
        per_queue(&|w| w.too_big_sent),
    );
    family(
        "egressgw_sessions",
        "gauge",
        "Live NAT sessions by address family, protocol and state.",
        s.sessions
            .iter()
            .map(|((f, p, st), n)| {
                (
                    format!("{{family=\"{f}\",protocol=\"{p}\",state=\"{st}\"}}"),
                    *n,
                )
            })
            .collect(),
    );
    family(
        "egressgw_sessions_max",
        "gauge",
        "The session bound of each address family.",
        vec![
            ("{family=\"ipv4\"}".into(), s.max_sessions),
            ("{family=\"ipv6\"}".into(), s.max_sessions_v6),
        ],
    );
    family(
        "egressgw_nat_bindings",
        "gauge",
        "Live external (egress IP, port) bindings per egress IP.",
        s.bindings
            .iter()
            .map(|(ip, n)| {
                (
                    format!("{{family=\"{}\",egress_ip=\"{ip}\"}}", family_of(*ip)),
                    *n,
                )
            })
            .collect(),
    );
    family(
        "egressgw_nat_port_range_size",
        "gauge",
        "Ports this node may bind per egress IP and remote endpoint.",
        vec![(String::new(), s.port_range_size)],
    );
    family(
        "egressgw_dataplane_healthy",
        "gauge",
        "1 while every worker makes progress.",
        vec![(String::new(), u64::from(s.healthy))],
    );
    family(
        "egressgw_egress_ip_announced",
        "gauge",
        "Egress IPs announced over BGP (1 each).",
        s.announced
            .iter()
            .map(|ip| {
                (
                    format!("{{family=\"{}\",egress_ip=\"{ip}\"}}", family_of(*ip)),
                    1,
                )
            })
            .collect(),
    );
    if let Some(bgp) = &s.bgp {
        let up = bgp
            .neighbors
            .iter()
            .map(|n| {
                let established = n.state == bgp::fsm::State::Established;
                (
                    format!(
                        "{{neighbor=\"{}\",state=\"{}\"}}",
                        n.address,
                        n.state.name()
                    ),
                    u64::from(established),
                )
            })
            .collect();
        family(
            "egressgw_bgp_session_up",
            "gauge",
            "1 when the BGP session is established (state label: the FSM state).",
            up,
        );
        // Per neighbour and address family: each family the session carries, and any
        // other that still holds routes.
        let per_family = |count: &dyn Fn(&bgp::speaker::NeighborStatus, Family) -> usize| {
            bgp.neighbors
                .iter()
                .flat_map(|n| {
                    Family::ALL
                        .into_iter()
                        .map(move |f| (n, f, count(n, f)))
                        .filter(|(n, f, c)| n.families.contains(f) || *c > 0)
                        .map(|(n, f, c)| {
                            (
                                format!("{{neighbor=\"{}\",family=\"{f}\"}}", n.address),
                                c as u64,
                            )
                        })
                })
                .collect()
        };
        family(
            "egressgw_bgp_routes_accepted",
            "gauge",
            "Routes received that passed the import filter, by address family.",
            per_family(&|n, f| n.accepted.iter().filter(|r| r.prefix.family() == f).count()),
        );
        family(
            "egressgw_bgp_routes_advertised",
            "gauge",
            "Routes announced to the neighbour (egress IPs as /32s and /128s), by address family.",
            per_family(&|n, f| n.advertised.iter().filter(|p| p.family() == f).count()),
        );
        family(
            "egressgw_bgp_routes_rejected_total",
            "counter",
            "Routes received that the import filter rejected.",
            bgp.neighbors
                .iter()
                .map(|n| (format!("{{neighbor=\"{}\"}}", n.address), n.rejected))
                .collect(),
        );
        let bfd = bgp
            .neighbors
            .iter()
            .filter_map(|n| {
                let (state, _) = n.bfd.as_ref()?;
                Some((
                    format!("{{neighbor=\"{}\",state=\"{state}\"}}", n.address),
                    u64::from(state == "Up"),
                ))
            })
            .collect();
        family(
            "egressgw_bfd_session_up",
            "gauge",
            "1 when the BFD session is up.",
            bfd,
        );
    }
    if let Some(sync) = &s.sync {
        family(
            "egressgw_sync_in_sync",
            "gauge",
            "1 when this node holds every live peer's sessions (the announcement waits for it).",
            vec![(String::new(), u64::from(sync.view.in_sync))],
        );
        let per_peer = |f: &dyn Fn(&crate::daemon::sync_thread::PeerView) -> u64| {
            sync.view
                .peers
                .iter()
                .map(|p| (format!("{{peer=\"{}\"}}", p.id), f(p)))
                .collect::<Vec<_>>()
        };
        family(
            "egressgw_sync_peer_alive",
            "gauge",
            "1 while the peer is heard (hellos every 100 ms, dead after 300 ms).",
            per_peer(&|p| u64::from(p.alive)),
        );
        family(
            "egressgw_port_blocks_owned",
            "gauge",
            "Port blocks each member of the gateway set owns, as this node sees it (this node is member=\"self\").",
            std::iter::once(("{member=\"self\"}".to_owned(), sync.view.blocks as u64))
                .chain(per_peer(&|p| p.blocks as u64).into_iter().map(|(l, n)| {
                    (l.replace("peer=", "member="), n)
                }))
                .collect(),
        );
        family(
            "egressgw_ha_drained",
            "gauge",
            "1 while the member is drained (egressctl drain, or the watcher): its port blocks are the serving members' (this node is member=\"self\").",
            std::iter::once(("{member=\"self\"}".to_owned(), u64::from(sync.view.draining)))
                .chain(per_peer(&|p| u64::from(p.draining)).into_iter().map(|(l, n)| {
                    (l.replace("peer=", "member="), n)
                }))
                .collect(),
        );
        family(
            "egressgw_sync_peer_outstanding_messages",
            "gauge",
            "Sync messages to the peer not yet acknowledged.",
            per_peer(&|p| p.outstanding as u64),
        );
        for (suffix, label, help) in [
            ("messages", "direction", "Sync datagrams."),
            (
                "records",
                "kind",
                "Session records sent, applied, resent and bulk-sent.",
            ),
            (
                "replicas",
                "outcome",
                "What applying the peers' records did.",
            ),
            ("drops", "reason", "Sync datagrams dropped, by reason."),
        ] {
            family(
                &format!("egressgw_sync_{suffix}_total"),
                "counter",
                help,
                sync.counts
                    .iter()
                    .filter(|(f, _, _)| *f == suffix)
                    .map(|(_, v, n)| (format!("{{{label}=\"{v}\"}}"), *n))
                    .collect(),
            );
        }
        family(
            "egressgw_sync_queue_lost_total",
            "counter",
            "Workers' session changes lost to a full sync queue.",
            vec![(String::new(), sync.queue_lost)],
        );
    }
    family(
        "egressgw_pod_sessions",
        "gauge",
        "Live sessions of the pods with the most (the top ten).",
        s.pods_by_sessions
            .iter()
            .map(|p| (format!("{{pod=\"{}\"}}", p.pod), p.sessions))
            .collect(),
    );
    let mut refused = Vec::new();
    for p in &s.pods_by_drops {
        for (reason, n) in crate::daemon::control_handler::pod_drops(p) {
            let pod = p.pod;
            refused.push((format!("{{pod=\"{pod}\",reason=\"{reason}\"}}"), n));
        }
    }
    family(
        "egressgw_pod_drops_total",
        "counter",
        "New flows refused by the per-pod limits, of the pods with the most (the top ten).",
        refused,
    );
    // Busy time is kept in nanoseconds and reported in seconds, as the convention is.
    let _ = writeln!(
        out,
        "# HELP egressgw_busy_seconds_total Time workers spent on non-empty batches.\n\
         # TYPE egressgw_busy_seconds_total counter"
    );
    for w in &s.workers {
        let secs = w.busy_ns as f64 / 1e9;
        let _ = writeln!(
            out,
            "egressgw_busy_seconds_total{{queue=\"{}\"}} {secs}",
            w.queue
        );
    }
    out
}

/// What the metrics thread reads from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub workers: Vec<WorkerInfo>,
    pub sessions: Arc<SessionTable>,
    pub max_sessions: u64,
    pub port_range_size: u64,
    pub bgp: Option<StatusReader>,
    pub health: Arc<Mutex<HealthView>>,
    pub steering: crate::xdp::steer::VerdictReader,
    pub sync: Option<SyncSources>,
}

impl Sources {
    pub fn snapshot(&self) -> Snapshot {
        use std::sync::atomic::Ordering::Relaxed;
        let workers = self
            .workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                WorkerSample {
                    queue: w.queue,
                    rx: c.rx.load(Relaxed),
                    rx_batches: c.rx_batches.load(Relaxed),
                    rx_bytes: c.rx_bytes.load(Relaxed),
                    tx_external: c.tx_external.load(Relaxed),
                    tx_underlay: c.tx_underlay.load(Relaxed),
                    tx_bytes: c.tx_bytes.load(Relaxed),
                    busy_ns: c.busy_ns.load(Relaxed),
                    sessions_created: c.sessions_created.load(Relaxed),
                    next_hop_from_flow: c.next_hop_from_flow.load(Relaxed),
                    replies_forwarded: c.replies_forwarded.load(Relaxed),
                    fragments_translated: c.fragments_translated.load(Relaxed),
                    replies_fragmented: c.replies_fragmented.load(Relaxed),
                    too_big_sent: c.icmp_frag_needed_sent.load(Relaxed),
                    drops: c.nonzero_drops().map(|(r, n)| (r.name(), n)).collect(),
                    sockets: crate::daemon::control_handler::socket_counts(&w.sockets),
                }
            })
            .collect();
        let mut sessions = BTreeMap::new();
        let mut bindings = BTreeMap::new();
        for (entry, state) in self.sessions.live_entries() {
            let (p, st) = crate::nat::tcp::describe(entry.proto(), state.flags);
            let ip = entry.ext_ip();
            *sessions.entry((family_of(ip), p, st)).or_insert(0) += 1;
            *bindings.entry(ip).or_insert(0) += 1;
        }
        let boards: Vec<_> = self.workers.iter().map(|w| &*w.pods).collect();
        let (pods_by_sessions, pods_by_drops) = crate::mailbox::pods::top(&boards, TOP_PODS);
        let health = self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Snapshot {
            workers,
            sessions,
            bindings,
            max_sessions: self.max_sessions,
            max_sessions_v6: u64::from(self.sessions.config().max_sessions_v6),
            port_range_size: self.port_range_size,
            bgp: self.bgp.as_ref().map(StatusReader::get),
            healthy: health.dataplane_ok,
            announced: health.announced,
            steering: self.steering.read(),
            interfaces: crate::daemon::control_handler::interface_drops(&self.workers),
            sync: self
                .sync
                .as_ref()
                .map(|x| SyncSample::read(&x.counters, &x.view, &x.queues)),
            pods_by_sessions,
            pods_by_drops,
        }
    }
}

/// The endpoint's thread; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    pub fn start(addr: SocketAddr, sources: Sources) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("metrics.listen {addr}: {e}")))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = serve(stream, &sources);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request, one response, then close (HTTP/1.0 style; scrapers cope).
fn serve(mut stream: TcpStream, sources: &Sources) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (status, body, kind) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            render(&sources.snapshot()),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (Some("GET"), _) => ("404 Not Found", "try /metrics\n".to_owned(), "text/plain"),
        _ => (
            "405 Method Not Allowed",
            "GET only\n".to_owned(),
            "text/plain",
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn exposition_format() {
        let snapshot = Snapshot {
            workers: vec![WorkerSample {
                queue: 0,
                rx: 10,
                rx_batches: 3,
                too_big_sent: 4,
                busy_ns: 1_500_000_000,
                drops: vec![("no_egress_mapping", 2)],
                sockets: vec![control::proto::SocketCount {
                    interface: "br-ex".into(),
                    counters: vec![("rx_ring_full".into(), 198)],
                }],
                ..WorkerSample::default()
            }],
            sessions: [
                (("ipv4", "tcp", "established"), 3),
                (("ipv6", "udp", "active"), 2),
            ]
            .into_iter()
            .collect(),
            bindings: [
                (IpAddr::V4(Ipv4Addr::new(192, 168, 66, 100)), 3),
                ("2001:db8:66::100".parse().unwrap(), 2),
            ]
            .into_iter()
            .collect(),
            max_sessions: 100,
            max_sessions_v6: 50,
            port_range_size: 64512,
            healthy: true,
            announced: vec![
                IpAddr::V4(Ipv4Addr::new(192, 168, 66, 100)),
                "2001:db8:66::100".parse().unwrap(),
            ],
            bgp: Some(SpeakerStatus {
                neighbors: vec![bgp::speaker::NeighborStatus {
                    address: "fd00:99::12".parse().unwrap(),
                    peer_as: 64512,
                    state: bgp::fsm::State::Established,
                    families: vec![Family::Ipv6],
                    established_for: None,
                    last_down: None,
                    flaps: 0,
                    accepted: vec![bgp::speaker::ReceivedRoute {
                        prefix: "fd00:55::/64".parse().unwrap(),
                        next_hop: "fd00:99::12".parse().unwrap(),
                    }],
                    rejected: 1,
                    advertised: vec![],
                    bfd: None,
                }],
                announced: vec![],
            }),
            steering: vec![control::proto::SteeringCount {
                interface: "br-ex".into(),
                verdict: "geneve_passed".into(),
                packets: 7,
            }],
            interfaces: vec![control::proto::InterfaceDrops {
                interface: "br-ex".into(),
                rx_dropped: 3,
            }],
            sync: Some(SyncSample {
                view: crate::daemon::sync_thread::SyncView {
                    node_id: 1,
                    epoch: 1,
                    in_sync: true,
                    peers: vec![crate::daemon::sync_thread::PeerView {
                        id: 2,
                        address: "192.168.99.24:4790".parse().unwrap(),
                        alive: true,
                        synced_from: true,
                        bulk_to: false,
                        outstanding: 4,
                        oldest_unacked_us: Some(300),
                        heard_ms_ago: Some(20),
                        blocks: 500,
                        draining: true,
                    }],
                    blocks: 508,
                    blocks_epoch: 3,
                    draining: false,
                },
                counts: vec![("drops", "sync_bad_mac", 5), ("records", "sent", 9)],
                queue_lost: 0,
            }),
            pods_by_sessions: vec![PodReport {
                pod: "fd00:10:128:3::3".parse().unwrap(),
                sessions: 42,
                drops: [0; 3],
            }],
            pods_by_drops: vec![PodReport {
                pod: IpAddr::V4(Ipv4Addr::new(10, 133, 0, 9)),
                sessions: 7,
                drops: [0, 11, 0],
            }],
        };
        let text = render(&snapshot);
        for line in [
            "# TYPE egressgw_rx_packets_total counter",
            "egressgw_rx_packets_total{queue=\"0\"} 10",
            "egressgw_rx_batches_total{queue=\"0\"} 3",
            "egressgw_icmp_too_big_sent_total{queue=\"0\"} 4",
            "egressgw_pod_sessions{pod=\"fd00:10:128:3::3\"} 42",
            "egressgw_pod_drops_total{pod=\"10.133.0.9\",reason=\"pod_rate_limit\"} 11",
            "egressgw_drops_total{queue=\"0\",reason=\"no_egress_mapping\"} 2",
            "egressgw_sessions{family=\"ipv4\",protocol=\"tcp\",state=\"established\"} 3",
            "egressgw_sessions{family=\"ipv6\",protocol=\"udp\",state=\"active\"} 2",
            "egressgw_sessions_max{family=\"ipv4\"} 100",
            "egressgw_sessions_max{family=\"ipv6\"} 50",
            "egressgw_nat_bindings{family=\"ipv4\",egress_ip=\"192.168.66.100\"} 3",
            "egressgw_nat_bindings{family=\"ipv6\",egress_ip=\"2001:db8:66::100\"} 2",
            "egressgw_busy_seconds_total{queue=\"0\"} 1.5",
            "egressgw_dataplane_healthy 1",
            "egressgw_egress_ip_announced{family=\"ipv4\",egress_ip=\"192.168.66.100\"} 1",
            "egressgw_egress_ip_announced{family=\"ipv6\",egress_ip=\"2001:db8:66::100\"} 1",
            "egressgw_steering_packets_total{interface=\"br-ex\",verdict=\"geneve_passed\"} 7",
            "egressgw_af_xdp_socket_total{queue=\"0\",interface=\"br-ex\",counter=\"rx_ring_full\"} 198",
            "egressgw_interface_rx_dropped_total{interface=\"br-ex\"} 3",
            "egressgw_sync_in_sync 1",
            "egressgw_sync_peer_alive{peer=\"2\"} 1",
            "egressgw_port_blocks_owned{member=\"self\"} 508",
            "egressgw_port_blocks_owned{member=\"2\"} 500",
            "egressgw_ha_drained{member=\"self\"} 0",
            "egressgw_ha_drained{member=\"2\"} 1",
            "egressgw_sync_peer_outstanding_messages{peer=\"2\"} 4",
            "egressgw_sync_drops_total{reason=\"sync_bad_mac\"} 5",
            "egressgw_sync_records_total{kind=\"sent\"} 9",
            "egressgw_bgp_routes_accepted{neighbor=\"fd00:99::12\",family=\"ipv6-unicast\"} 1",
            "egressgw_bgp_routes_advertised{neighbor=\"fd00:99::12\",family=\"ipv6-unicast\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is NAME{labels} VALUE or NAME VALUE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = l.rsplit_once(' ').unwrap();
            assert!(name.starts_with("egressgw_"), "{l}");
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
