//! The speaker: one thread that owns the BGP sockets and drives a `fsm::Neighbor` per
//! configured peer with mio. The owner says which /32s to announce; the speaker keeps every
//! established peer in step and publishes a status snapshot (states, received routes) for the
//! control socket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::announce;
use crate::bfd::socket::{BfdReceiver, BfdSender};
use crate::bfd::{BfdConfig, BfdEvent, BfdSession, ControlPacket};
use crate::filter::ImportFilter;
use crate::fsm::{ConnId, Neighbor, NeighborConfig, Output, State};
use crate::wire::{self, Codec, Message, Notification, Prefix, RouteRefresh, Update};

pub const BGP_PORT: u16 = 179;

#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept connections from peers (`None`: connect out only).
    pub listen: Option<SocketAddr>,
    pub neighbors: Vec<NeighborSpec>,
}

#[derive(Debug, Clone)]
pub struct NeighborSpec {
    pub address: Ipv4Addr,
    pub port: u16,
    pub peer_as: u32,
    /// Source address of our connections (and so the next hop we announce).
    pub local_address: Option<Ipv4Addr>,
    pub hold_time: u16,
    pub connect_retry: Duration,
    pub passive: bool,
    pub import: ImportFilter,
    /// Single-hop BFD with this neighbour; its Down takes the BGP session down at once.
    pub bfd: Option<BfdConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRoute {
    pub prefix: Prefix,
    pub next_hop: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborStatus {
    pub address: Ipv4Addr,
    pub peer_as: u32,
    pub state: State,
    pub established_for: Option<Duration>,
    pub last_down: Option<String>,
    pub flaps: u64,
    pub accepted: Vec<ReceivedRoute>,
    pub rejected: u64,
    pub advertised: Vec<Prefix>,
    /// BFD state and its last diagnostic, when BFD is configured.
    pub bfd: Option<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeakerStatus {
    pub neighbors: Vec<NeighborStatus>,
    pub announced: Vec<Ipv4Addr>,
}

/// Reads the speaker's latest status from any thread.
#[derive(Debug, Clone)]
pub struct StatusReader(Arc<Mutex<SpeakerStatus>>);

impl StatusReader {
    pub fn get(&self) -> SpeakerStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

enum Command {
    Announce(BTreeSet<Prefix>),
    Reset(Ipv4Addr, Notification),
    Shutdown,
}

/// A running speaker. Dropping it sends NOTIFICATION cease (administrative shutdown) to every
/// peer and joins the thread.
#[derive(Debug)]
pub struct Speaker {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    status: Arc<Mutex<SpeakerStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Speaker {
    pub fn spawn(config: SpeakerConfig) -> io::Result<Speaker> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = match config.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("BGP listen on {addr}: {e}")))?,
            ),
            None => None,
        };
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        let bfd = BfdSockets::open(&config)?;
        if let Some(b) = &bfd {
            let fd = b.receiver.socket().as_raw_fd();
            poll.registry()
                .register(&mut SourceFd(&fd), BFD, Interest::READABLE)?;
        }
        let (commands, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(SpeakerStatus::default()));
        let mut driver = Driver::new(config, poll, listener, bfd, rx, status.clone());
        driver.publish(); // so the first status() already lists the neighbours
        let thread = std::thread::Builder::new()
            .name("bgp".into())
            .spawn(move || driver.run())?;
        Ok(Speaker {
            commands,
            waker,
            status,
            thread: Some(thread),
        })
    }

    /// Announce exactly these addresses as /32s from now on (withdrawing any others).
    pub fn announce_exactly(&self, ips: impl IntoIterator<Item = Ipv4Addr>) {
        let set = ips.into_iter().map(Prefix::host).collect();
        self.send(Command::Announce(set));
    }

    /// Takes the session with `peer` down now (BFD down, operator reset); it reconnects after
    /// the retry interval.
    pub fn reset(&self, peer: Ipv4Addr, notification: Notification) {
        self.send(Command::Reset(peer, notification));
    }

    pub fn status(&self) -> SpeakerStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A handle other threads (metrics) keep to read the status.
    pub fn status_reader(&self) -> StatusReader {
        StatusReader(Arc::clone(&self.status))
    }

    fn send(&self, command: Command) {
        // The thread only ends on Shutdown, which only Drop sends.
        let _ = self.commands.send(command);
        let _ = self.waker.wake();
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const BFD: Token = Token(2);
const FIRST_CONN: usize = 3;
/// The longest the loop sleeps without a deadline, so status ages stay fresh.
const MAX_SLEEP: Duration = Duration::from_millis(500);

struct Peer {
    spec: NeighborSpec,
    fsm: Neighbor,
    bfd: Option<BfdSession>,
    accepted: BTreeMap<Prefix, Ipv4Addr>,
    /// Routes not yet re-sent since the peer's BoRR (RFC 7313).
    stale: Option<BTreeSet<Prefix>>,
    rejected: u64,
    advertised: BTreeSet<Prefix>,
}

struct Conn {
    peer: usize,
    id: ConnId,
    stream: TcpStream,
    connected: bool,
    codec: Codec,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

struct Driver {
    config: SpeakerConfig,
    poll: Poll,
    listener: Option<TcpListener>,
    bfd: Option<BfdSockets>,
    commands: Receiver<Command>,
    status: Arc<Mutex<SpeakerStatus>>,
    peers: Vec<Peer>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    announced: BTreeSet<Prefix>,
}

impl Driver {
    fn new(
        config: SpeakerConfig,
        poll: Poll,
        listener: Option<TcpListener>,
        bfd: Option<BfdSockets>,
        commands: Receiver<Command>,
        status: Arc<Mutex<SpeakerStatus>>,
    ) -> Driver {
        let now = Instant::now();
        let peers = config
            .neighbors
            .iter()
            .enumerate()
            .map(|(i, spec)| Peer {
                bfd: spec.bfd.map(|c| BfdSession::new(c, discriminator(i), now)),
                fsm: Neighbor::new(NeighborConfig {
                    local_as: config.local_as,
                    peer_as: spec.peer_as,
                    router_id: config.router_id,
                    hold_time: spec.hold_time,
                    connect_retry: spec.connect_retry,
                    passive: spec.passive,
                }),
                spec: spec.clone(),
                accepted: BTreeMap::new(),
                stale: None,
                rejected: 0,
                advertised: BTreeSet::new(),
            })
            .collect();
        Driver {
            config,
            poll,
            listener,
            bfd,
            commands,
            status,
            peers,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            announced: BTreeSet::new(),
        }
    }

    fn run(&mut self) {
        let now = Instant::now();
        for p in 0..self.peers.len() {
            let out = self.peers[p].fsm.start(now);
            self.apply(p, out);
        }
        let mut events = Events::with_capacity(64);
        loop {
            self.publish();
            let now = Instant::now();
            let bfd_deadlines = self
                .peers
                .iter()
                .filter_map(|p| Some(p.bfd.as_ref()?.next_deadline()));
            let deadline = self
                .peers
                .iter()
                .filter_map(|p| p.fsm.next_deadline())
                .chain(bfd_deadlines)
                .min();
            let sleep = deadline
                .map_or(MAX_SLEEP, |d| d.saturating_duration_since(now))
                .min(MAX_SLEEP);
            if let Err(e) = self.poll.poll(&mut events, Some(sleep)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("bgp: poll failed: {e}");
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    BFD => self.bfd_receive(),
                    token => self.conn_ready(token, event.is_readable(), event.is_writable()),
                }
            }
            while let Ok(command) = self.commands.try_recv() {
                match command {
                    Command::Announce(set) => {
                        self.announced = set;
                        for p in 0..self.peers.len() {
                            self.sync_routes(p);
                        }
                    }
                    Command::Reset(addr, n) => {
                        if let Some(p) = self.peers.iter().position(|p| p.spec.address == addr) {
                            let out = self.peers[p].fsm.reset(n, Instant::now());
                            self.apply(p, out);
                        }
                    }
                    Command::Shutdown => {
                        for p in 0..self.peers.len() {
                            let cease = Notification::cease(Notification::CEASE_ADMIN_SHUTDOWN);
                            let out = self.peers[p].fsm.stop(cease);
                            self.apply(p, out);
                        }
                        // No BFD AdminDown after the NOTIFICATION: FRR 8.4 then records "BFD
                        // down received" as the session's end even when it had read the
                        // NOTIFICATION first, hiding the shutdown from its operator.
                        self.publish();
                        return;
                    }
                }
            }
            let now = Instant::now();
            for p in 0..self.peers.len() {
                self.bfd_poll(p, now);
                let out = self.peers[p].fsm.poll(now);
                self.apply(p, out);
            }
        }
    }

    fn bfd_receive(&mut self) {
        let mut buf = [0u8; 128];
        loop {
            let Some(sockets) = self.bfd.as_ref() else {
                return;
            };
            let got = match sockets.receiver.recv(&mut buf) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("bfd: receive: {e}");
                    return;
                }
            };
            // RFC 5881 5: single-hop packets arrive with TTL 255 or are discarded.
            if got.ttl != Some(255) {
                tracing::debug!("bfd: from {}: TTL {:?}, discarded", got.from, got.ttl);
                continue;
            }
            let packet = match ControlPacket::parse(&buf[..got.len]) {
                Ok(p) => p,
                Err(why) => {
                    tracing::debug!("bfd: from {}: discarded: {why:?}", got.from);
                    continue;
                }
            };
            let peer = self.peers.iter().position(|p| match &p.bfd {
                Some(s) if packet.your_discr != 0 => s.local_discr() == packet.your_discr,
                Some(_) => p.spec.address == got.from,
                None => false,
            });
            let Some(p) = peer else { continue };
            let now = Instant::now();
            let event = self.peers[p]
                .bfd
                .as_mut()
                .and_then(|s| s.receive(&packet, now));
            self.bfd_event(p, event, now);
            self.bfd_poll(p, now); // a Poll is answered at once
        }
    }

    fn bfd_poll(&mut self, p: usize, now: Instant) {
        let Some(session) = self.peers[p].bfd.as_mut() else {
            return;
        };
        let (packet, event) = session.poll(now);
        if let (Some(packet), Some(sockets)) = (packet, self.bfd.as_ref()) {
            if let Some(sender) = sockets.senders.get(p).and_then(Option::as_ref) {
                if let Err(e) = sender.send(&packet.emit()) {
                    tracing::debug!("bfd: send to {}: {e}", self.peers[p].spec.address);
                }
            }
        }
        self.bfd_event(p, event, now);
    }

    fn bfd_event(&mut self, p: usize, event: Option<BfdEvent>, now: Instant) {
        let address = self.peers[p].spec.address;
        match event {
            Some(BfdEvent::Up) => tracing::info!("bfd: neighbour {address} up"),
            Some(BfdEvent::Down(diag)) => {
                tracing::warn!("bfd: neighbour {address} down: {}", diag.name());
                // RFC 9384: cease subcode 10, "BFD Down".
                let out = self.peers[p].fsm.reset(Notification::cease(10), now);
                self.apply(p, out);
            }
            None => {}
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (stream, from) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("bgp: accept: {e}");
                    return;
                }
            };
            let IpAddr::V4(ip) = from.ip() else { continue };
            let Some(p) = self.peers.iter().position(|p| p.spec.address == ip) else {
                tracing::warn!("bgp: refused connection from {from}: not a configured neighbour");
                continue;
            };
            let Some((id, out)) = self.peers[p].fsm.accepted(Instant::now()) else {
                tracing::debug!(
                    "bgp: refused connection from {from} in state {:?}",
                    self.peers[p].fsm.state()
                );
                continue;
            };
            let _ = stream.set_nodelay(true);
            if self.register(p, id, stream, true).is_ok() {
                self.apply(p, out);
            } else {
                let out = self.peers[p].fsm.connection_lost(id, Instant::now());
                self.apply(p, out);
            }
        }
    }

    fn register(
        &mut self,
        peer: usize,
        id: ConnId,
        mut stream: TcpStream,
        connected: bool,
    ) -> io::Result<()> {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.conns.insert(
            token,
            Conn {
                peer,
                id,
                stream,
                connected,
                codec: Codec::INITIAL,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
            },
        );
        Ok(())
    }

    fn token_of(&self, peer: usize, id: ConnId) -> Option<Token> {
        self.conns
            .iter()
            .find(|(_, c)| c.peer == peer && c.id == id)
            .map(|(t, _)| *t)
    }

    fn connect(&mut self, p: usize, id: ConnId) -> io::Result<()> {
        let spec = &self.peers[p].spec;
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        if spec.peer_as != self.config.local_as {
            socket.set_ttl(1)?; // eBGP peers are directly connected (RFC 4271 has no GTSM here)
        }
        if let Some(local) = spec.local_address {
            socket.bind(&SocketAddr::from((local, 0)).into())?;
        }
        let to = SocketAddr::V4(SocketAddrV4::new(spec.address, spec.port));
        match socket.connect(&to.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_std(socket.into());
        self.register(p, id, stream, false)
    }

    fn conn_ready(&mut self, token: Token, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let (p, id) = (conn.peer, conn.id);
        let now = Instant::now();
        if !conn.connected && (writable || readable) {
            match (conn.stream.take_error(), conn.stream.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    conn.connected = true;
                    let out = self.peers[p].fsm.connected(id, now);
                    self.apply(p, out);
                }
                (Ok(Some(e)) | Err(e), _) => {
                    tracing::debug!("bgp: connect to {} failed: {e}", self.peers[p].spec.address);
                    self.drop_conn(token);
                    let out = self.peers[p].fsm.connection_lost(id, now);
                    self.apply(p, out);
                    return;
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => return,
                (Ok(None), Err(_)) => return,
            }
        }
        if writable && self.flush(token).is_err() {
            return self.lost(token);
        }
        if readable {
            self.read(token);
        }
    }

    fn read(&mut self, token: Token) {
        let mut chunk = [0u8; 4096];
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            match conn.stream.read(&mut chunk) {
                Ok(0) => return self.lost(token),
                Ok(n) => conn.rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.lost(token),
            }
            // Hand over whole messages as they complete, so a stream of updates never
            // accumulates more than one message plus one read.
            if !self.deliver(token) {
                return;
            }
        }
        self.deliver(token);
    }

    /// Decodes and hands over every whole message in the receive buffer. `false` once the
    /// connection is gone.
    fn deliver(&mut self, token: Token) -> bool {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return false;
            };
            let (p, id, codec) = (conn.peer, conn.id, conn.codec);
            let result = match wire::frame_len(&conn.rbuf) {
                Ok(None) => return true,
                Ok(Some(len)) => {
                    let msg = Message::decode(&conn.rbuf[..len], codec);
                    conn.rbuf.drain(..len);
                    msg
                }
                Err(n) => Err(n),
            };
            if let Err(n) = &result {
                tracing::warn!("bgp: from {}: {n}", self.peers[p].spec.address);
            }
            let fatal = result.is_err();
            let out = self.peers[p].fsm.received(id, result, Instant::now());
            self.apply(p, out);
            if fatal {
                return false;
            }
        }
    }

    fn flush(&mut self, token: Token) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(&token) else {
            return Ok(());
        };
        while conn.connected && !conn.wbuf.is_empty() {
            match conn.stream.write(&conn.wbuf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    conn.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn lost(&mut self, token: Token) {
        if let Some(conn) = self.drop_conn(token) {
            let out = self.peers[conn.0]
                .fsm
                .connection_lost(conn.1, Instant::now());
            self.apply(conn.0, out);
        }
    }

    fn drop_conn(&mut self, token: Token) -> Option<(usize, ConnId)> {
        let mut conn = self.conns.remove(&token)?;
        let _ = self.poll.registry().deregister(&mut conn.stream);
        Some((conn.peer, conn.id))
    }

    /// Carries out what a neighbour's FSM asked for.
    fn apply(&mut self, p: usize, outputs: Vec<Output>) {
        let mut queue = std::collections::VecDeque::from(outputs);
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Connect(id) => {
                    if let Err(e) = self.connect(p, id) {
                        tracing::debug!("bgp: connect to {}: {e}", self.peers[p].spec.address);
                        queue.extend(self.peers[p].fsm.connection_lost(id, Instant::now()));
                    }
                }
                Output::Send(id, msg) => {
                    let Some(token) = self.token_of(p, id) else {
                        continue;
                    };
                    let conn = self.conns.get_mut(&token).expect("token_of found it");
                    if let Err(e) = msg.encode(conn.codec, &mut conn.wbuf) {
                        tracing::error!("bgp: not sent to {}: {e}", self.peers[p].spec.address);
                    }
                    if self.flush(token).is_err() {
                        self.drop_conn(token);
                        queue.extend(self.peers[p].fsm.connection_lost(id, Instant::now()));
                    }
                }
                Output::Close(id) => {
                    if let Some(token) = self.token_of(p, id) {
                        let _ = self.flush(token);
                        if let Some(c) = self.conns.get(&token) {
                            let _ = c.stream.shutdown(std::net::Shutdown::Both);
                        }
                        self.drop_conn(token);
                    }
                }
                Output::Up(negotiated) => {
                    if let Some((id, _)) = self.peers[p].fsm.established() {
                        if let Some(token) = self.token_of(p, id) {
                            self.conns.get_mut(&token).expect("found").codec = negotiated.codec;
                        }
                    }
                    tracing::info!(
                        "bgp: neighbour {} AS {} established (router id {}, hold {:?})",
                        self.peers[p].spec.address,
                        negotiated.peer_as,
                        negotiated.peer_router_id,
                        negotiated.hold_time
                    );
                    self.peers[p].advertised.clear();
                    self.sync_routes(p);
                    // End-of-RIB (RFC 4724) after the initial announcements.
                    let mut out = Vec::new();
                    self.peers[p]
                        .fsm
                        .send_update(Update::default(), Instant::now(), &mut out);
                    queue.extend(out);
                }
                Output::Down(reason) => {
                    let peer = &mut self.peers[p];
                    tracing::warn!("bgp: neighbour {} down: {reason}", peer.spec.address);
                    peer.accepted.clear();
                    peer.stale = None;
                    peer.advertised.clear();
                }
                Output::Received(update) => self.import(p, update),
                Output::RefreshRequested => {
                    // Everything again, framed by BoRR/EoRR when the peer supports them.
                    let mut out = Vec::new();
                    let fsm = &mut self.peers[p].fsm;
                    fsm.send_refresh_marker(RouteRefresh::BEGIN_OF_RIB, Instant::now(), &mut out);
                    self.apply(p, out);
                    self.peers[p].advertised.clear();
                    self.sync_routes(p);
                    let mut out = Vec::new();
                    let fsm = &mut self.peers[p].fsm;
                    fsm.send_refresh_marker(RouteRefresh::END_OF_RIB, Instant::now(), &mut out);
                    queue.extend(out);
                }
                Output::RefreshBegin => {
                    let peer = &mut self.peers[p];
                    peer.stale = Some(peer.accepted.keys().copied().collect());
                }
                Output::RefreshEnd => {
                    let peer = &mut self.peers[p];
                    for prefix in peer.stale.take().unwrap_or_default() {
                        peer.accepted.remove(&prefix);
                    }
                }
            }
        }
    }

    fn import(&mut self, p: usize, update: Update) {
        let peer = &mut self.peers[p];
        for e in &update.errors {
            tracing::warn!(
                "bgp: from {}: attribute {} {}: {:?}",
                peer.spec.address,
                e.type_code,
                e.reason,
                e.action
            );
        }
        if let Some(stale) = peer.stale.as_mut() {
            for prefix in update.withdrawn.iter().chain(&update.nlri) {
                stale.remove(prefix);
            }
        }
        for prefix in &update.withdrawn {
            peer.accepted.remove(prefix);
        }
        let Some(next_hop) = update.attributes.next_hop else {
            return;
        };
        // RFC 4271 6.3 / RFC 7606: on eBGP the path must start with the peer's AS.
        let ebgp = peer.spec.peer_as != self.config.local_as;
        if ebgp && update.attributes.as_path_asns().next() != Some(peer.spec.peer_as) {
            for prefix in &update.nlri {
                peer.accepted.remove(prefix);
            }
            peer.rejected += update.nlri.len() as u64;
            return;
        }
        for prefix in update.nlri {
            if peer.spec.import.accepts(&prefix) {
                if peer.accepted.insert(prefix, next_hop).is_none() && peer.accepted.len() <= 16 {
                    // The first few, for the operator; `egressctl bgp routes` lists them all.
                    tracing::info!(
                        "bgp: from {}: accepted {prefix} via {next_hop}",
                        peer.spec.address
                    );
                }
            } else {
                peer.accepted.remove(&prefix);
                peer.rejected += 1;
                tracing::debug!(
                    "bgp: from {}: {prefix} rejected by the import filter",
                    peer.spec.address
                );
            }
        }
    }

    /// Brings an established peer's view of our routes to `announced`.
    fn sync_routes(&mut self, p: usize) {
        let Some((id, _)) = self.peers[p].fsm.established() else {
            return;
        };
        let Some(token) = self.token_of(p, id) else {
            return;
        };
        let next_hop = match self.conns[&token].stream.local_addr() {
            Ok(SocketAddr::V4(a)) => *a.ip(),
            _ => return,
        };
        let peer = &mut self.peers[p];
        let ibgp = peer.spec.peer_as == self.config.local_as;
        let attrs = announce::attributes(self.config.local_as, ibgp, next_hop);
        let updates = announce::updates(&mut peer.advertised, &self.announced, &attrs);
        let now = Instant::now();
        let mut out = Vec::new();
        for update in updates {
            peer.fsm.send_update(update, now, &mut out);
        }
        self.apply(p, out);
    }

    fn publish(&self) {
        let now = Instant::now();
        let status = SpeakerStatus {
            neighbors: self
                .peers
                .iter()
                .map(|p| NeighborStatus {
                    address: p.spec.address,
                    peer_as: p.spec.peer_as,
                    state: p.fsm.state(),
                    established_for: p.fsm.established_since().map(|t| now - t),
                    last_down: p.fsm.last_down().map(|r| r.to_string()),
                    flaps: p.fsm.flaps(),
                    accepted: p
                        .accepted
                        .iter()
                        .map(|(prefix, nh)| ReceivedRoute {
                            prefix: *prefix,
                            next_hop: *nh,
                        })
                        .collect(),
                    rejected: p.rejected,
                    advertised: p.advertised.iter().copied().collect(),
                    bfd: p
                        .bfd
                        .as_ref()
                        .map(|s| (s.state().name().to_owned(), s.diag().name().to_owned())),
                })
                .collect(),
            announced: self.announced.iter().map(|p| p.addr()).collect(),
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// The BFD receive socket and one sending socket per neighbour with BFD configured.
struct BfdSockets {
    receiver: BfdReceiver,
    senders: Vec<Option<BfdSender>>,
}

impl BfdSockets {
    fn open(config: &SpeakerConfig) -> io::Result<Option<BfdSockets>> {
        if config.neighbors.iter().all(|n| n.bfd.is_none()) {
            return Ok(None);
        }
        let listen_ip = match config.listen {
            Some(SocketAddr::V4(a)) => Some(*a.ip()),
            _ => None,
        };
        let receiver = BfdReceiver::bind(listen_ip.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
        let mut senders = Vec::new();
        for (i, n) in config.neighbors.iter().enumerate() {
            let sender = match n.bfd {
                None => None,
                Some(_) => {
                    let local = n.local_address.or(listen_ip).ok_or_else(|| {
                        io::Error::other(format!(
                            "neighbour {}: BFD needs a local address (the source of its packets)",
                            n.address
                        ))
                    })?;
                    Some(BfdSender::connect(local, n.address, discriminator(i))?)
                }
            };
            senders.push(sender);
        }
        Ok(Some(BfdSockets { receiver, senders }))
    }
}

/// A local discriminator: unique per neighbour, and different across restarts so a peer does
/// not mistake a new session for the old one.
fn discriminator(index: usize) -> u32 {
    let salt = std::process::id().rotate_left(16);
    ((salt << 8) | (index as u32 & 0xff)).max(1)
}
