//! The daemon's wiring: configuration -> next hops from the kernel -> tables published to
//! workers -> the steering program -> one `DataplaneWorker` per queue, each on its pinned core.
//! The control thread (this one) refreshes next hops, reloads the configuration on request,
//! and on stop joins the workers and detaches the program, also when a worker panicked.

use crate::daemon::config::Config;
use crate::daemon::control_handler::{DaemonControl, HealthView, WorkerInfo};
use crate::daemon::drain::{Drain, Phase};
use crate::daemon::health::{Health, WORKER_WAKE_MS};
use crate::daemon::map_state::MapState;
use crate::daemon::next_hops;
use crate::daemon::sync_gate::SyncGate;
use crate::daemon::sync_thread;
use crate::mailbox::published::Published;
use crate::mailbox::sync_queue::SyncQueue;
use crate::nat::SessionTable;
use crate::pipeline::{Fib6, Ipv6Tables, NodeConfig, Tables, Worker};
use crate::xdp::port::XskPort;
use crate::xdp::socket_stats::StatsHandle;
use crate::xdp::steer::SteeringSet;
use crate::xdp::worker::DataplaneWorker;
use control::server::ControlServer;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Session changes a worker's queue to the sync thread holds (a full queue is counted).
const SYNC_QUEUE_EVENTS: usize = 1 << 16;

/// Requests from outside (signal handlers) to the control thread.
#[derive(Debug, Default, Clone)]
pub struct Signals {
    pub stop: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The tables the workers read: the maps, and the kernel's next hops now.
fn build_tables(config: &Config, state: &MapState) -> io::Result<Tables> {
    let node = &config.node;
    let underlay = next_hops::fib_for(&node.underlay_interface)?;
    let external = if config.one_armed() {
        underlay.clone()
    } else {
        next_hops::fib_for(&node.external_interface)?
    };
    let external6 = next_hops::fib6_for(&node.external_interface)?;
    let underlay6 = if node.ip6.is_none() {
        Fib6::default()
    } else if config.one_armed() {
        external6.clone()
    } else {
        next_hops::fib6_for(&node.underlay_interface)?
    };
    // Nothing else makes this node talk to its gateways: ask for their MACs until known.
    let mut unknown: Vec<(IpAddr, &str)> = Vec::new();
    for (fib, ifname) in [
        (&underlay, &node.underlay_interface),
        (&external, &node.external_interface),
    ] {
        if let Some(g) = fib.gateway().filter(|g| fib.next_hop_mac(*g).is_none()) {
            unknown.push((Ipv4Addr::from(g).into(), ifname));
        }
    }
    for (fib, ifname) in [
        (&external6, &node.external_interface),
        (&underlay6, &node.underlay_interface),
    ] {
        if let Some(g) = fib.gateway_unresolved() {
            unknown.push((Ipv6Addr::from(g).into(), ifname));
        }
    }
    for (gw, ifname) in unknown {
        info!(gateway = %gw, "gateway MAC unknown; asking the kernel to resolve it");
        if let Err(e) = next_hops::request_resolution(ifname, gw) {
            warn!(error = %e, "could not ask for the gateway's MAC");
        }
    }
    let node_mtus = (
        next_hops::interface_mtu(&node.underlay_interface)?,
        next_hops::interface_mtu(&node.external_interface)?,
    );
    Ok(Tables {
        node: NodeConfig {
            node_ip: u32::from(node.ip),
            node_ip6: node.ip6.map_or(0, u128::from),
            underlay_mac: next_hops::interface_mac(&node.underlay_interface)?,
            underlay_mtu: underlay_mtu(node.underlay_mtu, node_mtus.0),
            pod_mtu: pod_mtu(node.pod_mtu, underlay_mtu(node.underlay_mtu, node_mtus.0)),
            external_mac: next_hops::interface_mac(&node.external_interface)?,
            external_mtu: node_mtus.1,
        },
        egress: state.egress_map(),
        external,
        underlay,
        ipv6: Ipv6Tables {
            egress: state.egress_map6(),
            external: external6,
            underlay: underlay6,
        },
    })
}

/// The underlay MTU the pipeline checks replies against: `node.underlay_mtu` (the underlay
/// path's, 1500 unless set), but never above the interface's own, whose larger frames the
/// kernel would drop unseen; floored at IPv4's 576, below which a reply's message and the
/// tunnel's headers leave the pipeline's arithmetic no room.
fn underlay_mtu(configured: u16, interface: u16) -> u16 {
    configured.min(interface.max(576))
}

/// The pods' MTU replies are held to: `node.pod_mtu`, else the underlay's less 100 (what
/// OVN-Kubernetes gives pods on Geneve); never above the underlay's, floored at 576.
fn pod_mtu(configured: Option<u16>, underlay: u16) -> u16 {
    configured
        .unwrap_or(underlay.saturating_sub(100))
        .clamp(576, underlay.max(576))
}

/// Logs the MTUs the pipeline uses when they are new (at start, or an interface's changed):
/// a warning where the underlay's interface carries less than `node.underlay_mtu` says.
fn report_mtus(config: &Config, node: &NodeConfig, last: &mut Option<(u16, u16, u16)>) {
    let now = (node.underlay_mtu, node.pod_mtu, node.external_mtu);
    if *last == Some(now) {
        return;
    }
    *last = Some(now);
    let (underlay, external) = (
        &config.node.underlay_interface,
        &config.node.external_interface,
    );
    if node.underlay_mtu < config.node.underlay_mtu {
        warn!(
            configured = config.node.underlay_mtu,
            interface = %underlay,
            using = node.underlay_mtu,
            "node.underlay_mtu is above the interface's MTU: replies are checked against the \
             interface's"
        );
    }
    info!(
        underlay_mtu = node.underlay_mtu,
        pod_mtu = node.pod_mtu,
        external_mtu = node.external_mtu,
        %external,
        "MTUs: replies larger than the pods' MTU or the underlay's less the tunnel are \
         answered with ICMP (DF, IPv6) or cut to fit; pods' packets larger than the external \
         interface's are answered with ICMP"
    );
}

/// The interface to ask the kernel to resolve `ip` on: the underlay's when `ip` is on its
/// subnet (a tunnel endpoint), else the external one (a next hop outside).
fn resolving_interface<'c>(config: &'c Config, tables: &Tables, ip: IpAddr) -> &'c str {
    let on_underlay = match ip {
        IpAddr::V4(v4) => tables.underlay.on_link(u32::from(v4)),
        IpAddr::V6(v6) => config.node.ip6.is_some() && tables.ipv6.underlay.on_link(v6.into()),
    };
    if on_underlay {
        &config.node.underlay_interface
    } else {
        &config.node.external_interface
    }
}

/// Runs the dataplane until `signals.stop` is set. Returns an error if setup fails or a
/// worker dies; the steering program is detached in every case.
pub fn run(config_path: &std::path::Path, mut config: Config, signals: &Signals) -> io::Result<()> {
    // Frames arrive on the uplinks (the NICs under br-ex), where the steering program and
    // the sockets attach; next hops and MACs are the bridges' (`build_tables`).
    let ifname = config.underlay_uplink().to_owned();
    // Two-armed: tunnels on the underlay interface, the outside on the external one; a
    // worker reads the same queue of both.
    let external_if = (!config.one_armed()).then(|| config.external_uplink().to_owned());
    let interfaces: Vec<&str> = std::iter::once(ifname.as_str())
        .chain(external_if.as_deref())
        .collect();
    // First, so that every thread started from here inherits it.
    match super::affinity::keep_off_worker_cores(&config.dataplane.cores) {
        Ok(Some(cores)) => info!(
            ?cores,
            "the daemon's other threads run off the workers' cores"
        ),
        Ok(None) => warn!(
            "every core egressgw may use runs a worker: its other threads share them, and \
             each of their runs (a metrics scrape, a BGP update) holds a worker up"
        ),
        Err(e) => warn!(error = %e, "could not keep the daemon's threads off the workers' cores"),
    }
    let mut state = MapState::from_config(&config);
    let first = build_tables(&config, &state)?;
    let mut mtus = None;
    report_mtus(&config, &first.node, &mut mtus);
    let tables = Published::new(first);
    let table = SessionTable::new(config.nat_config());
    // Resident soon, not at first touch: a worker or the sync thread touching a new 2 MiB
    // page of the table waits for the kernel to fault it in (5-20 ms measured in a VM). In the
    // background: 200 MiB take most of a second here, and populating changes no byte, so the
    // workers may run meanwhile.
    let prefaulting = Arc::clone(&table);
    std::thread::Builder::new()
        .name("egressgw-prefault".into())
        .spawn(move || {
            let t0 = Instant::now();
            let populated = prefaulting.prefault();
            info!(
                mib = prefaulting.memory_bytes() >> 20,
                ms = t0.elapsed().as_millis() as u64,
                populated,
                "session table faulted in"
            );
        })
        .map_err(|e| err("starting the prefault thread", e))?;
    let mut steering =
        SteeringSet::attach(&interfaces, config.node.ip, config.dataplane.xdp_attach)?;
    if let Some(ip6) = config.node.ip6 {
        steering.set_node_ip6(ip6)?;
    }
    // The range the session table allocates from for its whole life (a reload keeps it).
    let snat_range = config.nat_config().port_range;
    steering.sync(&state.steering_state(snat_range.clone()))?;
    let gid = match &config.control.group {
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .map_err(|e| err("control.group", e))?
                .ok_or_else(|| err("control.group", format!("no group named {name:?}")))?
                .gid
                .as_raw(),
        ),
        None => None,
    };
    let mut server = ControlServer::bind(std::path::Path::new(&config.control.socket), gid)?;
    info!(socket = %config.control.socket, "control socket ready");
    info!(interfaces = ?interfaces, mode = steering.mode(), "steering program attached");

    let stop_workers = Arc::new(AtomicBool::new(false));
    // Every worker's clock (session last-seen seconds) counts from here.
    let epoch = Instant::now();
    let mut handles = Vec::new();
    let mut heartbeats = Vec::new();
    let mut workers = Vec::new();
    let trace = Arc::new(crate::mailbox::trace::TraceBuffer::default());
    let mut sync_queues = Vec::new();
    // With failover, workers allocate from the port blocks this node owns among the live
    // members (the sync thread publishes each change) and forward replies by them.
    let port_blocks = match &config.ha {
        Some(ha) => Some(Published::new(
            ha.port_blocks(
                ha.sync_ip(config.node.ip, config.node.ip6),
                snat_range.clone(),
            )
            .map_err(|e| err("ha", e))?,
        )),
        None => None,
    };
    for (id, (&queue, &core)) in config
        .dataplane
        .queues
        .iter()
        .zip(&config.dataplane.cores)
        .enumerate()
    {
        let port = XskPort::open_steered(&ifname, queue, config.dataplane.frames_per_queue)?;
        steering.interface(0).bind_queue(queue, port.fd())?;
        let mut sockets = vec![(ifname.clone(), StatsHandle::new(port.fd())?)];
        info!(interface = %ifname, queue, core, mode = ?port.mode(), tx_budget = ?port.tx_budget(), "AF_XDP socket bound");
        let mode = port.mode().name();
        let flush = Arc::new(crate::mailbox::flush::FlushMailbox::default());
        let mut nat = table.worker(id as u16);
        if config.ha.is_some() {
            let q = SyncQueue::new(SYNC_QUEUE_EVENTS);
            nat = nat.with_events(q.clone());
            sync_queues.push(q);
        }
        let pods = Arc::new(crate::mailbox::pods::PodBoard::default());
        let mut dp = DataplaneWorker::new(port, Worker::new(nat))
            .with_trace(queue, Arc::clone(&trace))
            .with_flush(Arc::clone(&flush))
            .with_pod_board(Arc::clone(&pods));
        if let Some(b) = &port_blocks {
            dp = dp.with_blocks(b.reader());
        }
        if let Some(external) = &external_if {
            let port = XskPort::open_steered(external, queue, config.dataplane.frames_per_queue)?;
            steering.interface(1).bind_queue(queue, port.fd())?;
            sockets.push((external.clone(), StatsHandle::new(port.fd())?));
            info!(interface = %external, queue, core, mode = ?port.mode(), "AF_XDP socket bound");
            dp = dp.with_external(port);
        }
        workers.push(WorkerInfo {
            queue,
            core,
            af_xdp_mode: mode,
            counters: Arc::clone(&dp.pipeline.counters),
            flush,
            pods,
            sockets: Arc::new(sockets),
        });
        let mut reader = tables.reader();
        let coalesce = (config.dataplane.rx_coalesce_us > 0)
            .then(|| Duration::from_micros(config.dataplane.rx_coalesce_us.into()));
        let stop = Arc::clone(&stop_workers);
        let heartbeat = Arc::new(AtomicU64::new(0));
        heartbeats.push(Arc::clone(&heartbeat));
        let started = epoch;
        handles.push(
            std::thread::Builder::new()
                .name(format!("egressgw-q{queue}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        warn!(queue, core, "could not pin the worker; running unpinned");
                    }
                    while !stop.load(Ordering::Relaxed) {
                        heartbeat.fetch_add(1, Ordering::Relaxed);
                        let now = started.elapsed().as_secs() as u32;
                        let turn = dp.poll(&mut reader, now, WORKER_WAKE_MS).map_err(|e| {
                            error!(queue, error = %e, "AF_XDP poll failed");
                            e
                        })?;
                        if let Some(wait) = coalesce.filter(|_| turn.worth_coalescing()) {
                            std::thread::sleep(wait);
                        }
                    }
                    Ok(())
                })
                .map_err(|e| err("starting a worker", e))?,
        );
    }
    info!(workers = handles.len(), "egressgw running");
    // Session replication to the other gateways of the set; the egress IPs are announced
    // only once this node holds every live peer's sessions.
    let sync = match &config.ha {
        Some(ha) => {
            let mut sync_config = ha
                .sync_config(config.node.underlay_mtu)
                .map_err(|e| err("ha", e))?;
            sync_config.blocks = port_blocks.clone();
            let listen =
                std::net::SocketAddr::from((ha.sync_ip(config.node.ip, config.node.ip6), ha.port));
            let socket =
                sync_thread::bind(listen).map_err(|e| err("ha: binding the sync port", e))?;
            let h = sync_thread::spawn(
                socket,
                sync_config,
                Arc::clone(&table),
                sync_queues.clone(),
                epoch,
            )?;
            info!(%listen, node_id = ha.node_id, peers = ha.peers.len(), "sync channel ready");
            Some(h)
        }
        None => None,
    };

    let speaker = match &config.bgp {
        Some(b) => {
            let s = bgp::speaker::Speaker::spawn(b.speaker_config(config.node.ip))?;
            info!(
                asn = b.asn,
                neighbors = b.neighbors.len(),
                "BGP speaker started"
            );
            Some(s)
        }
        None => None,
    };
    let mut health = Health::new(heartbeats.len(), Instant::now());
    let mut announced: Option<Vec<std::net::IpAddr>> = None;
    let mut view = HealthView::default();
    let shared_view = Arc::new(std::sync::Mutex::new(HealthView::default()));
    // What the sync thread shares with metrics and the control socket.
    let sync_sources = sync
        .as_ref()
        .map(|h| crate::daemon::sync_thread::SyncSources {
            counters: Arc::clone(&h.counters),
            view: Arc::clone(&h.view),
            queues: sync_queues.clone(),
        });
    let metrics = match config.metrics.listen {
        Some(addr) => {
            let sources = crate::daemon::metrics::Sources {
                workers: workers.clone(),
                sessions: Arc::clone(&table),
                max_sessions: u64::from(config.nat.max_sessions),
                port_range_size: config.nat_config().port_range.len() as u64,
                bgp: speaker.as_ref().map(|s| s.status_reader()),
                health: Arc::clone(&shared_view),
                steering: steering.verdict_reader(),
                sync: sync_sources.clone(),
            };
            let m = crate::daemon::metrics::MetricsServer::start(addr, sources)?;
            info!(%addr, "metrics endpoint ready (GET /metrics)");
            Some(m)
        }
        None => None,
    };

    let mut result = Ok(());
    let mut last_refresh = Instant::now();
    let mut refresh_at: Option<Instant> = None;
    // The kernel announces neighbour, route, address and link changes; without the
    // subscription, next hops are only re-read periodically.
    let mut events = match next_hops::NextHopEvents::open() {
        Ok(e) => Some(e),
        Err(e) => {
            warn!(error = %e, "cannot follow rtnetlink; next hops are re-read every second only");
            None
        }
    };
    let reread_every = if events.is_some() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    let mut asked: std::collections::HashMap<IpAddr, Instant> = std::collections::HashMap::new();
    let mut sync_gate = SyncGate::default();
    // A member of a gateway set can be drained (egressctl drain, the watcher) and serve again.
    let mut drain = config.ha.as_ref().map(|ha| Drain::new(ha.drain_times()));
    let mut drained = false;
    while !signals.stop.load(Ordering::Relaxed) {
        if handles.iter().any(|h| h.is_finished()) {
            result = Err(err("dataplane", "a worker stopped"));
            break;
        }
        // Announce the served egress IPs only while every worker makes progress.
        let beats: Vec<u64> = heartbeats
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect();
        let healthy = health.observe(&beats, Instant::now());
        // In a gateway set: not before this node holds its peers' sessions (sync_gate.rs).
        let in_sync = sync_gate.observe(sync.as_ref().is_none_or(|s| s.view().in_sync), || {
            speaker.as_ref().is_none_or(|s| {
                s.status()
                    .neighbors
                    .iter()
                    .any(|n| n.state == bgp::fsm::State::Established)
            })
        });
        if let (Some(d), Some(s)) = (drain.as_mut(), sync.as_ref()) {
            let egress: u64 = workers
                .iter()
                .map(|w| w.counters.tx_external.load(Ordering::Relaxed))
                .sum();
            let phase = d.step(egress, Instant::now());
            if (phase == Phase::Drained) != drained {
                drained = phase == Phase::Drained;
                s.set_draining(drained);
                if drained {
                    info!(
                        ended = d.ended().map_or("", |e| e.name()),
                        "drained: the port blocks go to the serving members"
                    );
                } else {
                    info!("serving again: taking this node's share of the port blocks back");
                }
            }
        }
        let serving = drain.as_ref().is_none_or(Drain::announces);
        let wanted: Vec<std::net::IpAddr> = if healthy && in_sync && serving {
            state.served().collect()
        } else {
            Vec::new()
        };
        view.dataplane_ok = healthy;
        view.stalled_queues = health
            .stalled(Instant::now())
            .iter()
            .map(|i| workers[*i].queue)
            .collect();
        if announced.as_ref() != Some(&wanted) {
            if let Some(s) = &speaker {
                s.announce_exactly(wanted.iter().copied());
            }
            if healthy && !in_sync {
                info!("waiting for the peers' sessions before announcing");
            } else if healthy && !serving {
                info!("draining: routes withdrawn");
            } else if healthy {
                info!(egress_ips = ?wanted, "announcing");
            } else {
                let stalled = health.stalled(Instant::now());
                warn!(
                    ?stalled,
                    "dataplane workers stalled: withdrawing every egress IP"
                );
            }
            view.announced = if speaker.is_some() {
                wanted.clone()
            } else {
                Vec::new()
            };
            announced = Some(wanted);
        }
        {
            // The metrics thread's copy of the gate's verdict.
            let mut shared = shared_view.lock().unwrap_or_else(|e| e.into_inner());
            if shared.dataplane_ok != view.dataplane_ok
                || shared.announced != view.announced
                || shared.stalled_queues != view.stalled_queues
            {
                *shared = view.clone();
            }
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            match Config::load(config_path) {
                Ok(new)
                    if new.node == config.node
                        && new.dataplane == config.dataplane
                        && new.nat == config.nat
                        && new.ha == config.ha =>
                {
                    // The file's map and egress IPs replace the running ones (control-socket
                    // edits included).
                    let mut new_state = MapState::from_config(&new);
                    new_state.keep_learned(&state);
                    steering.sync(&new_state.steering_state(snat_range.clone()))?;
                    state = new_state;
                    config = new;
                    info!("configuration reloaded");
                    last_refresh = Instant::now() - Duration::from_secs(10);
                }
                // The session table is sized and its timeouts and per-pod limits set at start.
                Ok(_) => {
                    warn!("reload ignored: node, dataplane, nat and ha settings need a restart")
                }
                Err(e) => warn!(error = %e, "reload refused; keeping the running configuration"),
            }
        }
        // A worker dropped a packet for want of a next hop's MAC: ask the kernel to resolve
        // it (once a second per address) and re-read the neighbours shortly after.
        for w in &workers {
            let ip4 = w.counters.unresolved.swap(0, Ordering::Relaxed);
            let wanted = [
                (ip4 != 0).then(|| IpAddr::V4(Ipv4Addr::from(ip4))),
                w.counters
                    .take_unresolved6()
                    .map(|ip6| IpAddr::V6(Ipv6Addr::from(ip6))),
            ]
            .map(|ip| ip.map(|ip| (ip, resolving_interface(&config, &tables.load(), ip))));
            for (ip, ifname) in wanted.into_iter().flatten() {
                let due = asked
                    .get(&ip)
                    .is_none_or(|t: &Instant| t.elapsed() >= Duration::from_secs(1));
                if !due {
                    continue;
                }
                match next_hops::request_resolution(ifname, ip) {
                    Ok(()) => {
                        info!(next_hop = %ip, "next hop unresolved; asked the kernel to resolve it")
                    }
                    Err(e) => {
                        warn!(next_hop = %ip, error = %e, "could not ask to resolve a next hop")
                    }
                }
                asked.insert(ip, Instant::now());
                refresh_at = Some(Instant::now() + Duration::from_millis(100));
            }
        }
        asked.retain(|_, t| t.elapsed() < Duration::from_secs(10));
        // Next hops are re-read soon after the kernel announced a change (changes within
        // 20 ms read once) or a resolution was asked for, and every `reread_every` anyway.
        if events.as_mut().is_some_and(|e| e.drain() > 0) && refresh_at.is_none() {
            refresh_at = Some(Instant::now() + Duration::from_millis(20));
        }
        if last_refresh.elapsed() >= reread_every || refresh_at.is_some_and(|t| Instant::now() >= t)
        {
            refresh_at = None;
            match build_tables(&config, &state) {
                Ok(t) => {
                    report_mtus(&config, &t.node, &mut mtus);
                    tables.publish(t)
                }
                Err(e) => warn!(error = %e, "could not refresh next hops"),
            }
            last_refresh = Instant::now();
        }
        // Control requests, or 10 ms of waiting for them (the health check's pace).
        let mut control = DaemonControl {
            state: &mut state,
            steering: &mut steering,
            speaker: speaker.as_ref(),
            workers: &workers,
            health: &view,
            sessions: &table,
            trace: &trace,
            tables: &tables,
            epoch,
            max_sessions: u64::from(config.nat.max_sessions),
            port_range: snat_range.clone(),
            changed: false,
            sync: sync_sources.as_ref(),
            drain: drain.as_mut(),
        };
        server.poll(Duration::from_millis(10), &mut control);
    }
    drop(server);
    drop(metrics);
    // Routes go first (NOTIFICATION cease: the router withdraws at once), then the dataplane.
    drop(speaker);
    // In a gateway set the workers translate on while the routers move the replies to the
    // peers and the last sessions replicate; a peer holds every flow before this one stops.
    // A drain under way has been withdrawn for part of that already.
    if let Some(ha) = &config.ha {
        let withdrawn_for = drain
            .as_ref()
            .and_then(Drain::since)
            .map_or(Duration::ZERO, |t| t.elapsed());
        let rest = Duration::from_millis(u64::from(ha.drain_ms)).saturating_sub(withdrawn_for);
        if result.is_ok() && !rest.is_zero() {
            info!(
                drain_ms = rest.as_millis() as u64,
                "routes withdrawn; draining"
            );
            std::thread::sleep(rest);
        }
    }
    stop_workers.store(true, Ordering::Relaxed);
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(_) => result = result.and(Err(err("dataplane", "a worker panicked"))),
        }
    }
    drop(sync);
    drop(steering);
    info!("steering program detached; egressgw stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::underlay_mtu;

    #[test]
    fn the_pods_mtu_defaults_to_ovn_kubernetes_and_never_exceeds_the_underlays() {
        use super::pod_mtu;
        assert_eq!(pod_mtu(None, 1500), 1400, "OVN-Kubernetes's Geneve room");
        assert_eq!(pod_mtu(None, 9000), 8900);
        assert_eq!(pod_mtu(Some(1300), 1500), 1300);
        assert_eq!(
            pod_mtu(Some(1500), 1400),
            1400,
            "the interface carries less"
        );
        assert_eq!(pod_mtu(None, 600), 576, "no less than IPv4's minimum");
    }

    #[test]
    fn the_underlay_mtu_never_exceeds_the_interfaces() {
        assert_eq!(underlay_mtu(1500, 1400), 1400, "the interface carries less");
        assert_eq!(underlay_mtu(1500, 9000), 1500, "the path carries less");
        assert_eq!(underlay_mtu(9000, 9000), 9000);
        assert_eq!(underlay_mtu(1500, 0), 576, "no less than IPv4's minimum");
    }
}
