//! The daemon's answers to control requests: edits of the pod map, the served egress IPs and
//! the cluster's networks go through `MapState` (checked whole, its maps' capacities included,
//! then applied); reads come from the workers' counters, the session table, the BGP speaker,
//! the steering program and the health gate. The edits of one turn are published to the
//! workers and written to the steering program's maps together (`commit`), before their
//! answers are sent: one pass over the state a turn, not one an edit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bgp::speaker::Speaker;
use control::proto::{
    to_hex, BgpNeighbor, BgpRoute, CapturedPacket, ControlError, ErrorKind, HaDrainStatus, HaPeer,
    HaStatus, Health, InterfaceDrops, PodUsage, PodsStatus, Request, Response, SessionFilter,
    SessionInfo, SocketCount, Stats, WorkerStats,
};
use control::server::{Handler, PeerCred};
use tracing::{info, warn};

use crate::daemon::drain::Drain;
use crate::daemon::map_state::MapState;
use crate::drop::Counters;
use crate::mailbox::flush::{FlushFilter, FlushMailbox};
use crate::mailbox::pods::{PodBoard, PodReport};
use crate::mailbox::published::Published;
use crate::mailbox::trace::{describe, Outcome, TraceBuffer};
use crate::nat::session::{Entry, State};
use crate::nat::SessionTable;
use crate::pipeline::Tables;
use crate::xdp::socket_stats::{interface_rx_dropped, StatsHandle};
use crate::xdp::steer::SteeringSet;

/// What the control plane knows about one dataplane worker.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub queue: u32,
    pub core: usize,
    pub af_xdp_mode: &'static str,
    pub counters: Arc<Counters>,
    pub flush: Arc<FlushMailbox>,
    /// The worker's per-pod accounts, copied once a second.
    pub pods: Arc<PodBoard>,
    /// The worker's AF_XDP sockets (the uplink's, and the external one's in two-armed mode),
    /// whose counters say what the kernel dropped before the worker saw it.
    pub sockets: Arc<Vec<(String, StatsHandle)>>,
}

/// The health gate's latest verdict.
#[derive(Debug, Clone, Default)]
pub struct HealthView {
    pub dataplane_ok: bool,
    pub stalled_queues: Vec<u32>,
    pub announced: Vec<IpAddr>,
}

#[derive(Debug)]
pub struct DaemonControl<'a> {
    pub state: &'a mut MapState,
    pub steering: &'a mut SteeringSet,
    pub speaker: Option<&'a Speaker>,
    pub workers: &'a [WorkerInfo],
    pub health: &'a HealthView,
    pub sessions: &'a SessionTable,
    pub trace: &'a TraceBuffer,
    pub tables: &'a Published<Tables>,
    /// Seconds since this instant are the workers' clock (session last-seen times).
    pub epoch: std::time::Instant,
    pub max_sessions: u64,
    /// The SNAT port range replies come back to (what the steering program redirects).
    pub port_range: std::ops::RangeInclusive<u16>,
    /// Set when the map or the served egress IPs changed; `commit` publishes them.
    pub changed: bool,
    /// The sync thread's state, when the node is in a gateway set.
    pub sync: Option<&'a crate::daemon::sync_thread::SyncSources>,
    /// This member's drain, when the node is in a gateway set.
    pub drain: Option<&'a mut Drain>,
}

impl Handler for DaemonControl<'_> {
    fn commit(&mut self) {
        if std::mem::take(&mut self.changed) {
            self.publish();
            // The state was checked against the maps' sizes, so the kernel refuses an update
            // only when something else is wrong; the steering keeps what it wrote and the next
            // change writes the rest.
            let want = self.state.steering_state(self.port_range.clone());
            if let Err(e) = self.steering.sync(&want) {
                warn!(error = %e, "steering maps not updated");
            }
        }
    }

    fn handle(&mut self, request: Request, peer: PeerCred) -> Result<Response, ControlError> {
        if request.mutates() {
            info!(uid = peer.uid, pid = peer.pid, ?request, "control request");
        }
        match request {
            Request::MapSet { entry } => self.edit(|s| s.set(entry)),
            Request::MapDelete { pod } => self.edit(|s| s.delete(pod)),
            Request::MapReplace { entries } => self.edit(|s| s.replace(entries)),
            Request::MapUpdate { set, delete } => self.edit(|s| s.update(set, delete)),
            Request::MapList => Ok(Response::Map {
                entries: self.state.entries(),
            }),
            Request::EgressAdd { ip, service_ports } => {
                self.edit(|s| s.serve(ip, service_ports).map(|_| ()))
            }
            Request::EgressRemove { ip } => self.edit(|s| s.unserve(ip)),
            Request::EgressList => Ok(Response::EgressIps {
                egress: self.state.egress_ips(),
            }),
            Request::ClusterSet { networks } => self.edit(|s| s.set_learned_networks(networks)),
            Request::ClusterList => {
                let (configured, learned) = self.state.cluster_networks();
                Ok(Response::Cluster {
                    configured,
                    learned,
                })
            }
            Request::Stats => Ok(Response::Stats(self.stats())),
            Request::Sessions { filter, limit } => Ok(self.sessions(&filter, limit)),
            Request::SessionFlush { filter } => Ok(self.flush(&filter)),
            Request::BgpNeighbors => Ok(Response::BgpNeighbors {
                neighbors: self.neighbors(),
            }),
            Request::BgpRoutes => Ok(Response::BgpRoutes {
                routes: self.routes(),
            }),
            Request::Health => Ok(Response::Health(self.health())),
            Request::Ha => self.ha(),
            Request::HaDrain { drain } => {
                if let Some(d) = self.drain.as_deref_mut() {
                    d.request(drain, std::time::Instant::now());
                }
                self.ha()
            }
            Request::CaptureStart { count } => {
                // A count of 0 disarms.
                self.trace.arm(count);
                Ok(Response::Done)
            }
            Request::Pods { top } => Ok(Response::Pods(self.pods(top.unwrap_or(10)))),
            Request::CaptureFetch => {
                let (records, remaining) = self.trace.take();
                let tables = self.tables.load();
                let packets = records
                    .iter()
                    .map(|r| {
                        let (output_hex, output_iface, drop) = match &r.outcome {
                            Outcome::Transmit { iface, frame } => {
                                (Some(to_hex(frame)), Some(iface.name().to_owned()), None)
                            }
                            Outcome::Drop(reason) => (None, None, Some(reason.name().to_owned())),
                        };
                        CapturedPacket {
                            queue: r.queue,
                            at_ns: r.at_ns,
                            input_hex: to_hex(&r.input),
                            input_len: r.input_len as u32,
                            output_hex,
                            output_iface,
                            drop,
                            path: describe(r, &tables),
                        }
                    })
                    .collect();
                Ok(Response::Captured { packets, remaining })
            }
        }
    }
}

/// The sessions a request's filter takes, as the workers' flushes judge them (ICMP takes
/// ICMPv6 too; an address matches its own family).
fn flush_filter(filter: &SessionFilter) -> FlushFilter {
    FlushFilter {
        pod: filter.pod,
        egress_ip: filter.egress_ip,
        protocol: filter.protocol.map(|p| p.number()),
    }
}

/// One session as `egressctl sessions` shows it; `now` is the workers' clock.
fn session_info(entry: &Entry, state: State, now: u32) -> SessionInfo {
    let v4 = |a: u32| IpAddr::V4(Ipv4Addr::from(a));
    let v6 = |a: u128| IpAddr::V6(Ipv6Addr::from(a));
    let (pod, remote, ports, node) = match entry {
        Entry::V4(d) => (
            v4(d.inside.src),
            v4(d.inside.dst),
            (d.inside.src_port, d.ext_port, d.outside().src_port),
            v4(d.tunnel.node_ip),
        ),
        Entry::V6(d) => (
            v6(d.inside.src),
            v6(d.inside.dst),
            (d.inside.src_port, d.ext_port, d.outside().src_port),
            d.tunnel.node(),
        ),
    };
    let (protocol, tcp_state) = crate::nat::tcp::describe(entry.proto(), state.flags);
    SessionInfo {
        protocol: protocol.into(),
        pod,
        pod_port: ports.0,
        egress_ip: entry.ext_ip(),
        egress_port: ports.1,
        remote,
        remote_port: ports.2,
        state: tcp_state.into(),
        idle_secs: now.saturating_sub(state.last_seen),
        node,
    }
}

/// A pod's refused new flows by reason name; only non-zero ones.
pub fn pod_drops(r: &PodReport) -> Vec<(String, u64)> {
    crate::nat::fair::LIMIT_REASONS
        .iter()
        .zip(r.drops)
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| (reason.name().to_owned(), n))
        .collect()
}

/// Each socket's kernel-side counters; a socket that cannot be read is left out.
pub fn socket_counts(sockets: &[(String, StatsHandle)]) -> Vec<SocketCount> {
    sockets
        .iter()
        .filter_map(|(interface, h)| {
            let s = h.read().ok()?;
            Some(SocketCount {
                interface: interface.clone(),
                counters: s
                    .named()
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), *v))
                    .collect(),
            })
        })
        .collect()
}

/// The receive drops of every interface the workers' sockets are on.
pub fn interface_drops(workers: &[WorkerInfo]) -> Vec<InterfaceDrops> {
    let mut names: Vec<&str> = workers
        .iter()
        .flat_map(|w| w.sockets.iter().map(|(i, _)| i.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|i| {
            Some(InterfaceDrops {
                interface: i.to_owned(),
                rx_dropped: interface_rx_dropped(i).ok()?,
            })
        })
        .collect()
}

impl DaemonControl<'_> {
    fn pods(&self, top: u32) -> PodsStatus {
        let boards: Vec<&PodBoard> = self.workers.iter().map(|w| &*w.pods).collect();
        let (by_sessions, by_drops) = crate::mailbox::pods::top(&boards, top as usize);
        let tables = self.tables.load();
        let usage = |r: &PodReport| PodUsage {
            pod: r.pod,
            egress_ip: match r.pod {
                IpAddr::V4(p) => tables
                    .egress
                    .mapped_to(u32::from(p))
                    .map(|e| Ipv4Addr::from(e).into()),
                IpAddr::V6(p) => tables
                    .ipv6
                    .egress
                    .mapped_to(u128::from(p))
                    .map(|e| Ipv6Addr::from(e).into()),
            },
            sessions: r.sessions,
            drops: pod_drops(r),
        };
        let l = self.sessions.config().fair;
        PodsStatus {
            limits: vec![
                ("pod_max_sessions".into(), u64::from(l.pod_sessions)),
                (
                    "pod_new_flows_per_second".into(),
                    u64::from(l.pod_new_flows_per_s),
                ),
                ("pod_new_flow_burst".into(), u64::from(l.pod_new_flow_burst)),
                (
                    "pod_destination_share".into(),
                    u64::from(l.pod_destination_share),
                ),
            ],
            by_sessions: by_sessions.iter().map(usage).collect(),
            by_drops: by_drops.iter().map(usage).collect(),
        }
    }

    /// The new maps reach the workers in one publication (old maps or new, no mix).
    fn publish(&mut self) {
        let mut t = (*self.tables.load()).clone();
        t.egress = self.state.egress_map();
        t.ipv6.egress = self.state.egress_map6();
        self.tables.publish(t);
    }

    fn edit(
        &mut self,
        f: impl FnOnce(&mut MapState) -> Result<(), ControlError>,
    ) -> Result<Response, ControlError> {
        f(self.state)?;
        self.changed = true;
        Ok(Response::Done)
    }

    fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let (mut sessions, mut sessions_v6) = (0, 0);
        for (e, _) in self.sessions.live_entries() {
            sessions += 1;
            sessions_v6 += u64::from(matches!(e, Entry::V6(_)));
        }
        Stats {
            workers: self
                .workers
                .iter()
                .map(|w| {
                    let c = &w.counters;
                    WorkerStats {
                        queue: w.queue,
                        core: w.core,
                        af_xdp_mode: w.af_xdp_mode.to_owned(),
                        rx_packets: c.rx.load(Relaxed),
                        tx_packets: c.tx_external.load(Relaxed) + c.tx_underlay.load(Relaxed),
                        sessions_created: c.sessions_created.load(Relaxed),
                        slots_in_use: c.slots_in_use.load(Relaxed),
                        busy_ns: c.busy_ns.load(Relaxed),
                        drops: c
                            .nonzero_drops()
                            .map(|(r, n)| (r.name().to_owned(), n))
                            .collect(),
                        sockets: socket_counts(&w.sockets),
                    }
                })
                .collect(),
            sessions,
            max_sessions: self.max_sessions,
            sessions_v6,
            max_sessions_v6: u64::from(self.sessions.config().max_sessions_v6),
            steering: self.steering.verdict_reader().read(),
            interfaces: interface_drops(self.workers),
            indexed: {
                let (inside, outside) = self.sessions.index_entries();
                [inside as u64, outside as u64]
            },
        }
    }

    fn sessions(&self, filter: &SessionFilter, limit: Option<u32>) -> Response {
        let now = self.epoch.elapsed().as_secs() as u32;
        let filter = flush_filter(filter);
        let mut matched = 0u64;
        let mut sessions = Vec::new();
        let all = self.sessions.live_entries();
        for (entry, state) in all.filter(|(e, _)| filter.matches(e)) {
            matched += 1;
            if limit.is_none_or(|l| (sessions.len() as u64) < u64::from(l)) {
                sessions.push(session_info(&entry, state, now));
            }
        }
        Response::Sessions { sessions, matched }
    }

    /// Posts the flush to every worker and waits (half a second at most) for them to do it on
    /// their next turn; a stalled worker is reported, not waited for.
    fn flush(&self, filter: &SessionFilter) -> Response {
        let f = flush_filter(filter);
        let posted: Vec<u64> = self.workers.iter().map(|w| w.flush.post(f)).collect();
        let end = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            let results: Vec<Option<u64>> = self
                .workers
                .iter()
                .zip(&posted)
                .map(|(w, n)| w.flush.result(*n))
                .collect();
            let pending = results.iter().filter(|r| r.is_none()).count() as u32;
            if pending == 0 || std::time::Instant::now() >= end {
                let sessions = results.iter().flatten().sum();
                info!(?filter, sessions, pending, "sessions flushed");
                return Response::Flushed {
                    sessions,
                    workers_pending: pending,
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn neighbors(&self) -> Vec<BgpNeighbor> {
        let Some(speaker) = self.speaker else {
            return Vec::new();
        };
        speaker
            .status()
            .neighbors
            .into_iter()
            .map(|n| BgpNeighbor {
                address: n.address,
                asn: n.peer_as,
                state: n.state.name().to_owned(),
                families: n.families.iter().map(|f| f.name().to_owned()).collect(),
                established_secs: n.established_for.map(|d| d.as_secs()),
                last_down: n.last_down,
                flaps: n.flaps,
                accepted: n.accepted.len() as u64,
                rejected: n.rejected,
                advertised: n.advertised.iter().map(ToString::to_string).collect(),
                bfd: n.bfd.map(|(state, _)| state),
            })
            .collect()
    }

    fn routes(&self) -> Vec<BgpRoute> {
        let Some(speaker) = self.speaker else {
            return Vec::new();
        };
        speaker
            .status()
            .neighbors
            .into_iter()
            .flat_map(|n| {
                n.accepted.into_iter().map(move |r| BgpRoute {
                    prefix: r.prefix.to_string(),
                    next_hop: r.next_hop,
                    from: n.address,
                })
            })
            .collect()
    }

    fn ha(&self) -> Result<Response, ControlError> {
        let Some(sync) = self.sync else {
            return Err(ControlError::new(
                ErrorKind::Rejected,
                "this node is in no gateway set ([ha] is not configured)",
            ));
        };
        let s =
            crate::daemon::sync_thread::SyncSample::read(&sync.counters, &sync.view, &sync.queues);
        let v = &s.view;
        let mut counters: Vec<(String, String, u64)> = s
            .counts
            .iter()
            .map(|(g, n, c)| ((*g).to_owned(), (*n).to_owned(), *c))
            .collect();
        counters.push(("queue".into(), "lost".into(), s.queue_lost));
        let ms_ago = |t: std::time::Instant| t.elapsed().as_millis() as u64;
        let drain = self
            .drain
            .as_deref()
            .map(|d| HaDrainStatus {
                phase: d.phase().name().into(),
                since_ms: d.since().map(ms_ago),
                last_egress_ms_ago: d.last_egress().map(ms_ago),
                ended: d.ended().map(|e| e.name().into()),
            })
            .unwrap_or_default();
        Ok(Response::Ha(HaStatus {
            node_id: v.node_id,
            epoch: v.epoch,
            in_sync: v.in_sync,
            blocks: v.blocks as u32,
            blocks_epoch: v.blocks_epoch,
            drain,
            peers: v
                .peers
                .iter()
                .map(|p| HaPeer {
                    id: p.id,
                    address: p.address,
                    alive: p.alive,
                    synced_from: p.synced_from,
                    bulk_to: p.bulk_to,
                    outstanding: p.outstanding as u32,
                    oldest_unacked_us: p.oldest_unacked_us,
                    heard_ms_ago: p.heard_ms_ago,
                    blocks: p.blocks as u32,
                    draining: p.draining,
                })
                .collect(),
            counters,
        }))
    }

    fn health(&self) -> Health {
        let neighbors = self
            .speaker
            .map(|s| s.status().neighbors)
            .unwrap_or_default();
        Health {
            dataplane_ok: self.health.dataplane_ok,
            stalled_workers: self.health.stalled_queues.clone(),
            announced: self.health.announced.clone(),
            bgp_established: neighbors
                .iter()
                .filter(|n| n.state == bgp::fsm::State::Established)
                .count() as u32,
            bgp_configured: neighbors.len() as u32,
        }
    }
}
