//! The sync thread: the I/O around `crate::sync`. It drains the workers' session changes,
//! batches them per peer into authenticated UDP datagrams (sent at the end of each turn,
//! at most a 250 us tick apart, so within 1 ms), answers
//! acks and NACKs with the sessions' current state, sends hellos that carry its acks, and
//! applies its peers' records to the replica slots of the session table. A peer heard for
//! the first time, or again after it fell silent or restarted, gets this node's whole
//! table (a bulk resend, paced by the acks); this node is in sync once every live peer has
//! said it delivered its own.

use crate::mailbox::published::Published;
use crate::mailbox::sync_queue::{SyncEvent, SyncQueue};
use crate::nat::blocks::{MemberId, Ownership, PortBlocks};
use crate::nat::session::State;
use crate::nat::{Entry, InsideKey, NatWorker, ReplicaOutcome, SessionTable};
use crate::sync::receive::{Arrival, ControlArrival, PeerStream};
use crate::sync::send::{Batch, SendStream};
use crate::sync::wire::{
    self, flags, Encoder, Header, Kind, Nack, Record, SyncDrop, SyncKey, Upsert,
};
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Records wait at most this long in a batch. A batch goes out at the end of the turn that
/// filled it (a turn is at most a tick plus its work), so this bounds it only when a turn
/// runs long.
pub const FLUSH_AFTER: Duration = Duration::from_millis(1);
/// A hello (with this node's acks) goes to every peer this often.
pub const HELLO_EVERY: Duration = Duration::from_millis(100);
/// A peer not heard from for this long is dead.
pub const DEAD_AFTER: Duration = Duration::from_millis(300);
/// Local sessions' last-seen goes to the peers once per this period.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// A peer whose datagrams keep failing the checks is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// On a planned stop, how long the thread waits for the peers to acknowledge everything
/// before it tells them it leaves.
pub const LEAVE_WITHIN: Duration = Duration::from_millis(500);
/// A bulk resend keeps at most this many messages unacknowledged (paced by the acks).
const BULK_WINDOW: usize = 256;
/// After this many records messages from a peer, an ack goes back without waiting for the
/// hello.
const ACK_EVERY: u32 = 32;
/// How long one receive waits when nothing arrives: the loop's tick.
const TICK: Duration = Duration::from_micros(250);
/// A receive buffer for bulk resends (the kernel may give less).
const RECEIVE_BUFFER: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub id: u32,
    pub address: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub node_id: u32,
    pub peers: Vec<PeerConfig>,
    pub key: SyncKey,
    /// Datagram payload (the path MTU less the IP and UDP headers: 28 bytes, 48 over IPv6).
    pub payload: usize,
    /// Where the ownership of the port blocks among the live members is published (the
    /// workers allocate and forward by it); None leaves ports as configured.
    pub blocks: Option<Arc<Published<PortBlocks>>>,
    /// The newest protocol version this member speaks (`wire::VERSION`; tests set an older
    /// one to stand in for a member not yet upgraded).
    pub version: u8,
}

/// The sync thread's counters (relaxed atomics; read by metrics and egressctl).
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub records_sent: AtomicU64,
    pub records_applied: AtomicU64,
    pub installed: AtomicU64,
    pub updated: AtomicU64,
    pub deleted: AtomicU64,
    pub conflicts: AtomicU64,
    pub replicas_full: AtomicU64,
    pub resent: AtomicU64,
    pub bulk_records: AtomicU64,
    pub send_errors: AtomicU64,
    /// Per `SyncDrop::ALL`.
    pub drops: [AtomicU64; SyncDrop::ALL.len()],
    pub unknown_peer: AtomicU64,
    pub duplicates: AtomicU64,
    /// IPv6 records not sent to a peer that speaks version 1 (it cannot take them).
    pub ipv6_unsent: AtomicU64,
    /// Upserts of sessions from nodes on the IPv6 underlay not sent to a peer that speaks a
    /// version before 3.
    pub underlay6_unsent: AtomicU64,
}

/// One peer as egressctl shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    pub id: u32,
    pub address: SocketAddr,
    pub alive: bool,
    /// The peer said this node holds its whole table.
    pub synced_from: bool,
    /// Its bulk resend of this node's table is under way.
    pub bulk_to: bool,
    pub outstanding: usize,
    /// How long the oldest unacknowledged message to it has waited (the sync lag).
    pub oldest_unacked_us: Option<u64>,
    pub heard_ms_ago: Option<u64>,
    /// Port blocks it owns in this node's view.
    pub blocks: usize,
    /// It says it is drained: it owns no block while a member serves.
    pub draining: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncView {
    pub node_id: u32,
    pub epoch: u32,
    /// Every live peer's table is here (gates the BGP announcement).
    pub in_sync: bool,
    pub peers: Vec<PeerView>,
    /// Port blocks this node owns, and the ownership's epoch (0 without blocks).
    pub blocks: usize,
    pub blocks_epoch: u32,
    /// This node is drained: its blocks are the serving members'.
    pub draining: bool,
}

/// What the sync thread shares.
#[derive(Debug, Clone)]
pub struct SyncSources {
    pub counters: Arc<SyncCounters>,
    pub view: Arc<Mutex<SyncView>>,
    pub queues: Vec<Arc<crate::mailbox::sync_queue::SyncQueue>>,
}

/// The sync channel's state and counters, read for metrics and `egressctl ha`.
#[derive(Debug, Default)]
pub struct SyncSample {
    pub view: SyncView,
    /// (family suffix, label value, count): `messages{direction}`, `records{kind}`,
    /// `replicas{outcome}`, `drops{reason}`.
    pub counts: Vec<(&'static str, &'static str, u64)>,
    /// Worker events lost to a full queue.
    pub queue_lost: u64,
}

impl SyncSample {
    pub fn read(
        counters: &SyncCounters,
        view: &Mutex<SyncView>,
        queues: &[Arc<crate::mailbox::sync_queue::SyncQueue>],
    ) -> SyncSample {
        use std::sync::atomic::Ordering::Relaxed;
        let c = counters;
        let mut counts = vec![
            ("messages", "sent", c.messages_sent.load(Relaxed)),
            ("messages", "received", c.messages_received.load(Relaxed)),
            ("records", "sent", c.records_sent.load(Relaxed)),
            ("records", "applied", c.records_applied.load(Relaxed)),
            ("records", "resent", c.resent.load(Relaxed)),
            ("records", "bulk", c.bulk_records.load(Relaxed)),
            (
                "records",
                "ipv6_unsent_to_version_1",
                c.ipv6_unsent.load(Relaxed),
            ),
            (
                "records",
                "ipv6_underlay_unsent_to_older_version",
                c.underlay6_unsent.load(Relaxed),
            ),
            ("replicas", "installed", c.installed.load(Relaxed)),
            ("replicas", "updated", c.updated.load(Relaxed)),
            ("replicas", "deleted", c.deleted.load(Relaxed)),
            ("replicas", "sync_conflict", c.conflicts.load(Relaxed)),
            (
                "replicas",
                "sync_replicas_full",
                c.replicas_full.load(Relaxed),
            ),
            ("drops", "sync_unknown_peer", c.unknown_peer.load(Relaxed)),
            ("drops", "sync_duplicate", c.duplicates.load(Relaxed)),
            ("drops", "sync_send_error", c.send_errors.load(Relaxed)),
        ];
        for (d, n) in crate::sync::wire::SyncDrop::ALL.iter().zip(&c.drops) {
            counts.push(("drops", d.name(), n.load(Relaxed)));
        }
        SyncSample {
            view: view.lock().map(|v| v.clone()).unwrap_or_default(),
            counts,
            queue_lost: queues.iter().map(|q| q.lost()).sum(),
        }
    }
}

/// The running thread.
#[derive(Debug)]
pub struct SyncHandle {
    stop: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub counters: Arc<SyncCounters>,
    pub view: Arc<Mutex<SyncView>>,
    pub local_addr: SocketAddr,
}

impl SyncHandle {
    pub fn view(&self) -> SyncView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Drained (true): this node's blocks go to the members that serve, and its peers are
    /// told so; false takes its share back.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Relaxed);
    }

    /// Stops after the peers have this node's last changes, telling them it leaves.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops at once and says nothing, as a crash would (the peers notice the silence).
    pub fn halt(mut self) {
        self.silent.store(true, Relaxed);
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The sync channel's socket, bound to `listen`.
pub fn bind(listen: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::bind(listen)
}

/// Starts the sync thread on `socket` (from [`bind`]). `clock` is the workers' epoch
/// (their `now` counts from it).
pub fn spawn(
    socket: UdpSocket,
    config: SyncConfig,
    table: Arc<SessionTable>,
    queues: Vec<Arc<SyncQueue>>,
    clock: Instant,
) -> io::Result<SyncHandle> {
    socket.set_nonblocking(true)?;
    set_receive_buffer(&socket);
    let local_addr = socket.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(SyncCounters::default());
    let view = Arc::new(Mutex::new(SyncView::default()));
    let draining = Arc::new(AtomicBool::new(false));
    let mut state = SyncState::new(config, table, queues, clock, Arc::clone(&counters));
    state.draining_flag = Arc::clone(&draining);
    let silent = Arc::new(AtomicBool::new(false));
    let (stop2, view2, silent2) = (Arc::clone(&stop), Arc::clone(&view), Arc::clone(&silent));
    let thread = std::thread::Builder::new()
        .name("egressgw-sync".into())
        .spawn(move || {
            state.run(&socket, &stop2, &view2);
            if !silent2.load(Relaxed) {
                state.leave(&socket);
            }
        })?;
    Ok(SyncHandle {
        stop,
        silent,
        draining,
        thread: Some(thread),
        counters,
        view,
        local_addr,
    })
}

fn set_receive_buffer(socket: &UdpSocket) {
    let _ = nix::sys::socket::setsockopt(
        &socket.as_fd(),
        nix::sys::socket::sockopt::RcvBufForce,
        &RECEIVE_BUFFER,
    )
    .or_else(|_| {
        nix::sys::socket::setsockopt(
            &socket.as_fd(),
            nix::sys::socket::sockopt::RcvBuf,
            &RECEIVE_BUFFER,
        )
    });
}

/// A new epoch at every start: microseconds of wall-clock time. Peers compare it with the
/// one they know only while they think this node alive (they forget it 300 ms after its
/// last word), so it needs to come after the last one only within minutes, which the
/// 35-minute half-period of a 32-bit microsecond count gives.
fn new_epoch() -> u32 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_micros() as u32).max(1)
}

#[derive(Debug)]
struct Peer {
    config: PeerConfig,
    tx: SendStream,
    batch: Batch,
    rx: PeerStream,
    heard: Option<u64>,
    alive: bool,
    /// Our control counter towards this peer.
    control: u32,
    /// Records messages since our last ack to it.
    unacked: u32,
    /// Where the bulk resend of our table to it stands.
    bulk: Option<u32>,
    /// It said we hold its whole table.
    synced_from: bool,
    /// We lost part of its stream: ask it for its table.
    want_resync: bool,
    /// When we last logged that its datagrams fail the checks (at most every 10 s).
    warned: Option<u64>,
    /// When we last started a bulk resend for it (a repeated request waits a while).
    bulk_started: Option<u64>,
    /// Our controls have told it that it holds our table since the last bulk began.
    told_in_sync: bool,
    /// Its controls say it is drained.
    draining: bool,
    /// The protocol version we speak to it: ours until it is heard speaking an older one
    /// (a rolling upgrade), then that one.
    version: u8,
}

#[derive(Debug)]
struct SyncState {
    config: SyncConfig,
    epoch: u32,
    table: Arc<SessionTable>,
    replica: NatWorker,
    queues: Vec<Arc<SyncQueue>>,
    clock: Instant,
    counters: Arc<SyncCounters>,
    peers: Vec<Peer>,
    events: Vec<SyncEvent>,
    records: Vec<Record>,
    resend: Vec<InsideKey>,
    buf: Vec<u8>,
    last_hello: u64,
    refresh_cursor: u32,
    last_refresh_step: u64,
    started: u64,
    /// The live members the last published ownership was computed over.
    members: Vec<MemberId>,
    /// Blocks per member in it, and its epoch (for the view).
    owned: Vec<(MemberId, usize)>,
    blocks_epoch: u32,
    /// This node is stopping: its controls say so.
    leaving: bool,
    /// Set by the daemon: this node is drained.
    draining_flag: Arc<AtomicBool>,
    /// As last taken from the flag (its controls say so).
    draining: bool,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

impl SyncState {
    fn new(
        config: SyncConfig,
        table: Arc<SessionTable>,
        queues: Vec<Arc<SyncQueue>>,
        clock: Instant,
        counters: Arc<SyncCounters>,
    ) -> SyncState {
        let peers = config
            .peers
            .iter()
            .map(|p| Peer {
                config: p.clone(),
                tx: SendStream::new(0),
                batch: Batch::new(config.payload),
                rx: PeerStream::default(),
                heard: None,
                alive: false,
                control: 0,
                unacked: 0,
                bulk: None,
                synced_from: false,
                want_resync: false,
                warned: None,
                bulk_started: None,
                told_in_sync: false,
                draining: false,
                version: config.version,
            })
            .collect();
        let started = ns(clock.elapsed());
        SyncState {
            epoch: new_epoch(),
            replica: table.replica(),
            buf: vec![0; config.payload],
            config,
            table,
            queues,
            clock,
            counters,
            peers,
            events: Vec::new(),
            records: Vec::new(),
            resend: Vec::new(),
            last_hello: 0,
            refresh_cursor: 0,
            last_refresh_step: started,
            started,
            members: Vec::new(),
            owned: Vec::new(),
            blocks_epoch: 0,
            leaving: false,
            draining_flag: Arc::default(),
            draining: false,
        }
    }

    /// Publishes the ownership of the port blocks among the members serving now (alive, not
    /// drained), when that set changed: a dead or drained member's blocks go to the others, a
    /// returning one's come back. Were every live member drained, they would keep their
    /// blocks: a set never disowns its ports.
    fn publish_blocks(&mut self) {
        let Some(published) = &self.config.blocks else {
            return;
        };
        let live = || {
            self.peers
                .iter()
                .filter(|p| p.alive)
                .map(|p| (p.config.id, p.draining))
                .chain(std::iter::once((self.config.node_id, self.draining)))
        };
        let mut members: Vec<MemberId> = live().filter(|m| !m.1).map(|m| m.0).collect();
        if members.is_empty() {
            members = live().map(|m| m.0).collect();
        }
        members.sort_unstable();
        if members == self.members {
            return;
        }
        let current = published.load();
        let epoch = current.ownership.epoch().wrapping_add(1);
        let ownership = Ownership::compute(current.ownership.plan(), &members, epoch);
        self.owned = members
            .iter()
            .map(|&m| (m, ownership.blocks_of(m).count()))
            .collect();
        self.blocks_epoch = epoch;
        published.publish(PortBlocks {
            ownership,
            ..(*current).clone()
        });
        self.members = members;
    }

    fn now(&self) -> u64 {
        ns(self.clock.elapsed())
    }

    fn now_s(&self) -> u32 {
        self.clock.elapsed().as_secs() as u32
    }

    fn run(&mut self, socket: &UdpSocket, stop: &AtomicBool, view: &Mutex<SyncView>) {
        let mut rbuf = vec![0u8; 65536];
        while !stop.load(Relaxed) {
            self.receive(socket, &mut rbuf);
            self.turn(socket);
            if let Ok(mut v) = view.try_lock() {
                *v = self.view();
            }
        }
    }

    /// Waits up to a tick (ppoll: a socket timeout would round up to a jiffy), then takes
    /// what is queued without waiting.
    fn receive(&mut self, socket: &UdpSocket, rbuf: &mut [u8]) {
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        let _ = ppoll(&mut fds, Some(TimeSpec::from_duration(TICK)), None);
        for _ in 0..256 {
            let Ok((n, from)) = socket.recv_from(rbuf) else {
                break;
            };
            self.on_datagram(socket, &rbuf[..n], from);
        }
    }

    /// Everything but receiving: workers' events, flushes, hellos, resends, bulk, refresh,
    /// replica expiry.
    fn turn(&mut self, socket: &UdpSocket) {
        let now = self.now();
        let now_s = self.now_s();
        let draining = self.draining_flag.load(Relaxed);
        if draining != self.draining {
            // Said at once: the peers move the blocks on this word, not at the next hello.
            self.draining = draining;
            for p in 0..self.peers.len() {
                self.send_control(socket, p);
            }
        }
        self.events.clear();
        for q in &self.queues {
            q.drain_into(&mut self.events, 4096);
        }
        for i in 0..self.events.len() {
            let record = match self.events[i] {
                SyncEvent::Upsert { slot, generation } => match self.table.read_entry(slot) {
                    Some((entry, state)) if state.generation == generation => {
                        upsert(entry, state, now_s)
                    }
                    // Gone or reused since: its delete, or its new session, follows.
                    _ => continue,
                },
                SyncEvent::Delete { inside } => Record::Delete { inside },
            };
            self.push_to_all(socket, record, now);
        }
        for p in 0..self.peers.len() {
            let alive = self.peers[p]
                .heard
                .is_some_and(|h| now.saturating_sub(h) < ns(DEAD_AFTER));
            if self.peers[p].alive && !alive {
                self.gone(p);
            }
            if !self.peers[p].alive {
                continue;
            }
            self.resend.clear();
            self.peers[p].tx.due(now, &mut self.resend);
            self.send_resends(socket, p, now);
            self.bulk_step(socket, p, now);
            // The queues are drained: what this turn gathered goes now (full batches went
            // as they filled). At a high rate the turn's batches are full ones.
            if !self.peers[p].batch.is_empty() || self.peers[p].batch.is_due(now, ns(FLUSH_AFTER)) {
                self.flush(socket, p, 0, now);
            }
            if self.peers[p].tx.take_resync() {
                self.start_bulk(p, now);
            }
            // Acks go back within a turn, and the news that a bulk is delivered at once,
            // not at the next hello.
            let peer = &self.peers[p];
            if peer.unacked > 0 || (!peer.told_in_sync && peer.tx.mark_delivered()) {
                self.send_control(socket, p);
            }
        }
        if now.saturating_sub(self.last_hello) >= ns(HELLO_EVERY) {
            self.last_hello = now;
            for p in 0..self.peers.len() {
                self.send_control(socket, p);
            }
        }
        self.publish_blocks();
        self.refresh_step(socket, now, now_s);
        self.replica.expire(now_s, 64);
    }

    fn push_to_all(&mut self, socket: &UdpSocket, record: Record, now: u64) {
        for p in 0..self.peers.len() {
            if self.peers[p].alive {
                self.push(socket, p, record, 0, now);
            }
        }
    }

    fn push(&mut self, socket: &UdpSocket, p: usize, record: Record, flags: u16, now: u64) {
        if !record.fits_version(self.peers[p].version) {
            let unsent = if record.min_version() == 2 {
                &self.counters.ipv6_unsent
            } else {
                &self.counters.underlay6_unsent
            };
            unsent.fetch_add(1, Relaxed);
            return;
        }
        if !self.peers[p].batch.push(record, now) {
            self.flush(socket, p, flags, now);
            self.peers[p].batch.push(record, now);
        }
    }

    /// Sends peer `p`'s batch as one records message.
    fn flush(&mut self, socket: &UdpSocket, p: usize, flags: u16, now: u64) {
        self.records.clear();
        self.peers[p].batch.take_into(&mut self.records);
        if self.records.is_empty() {
            return;
        }
        let peer = &mut self.peers[p];
        let header = Header {
            kind: Kind::Records,
            sender: self.config.node_id,
            epoch: self.epoch,
            seq: peer.tx.next_seq(),
            ack: 0,
            highest: 0,
            low_water: peer.tx.low_water(),
            flags,
            acked_epoch: 0,
        };
        let Some(mut enc) = Encoder::versioned(&mut self.buf, header, peer.version) else {
            return;
        };
        for r in &self.records {
            enc.push(r);
        }
        let bytes = enc.finish(&self.config.key);
        send(socket, bytes, peer.config.address, &self.counters);
        peer.tx
            .sent(self.records.iter().map(Record::inside).collect(), now);
        self.counters
            .records_sent
            .fetch_add(self.records.len() as u64, Relaxed);
    }

    /// The current state of each session in `self.resend`, to peer `p`.
    fn send_resends(&mut self, socket: &UdpSocket, p: usize, now: u64) {
        if self.resend.is_empty() {
            return;
        }
        let now_s = self.now_s();
        self.counters
            .resent
            .fetch_add(self.resend.len() as u64, Relaxed);
        for i in 0..self.resend.len() {
            let k = self.resend[i];
            let record = match self.table.lookup_entry(&k) {
                Some((_, entry, state)) => upsert(entry, state, now_s),
                None => Record::Delete { inside: k },
            };
            self.push(socket, p, record, 0, now);
        }
        self.flush(socket, p, 0, now);
        self.peers[p].tx.resends_sent();
    }

    fn start_bulk(&mut self, p: usize, now: u64) {
        let peer = &mut self.peers[p];
        peer.bulk = Some(0);
        peer.bulk_started = Some(now);
        peer.told_in_sync = false;
    }

    /// Sends the next part of our table to peer `p`, as far as its acks allow.
    fn bulk_step(&mut self, socket: &UdpSocket, p: usize, now: u64) {
        let Some(mut cursor) = self.peers[p].bulk else {
            return;
        };
        let now_s = self.now_s();
        let table = Arc::clone(&self.table);
        let mut found = Vec::new();
        while self.peers[p].tx.outstanding() < BULK_WINDOW {
            found.clear();
            cursor = table.scan(cursor, 4096, |_, entry, state| {
                found.push(upsert(entry, state, now_s))
            });
            self.counters
                .bulk_records
                .fetch_add(found.len() as u64, Relaxed);
            for r in &found {
                self.push(socket, p, *r, flags::BULK, now);
            }
            if cursor == 0 {
                self.flush(socket, p, flags::BULK, now);
                let peer = &mut self.peers[p];
                peer.tx.set_mark();
                peer.bulk = None;
                return;
            }
        }
        self.peers[p].bulk = Some(cursor);
    }

    /// Ack, NACKs, hello: one control message to peer `p`.
    fn send_control(&mut self, socket: &UdpSocket, p: usize) {
        let peer = &mut self.peers[p];
        peer.control = peer.control.wrapping_add(1);
        peer.unacked = 0;
        let mut f = 0;
        if peer.want_resync {
            f |= flags::RESYNC_REQUEST;
        }
        if peer.tx.mark_delivered() {
            f |= flags::IN_SYNC;
            peer.told_in_sync = true;
        }
        if peer.rx.anchored() {
            f |= flags::ACKS;
        }
        if self.leaving {
            f |= flags::LEAVING;
        }
        if self.draining {
            f |= flags::DRAINING;
        }
        let header = Header {
            kind: Kind::Control,
            sender: self.config.node_id,
            epoch: self.epoch,
            seq: peer.control,
            ack: peer.rx.ack(),
            highest: peer.rx.reported_highest(),
            low_water: peer.tx.low_water(),
            flags: f,
            acked_epoch: peer.rx.epoch().unwrap_or(0),
        };
        let Some(mut enc) = Encoder::versioned(&mut self.buf, header, peer.version) else {
            return;
        };
        for n in peer.rx.nacks() {
            enc.push_nack(n);
        }
        let bytes = enc.finish(&self.config.key);
        send(socket, bytes, peer.config.address, &self.counters);
    }

    fn on_datagram(&mut self, socket: &UdpSocket, bytes: &[u8], from: SocketAddr) {
        // By address and port alone: an IPv6 source may carry a flow label or scope.
        let same = |a: &SocketAddr| a.ip() == from.ip() && a.port() == from.port();
        let Some(p) = self.peers.iter().position(|p| same(&p.config.address)) else {
            self.counters.unknown_peer.fetch_add(1, Relaxed);
            return;
        };
        let msg = match wire::decode_up_to(bytes, &self.config.key, self.config.version) {
            Ok(m) => m,
            Err(d) => {
                let i = SyncDrop::ALL.iter().position(|x| *x == d).unwrap_or(0);
                self.counters.drops[i].fetch_add(1, Relaxed);
                // A configured peer whose datagrams fail is most likely set up with another
                // key or version: said out loud, not only counted.
                let now = self.now();
                let peer = &mut self.peers[p];
                if peer
                    .warned
                    .is_none_or(|t| now.saturating_sub(t) >= ns(WARN_EVERY))
                {
                    peer.warned = Some(now);
                    tracing::warn!(
                        peer = peer.config.id,
                        address = %from,
                        reason = d.name(),
                        "sync: a datagram from a configured peer failed its checks (another key, or another version?)"
                    );
                }
                return;
            }
        };
        if msg.header.sender != self.peers[p].config.id {
            self.counters.unknown_peer.fetch_add(1, Relaxed);
            return;
        }
        self.counters.messages_received.fetch_add(1, Relaxed);
        self.speak(p, msg.version);
        let now = self.now();
        let h = msg.header;
        match h.kind {
            Kind::Records => {
                let peer = &mut self.peers[p];
                peer.rx.give_up_below(h.low_water);
                let arrival = peer.rx.on_records(h.epoch, h.seq);
                match arrival {
                    Arrival::Duplicate | Arrival::Stale => {
                        self.counters.duplicates.fetch_add(1, Relaxed);
                        return;
                    }
                    Arrival::Jumped => peer.want_resync = true,
                    Arrival::New | Arrival::Restarted => {}
                }
                self.heard(p, now);
                let gap = self.peers[p].rx.nacks().next().is_some();
                self.apply(msg.records());
                let peer = &mut self.peers[p];
                peer.unacked += 1;
                if gap || peer.unacked >= ACK_EVERY {
                    self.send_control(socket, p);
                }
            }
            Kind::Control => {
                match self.peers[p].rx_control(h.epoch, h.seq) {
                    ControlArrival::Replay => {
                        self.counters.duplicates.fetch_add(1, Relaxed);
                        return;
                    }
                    ControlArrival::NewEpoch => {
                        // It (re)started: what we hold outstanding for it is moot, and it
                        // gets our whole table.
                        let peer = &mut self.peers[p];
                        peer.rx.expect_epoch(h.epoch);
                        peer.tx.forget();
                        peer.synced_from = false;
                        self.start_bulk(p, now);
                    }
                    ControlArrival::Accepted => {}
                }
                self.peers[p].draining = h.flags & flags::DRAINING != 0;
                if h.flags & flags::LEAVING != 0 {
                    // A planned stop: its stream is delivered; its blocks move now.
                    if self.peers[p].alive {
                        self.gone(p);
                    }
                    return;
                }
                self.heard(p, now);
                let nacks: Vec<Nack> = msg.nacks().collect();
                let peer = &mut self.peers[p];
                peer.rx.give_up_below(h.low_water);
                self.resend.clear();
                // Its acks and its word that we hold its table are about this life of ours
                // only.
                let about_us = h.acked_epoch == self.epoch;
                if about_us && h.flags & flags::ACKS != 0 {
                    peer.tx.on_ack(h.ack, h.highest, &nacks, &mut self.resend);
                }
                if about_us && h.flags & flags::IN_SYNC != 0 {
                    peer.synced_from = true;
                    peer.want_resync = false;
                }
                let repeat_ok = peer
                    .bulk_started
                    .is_none_or(|t| now.saturating_sub(t) > ns(DEAD_AFTER));
                if h.flags & flags::RESYNC_REQUEST != 0 && peer.bulk.is_none() && repeat_ok {
                    self.start_bulk(p, now);
                }
                self.send_resends(socket, p, now);
            }
        }
    }

    /// Peer `p` is dead or has left: what we hold for it is dropped (it gets our whole
    /// table when it is back), and its blocks go to the members still alive.
    fn gone(&mut self, p: usize) {
        let peer = &mut self.peers[p];
        peer.alive = false;
        peer.heard = None;
        peer.rx = PeerStream::default();
        peer.tx.forget();
        peer.bulk = None;
        peer.synced_from = false;
        peer.draining = false;
        let mut dropped = Vec::new();
        peer.batch.take_into(&mut dropped);
        self.publish_blocks();
    }

    /// A planned stop: the workers have stopped; their last changes go out and are
    /// acknowledged (within `LEAVE_WITHIN`), then every peer hears that this node leaves, so
    /// it moves this node's blocks at once. A planned restart loses no session so.
    fn leave(&mut self, socket: &UdpSocket) {
        let mut rbuf = vec![0u8; 65536];
        let until = self.now() + ns(LEAVE_WITHIN);
        loop {
            self.receive(socket, &mut rbuf);
            self.turn(socket);
            let delivered = self.queues.iter().all(|q| q.is_empty())
                && self
                    .peers
                    .iter()
                    .all(|p| !p.alive || (p.tx.outstanding() == 0 && p.batch.is_empty()));
            if delivered || self.now() >= until {
                break;
            }
        }
        self.leaving = true;
        // Twice: a lost one costs the peer the dead interval only.
        for _ in 0..2 {
            for p in 0..self.peers.len() {
                self.send_control(socket, p);
            }
        }
    }

    /// Peer `p` was heard speaking `version`: we speak it too, up to our own (an older one
    /// during a rolling upgrade; ours again once it is upgraded).
    fn speak(&mut self, p: usize, version: u8) {
        let version = version.min(self.config.version);
        let peer = &mut self.peers[p];
        if peer.version != version {
            tracing::warn!(
                peer = peer.config.id,
                version,
                "sync: the peer speaks protocol version {version}; speaking it to the peer{}",
                match version {
                    1 => " (IPv6 sessions are not replicated to it until it is upgraded)",
                    2 => " (sessions from nodes on the IPv6 underlay are not replicated to it until it is upgraded)",
                    _ => "",
                }
            );
            peer.version = version;
        }
    }

    /// Peer `p` spoke: a peer that was dead (or never heard) gets our whole table.
    fn heard(&mut self, p: usize, now: u64) {
        let peer = &mut self.peers[p];
        peer.heard = Some(now);
        if !peer.alive {
            peer.alive = true;
            peer.synced_from = false;
            peer.tx.forget();
            self.start_bulk(p, now);
        }
    }

    fn apply(&mut self, records: impl Iterator<Item = Record>) {
        let now_s = self.now_s();
        let c = &self.counters;
        for r in records {
            c.records_applied.fetch_add(1, Relaxed);
            match r {
                Record::Upsert(u) => {
                    let last_seen = now_s.saturating_sub(u.age);
                    let counter = match self.replica.install(&u.session, u.tcp_flags, last_seen) {
                        ReplicaOutcome::Installed => &c.installed,
                        ReplicaOutcome::Updated => &c.updated,
                        ReplicaOutcome::Conflict => &c.conflicts,
                        ReplicaOutcome::Full => &c.replicas_full,
                    };
                    counter.fetch_add(1, Relaxed);
                }
                Record::Delete { inside } => {
                    if self.replica.remove(&inside) {
                        c.deleted.fetch_add(1, Relaxed);
                    }
                }
                Record::Refresh { inside, age } => {
                    self.replica.refresh(&inside, now_s.saturating_sub(age));
                }
            }
        }
    }

    /// Sessions' last-seen to the peers, spread over `REFRESH_EVERY`: the replicas' too, as
    /// this node may be the one translating them (their own member died), and a peer that
    /// joined since holds them from our bulk resend.
    fn refresh_step(&mut self, socket: &UdpSocket, now: u64, now_s: u32) {
        let local = u64::from(self.table.slot_count());
        let elapsed = now.saturating_sub(self.last_refresh_step);
        let budget = (local * elapsed / ns(REFRESH_EVERY)) as u32;
        if budget == 0 || !self.peers.iter().any(|p| p.alive) {
            return;
        }
        self.last_refresh_step = now;
        let end = (u64::from(self.refresh_cursor) + u64::from(budget)).min(local) as u32;
        let table = Arc::clone(&self.table);
        let mut found = Vec::new();
        table.scan(
            self.refresh_cursor,
            end - self.refresh_cursor,
            |_, entry, state| {
                found.push(Record::Refresh {
                    inside: entry.inside(),
                    age: now_s.saturating_sub(state.last_seen),
                })
            },
        );
        self.refresh_cursor = if u64::from(end) >= local { 0 } else { end };
        for r in found {
            self.push_to_all(socket, r, now);
        }
    }

    fn view(&self) -> SyncView {
        let now = self.now();
        let alive: Vec<&Peer> = self.peers.iter().filter(|p| p.alive).collect();
        let alone_long_enough = now.saturating_sub(self.started) >= ns(DEAD_AFTER);
        let owned = |m: MemberId| {
            self.owned
                .iter()
                .find(|(x, _)| *x == m)
                .map_or(0, |(_, n)| *n)
        };
        SyncView {
            node_id: self.config.node_id,
            blocks: owned(self.config.node_id),
            blocks_epoch: self.blocks_epoch,
            draining: self.draining,
            epoch: self.epoch,
            in_sync: if alive.is_empty() {
                alone_long_enough
            } else {
                alive.iter().all(|p| p.synced_from)
            },
            peers: self
                .peers
                .iter()
                .map(|p| PeerView {
                    id: p.config.id,
                    address: p.config.address,
                    alive: p.alive,
                    synced_from: p.synced_from,
                    bulk_to: p.bulk.is_some(),
                    outstanding: p.tx.outstanding(),
                    oldest_unacked_us: p.tx.oldest_sent_at().map(|t| now.saturating_sub(t) / 1000),
                    heard_ms_ago: p.heard.map(|h| now.saturating_sub(h) / 1_000_000),
                    blocks: owned(p.config.id),
                    draining: p.draining,
                })
                .collect(),
        }
    }
}

impl Peer {
    fn rx_control(&mut self, epoch: u32, counter: u32) -> ControlArrival {
        self.rx.on_control(epoch, counter)
    }
}

fn upsert(session: Entry, state: State, now_s: u32) -> Record {
    Record::Upsert(Upsert {
        session,
        tcp_flags: state.flags,
        age: now_s.saturating_sub(state.last_seen),
    })
}

fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr, counters: &SyncCounters) {
    match socket.send_to(bytes, to) {
        Ok(_) => counters.messages_sent.fetch_add(1, Relaxed),
        Err(_) => counters.send_errors.fetch_add(1, Relaxed),
    };
}
