//! The session table: fixed slots, an inside index and an outside index, shared by all
//! workers and by both address families (a slot holds an IPv4 or an IPv6 session; the bound
//! on sessions is one). Any worker looks sessions up (no lock, no write); each worker creates
//! sessions only in its own slots with ports from its own pool, and only it expires them.

use super::af::{Family, V4, V6};
use super::blocks::PortBlocks;
use super::fair::{Destination, FairShare, Flow, PodUsage};
use super::flow::{FlowHasher, FlowKey, FlowKey6, InsideKey};
use super::index::Index;
use super::ports::PortPool;
use super::session::{
    Binding, Binding6, Entry, Session, Session6, Slot, Snapshot, Snapshot6, State, TunnelEndpoint,
};
use super::tcp;
use super::{NatConfig, Timeouts};
use crate::drop::DropReason;
use crate::mem::hugemem::HugeSlice;
use core::ops::Range;
use std::sync::Arc;

/// Where a worker's session changes go (the sync thread's queue, when the node replicates).
/// Called on the slow path only: a new session, a TCP state change, an expiry or flush.
pub trait SessionEvents: Send + Sync + core::fmt::Debug {
    /// Session `slot` (generation `generation`) is new or its TCP state changed.
    fn upsert(&self, slot: u32, generation: u32);
    /// The session of pod tuple `inside` is gone.
    fn delete(&self, inside: InsideKey);
}

/// What installing a replicated session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaOutcome {
    Installed,
    /// The replica was there; its TCP state and last-seen were brought forward.
    Updated,
    /// A session of this node holds the pod tuple or the reply tuple: it stays, the
    /// replica is refused (counted as `sync_conflict`).
    Conflict,
    /// No replica slot is free (counted as `sync_replicas_full`).
    Full,
}

/// A session found or created: its slot and a consistent copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<S> {
    pub idx: u32,
    pub snap: S,
}

pub type SessionRef = Found<Snapshot>;
pub type SessionRef6 = Found<Snapshot6>;

/// The shared table.
#[derive(Debug)]
pub struct SessionTable {
    sessions: HugeSlice<Session>,
    /// IPv6 sessions, numbered from `max_sessions` in the indexes.
    sessions6: HugeSlice<Session6>,
    inside: Index,
    outside: Index,
    hasher: FlowHasher,
    config: NatConfig,
}

impl SessionTable {
    pub fn new(config: NatConfig) -> Arc<SessionTable> {
        Self::with_hasher(config, FlowHasher::random())
    }

    pub fn with_hasher(config: NatConfig, hasher: FlowHasher) -> Arc<SessionTable> {
        assert!(config.workers > 0, "at least one worker");
        let n = config.max_sessions as usize;
        let n6 = config.max_sessions_v6 as usize;
        assert!(
            u32::try_from(n + n6).is_ok(),
            "sessions of both families number under 2^32"
        );
        Arc::new(SessionTable {
            sessions: HugeSlice::zeroed(n),
            sessions6: HugeSlice::zeroed(n6),
            inside: Index::with_capacity(n + n6),
            outside: Index::with_capacity(n + n6),
            hasher,
            config,
        })
    }

    pub fn config(&self) -> &NatConfig {
        &self.config
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.config.timeouts
    }

    /// Bytes allocated for sessions and both indexes.
    pub fn memory_bytes(&self) -> usize {
        self.sessions.len() * core::mem::size_of::<Session>()
            + self.sessions6.len() * core::mem::size_of::<Session6>()
            + self.inside.memory_bytes()
            + self.outside.memory_bytes()
    }

    /// Entries of the inside and the outside index (a scan of both: for stats, not the
    /// packet path). Each equals the live sessions when nothing leaks.
    pub fn index_entries(&self) -> (usize, usize) {
        (self.inside.len(), self.outside.len())
    }

    /// Faults the sessions and both indexes in now, so that no worker or sync thread later
    /// stalls on a first touch (a 2 MiB fault every 32768 sessions); the daemon does it at
    /// start. False if the kernel refused (the table then works as before).
    pub fn prefault(&self) -> bool {
        // Each one, even after a refusal.
        let sessions = self.sessions.populate();
        let sessions6 = self.sessions6.populate();
        let inside = self.inside.populate();
        let outside = self.outside.populate();
        sessions && sessions6 && inside && outside
    }

    #[inline(always)]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash(key)
    }

    #[inline(always)]
    pub fn hash6(&self, key: &FlowKey6) -> u64 {
        self.hasher.hash6(key)
    }

    /// Slot `idx` of family `A`, if `idx` is one.
    #[inline(always)]
    fn slot<A: Family>(&self, idx: u32) -> Option<&A::Slot> {
        A::slot(
            &self.sessions,
            &self.sessions6,
            self.config.max_sessions,
            idx,
        )
    }

    /// IPv4 slot `idx`, if `idx` is one.
    #[inline(always)]
    fn session(&self, idx: u32) -> Option<&Session> {
        self.slot::<V4>(idx)
    }

    /// IPv6 slot `idx`, if `idx` is one (they follow the IPv4 ones).
    #[inline(always)]
    fn session6(&self, idx: u32) -> Option<&Session6> {
        self.slot::<V6>(idx)
    }

    /// Starts fetching a key's bucket: of the inside index for a pod's packet, else of the
    /// outside index.
    #[inline(always)]
    pub fn prefetch_bucket(&self, inside: bool, hash: u64) {
        if inside {
            self.inside.prefetch(hash)
        } else {
            self.outside.prefetch(hash)
        }
    }

    #[inline(always)]
    pub fn prefetch_inside(&self, hash: u64) {
        self.inside.prefetch(hash);
    }

    /// Second fetch stage: once the buckets of a batch are arriving, start fetching the
    /// sessions they point at, so each lookup finds both lines present. Returns the slot (a
    /// hint for the lookup proper), or None when the home bucket holds no candidate (most
    /// likely a new flow).
    #[inline(always)]
    pub fn prefetch_session(&self, inside: bool, hash: u64) -> Option<u32> {
        let index = if inside { &self.inside } else { &self.outside };
        let idx = index.candidate(hash)?;
        self.sessions.get(idx as usize)?.prefetch();
        Some(idx)
    }

    /// The live session whose pod-side tuple is `key` (`hash` = `self.hash(key)`).
    #[inline]
    pub fn lookup_inside(&self, key: &FlowKey, hash: u64) -> Option<SessionRef> {
        self.lookup_inside_of::<V4>(key, hash)
    }

    /// [`Self::lookup_inside`] for IPv6 (`hash` = `self.hash6(key)`).
    #[inline]
    pub fn lookup_inside6(&self, key: &FlowKey6, hash: u64) -> Option<SessionRef6> {
        self.lookup_inside_of::<V6>(key, hash)
    }

    #[inline(always)]
    fn lookup_inside_of<A: Family>(&self, key: &A::Key, hash: u64) -> Option<Found<A::Snap>> {
        self.lookup::<A>(&self.inside, hash, |snap| A::is_inside(snap, key))
    }

    #[inline(always)]
    fn lookup_outside_of<A: Family>(&self, key: &A::Key, hash: u64) -> Option<Found<A::Snap>> {
        self.lookup::<A>(&self.outside, hash, |snap| A::is_outside(snap, key))
    }

    /// The IPv6 egress path's lookup: the session's first line alone, tried at `hint` first
    /// (see [`Self::lookup_binding_hinted`]).
    #[inline]
    pub fn lookup_binding6_hinted(
        &self,
        key: &FlowKey6,
        hash: u64,
        hint: Option<u32>,
    ) -> Option<(u32, Binding6)> {
        let read = |idx: u32| {
            let b = self.session6(idx)?.read_binding()?;
            b.is_inside(key).then_some((idx, b))
        };
        if let Some(found) = hint.and_then(read) {
            return Some(found);
        }
        let mut found = None;
        self.inside.find(hash, |idx| {
            found = read(idx);
            found.is_some()
        })?;
        found
    }

    /// The live IPv6 session whose reply tuple is `key`, tried at `hint` first.
    #[inline]
    pub fn lookup_outside6_hinted(
        &self,
        key: &FlowKey6,
        hash: u64,
        hint: Option<u32>,
    ) -> Option<SessionRef6> {
        let hinted = hint.and_then(|idx| {
            let snap = self.session6(idx)?.read()?;
            snap.is_outside(key).then_some(Found { idx, snap })
        });
        hinted.or_else(|| self.lookup_outside6(key, hash))
    }

    /// The live IPv6 session whose reply tuple is `key` (remote -> egress IP).
    #[inline]
    pub fn lookup_outside6(&self, key: &FlowKey6, hash: u64) -> Option<SessionRef6> {
        self.lookup_outside_of::<V6>(key, hash)
    }

    /// Starts fetching the second line of the IPv6 session in slot `idx` (the return path
    /// reads its tunnel there).
    #[inline(always)]
    pub fn prefetch_second_line(&self, idx: u32) {
        if let Some(s) = self.session6(idx) {
            s.prefetch_second_line();
        }
    }

    /// [`Self::prefetch_session`] for IPv6 sessions (their first line).
    #[inline(always)]
    pub fn prefetch_session6(&self, inside: bool, hash: u64) -> Option<u32> {
        let index = if inside { &self.inside } else { &self.outside };
        let idx = index.candidate(hash)?;
        self.session6(idx)?.prefetch();
        Some(idx)
    }

    /// [`Self::touch_slot`] for an IPv6 session.
    #[inline]
    pub fn touch_slot6(
        &self,
        idx: u32,
        generation: u32,
        now: u32,
        update: impl Fn(u8) -> u8,
    ) -> bool {
        self.session6(idx)
            .is_some_and(|s| s.touch(generation, now, update))
    }

    /// [`Self::lookup_inside`] for the egress fast path: slot, generation and translation only.
    #[inline]
    pub fn lookup_binding(&self, key: &FlowKey, hash: u64) -> Option<(u32, Binding)> {
        let mut found = None;
        self.inside.find(hash, |idx| {
            match self.session(idx).and_then(Session::read_binding) {
                Some(b) if b.is_inside(key) => {
                    found = Some((idx, b));
                    true
                }
                _ => false,
            }
        })?;
        found
    }

    /// [`Self::lookup_binding`], trying first `hint`, the slot [`Self::prefetch_session`]
    /// found: when it holds the key (nearly always) the bucket is not scanned a second time.
    /// Live keys are unique, so a slot holding the key is the one the scan would find.
    #[inline]
    pub fn lookup_binding_hinted(
        &self,
        key: &FlowKey,
        hash: u64,
        hint: Option<u32>,
    ) -> Option<(u32, Binding)> {
        let hinted = hint.and_then(|idx| {
            let b = self.sessions.get(idx as usize)?.read_binding()?;
            b.is_inside(key).then_some((idx, b))
        });
        hinted.or_else(|| self.lookup_binding_scan(key, hash))
    }

    /// The scan behind a missing or wrong hint (mostly a new flow, whose creation costs far
    /// more than the call), out of line: the hinted path stays small.
    #[inline(never)]
    fn lookup_binding_scan(&self, key: &FlowKey, hash: u64) -> Option<(u32, Binding)> {
        self.lookup_binding(key, hash)
    }

    /// [`Self::lookup_outside`] with a hint, as [`Self::lookup_binding_hinted`].
    #[inline]
    pub fn lookup_outside_hinted(
        &self,
        key: &FlowKey,
        hash: u64,
        hint: Option<u32>,
    ) -> Option<SessionRef> {
        let hinted = hint.and_then(|idx| {
            let snap = self.sessions.get(idx as usize)?.read()?;
            snap.is_outside(key).then_some(SessionRef { idx, snap })
        });
        hinted.or_else(|| self.lookup_outside_scan(key, hash))
    }

    /// The scan behind a missing or wrong hint, out of line: the hinted path stays small.
    #[cold]
    #[inline(never)]
    fn lookup_outside_scan(&self, key: &FlowKey, hash: u64) -> Option<SessionRef> {
        self.lookup_outside(key, hash)
    }

    /// The live session whose reply tuple is `key` (remote -> egress IP).
    #[inline]
    pub fn lookup_outside(&self, key: &FlowKey, hash: u64) -> Option<SessionRef> {
        self.lookup_outside_of::<V4>(key, hash)
    }

    /// Each tag match is read whole under the sequence lock and its key compared. A slot being
    /// recycled fails that check and the scan goes on, so a retired entry never hides a live
    /// one for the same key. (The 32-bit tags make a wasted read one in four billion.)
    #[inline(always)]
    fn lookup<A: Family>(
        &self,
        index: &Index,
        hash: u64,
        is_key: impl Fn(&A::Snap) -> bool,
    ) -> Option<Found<A::Snap>> {
        let mut found = None;
        index.find(hash, |idx| match self.slot::<A>(idx).and_then(A::read) {
            Some(snap) if is_key(&snap) => {
                found = Some(Found { idx, snap });
                true
            }
            _ => false,
        })?;
        found
    }

    /// Refreshes last-seen and applies `update` to the flags (any worker may call this).
    /// True when the flags changed.
    #[inline]
    pub fn touch(&self, s: &SessionRef, now: u32, update: impl Fn(u8) -> u8) -> bool {
        self.touch_slot(s.idx, s.snap.generation, now, update)
    }

    /// [`Self::touch`] by slot and generation.
    #[inline]
    pub fn touch_slot(
        &self,
        idx: u32,
        generation: u32,
        now: u32,
        update: impl Fn(u8) -> u8,
    ) -> bool {
        self.sessions[idx as usize].touch(generation, now, update)
    }

    /// A consistent copy of slot `idx` of either family, if it is live (for the sync
    /// thread).
    pub fn read_entry(&self, idx: u32) -> Option<(Entry, State)> {
        if let Some(s) = self.session(idx) {
            let snap = s.read()?;
            return Some((Entry::V4(snap.data()), snap.state));
        }
        let snap = self.session6(idx)?.read()?;
        Some((Entry::V6(snap.data()), snap.state))
    }

    /// The live session of pod tuple `inside`, of either family: its slot, a copy and its
    /// state (for the sync thread).
    pub fn lookup_entry(&self, inside: &InsideKey) -> Option<(u32, Entry, State)> {
        match inside {
            InsideKey::V4(k) => {
                let s = self.lookup_inside(k, self.hash(k))?;
                Some((s.idx, Entry::V4(s.snap.data()), s.snap.state))
            }
            InsideKey::V6(k) => {
                let s = self.lookup_inside6(k, self.hash6(k))?;
                Some((s.idx, Entry::V6(s.snap.data()), s.snap.state))
            }
        }
    }

    /// Refreshes slot `idx` of either family, as [`Self::touch_slot`].
    fn touch_any(&self, idx: u32, generation: u32, now: u32, update: impl Fn(u8) -> u8) -> bool {
        match self.session(idx) {
            Some(s) => s.touch(generation, now, update),
            None => self.touch_slot6(idx, generation, now, update),
        }
    }

    /// The IPv4 slots that hold replicated sessions.
    pub fn replica_slots(&self) -> Range<u32> {
        let n = self.config.max_sessions;
        n - self.config.replica_slots.min(n)..n
    }

    /// The IPv6 slots that hold replicated sessions (the last of the IPv6 ones).
    pub fn replica_slots6(&self) -> Range<u32> {
        let (base, n) = (self.config.max_sessions, self.config.max_sessions_v6);
        base + n - self.config.replica_slots_v6.min(n)..base + n
    }

    /// Slots of both families: the IPv4 ones, then the IPv6 ones.
    pub fn slot_count(&self) -> u32 {
        self.config.max_sessions + self.config.max_sessions_v6
    }

    /// Calls `f` with each live session of either family in slots `from..` (a replica's
    /// too), up to `budget` slots; returns where the next call goes on (0 after the last
    /// slot). For scans that must not hold a whole table's copy (refresh, bulk resend).
    pub fn scan(&self, from: u32, budget: u32, mut f: impl FnMut(u32, Entry, State)) -> u32 {
        let n = self.slot_count();
        let end = from.saturating_add(budget).min(n);
        for idx in from.min(n)..end {
            if let Some((entry, state)) = self.read_entry(idx) {
                f(idx, entry, state);
            }
        }
        if end >= n {
            0
        } else {
            end
        }
    }

    /// Copies of all live sessions (for the control plane; not for the packet path).
    pub fn live_sessions(&self) -> Vec<SessionRef> {
        self.sessions
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.read().map(|snap| SessionRef {
                    idx: i as u32,
                    snap,
                })
            })
            .collect()
    }

    /// Every live session of both families with its state, read one slot at a time (for the
    /// control plane; not for the packet path).
    pub fn live_entries(&self) -> impl Iterator<Item = (Entry, State)> + '_ {
        let v4 = self.sessions.iter().filter_map(|s| {
            let snap = s.read()?;
            Some((Entry::V4(snap.data()), snap.state))
        });
        let v6 = self.sessions6.iter().filter_map(|s| {
            let snap = s.read()?;
            Some((Entry::V6(snap.data()), snap.state))
        });
        v4.chain(v6)
    }

    /// The IPv4 slots worker `id` owns.
    fn slots_of(&self, id: u16) -> Range<u32> {
        self.share_of(id, 0, self.replica_slots().start)
    }

    /// The IPv6 slots worker `id` owns.
    fn slots6_of(&self, id: u16) -> Range<u32> {
        let base = self.config.max_sessions;
        self.share_of(id, base, self.replica_slots6().start - base)
    }

    /// Worker `id`'s equal share of the `n` slots from `base` (the last takes the rest).
    fn share_of(&self, id: u16, base: u32, n: u32) -> Range<u32> {
        let w = u32::from(self.config.workers);
        let share = n / w;
        let lo = share * u32::from(id);
        let hi = if u32::from(id) + 1 == w {
            n
        } else {
            lo + share
        };
        base + lo..base + hi
    }

    /// The handle worker `id` uses to create and expire its sessions. Exactly one per id.
    pub fn worker(self: &Arc<Self>, id: u16) -> NatWorker {
        assert!(
            id < self.config.workers,
            "worker {id} of {}",
            self.config.workers
        );
        let ports = PortPool::for_worker(self.config.port_range.clone(), id, self.config.workers);
        let slots = self.slots_of(id);
        // With every limit off a worker keeps no accounts: nothing to refuse, and a new flow
        // pays nothing for them.
        let fair = self.config.fair.any().then(|| {
            let mut f = FairShare::new(
                self.config.fair,
                self.config.workers,
                slots.len(),
                self.hasher,
            );
            f.set_ports(ports.len());
            f
        });
        let mut w = self.owner(id, slots, ports);
        w.fair = fair;
        w.set_slots6(self.slots6_of(id));
        w
    }

    /// The sync thread's handle: it installs, updates and removes the sessions replicated
    /// from the other gateways, in the replica slots, and expires them. Exactly one.
    pub fn replica(self: &Arc<Self>) -> NatWorker {
        let mut r = self.owner(self.config.workers, self.replica_slots(), PortPool::empty());
        r.set_slots6(self.replica_slots6());
        r
    }

    fn owner(self: &Arc<Self>, id: u16, slots: Range<u32>, ports: PortPool) -> NatWorker {
        NatWorker {
            table: Arc::clone(self),
            id,
            free: slots.clone().rev().collect(),
            free6: Vec::new(),
            ports,
            expiry_cursor: slots.start,
            expiry_cursor6: 0,
            slots,
            slots6: 0..0,
            live: 0,
            events: None,
            blocks: None,
            fair: None,
        }
    }

    /// Checks that every live session is indexed exactly once both ways and that no two live
    /// sessions share an inside or an outside tuple. For tests; scans everything.
    pub fn check_consistency(&self) -> Result<usize, String> {
        use std::collections::HashSet;
        let live = self.live_sessions();
        let (mut inside, mut outside) = (HashSet::new(), HashSet::new());
        for s in &live {
            let d = s.snap.data();
            if !inside.insert(d.inside) {
                return Err(format!("inside tuple {:?} held twice", d.inside));
            }
            if !outside.insert(d.outside()) {
                return Err(format!("outside tuple {:?} held twice", d.outside()));
            }
            let i = self
                .lookup_inside(&d.inside, self.hash(&d.inside))
                .map(|r| r.idx);
            let o = self
                .lookup_outside(&d.outside(), self.hash(&d.outside()))
                .map(|r| r.idx);
            if i != Some(s.idx) || o != Some(s.idx) {
                return Err(format!(
                    "session {} not indexed both ways: {i:?} {o:?}",
                    s.idx
                ));
            }
        }
        let mut live6 = 0;
        let (mut inside6, mut outside6) = (HashSet::new(), HashSet::new());
        for (i, slot) in self.sessions6.iter().enumerate() {
            let Some(snap) = slot.read() else { continue };
            let idx = self.config.max_sessions as usize + i;
            live6 += 1;
            let d = snap.data();
            if !inside6.insert(d.inside) || !outside6.insert(d.outside()) {
                return Err(format!("IPv6 tuple of {:?} held twice", d.inside));
            }
            let i = self.lookup_inside6(&d.inside, self.hash6(&d.inside));
            let o = self.lookup_outside6(&d.outside(), self.hash6(&d.outside()));
            if i.map(|r| r.idx) != Some(idx as u32) || o.map(|r| r.idx) != Some(idx as u32) {
                return Err(format!("IPv6 session {idx} not indexed both ways"));
            }
        }
        let all = live.len() + live6;
        if self.inside.len() != all || self.outside.len() != all {
            return Err(format!(
                "index sizes {} / {} for {all} live",
                self.inside.len(),
                self.outside.len(),
            ));
        }
        Ok(all)
    }
}

/// A new pod flow's session as [`NatWorker::create`] takes it (see there).
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub inside: FlowKey,
    /// `table.hash(&inside)`.
    pub inside_hash: u64,
    pub ext_ip: u32,
    pub reserved: &'a [u16],
    pub tunnel: TunnelEndpoint,
    pub flags: u8,
    pub now: u32,
}

/// A new IPv6 pod flow's session as [`NatWorker::create6`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct NewSession6<'a> {
    pub inside: FlowKey6,
    /// `table.hash6(&inside)`.
    pub inside_hash: u64,
    pub ext_ip: u128,
    pub reserved: &'a [u16],
    pub tunnel: TunnelEndpoint,
    pub flags: u8,
    pub now: u32,
}

/// One worker's share of the table: its free slots, its ports, its expiry cursor.
#[derive(Debug)]
pub struct NatWorker {
    table: Arc<SessionTable>,
    id: u16,
    slots: Range<u32>,
    free: Vec<u32>,
    slots6: Range<u32>,
    free6: Vec<u32>,
    ports: PortPool,
    expiry_cursor: u32,
    expiry_cursor6: u32,
    live: u32,
    events: Option<Arc<dyn SessionEvents>>,
    blocks: Option<Arc<PortBlocks>>,
    /// Per-pod accounts and limits (a worker's; the replica handle has none).
    fair: Option<FairShare>,
}

impl NatWorker {
    /// Reports this worker's session changes to `events` (for replication).
    pub fn with_events(mut self, events: Arc<dyn SessionEvents>) -> NatWorker {
        self.events = Some(events);
        self
    }

    /// Allocates from this worker's share of the blocks its node owns in `blocks`, and
    /// forwards replies by them, from now on (failover: the ownership among the live
    /// members, published by the sync thread; workers take each new one between batches).
    pub fn set_blocks(&mut self, blocks: Arc<PortBlocks>) {
        self.ports = PortPool::for_worker_blocks(&blocks, self.id, self.table.config.workers);
        if let Some(f) = &mut self.fair {
            f.set_ports(self.ports.len());
        }
        self.blocks = Some(blocks);
    }

    /// Whether this worker is a member of a gateway set (it allocates by port block).
    #[inline]
    pub fn in_gateway_set(&self) -> bool {
        self.blocks.is_some()
    }

    /// The node IP a reply with no session here goes to: the owner of its port, when that
    /// is another live member.
    #[inline]
    pub fn forward_to(&self, port: u16) -> Option<std::net::IpAddr> {
        self.blocks.as_ref()?.forward_to(port)
    }

    /// The TCP state of session `idx` changed (a packet's touch said so).
    #[inline]
    pub fn state_changed(&self, idx: u32, generation: u32) {
        if let Some(e) = &self.events {
            e.upsert(idx, generation);
        }
    }
    pub fn table(&self) -> &SessionTable {
        &self.table
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// Sessions this worker created that are still live.
    pub fn live(&self) -> u32 {
        self.live
    }

    /// Each pod's account on this worker (none for the replica handle).
    pub fn pod_usage(&self) -> impl Iterator<Item = (std::net::IpAddr, &PodUsage)> {
        self.fair.iter().flat_map(FairShare::pods)
    }

    /// Forgets the accounts not worth reporting (see [`FairShare::prune`]).
    pub fn prune_pods(&mut self, mapped: impl Fn(u32) -> bool, mapped6: impl Fn(u128) -> bool) {
        if let Some(f) = &mut self.fair {
            f.prune(mapped, mapped6);
        }
    }

    /// The ports this worker allocates from now.
    pub fn ports(&self) -> &PortPool {
        &self.ports
    }

    /// Starts fetching what creating the `nth` new session of a batch will most likely touch:
    /// the slot it will take, the outside bucket of the port it will most likely get (the
    /// reply tuple's bucket, checked and then written; at a million sessions a trip to DRAM
    /// each) and the pod's destination counts. A wrong guess costs a wasted fetch. Returns
    /// the flow's destination for [`Self::create_prefetched`].
    #[inline]
    pub fn prefetch_create(&self, nth: u32, inside: &FlowKey, ext_ip: u32) -> Option<Destination> {
        let t = &*self.table;
        let taken = self.free.len().checked_sub(nth as usize + 1);
        if let Some(slot) = taken.and_then(|i| self.free.get(i)) {
            t.sessions[*slot as usize].prefetch();
        }
        let reply = inside.reply_at(ext_ip, self.ports.peek(nth));
        t.outside.prefetch(t.hash(&reply));
        self.fair.as_ref().and_then(|f| f.prefetch(inside))
    }

    /// [`Self::prefetch_create`] for an IPv6 flow: its slot's two lines and the reply
    /// tuple's bucket (`nth` counts the batch's new flows of both families).
    #[inline]
    pub fn prefetch_create6(&self, nth: u32, inside: &FlowKey6, ext_ip: u128) {
        let t = &*self.table;
        let taken = self.free6.len().checked_sub(nth as usize + 1);
        if let Some(slot) = taken
            .and_then(|i| self.free6.get(i))
            .and_then(|i| t.session6(*i))
        {
            slot.prefetch();
            slot.prefetch_second_line();
        }
        let reply = inside.reply_at(ext_ip, self.ports.peek(nth));
        t.outside.prefetch(t.hash6(&reply));
    }

    /// Creates the session for a new pod flow, or returns the one another worker created for
    /// the same tuple a moment earlier. `inside_hash` = `table.hash(&inside)`. `reserved`
    /// (sorted) are ports of `ext_ip` that belong to someone else for this protocol (the
    /// Service's own ports on its LoadBalancer IP): never handed out.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        inside: FlowKey,
        inside_hash: u64,
        ext_ip: u32,
        reserved: &[u16],
        tunnel: TunnelEndpoint,
        flags: u8,
        now: u32,
    ) -> Result<SessionRef, DropReason> {
        let new = NewSession {
            inside,
            inside_hash,
            ext_ip,
            reserved,
            tunnel,
            flags,
            now,
        };
        self.create_prefetched(new, None)
    }

    /// [`Self::create`] of a flow whose destination [`Self::prefetch_create`] returned:
    /// the pipeline's way, which hashes the destination once.
    #[inline]
    pub fn create_prefetched(
        &mut self,
        new: NewSession<'_>,
        dest: Option<Destination>,
    ) -> Result<SessionRef, DropReason> {
        let session = (new.inside_hash, new.ext_ip, new.reserved, new.tunnel);
        self.admit_and_make::<V4>(new.inside, session, (new.flags, new.now), dest)
    }

    /// Creates the session for a new IPv6 pod flow, or returns the one another worker made
    /// for the same tuple a moment earlier (see [`Self::create`]), the pod held to the same
    /// per-pod limits as IPv4 pods.
    pub fn create6(&mut self, new: NewSession6<'_>) -> Result<SessionRef6, DropReason> {
        let session = (new.inside_hash, new.ext_ip, new.reserved, new.tunnel);
        self.admit_and_make::<V6>(new.inside, session, (new.flags, new.now), None)
    }

    /// The pod's limits, then [`Self::make`]; the charge given back when no session was
    /// made here.
    #[inline(always)]
    fn admit_and_make<A: Family>(
        &mut self,
        inside: A::Key,
        (inside_hash, ext_ip, reserved, tunnel): (u64, A::Addr, &[u16], TunnelEndpoint),
        (flags, now): (u8, u32),
        dest: Option<Destination>,
    ) -> Result<Found<A::Snap>, DropReason>
    where
        A::Key: Flow,
    {
        if self.ports.is_empty() {
            return Err(DropReason::NoPortsOwned);
        }
        let counted = match &mut self.fair {
            Some(f) => f.admit(&inside, dest, now)?,
            None => None,
        };
        let made = self.make::<A>(inside, inside_hash, ext_ip, reserved, tunnel, flags, now);
        if !matches!(made, Ok((_, true))) {
            if let Some(f) = &mut self.fair {
                f.refund(&inside, counted);
            }
        }
        made.map(|(s, _)| s)
    }

    /// Creates the session once the pod is admitted; true with a session made here, false
    /// with the one another worker made. Inlined: called apart, its session came back
    /// through a copy (4% of a new flow, `fair_share_cost` measured).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn make<A: Family>(
        &mut self,
        inside: A::Key,
        inside_hash: u64,
        ext_ip: A::Addr,
        reserved: &[u16],
        tunnel: TunnelEndpoint,
        flags: u8,
        now: u32,
    ) -> Result<(Found<A::Snap>, bool), DropReason> {
        let t = &*self.table;
        let free = A::pick(&mut self.free, &mut self.free6);
        let idx = free.pop().ok_or(DropReason::SessionTableFull)?;
        // The hash of the last candidate's reply tuple: the chosen one's is then at hand.
        let mut outside_hash = 0;
        let Some(ext_port) = self.ports.allocate(t.config.max_port_tries, |p| {
            if !reserved.is_empty() && reserved.binary_search(&p).is_ok() {
                return false;
            }
            let k = A::reply_at(&inside, ext_ip, p);
            outside_hash = A::hash(&t.hasher, &k);
            t.lookup_outside_of::<A>(&k, outside_hash).is_none()
        }) else {
            free.push(idx);
            return Err(DropReason::PortExhausted);
        };
        let data = A::data(inside, ext_ip, ext_port, tunnel);
        let slot = t.slot::<A>(idx).expect("a free slot of the family");
        let generation = A::publish(slot, &data, flags, now);
        debug_assert_eq!(outside_hash, A::hash(&t.hasher, &A::outside(&data)));
        if !t.outside.insert(outside_hash, idx) {
            A::retire_now(slot);
            free.push(idx);
            return Err(DropReason::SessionTableFull);
        }
        // Another worker may be creating the same pod flow now; the home bucket's lock makes
        // the check and the insert one step.
        let lock = t.inside.lock(inside_hash);
        if let Some(existing) = t.lookup_inside_of::<A>(&inside, inside_hash) {
            drop(lock);
            t.outside.remove(outside_hash, idx);
            A::retire_now(slot);
            free.push(idx);
            return Ok((existing, false));
        }
        let placed = t.inside.insert(inside_hash, idx);
        drop(lock);
        if !placed {
            t.outside.remove(outside_hash, idx);
            A::retire_now(slot);
            free.push(idx);
            return Err(DropReason::SessionTableFull);
        }
        self.live += 1;
        if let Some(e) = &self.events {
            e.upsert(idx, generation);
        }
        // The owner's own write, read back (nothing else writes a slot while it is live here).
        let snap = A::read(slot)
            .filter(|s| A::generation(s) == generation)
            .ok_or(DropReason::SessionTableFull)?;
        Ok((Found { idx, snap }, true))
    }

    fn owns(&self, idx: u32) -> bool {
        self.slots.contains(&idx) || self.slots6.contains(&idx)
    }

    /// Takes IPv6 slots `slots` as this handle's own.
    fn set_slots6(&mut self, slots: Range<u32>) {
        self.free6 = slots.clone().rev().collect();
        self.expiry_cursor6 = slots.start;
        self.slots6 = slots;
    }

    /// Installs a session replicated from another gateway (the replica handle only), or
    /// brings its TCP state and last-seen forward. A stale replica in the way (of the same
    /// pod tuple with another translation, or of the same reply tuple: a delete that was
    /// lost) gives way; a session of this node never does.
    pub fn install(&mut self, entry: &Entry, flags: u8, last_seen: u32) -> ReplicaOutcome {
        match entry {
            Entry::V4(d) => self.install_of::<V4>(d, flags, last_seen),
            Entry::V6(d) => self.install_of::<V6>(d, flags, last_seen),
        }
    }

    fn install_of<A: Family>(
        &mut self,
        data: &A::Data,
        flags: u8,
        last_seen: u32,
    ) -> ReplicaOutcome {
        let table = Arc::clone(&self.table);
        let t = &*table;
        let inside = A::inside(data);
        let inside_hash = A::hash(&t.hasher, &inside);
        if let Some(s) = t.lookup_inside_of::<A>(&inside, inside_hash) {
            if !self.owns(s.idx) {
                return ReplicaOutcome::Conflict;
            }
            if A::data_of(&s.snap) == *data {
                let slot = t.slot::<A>(s.idx).expect("a found slot");
                A::touch(slot, A::generation(&s.snap), last_seen, |_| flags);
                return ReplicaOutcome::Updated;
            }
            self.remove_slot(s.idx);
        }
        let outside = A::outside(data);
        let outside_hash = A::hash(&t.hasher, &outside);
        if let Some(s) = t.lookup_outside_of::<A>(&outside, outside_hash) {
            if !self.owns(s.idx) {
                return ReplicaOutcome::Conflict;
            }
            self.remove_slot(s.idx);
        }
        let free = A::pick(&mut self.free, &mut self.free6);
        let Some(idx) = free.pop() else {
            return ReplicaOutcome::Full;
        };
        let slot = t.slot::<A>(idx).expect("a free slot of the family");
        A::publish(slot, data, flags, last_seen);
        let undo = |free: &mut Vec<u32>, outcome| {
            A::retire_now(slot);
            free.push(idx);
            outcome
        };
        if !t.outside.insert(outside_hash, idx) {
            return undo(free, ReplicaOutcome::Full);
        }
        let lock = t.inside.lock(inside_hash);
        if t.lookup_inside_of::<A>(&inside, inside_hash).is_some() {
            // A worker made the same pod flow meanwhile: its session wins.
            drop(lock);
            t.outside.remove(outside_hash, idx);
            return undo(free, ReplicaOutcome::Conflict);
        }
        let placed = t.inside.insert(inside_hash, idx);
        drop(lock);
        if !placed {
            t.outside.remove(outside_hash, idx);
            return undo(free, ReplicaOutcome::Full);
        }
        self.live += 1;
        ReplicaOutcome::Installed
    }

    /// Removes this handle's session of pod tuple `inside`; false when it holds none (a
    /// session of this node is never removed through it).
    pub fn remove(&mut self, inside: &InsideKey) -> bool {
        match self.table.lookup_entry(inside) {
            Some((idx, _, _)) if self.owns(idx) => {
                self.remove_slot(idx);
                true
            }
            _ => false,
        }
    }

    /// Brings forward the last-seen of this handle's session of `inside`.
    pub fn refresh(&self, inside: &InsideKey, last_seen: u32) -> bool {
        match self.table.lookup_entry(inside) {
            Some((idx, _, state)) if self.owns(idx) => {
                self.table
                    .touch_any(idx, state.generation, last_seen, |f| f);
                true
            }
            _ => false,
        }
    }

    fn remove_slot(&mut self, idx: u32) {
        let table = Arc::clone(&self.table);
        let entry = match table.session(idx) {
            Some(slot) => Self::retire_live::<V4>(slot),
            None => table.session6(idx).and_then(Self::retire_live::<V6>),
        };
        if let Some(entry) = entry {
            self.unlink(idx, &entry);
        }
    }

    /// Retires a live slot (owner only); its session, to unlink.
    fn retire_live<A: Family>(slot: &A::Slot) -> Option<Entry> {
        if !A::slot_state(slot).is_live() {
            return None;
        }
        let entry = A::owner_entry(slot);
        A::retire_now(slot);
        Some(entry)
    }

    /// Examines up to `budget` of this worker's slots of each family from where the last
    /// call stopped and frees those idle past their timeout. Returns how many were freed.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        let table = Arc::clone(&self.table);
        let t = &*table;
        let mut freed = self.expire_in(
            now,
            budget,
            false,
            |i| &t.sessions[i as usize],
            |s| Entry::V4(s.owner_data()),
        );
        if !self.slots6.is_empty() {
            let base = t.config.max_sessions;
            freed += self.expire_in(
                now,
                budget,
                true,
                |i| &t.sessions6[(i - base) as usize],
                |s| Entry::V6(s.owner_data()),
            );
        }
        freed
    }

    fn expire_in<'t, const N: usize>(
        &mut self,
        now: u32,
        budget: usize,
        v6: bool,
        slot_at: impl Fn(u32) -> &'t Slot<N>,
        entry_of: impl Fn(&Slot<N>) -> Entry,
    ) -> usize {
        let timeouts = self.table.config.timeouts;
        let slots = if v6 {
            self.slots6.clone()
        } else {
            self.slots.clone()
        };
        let mut freed = 0;
        for _ in 0..budget.min(slots.len()) {
            let cursor = if v6 {
                &mut self.expiry_cursor6
            } else {
                &mut self.expiry_cursor
            };
            let idx = *cursor;
            *cursor = if idx + 1 >= slots.end {
                slots.start
            } else {
                idx + 1
            };
            let slot = slot_at(idx);
            let state = slot.state();
            if !state.is_live() {
                continue;
            }
            let entry = entry_of(slot);
            let limit = tcp::timeout(&timeouts, entry.proto(), state.flags);
            if now.saturating_sub(state.last_seen) < limit {
                continue;
            }
            // Fails if a packet refreshed the session since we read its state.
            if slot.retire(state) {
                self.unlink(idx, &entry);
                freed += 1;
            }
        }
        freed
    }

    /// Frees every live session of this worker for which `pred` holds (operator flush).
    pub fn flush(&mut self, pred: impl Fn(&Entry) -> bool) -> usize {
        let table = Arc::clone(&self.table);
        let t = &*table;
        let base = t.config.max_sessions;
        let v4 = self.flush_in(
            self.slots.clone(),
            |i| &t.sessions[i as usize],
            |s| Entry::V4(s.owner_data()),
            &pred,
        );
        v4 + self.flush_in(
            self.slots6.clone(),
            |i| &t.sessions6[(i - base) as usize],
            |s| Entry::V6(s.owner_data()),
            &pred,
        )
    }

    fn flush_in<'t, const N: usize>(
        &mut self,
        slots: Range<u32>,
        slot_at: impl Fn(u32) -> &'t Slot<N>,
        entry_of: impl Fn(&Slot<N>) -> Entry,
        pred: impl Fn(&Entry) -> bool,
    ) -> usize {
        let mut freed = 0;
        for idx in slots {
            let slot = slot_at(idx);
            if !slot.state().is_live() {
                continue;
            }
            let entry = entry_of(slot);
            if pred(&entry) {
                slot.retire_now();
                self.unlink(idx, &entry);
                freed += 1;
            }
        }
        freed
    }

    fn unlink(&mut self, idx: u32, entry: &Entry) {
        let t = &*self.table;
        let (inside, outside) = match entry {
            Entry::V4(d) => (t.hash(&d.inside), t.hash(&d.outside())),
            Entry::V6(d) => (t.hash6(&d.inside), t.hash6(&d.outside())),
        };
        t.inside.remove(inside, idx);
        t.outside.remove(outside, idx);
        match entry {
            Entry::V4(_) => self.free.push(idx),
            Entry::V6(_) => self.free6.push(idx),
        }
        self.live -= 1;
        match (entry, &mut self.fair) {
            (Entry::V4(d), Some(f)) => f.release(&d.inside),
            (Entry::V6(d), Some(f)) => f.release(&d.inside),
            _ => {}
        }
        if let Some(e) = &self.events {
            e.delete(entry.inside());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tcp::flag;
    use super::*;
    use crate::nat::PROTO_TCP;
    use core::ops::RangeInclusive;

    fn config(max: u32, workers: u16, ports: RangeInclusive<u16>) -> NatConfig {
        NatConfig {
            max_sessions: max,
            workers,
            port_range: ports,
            ..NatConfig::default()
        }
    }

    fn key(i: u32) -> FlowKey {
        FlowKey {
            src: 0x0a85_0000 | i,
            dst: 0xc0a8_370d,
            src_port: 40000,
            dst_port: 80,
            proto: PROTO_TCP,
        }
    }

    const EXT: u32 = 0xc0a8_4264;

    /// `w` creates the session of `key(i)`, leaving by `EXT`.
    fn create(t: &SessionTable, w: &mut NatWorker, i: u32) -> Result<SessionRef, DropReason> {
        let k = key(i);
        w.create(k, t.hash(&k), EXT, &[], TunnelEndpoint::default(), 0, 0)
    }

    #[test]
    fn a_worker_keeps_pod_accounts_only_with_a_limit_on_and_refunds_an_unmade_flow() {
        // Every limit off: no accounts at all (a new flow pays nothing for them).
        let t = SessionTable::new(config(64, 1, 1024..=1025));
        let mut w = t.worker(0);
        create(&t, &mut w, 1).unwrap();
        assert_eq!(w.pod_usage().count(), 0);
        // A limit on: two ports, so pod 2's third flow to one destination finds none; the
        // charge for it is given back.
        let t = SessionTable::new(NatConfig {
            fair: crate::nat::FairLimits {
                pod_sessions: 10,
                ..crate::nat::FairLimits::NONE
            },
            ..config(64, 1, 1024..=1025)
        });
        let mut w = t.worker(0);
        let from_pod = |i: u32| FlowKey {
            src: 2,
            src_port: i as u16,
            ..key(0)
        };
        for i in 0..3 {
            let k = from_pod(i);
            let made = w.create(k, t.hash(&k), EXT, &[], TunnelEndpoint::default(), 0, 0);
            assert_eq!(made.is_ok(), i < 2, "flow {i}");
        }
        let usage: Vec<(std::net::IpAddr, u32)> =
            w.pod_usage().map(|(p, u)| (p, u.sessions)).collect();
        assert_eq!(usage, [(std::net::IpAddr::from([0, 0, 0, 2]), 2)]);
    }

    #[test]
    fn reserved_ports_are_never_handed_out() {
        // Four ports, one a Service's: three flows to one destination fit, the fourth does not.
        let t = SessionTable::new(config(64, 1, 1024..=1027));
        let mut w = t.worker(0);
        let reserved = [1025];
        let mut got = Vec::new();
        for i in 0..3 {
            let k = key(i);
            let s = w
                .create(
                    k,
                    t.hash(&k),
                    EXT,
                    &reserved,
                    TunnelEndpoint::default(),
                    0,
                    0,
                )
                .unwrap();
            got.push(s.snap.data().ext_port);
        }
        got.sort_unstable();
        assert_eq!(got, [1024, 1026, 1027]);
        let k = key(3);
        assert_eq!(
            w.create(
                k,
                t.hash(&k),
                EXT,
                &reserved,
                TunnelEndpoint::default(),
                0,
                0
            )
            .map(|_| ()),
            Err(DropReason::PortExhausted)
        );
    }

    #[test]
    fn create_lookup_both_ways_and_expire() {
        let t = SessionTable::new(config(64, 1, 1024..=2047));
        let mut w = t.worker(0);
        let k = key(3);
        let s = w
            .create(
                k,
                t.hash(&k),
                EXT,
                &[],
                TunnelEndpoint::default(),
                flag::SYN_OUT,
                10,
            )
            .unwrap();
        assert_eq!(s.snap.data().ext_ip, EXT);
        assert!(w.ports().contains(s.snap.data().ext_port));
        assert_eq!(t.lookup_inside(&k, t.hash(&k)).unwrap().idx, s.idx);
        let o = s.snap.data().outside();
        assert_eq!(
            (o.src, o.dst, o.src_port, o.dst_port),
            (k.dst, EXT, 80, s.snap.data().ext_port)
        );
        assert_eq!(t.lookup_outside(&o, t.hash(&o)).unwrap().idx, s.idx);
        // Transitory (SYN only): 240 s.
        assert_eq!(w.expire(249, 64), 0);
        t.touch(&s, 100, |f| f | flag::SYN_IN); // established now
        assert_eq!(w.expire(100 + 239, 64), 0);
        assert_eq!(w.expire(100 + 7440, 64), 1);
        assert!(t.lookup_inside(&k, t.hash(&k)).is_none());
        assert!(t.lookup_outside(&o, t.hash(&o)).is_none());
        assert_eq!(w.live(), 0);
        assert_eq!(t.check_consistency(), Ok(0));
    }

    #[test]
    fn hinted_lookups_use_a_right_hint_and_survive_a_wrong_one() {
        let t = SessionTable::new(config(64, 1, 1024..=2047));
        let mut w = t.worker(0);
        let made: Vec<SessionRef> = (0..3).map(|i| create(&t, &mut w, i).unwrap()).collect();
        let (a, b) = (made[0], made[1]);
        let k = key(0);
        let o = a.snap.data().outside();
        let (hk, ho) = (t.hash(&k), t.hash(&o));
        // The stage-two candidate is the session itself.
        assert_eq!(t.prefetch_session(true, hk), Some(a.idx));
        assert_eq!(t.prefetch_session(false, ho), Some(a.idx));
        // Right, another session's, a free slot's, beyond the table, none: all find `a`.
        for hint in [Some(a.idx), Some(b.idx), Some(50), Some(u32::MAX), None] {
            assert_eq!(
                t.lookup_binding_hinted(&k, hk, hint).map(|r| r.0),
                Some(a.idx)
            );
            assert_eq!(
                t.lookup_outside_hinted(&o, ho, hint).map(|r| r.idx),
                Some(a.idx)
            );
        }
        // A key with no session finds nothing even when hinted at a live slot.
        let missing = key(9);
        let hm = t.hash(&missing);
        assert_eq!(t.prefetch_session(true, hm), None);
        assert!(t.lookup_binding_hinted(&missing, hm, Some(a.idx)).is_none());
        assert!(t.lookup_outside_hinted(&missing, hm, Some(a.idx)).is_none());
        // A retired session is not found through a hint at its old slot.
        w.flush(|e| matches!(e, Entry::V4(d) if d.inside == k));
        assert!(t.lookup_binding_hinted(&k, hk, Some(a.idx)).is_none());
        assert!(t.lookup_outside_hinted(&o, ho, Some(a.idx)).is_none());
    }

    #[test]
    fn a_worker_allocates_from_its_blocks_and_takes_up_a_new_ownership() {
        use crate::nat::blocks::{BlockPlan, Ownership, PortBlocks};
        let plan = BlockPlan::new(1024..=9215, 64).unwrap();
        let blocks = |members: &[u32], epoch| PortBlocks {
            ownership: Ownership::compute(plan, members, epoch),
            me: 1,
            addresses: vec![(1, [0, 0, 0, 1].into()), (2, [0, 0, 0, 2].into())],
        };
        let both = Arc::new(blocks(&[1, 2], 1));
        let t = SessionTable::new(config(256, 2, 1024..=9215));
        let mut w = t.worker(1);
        w.set_blocks(Arc::clone(&both));
        for i in 0..100 {
            let port = create(&t, &mut w, i).unwrap().snap.data().ext_port;
            let block = plan.block_of(port).unwrap();
            assert_eq!(both.ownership.owner_of_block(block), Some(1));
            assert_eq!(block % 2, 1, "worker 1 takes the odd blocks");
        }
        let theirs = *plan
            .ports(both.ownership.blocks_of(2).next().unwrap())
            .start();
        assert_eq!(w.forward_to(theirs), Some([0, 0, 0, 2].into()));
        // Member 2 dies: its blocks are this node's now.
        w.set_blocks(Arc::new(blocks(&[1], 2)));
        assert_eq!(w.forward_to(theirs), None);
        // Every odd block of the 128.
        assert_eq!(w.ports().len(), 64 * 64);
        let odd = plan.block_of(theirs).unwrap() % 2 == 1;
        assert_eq!(w.ports().contains(theirs), odd);
    }

    #[test]
    fn bound_on_sessions_is_a_counted_refusal() {
        let t = SessionTable::new(config(4, 1, 1024..=2047));
        let mut w = t.worker(0);
        for i in 0..4 {
            create(&t, &mut w, i).unwrap();
        }
        assert_eq!(create(&t, &mut w, 9), Err(DropReason::SessionTableFull));
        assert_eq!(t.check_consistency(), Ok(4));
    }

    #[test]
    fn port_exhaustion_leaves_existing_flows() {
        // Two ports; endpoint-dependent: exhaustion is per destination.
        let t = SessionTable::new(config(16, 1, 1024..=1025));
        let mut w = t.worker(0);
        let made: Vec<_> = (0..2).map(|i| create(&t, &mut w, i).unwrap()).collect();
        assert_eq!(create(&t, &mut w, 7), Err(DropReason::PortExhausted));
        for s in &made {
            assert_eq!(
                t.lookup_inside(&s.snap.data().inside, t.hash(&s.snap.data().inside))
                    .unwrap()
                    .idx,
                s.idx
            );
        }
        // Another destination still has both ports.
        let other = FlowKey {
            dst: 0xc0a8_370e,
            ..key(7)
        };
        assert!(w
            .create(
                other,
                t.hash(&other),
                EXT,
                &[],
                TunnelEndpoint::default(),
                0,
                0
            )
            .is_ok());
        assert_eq!(t.check_consistency(), Ok(3));
    }

    #[test]
    fn creating_an_existing_flow_returns_it() {
        let t = SessionTable::new(config(16, 2, 1024..=2047));
        let (mut a, mut b) = (t.worker(0), t.worker(1));
        let k = key(1);
        let s1 = a
            .create(k, t.hash(&k), EXT, &[], TunnelEndpoint::default(), 0, 0)
            .unwrap();
        let s2 = b
            .create(k, t.hash(&k), EXT, &[], TunnelEndpoint::default(), 0, 0)
            .unwrap();
        assert_eq!(s1.idx, s2.idx);
        assert_eq!(b.live(), 0);
        assert_eq!(t.check_consistency(), Ok(1));
    }

    #[test]
    fn flush_by_predicate() {
        let t = SessionTable::new(config(16, 1, 1024..=2047));
        let mut w = t.worker(0);
        for i in 0..6 {
            create(&t, &mut w, i).unwrap();
        }
        assert_eq!(
            w.flush(|e| matches!(e, Entry::V4(d) if d.inside.src & 1 == 1)),
            3
        );
        assert_eq!(t.check_consistency(), Ok(3));
    }

    /// Records what a worker reports, as the sync queue would carry it.
    #[derive(Debug, Default)]
    struct Recorder(std::sync::Mutex<Vec<(char, u32)>>);

    impl SessionEvents for Recorder {
        fn upsert(&self, slot: u32, _generation: u32) {
            self.0.lock().unwrap().push(('u', slot));
        }
        fn delete(&self, inside: InsideKey) {
            let src = match inside {
                InsideKey::V4(k) => k.src,
                InsideKey::V6(k) => k.src as u32,
            };
            self.0.lock().unwrap().push(('d', src & 0xffff));
        }
    }

    #[test]
    fn a_worker_reports_creates_state_changes_expiries_and_flushes() {
        let t = SessionTable::new(config(16, 1, 1024..=2047));
        let events = Arc::new(Recorder::default());
        let mut w = t.worker(0).with_events(events.clone());
        let a = create(&t, &mut w, 1).unwrap();
        let b = create(&t, &mut w, 2).unwrap();
        // Creating an existing flow reports nothing new.
        create(&t, &mut w, 1).unwrap();
        assert!(t.touch(&a, 5, |f| f | flag::SYN_OUT));
        assert!(
            !t.touch(&a, 6, |f| f | flag::SYN_OUT),
            "no change, no report"
        );
        w.flush(|e| matches!(e, Entry::V4(d) if d.inside == key(2)));
        w.expire(10_000, 64);
        assert_eq!(
            *events.0.lock().unwrap(),
            [('u', a.idx), ('u', b.idx), ('d', 2), ('d', 1)]
        );
    }

    fn replicated(i: u32, port: u16) -> crate::nat::SessionData {
        crate::nat::SessionData {
            inside: key(i),
            ext_ip: EXT,
            ext_port: port,
            tunnel: TunnelEndpoint::default(),
        }
    }

    #[test]
    fn replicas_live_in_their_own_slots_and_are_found_both_ways() {
        let t = SessionTable::new(NatConfig {
            replica_slots: 4,
            ..config(16, 2, 1024..=2047)
        });
        let mut r = t.replica();
        let d = replicated(1, 3000);
        assert_eq!(r.install(&Entry::V4(d), 0, 7), ReplicaOutcome::Installed);
        let s = t
            .lookup_outside(&d.outside(), t.hash(&d.outside()))
            .unwrap();
        assert!(t.replica_slots().contains(&s.idx));
        assert_eq!(t.replica_slots(), 12..16);
        assert_eq!(s.snap.state.last_seen, 7);
        // Again, with new TCP state: updated in place.
        assert_eq!(
            r.install(&Entry::V4(d), flag::SYN_OUT, 9),
            ReplicaOutcome::Updated
        );
        let s2 = t.lookup_inside(&d.inside, t.hash(&d.inside)).unwrap();
        assert_eq!((s2.idx, s2.snap.state.flags), (s.idx, flag::SYN_OUT));
        assert!(r.refresh(&InsideKey::V4(d.inside), 20));
        // The same pod tuple with another port (its delete was lost): replaced.
        let moved = replicated(1, 3001);
        assert_eq!(
            r.install(&Entry::V4(moved), 0, 21),
            ReplicaOutcome::Installed
        );
        assert!(t
            .lookup_outside(&d.outside(), t.hash(&d.outside()))
            .is_none());
        // Another pod tuple on the same reply tuple: the stale one gives way.
        let other = crate::nat::SessionData {
            inside: key(9),
            ..moved
        };
        assert_eq!(
            r.install(&Entry::V4(other), 0, 22),
            ReplicaOutcome::Installed
        );
        assert!(t.lookup_inside(&key(1), t.hash(&key(1))).is_none());
        assert_eq!(r.live(), 1);
        // Workers never take replica slots, and a local session wins over a replica.
        let mut w = t.worker(1);
        let local = create(&t, &mut w, 5).unwrap();
        assert!(local.idx < 12);
        assert_eq!(
            r.install(&Entry::V4(local.snap.data()), 0, 0),
            ReplicaOutcome::Conflict
        );
        assert!(
            !r.remove(&InsideKey::V4(key(5))),
            "a local session is not the replica's"
        );
        assert!(r.remove(&InsideKey::V4(key(9))));
        assert_eq!(r.live(), 0);
        assert_eq!(t.check_consistency(), Ok(1));
    }

    fn key6(i: u32) -> FlowKey6 {
        FlowKey6 {
            src: 0xfd00_0010_0133_0000_0000_0000_0000_0000 | u128::from(i),
            dst: 0xfd00_0055_0000_0000_0000_0000_0000_0013,
            src_port: 40000,
            dst_port: 80,
            proto: PROTO_TCP,
        }
    }

    const EXT6: u128 = 0xfd00_0066_0000_0000_0000_0000_0000_0100;

    #[test]
    fn ipv6_replicas_live_in_the_last_ipv6_slots_and_are_reported_and_scanned() {
        let t = SessionTable::new(NatConfig {
            max_sessions_v6: 8,
            replica_slots: 2,
            replica_slots_v6: 3,
            ..config(8, 1, 1024..=2047)
        });
        assert_eq!(t.replica_slots6(), 13..16);
        let events = Arc::new(Recorder::default());
        let mut w = t.worker(0).with_events(events.clone());
        let mut r = t.replica();
        // A local IPv6 session: reported, never in a replica slot.
        let k = key6(1);
        let local = w
            .create6(NewSession6 {
                inside: k,
                inside_hash: t.hash6(&k),
                ext_ip: EXT6,
                reserved: &[],
                tunnel: TunnelEndpoint::default(),
                flags: 0,
                now: 0,
            })
            .unwrap();
        assert!((8..13).contains(&local.idx), "{}", local.idx);
        // A peer's: installed in the replica's IPv6 slots, found both ways, updated in
        // place, refreshed, removed by its key.
        let d = crate::nat::SessionData6 {
            inside: key6(2),
            ext_ip: EXT6,
            ext_port: 3000,
            tunnel: TunnelEndpoint::default(),
        };
        assert_eq!(r.install(&Entry::V6(d), 0, 7), ReplicaOutcome::Installed);
        let o = t
            .lookup_outside6(&d.outside(), t.hash6(&d.outside()))
            .unwrap();
        assert!(t.replica_slots6().contains(&o.idx));
        assert_eq!(
            r.install(&Entry::V6(d), flag::SYN_OUT, 9),
            ReplicaOutcome::Updated
        );
        let i = t.lookup_inside6(&d.inside, t.hash6(&d.inside)).unwrap();
        assert_eq!((i.idx, i.snap.state.flags), (o.idx, flag::SYN_OUT));
        assert!(r.refresh(&InsideKey::V6(d.inside), 20));
        assert_eq!(
            t.lookup_entry(&InsideKey::V6(d.inside))
                .map(|e| e.2.last_seen),
            Some(20)
        );
        // The local session is not the replica's to replace or remove.
        assert_eq!(
            r.install(&Entry::V6(local.snap.data()), 0, 0),
            ReplicaOutcome::Conflict
        );
        assert!(!r.remove(&InsideKey::V6(k)));
        // A scan sees both, with the IPv6 slots after the IPv4 ones.
        let mut seen = Vec::new();
        assert_eq!(t.scan(0, 100, |i, e, _| seen.push((i, e.inside()))), 0);
        assert_eq!(
            seen,
            [
                (local.idx, InsideKey::V6(k)),
                (o.idx, InsideKey::V6(d.inside))
            ]
        );
        assert_eq!(t.read_entry(o.idx).map(|e| e.0), Some(Entry::V6(d)));
        assert!(r.remove(&InsideKey::V6(d.inside)));
        assert_eq!(t.check_consistency(), Ok(1));
        // The replica's IPv6 slots run out as a refusal, and expire by their timeouts.
        for n in 0..3 {
            let d = crate::nat::SessionData6 {
                inside: key6(10 + n),
                ext_port: 3100 + n as u16,
                ..d
            };
            assert_eq!(r.install(&Entry::V6(d), 0, 0), ReplicaOutcome::Installed);
        }
        let full = crate::nat::SessionData6 {
            inside: key6(20),
            ext_port: 3001,
            ..d
        };
        assert_eq!(r.install(&Entry::V6(full), 0, 0), ReplicaOutcome::Full);
        assert_eq!(r.expire(240, 64), 3);
        // The worker's expiry reports the IPv6 delete.
        assert_eq!(w.expire(10_000, 64), 1);
        assert_eq!(*events.0.lock().unwrap(), [('u', local.idx), ('d', 1)]);
        assert_eq!(t.check_consistency(), Ok(0));
    }

    #[test]
    fn replica_slots_run_out_as_a_refusal_and_expire_by_their_timeouts() {
        let t = SessionTable::new(NatConfig {
            replica_slots: 2,
            ..config(8, 1, 1024..=2047)
        });
        let mut r = t.replica();
        for i in 0..2 {
            let d = replicated(i, 4000 + i as u16);
            assert_eq!(r.install(&Entry::V4(d), 0, 0), ReplicaOutcome::Installed);
        }
        assert_eq!(
            r.install(&Entry::V4(replicated(7, 4007)), 0, 0),
            ReplicaOutcome::Full
        );
        // Transitory TCP: 240 s.
        assert_eq!(r.expire(240, 64), 2);
        assert_eq!(t.check_consistency(), Ok(0));
        let mut seen = Vec::new();
        assert_eq!(t.scan(0, 100, |i, _, _| seen.push(i)), 0);
        assert!(seen.is_empty());
    }

    #[test]
    fn a_scan_goes_on_where_it_stopped() {
        let t = SessionTable::new(config(16, 1, 1024..=2047));
        let mut w = t.worker(0);
        for i in 0..5 {
            create(&t, &mut w, i).unwrap();
        }
        let mut seen = 0;
        let mut at = t.scan(0, 10, |_, _, _| seen += 1);
        assert_eq!(at, 10);
        at = t.scan(at, 10, |_, _, _| seen += 1);
        assert_eq!((at, seen), (0, 5));
    }

    #[test]
    fn memory_per_session_is_under_128_bytes() {
        let t = SessionTable::new(config(1 << 16, 1, 1024..=65535));
        let per = t.memory_bytes() as f64 / f64::from(1u32 << 16);
        assert!(per <= 128.0, "{per} bytes per session");
    }
}
