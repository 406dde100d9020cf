//! One frame in, one action out. Egress: Geneve decap -> pod-IP lookup -> SNAT -> TTL ->
//! checksums -> Ethernet for the external next hop. Return: un-NAT -> Geneve encap back to the
//! node that sent the flow. Pure: tables, session table and `now` are inputs.
//!
//! A batch runs in stages (VPP's multi-loop idea): parse every frame and start fetching its
//! index bucket, then fetch the sessions the buckets point at, then translate. The cache misses
//! of a batch overlap instead of queueing.

pub mod encap;
pub mod fast;
pub mod forward;
pub mod fragments;
pub mod in2out;
pub mod later_fragment;
pub mod neighbors;
pub mod out2in;
pub mod parse;
pub mod parsed;
pub mod pod_too_big;
pub mod refragment;
pub mod rewrite;
pub mod tables;
pub mod too_big;
pub mod v6;

pub use tables::{
    Address, EgressMap, EgressMap6, EgressMapOf, Fib, Fib6, Ipv6Tables, NodeConfig, Tables,
};

pub use crate::drop::DropReason;
use crate::drop::{add, bump, Counters};
use crate::nat::{Direction, NatWorker};
use parsed::{Parsed, Parsed6};
use std::sync::Arc;

/// Most frames one call handles; the AF_XDP rings are read in batches of this size.
pub const BATCH: usize = 64;

/// Bytes a frame must have free in front of it: the return path prepends outer Ethernet,
/// IPv4, UDP and Geneve with the OVN option (58 bytes in front of a reply's Ethernet header;
/// 78 with outer IPv6), kept to whole cache lines.
pub const HEADROOM: usize = 128;

/// Bytes from one frame's start to the next in the buffer a batch is translated in: room for
/// the largest frame a 4 KiB UMEM frame holds with its headroom, plus one cache line. A 4 KiB
/// stride would put line k of every frame in the same L1 set (eight ways on this CPU class), so
/// a batch's 64 header lines would evict each other between stage one's parse and stage
/// three's rewrite; one line more staggers them over all 64 sets (DPDK spreads its buffer pools
/// for the same reason).
pub const FRAME_STRIDE: usize = 4096 + 64;

/// Which interface a frame leaves on (the same one in one-armed mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iface {
    /// Toward the outside world (br-ex).
    External,
    /// Toward other nodes' tunnel endpoints.
    Underlay,
}

impl Iface {
    /// The name operators see (trace, capture, metrics labels).
    pub fn name(self) -> &'static str {
        match self {
            Iface::External => "external",
            Iface::Underlay => "underlay",
        }
    }
}

/// Where the finished frame lies in its buffer and where it goes. `repr(C)`, the interface
/// first: a translation's result then reaches the batch's action as two aligned words. In
/// Rust's own layout the copy read overlapping unaligned words across the stores that had
/// just written them, stalling on store forwarding (perf, on the return path: 2-4 ns a reply,
/// 5-7%).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Output {
    pub iface: Iface,
    pub start: usize,
    pub len: usize,
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Transmit(Output),
    Drop(DropReason),
}

/// A received frame: `buf[start..start + len]` of a shared buffer (the UMEM), with
/// `headroom` bytes before `start` that belong to the same frame and may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub start: usize,
    pub len: usize,
    pub headroom: usize,
}

impl Frame {
    /// The frame's bytes in `buf`, if it lies within it.
    #[inline(always)]
    fn bytes(self, buf: &[u8]) -> Option<&[u8]> {
        buf.get(self.start..self.start.saturating_add(self.len))
    }

    /// Headroom cannot reach before the buffer, whatever the caller claims.
    #[inline(always)]
    fn clamped(self) -> Frame {
        Frame {
            headroom: self.headroom.min(self.start),
            ..self
        }
    }
}

/// What IPv4 fragments need of a worker: the datagrams whose later fragments it expects
/// (`fragments`), and the extra frames replies cut to fit the underlay made (`refragment`).
#[derive(Debug, Default)]
pub struct Pieces {
    pub fragments: fragments::Fragments,
    pub spill: refragment::Spill,
}

/// One worker's pipeline state: its share of the NAT table and its counters.
#[derive(Debug)]
pub struct Worker {
    pub nat: NatWorker,
    pub counters: Arc<Counters>,
    /// Fragments' state. A frame's action covers its own frame; the frames beyond it that a
    /// translation made wait in `pieces.spill` until the caller sends them and clears it.
    pub pieces: Pieces,
    /// The batch's IPv6 frames (frame number, parse), in order: IPv4's stages hold IPv4 keys,
    /// so IPv6's ride beside them. Allocated once.
    batch6: Vec<(usize, Result<Parsed6, DropReason>)>,
}

impl Worker {
    pub fn new(nat: NatWorker) -> Worker {
        Worker {
            nat,
            counters: Arc::new(Counters::default()),
            pieces: Pieces::default(),
            batch6: Vec::with_capacity(BATCH),
        }
    }

    /// Processes one frame of `buf`.
    pub fn process(&mut self, buf: &mut [u8], frame: Frame, tables: &Tables, now: u32) -> Action {
        bump(&self.counters.rx);
        let mut parsed = Err(DropReason::FrameTruncated);
        self.parse(buf, frame, tables, &mut parsed);
        let mut action = Action::Drop(DropReason::FrameTruncated);
        self.finish(buf, frame, &parsed, tables, now, &mut action);
        action
    }

    /// Processes up to [`BATCH`] frames of `buf`, writing one action per frame into `actions`.
    pub fn process_batch(
        &mut self,
        buf: &mut [u8],
        frames: &[Frame],
        tables: &Tables,
        now: u32,
        actions: &mut [Action],
    ) {
        let n = frames.len().min(BATCH).min(actions.len());
        let mut parsed = [Err(DropReason::FrameTruncated); BATCH];
        self.batch6.clear();
        // Stage one: parse, and start fetching each frame's index bucket; by the time the
        // batch is parsed the first buckets have arrived.
        let table = self.nat.table();
        for (i, (slot, frame)) in parsed.iter_mut().zip(frames).take(n).enumerate() {
            self.parse(buf, *frame, tables, slot);
            match slot {
                Ok(p) => table.prefetch_bucket(p.dir == Direction::Out, p.hash),
                Err(DropReason::NotIpv4 | DropReason::InnerNotIpv4) => {
                    self.batch6.push((i, Err(DropReason::FrameTruncated)));
                    let (_, p6) = self.batch6.last_mut().expect("just pushed");
                    if let Some(bytes) = frame.bytes(buf) {
                        v6::parse_into(bytes, tables, table, p6);
                    }
                    if let Ok(p) = p6 {
                        table.prefetch_bucket(p.dir == Direction::Out, p.hash);
                    }
                }
                Err(_) => {}
            }
        }
        // Stage two: fetch the sessions the buckets point at. Stage three translates with both
        // lines present (at a million sessions each would otherwise be a trip to DRAM). A pod
        // packet whose bucket holds no candidate is most likely a new flow: fetch what its
        // creation will touch instead.
        let mut new_flows = 0;
        for p in parsed.iter_mut().take(n).flatten() {
            let out = p.dir == Direction::Out;
            p.hint = table.prefetch_session(out, p.hash);
            if p.hint.is_none() && out {
                if let Some(ext_ip) = tables.egress.egress_for(p.key.src) {
                    p.dest = self.nat.prefetch_create(new_flows, &p.key, ext_ip);
                    new_flows += 1;
                }
            }
        }
        for (_, p) in &mut self.batch6 {
            let Ok(p) = p else { continue };
            let out = p.dir == Direction::Out;
            p.hint = table.prefetch_session6(out, p.hash);
            match p.hint {
                Some(idx) if !out => table.prefetch_second_line(idx),
                Some(_) => {}
                None if out => {
                    if let Some(ext_ip) = tables.ipv6.egress.egress_for(p.key.src) {
                        self.nat.prefetch_create6(new_flows, &p.key, ext_ip);
                        new_flows += 1;
                    }
                }
                None => {}
            }
        }
        add(&self.counters.rx, n as u64);
        // Out of `self` while the frames are finished, so each is read in place (taking an
        // empty vector allocates nothing; the capacity comes back after).
        let batch6 = std::mem::take(&mut self.batch6);
        let mut next6 = batch6.iter().peekable();
        for i in 0..n {
            match next6.next_if(|(at, _)| *at == i) {
                Some((_, p6)) => self.finish_v6(buf, frames[i], p6, tables, now, &mut actions[i]),
                None => self.finish(buf, frames[i], &parsed[i], tables, now, &mut actions[i]),
            }
        }
        self.batch6 = batch6;
    }

    /// Parses an IPv6 frame (`v6`).
    fn parse6(&self, buf: &[u8], frame: Frame, tables: &Tables) -> Result<Parsed6, DropReason> {
        let bytes = frame.bytes(buf).ok_or(DropReason::FrameTruncated)?;
        v6::parse(bytes, tables, self.nat.table())
    }

    /// Parses into `slot` (in place, not returned: see [`parse::parse_into`]).
    #[inline]
    fn parse(
        &self,
        buf: &[u8],
        frame: Frame,
        tables: &Tables,
        slot: &mut Result<Parsed, DropReason>,
    ) {
        let Some(bytes) = frame.bytes(buf) else {
            *slot = Err(DropReason::FrameTruncated);
            return;
        };
        parse::parse_into(bytes, tables, self.nat.table(), slot);
    }

    /// Translates a parsed frame and writes what to do with it into `action` (in place, for
    /// the reason [`parse::parse_into`] gives).
    #[inline(always)]
    fn finish(
        &mut self,
        buf: &mut [u8],
        frame: Frame,
        parsed: &Result<Parsed, DropReason>,
        tables: &Tables,
        now: u32,
        action: &mut Action,
    ) {
        match parsed {
            Ok(p) if p.dir == Direction::Out => {
                self.finish_one::<true>(buf, frame, p, tables, now, action)
            }
            Ok(p) => self.finish_one::<false>(buf, frame, p, tables, now, action),
            // What the IPv4 parser turns away as another protocol may be IPv6.
            Err(DropReason::NotIpv4 | DropReason::InnerNotIpv4) => {
                let p6 = self.parse6(buf, frame, tables);
                self.finish_v6(buf, frame, &p6, tables, now, action)
            }
            // A later fragment follows its datagram's first (`later_fragment`).
            Err(DropReason::Fragment) => {
                let c = &*self.counters;
                let result = later_fragment::translate(
                    buf,
                    frame.clamped(),
                    &self.nat,
                    tables,
                    c,
                    now,
                    &mut self.pieces,
                );
                *action = counted(c, result);
            }
            Err(reason) => {
                self.counters.count_drop(*reason);
                *action = Action::Drop(*reason);
            }
        }
    }

    /// Translates an IPv6 frame (`v6`), or counts its drop.
    #[inline(always)]
    fn finish_v6(
        &mut self,
        buf: &mut [u8],
        frame: Frame,
        parsed: &Result<Parsed6, DropReason>,
        tables: &Tables,
        now: u32,
        action: &mut Action,
    ) {
        match parsed {
            Ok(p) if p.dir == Direction::Out => {
                self.finish_v6_one::<true>(buf, frame, p, tables, now, action)
            }
            Ok(p) => self.finish_v6_one::<false>(buf, frame, p, tables, now, action),
            // Unless it is an IPv4 reply another member forwarded over the IPv6 underlay.
            Err(DropReason::Ipv4OverIpv6Underlay) => {
                match frame
                    .bytes(buf)
                    .ok_or(DropReason::FrameTruncated)
                    .and_then(|b| parse::forwarded_over_ipv6(b, tables, self.nat.table()))
                {
                    Ok(p) => self.finish_one::<false>(buf, frame, &p, tables, now, action),
                    Err(reason) => {
                        self.counters.count_drop(reason);
                        *action = Action::Drop(reason);
                    }
                }
            }
            Err(reason) => {
                self.counters.count_drop(*reason);
                *action = Action::Drop(*reason);
            }
        }
    }

    /// [`Worker::finish_one`] for IPv6.
    #[inline(never)]
    fn finish_v6_one<const OUT: bool>(
        &mut self,
        buf: &mut [u8],
        frame: Frame,
        p: &Parsed6,
        tables: &Tables,
        now: u32,
        action: &mut Action,
    ) {
        let frame = frame.clamped();
        let c = &*self.counters;
        // A pod's packet too big for the external interface is answered apart, before its
        // session, so that the path to the outside leaves by the external interface alone.
        if OUT && pod_too_big::ipv6_exceeds(buf, frame, p, tables) {
            *action = counted(c, pod_too_big::ipv6(buf, frame, p, tables, c));
            return;
        }
        let result = if OUT {
            v6::egress(buf, frame, p, &mut self.nat, tables, c, now)
        } else {
            v6::reply(buf, frame, p, &self.nat, tables, c, now)
        };
        *action = counted(c, result);
    }

    /// [`Worker::finish`] for one direction: a function each, so neither direction's
    /// registers and stack are sized for the other's code.
    #[inline(never)]
    fn finish_one<const OUT: bool>(
        &mut self,
        buf: &mut [u8],
        frame: Frame,
        p: &Parsed,
        tables: &Tables,
        now: u32,
        action: &mut Action,
    ) {
        let frame = frame.clamped();
        let c = &*self.counters;
        // As for IPv6 (`finish_v6_one`).
        if OUT && pod_too_big::ipv4_exceeds(buf, frame, p, tables) {
            *action = counted(c, pod_too_big::ipv4(buf, frame, p, tables, c));
            return;
        }
        let result = if OUT {
            let fragments = &mut self.pieces.fragments;
            in2out::apply(buf, frame, p, &mut self.nat, tables, c, now, fragments)
        } else {
            out2in::apply(buf, frame, p, &self.nat, tables, c, now, &mut self.pieces)
        };
        *action = counted(c, result);
    }
}

/// The action for a translation's result, counted.
#[inline(always)]
fn counted(c: &Counters, result: Result<Output, DropReason>) -> Action {
    match result {
        Ok(out) => {
            bump(match out.iface {
                Iface::External => &c.tx_external,
                Iface::Underlay => &c.tx_underlay,
            });
            Action::Transmit(out)
        }
        Err(reason) => {
            c.count_drop(reason);
            Action::Drop(reason)
        }
    }
}
