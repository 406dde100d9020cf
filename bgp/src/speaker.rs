//! The speaker: one thread that owns the BGP sockets and drives a `fsm::Neighbor` per
//! configured peer with mio. The owner says which addresses to announce (as /32s and /128s);
//! the speaker keeps every established peer in step, each with the families its session
//! carries, and publishes a status snapshot (states, received routes) for the control socket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
use crate::bfd::{BfdConfig, BfdEvent, BfdSession, ControlPacket, Discriminators, SessionState};
use crate::filter::ImportFilter;
use crate::fsm::{ConnId, Neighbor, NeighborConfig, Output, State};
use crate::wire::{self, Codec, Family, Message, Notification, Prefix, RouteRefresh, Update};

pub const BGP_PORT: u16 = 179;

#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept connections from peers (none: connect out only). `[::]` takes both
    /// families.
    pub listen: Vec<SocketAddr>,
    pub neighbors: Vec<NeighborSpec>,
}

#[derive(Debug, Clone)]
pub struct NeighborSpec {
    pub address: IpAddr,
    pub port: u16,
    pub peer_as: u32,
    /// Source address of our connections (and so the next hop we announce).
    pub local_address: Option<IpAddr>,
    /// The families to offer: the session's own family alone (one session per family, as
    /// FRR-K8s' `disableMP: true`), or both over one session (multiprotocol BGP).
    pub families: Vec<Family>,
    /// The next hop for the family the session does not run over (IPv6 routes on an IPv4
    /// session need an IPv6 one, and the other way round); the session's own family takes
    /// the connection's local address.
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
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
    pub next_hop: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborStatus {
    pub address: IpAddr,
    pub peer_as: u32,
    pub state: State,
    /// The families the established session carries.
    pub families: Vec<Family>,
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
    pub announced: Vec<IpAddr>,
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
    Reset(IpAddr, Notification),
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
        if config.listen.len() > MAX_LISTENERS {
            return Err(io::Error::other(format!(
                "BGP listens on at most {MAX_LISTENERS} addresses"
            )));
        }
        let mut listeners = Vec::new();
        for (i, &addr) in config.listen.iter().enumerate() {
            let mut l = TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("BGP listen on {addr}: {e}")))?;
            poll.registry()
                .register(&mut l, Token(FIRST_LISTENER + i), Interest::READABLE)?;
            listeners.push(l);
        }
        let discriminators = Discriminators::random();
        let bfd = BfdSockets::open(&config, discriminators)?;
        if let Some(b) = &bfd {
            for (receiver, token) in [(&b.receiver, BFD), (&b.receiver6, BFD6)] {
                if let Some(r) = receiver {
                    let fd = r.socket().as_raw_fd();
                    poll.registry()
                        .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
                }
            }
        }
        let (commands, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(SpeakerStatus::default()));
        let mut driver = Driver::new(
            config,
            poll,
            listeners,
            bfd,
            discriminators,
            rx,
            status.clone(),
        );
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

    /// Announce exactly these addresses as /32s and /128s from now on (withdrawing any
    /// others), each to the peers whose sessions carry its family.
    pub fn announce_exactly<A: Into<IpAddr>>(&self, ips: impl IntoIterator<Item = A>) {
        let set = ips.into_iter().map(Prefix::host).collect();
        self.send(Command::Announce(set));
    }

    /// Takes the session with `peer` down now (BFD down, operator reset); it reconnects after
    /// the retry interval.
    pub fn reset(&self, peer: IpAddr, notification: Notification) {
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

const WAKER: Token = Token(0);
const BFD: Token = Token(1);
const BFD6: Token = Token(2);
const FIRST_LISTENER: usize = 3;
const MAX_LISTENERS: usize = 8;
const FIRST_CONN: usize = FIRST_LISTENER + MAX_LISTENERS;
/// The longest the loop sleeps without a deadline, so status ages stay fresh.
const MAX_SLEEP: Duration = Duration::from_millis(500);

struct Peer {
    spec: NeighborSpec,
    fsm: Neighbor,
    bfd: Option<BfdSession>,
    accepted: BTreeMap<Prefix, IpAddr>,
    /// Routes not yet re-sent since the peer's BoRR (RFC 7313), by family.
    stale: BTreeMap<Family, BTreeSet<Prefix>>,
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
    listeners: Vec<TcpListener>,
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
        listeners: Vec<TcpListener>,
        bfd: Option<BfdSockets>,
        discriminators: Discriminators,
        commands: Receiver<Command>,
        status: Arc<Mutex<SpeakerStatus>>,
    ) -> Driver {
        let now = Instant::now();
        let peers = config
            .neighbors
            .iter()
            .enumerate()
            .map(|(i, spec)| Peer {
                bfd: spec
                    .bfd
                    .map(|c| BfdSession::new(c, discriminators.of(i), now)),
                fsm: Neighbor::new(NeighborConfig {
                    local_as: config.local_as,
                    peer_as: spec.peer_as,
                    router_id: config.router_id,
                    hold_time: spec.hold_time,
                    connect_retry: spec.connect_retry,
                    passive: spec.passive,
                    families: spec.families.clone(),
                }),
                spec: spec.clone(),
                accepted: BTreeMap::new(),
                stale: BTreeMap::new(),
                rejected: 0,
                advertised: BTreeSet::new(),
            })
            .collect();
        Driver {
            config,
            poll,
            listeners,
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
                    WAKER => {}
                    BFD => self.bfd_receive(false),
                    BFD6 => self.bfd_receive(true),
                    Token(t) if (FIRST_LISTENER..FIRST_CONN).contains(&t) => {
                        self.accept(t - FIRST_LISTENER)
                    }
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

    fn bfd_receive(&mut self, v6: bool) {
        let mut buf = [0u8; 128];
        loop {
            let Some(sockets) = self.bfd.as_ref() else {
                return;
            };
            let receiver = if v6 {
                &sockets.receiver6
            } else {
                &sockets.receiver
            };
            let Some(receiver) = receiver else { return };
            let got = match receiver.recv(&mut buf) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("bfd: receive: {e}");
                    return;
                }
            };
            // RFC 5881 5: single-hop packets arrive with TTL (hop limit) 255 or are discarded.
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
            // By Your Discriminator once the peer knows ours, by address before (RFC 5880
            // 6.8.6); single hop, so a session also takes packets from its neighbour alone.
            let peer = self.peers.iter().position(|p| match &p.bfd {
                Some(s) if packet.your_discr != 0 => {
                    s.local_discr() == packet.your_discr && p.spec.address == got.from
                }
                Some(_) => p.spec.address == got.from,
                None => false,
            });
            let Some(p) = peer else {
                tracing::debug!(
                    "bfd: from {}: no session of that neighbour with discriminator {}, discarded",
                    got.from,
                    packet.your_discr
                );
                continue;
            };
            let now = Instant::now();
            let address = self.peers[p].spec.address;
            let Some(session) = self.peers[p].bfd.as_mut() else {
                continue;
            };
            let before = session.state();
            let event = session.receive(&packet, now);
            log_bfd_change(address, before, session.state(), packet.state);
            self.bfd_event(p, event, now);
            self.bfd_poll(p, now); // a Poll is answered at once
        }
    }

    fn bfd_poll(&mut self, p: usize, now: Instant) {
        let address = self.peers[p].spec.address;
        let Some(session) = self.peers[p].bfd.as_mut() else {
            return;
        };
        let before = session.state();
        let (packet, event) = session.poll(now);
        // Only the detection timer changes the state here: the peer went silent.
        log_bfd_change(address, before, session.state(), "silence");
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

    fn accept(&mut self, index: usize) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
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
            // A dual-stack listener gives IPv4 peers as IPv4-mapped IPv6 addresses.
            let ip = from.ip().to_canonical();
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
        let to = SocketAddr::new(spec.address, spec.port);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(to),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        if spec.peer_as != self.config.local_as {
            // eBGP peers are directly connected (RFC 4271 has no GTSM here).
            match to {
                SocketAddr::V4(_) => socket.set_ttl(1)?,
                SocketAddr::V6(_) => socket.set_unicast_hops_v6(1)?,
            }
        }
        if let Some(local) = spec.local_address {
            socket.bind(&SocketAddr::new(local, 0).into())?;
        }
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
                    // End-of-RIB (RFC 4724) for each family after its initial announcements.
                    let mut out = Vec::new();
                    for &family in &negotiated.families {
                        let marker = Update::end_of_rib(family);
                        self.peers[p]
                            .fsm
                            .send_update(marker, Instant::now(), &mut out);
                    }
                    queue.extend(out);
                }
                Output::Down(reason) => {
                    let peer = &mut self.peers[p];
                    tracing::warn!("bgp: neighbour {} down: {reason}", peer.spec.address);
                    peer.accepted.clear();
                    peer.stale.clear();
                    peer.advertised.clear();
                }
                Output::Received(update) => self.import(p, update),
                Output::RefreshRequested(family) => {
                    // The family's routes again, framed by BoRR/EoRR when the peer supports
                    // them.
                    let now = Instant::now();
                    let mut out = Vec::new();
                    let fsm = &mut self.peers[p].fsm;
                    fsm.send_refresh_marker(family, RouteRefresh::BEGIN_OF_RIB, now, &mut out);
                    self.apply(p, out);
                    self.peers[p].advertised.retain(|r| r.family() != family);
                    self.sync_routes(p);
                    let mut out = Vec::new();
                    let fsm = &mut self.peers[p].fsm;
                    fsm.send_refresh_marker(family, RouteRefresh::END_OF_RIB, now, &mut out);
                    queue.extend(out);
                }
                Output::RefreshBegin(family) => {
                    let peer = &mut self.peers[p];
                    let routes = peer.accepted.keys().filter(|r| r.family() == family);
                    peer.stale.insert(family, routes.copied().collect());
                }
                Output::RefreshEnd(family) => {
                    let peer = &mut self.peers[p];
                    for prefix in peer.stale.remove(&family).unwrap_or_default() {
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
        for prefix in update.withdrawn.iter().chain(&update.nlri) {
            if let Some(stale) = peer.stale.get_mut(&prefix.family()) {
                stale.remove(prefix);
            }
        }
        for prefix in &update.withdrawn {
            peer.accepted.remove(prefix);
        }
        let next_hop_v4 = update.attributes.next_hop.map(IpAddr::V4);
        let next_hop_v6 = update.attributes.next_hop_v6.map(|n| IpAddr::V6(n.global));
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
            let next_hop = match prefix.family() {
                Family::Ipv4 => next_hop_v4,
                Family::Ipv6 => next_hop_v6,
            };
            // The decoder withdrew routes without a next hop (RFC 7606).
            let Some(next_hop) = next_hop else { continue };
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

    /// Brings an established peer's view of our routes to `announced`: those of the families
    /// its session carries and we have a next hop for.
    fn sync_routes(&mut self, p: usize) {
        let Some((id, negotiated)) = self.peers[p].fsm.established() else {
            return;
        };
        let families = negotiated.families.clone();
        let Some(token) = self.token_of(p, id) else {
            return;
        };
        let Ok(local) = self.conns[&token].stream.local_addr() else {
            return;
        };
        let peer = &mut self.peers[p];
        let (next_hop, next_hop_v6) = match local.ip().to_canonical() {
            IpAddr::V4(a) => (Some(a), peer.spec.next_hop_v6),
            IpAddr::V6(a) => (peer.spec.next_hop_v4, Some(a)),
        };
        let has_next_hop = |f: &Family| match f {
            Family::Ipv4 => next_hop.is_some(),
            Family::Ipv6 => next_hop_v6.is_some(),
        };
        let wanted: BTreeSet<Prefix> = self
            .announced
            .iter()
            .filter(|r| families.contains(&r.family()) && has_next_hop(&r.family()))
            .copied()
            .collect();
        let ibgp = peer.spec.peer_as == self.config.local_as;
        let attrs = announce::attributes(self.config.local_as, ibgp, next_hop, next_hop_v6);
        let updates = announce::updates(&mut peer.advertised, &wanted, &attrs);
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
                    families: p
                        .fsm
                        .established()
                        .map(|(_, n)| n.families.clone())
                        .unwrap_or_default(),
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

/// The BFD receive sockets (one per family in use) and one sending socket per neighbour with
/// BFD configured.
struct BfdSockets {
    receiver: Option<BfdReceiver>,
    receiver6: Option<BfdReceiver>,
    senders: Vec<Option<BfdSender>>,
}

impl BfdSockets {
    fn open(
        config: &SpeakerConfig,
        discriminators: Discriminators,
    ) -> io::Result<Option<BfdSockets>> {
        let with_bfd = || config.neighbors.iter().filter(|n| n.bfd.is_some());
        if with_bfd().next().is_none() {
            return Ok(None);
        }
        // Listening on one address of a family receives there; otherwise on every address.
        let listen_ip = |v6: bool| {
            let mut ips = config
                .listen
                .iter()
                .map(|a| a.ip())
                .filter(|ip| ip.is_ipv6() == v6);
            match (ips.next(), ips.next()) {
                (Some(ip), None) if !ip.is_unspecified() => Some(ip),
                _ => None,
            }
        };
        let receiver = |v6: bool| -> io::Result<Option<BfdReceiver>> {
            if !with_bfd().any(|n| n.address.is_ipv6() == v6) {
                return Ok(None);
            }
            let any = if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            BfdReceiver::bind(listen_ip(v6).unwrap_or(any)).map(Some)
        };
        let (receiver, receiver6) = (receiver(false)?, receiver(true)?);
        let mut senders = Vec::new();
        for (i, n) in config.neighbors.iter().enumerate() {
            let sender = match n.bfd {
                None => None,
                Some(_) => {
                    let local = n
                        .local_address
                        .or(listen_ip(n.address.is_ipv6()))
                        .ok_or_else(|| {
                            io::Error::other(format!(
                            "neighbour {}: BFD needs a local address (the source of its packets)",
                            n.address
                        ))
                        })?;
                    Some(BfdSender::connect(local, n.address, discriminators.of(i))?)
                }
            };
            senders.push(sender);
        }
        Ok(Some(BfdSockets {
            receiver,
            receiver6,
            senders,
        }))
    }
}

/// A BFD session's state change, at debug level (the interop tests quote these), with what
/// caused it: the peer's state in a packet, or its silence.
fn log_bfd_change(
    address: IpAddr,
    before: SessionState,
    after: SessionState,
    cause: impl std::fmt::Debug,
) {
    if before != after {
        tracing::debug!("bfd: neighbour {address}: {before:?} -> {after:?} on {cause:?}");
    }
}
