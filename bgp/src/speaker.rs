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

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::announce;
use crate::filter::ImportFilter;
use crate::fsm::{ConnId, Neighbor, NeighborConfig, Output, State};
use crate::wire::{self, Codec, Message, Notification, Prefix, Update};

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
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeakerStatus {
    pub neighbors: Vec<NeighborStatus>,
    pub announced: Vec<Ipv4Addr>,
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
        let (commands, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(SpeakerStatus::default()));
        let mut driver = Driver::new(config, poll, listener, rx, status.clone());
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
const FIRST_CONN: usize = 2;
/// The longest the loop sleeps without a deadline, so status ages stay fresh.
const MAX_SLEEP: Duration = Duration::from_millis(500);

struct Peer {
    spec: NeighborSpec,
    fsm: Neighbor,
    accepted: BTreeMap<Prefix, Ipv4Addr>,
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
        commands: Receiver<Command>,
        status: Arc<Mutex<SpeakerStatus>>,
    ) -> Driver {
        let peers = config
            .neighbors
            .iter()
            .map(|spec| Peer {
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
                rejected: 0,
                advertised: BTreeSet::new(),
            })
            .collect();
        Driver {
            config,
            poll,
            listener,
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
            let deadline = self
                .peers
                .iter()
                .filter_map(|p| p.fsm.next_deadline())
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
                        self.publish();
                        return;
                    }
                }
            }
            let now = Instant::now();
            for p in 0..self.peers.len() {
                let out = self.peers[p].fsm.poll(now);
                self.apply(p, out);
            }
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
                    peer.advertised.clear();
                }
                Output::Received(update) => self.import(p, update),
                Output::RefreshRequested => {
                    self.peers[p].advertised.clear();
                    self.sync_routes(p);
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
                peer.accepted.insert(prefix, next_hop);
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
                })
                .collect(),
            announced: self.announced.iter().map(|p| p.addr()).collect(),
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}
