//! Shared pieces of the criterion benches: a batch of frames in a UMEM-like buffer, restored
//! before each run (the pipeline rewrites frames in place; a NIC hands it fresh ones), and
//! resident-memory readings.

use gateway::nat::{FlowKey, NatConfig, SessionTable, TunnelEndpoint, PROTO_TCP};
use gateway::pipeline::{Action, DropReason, Frame, Tables, Worker, BATCH, FRAME_STRIDE, HEADROOM};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use gateway::testutil;

pub mod linerate;

/// Bytes per frame in the buffer: the dataplane worker's stride, so the bench's frames share
/// cache sets as the worker's do.
pub const CHUNK: usize = FRAME_STRIDE;

/// Up to [`BATCH`] frames in one buffer, plus pristine copies to restore them from.
#[derive(Debug)]
pub struct Batch {
    templates: Vec<Vec<u8>>,
    umem: Vec<u8>,
    frames: Vec<Frame>,
    pub actions: Vec<Action>,
}

impl Batch {
    pub fn new(templates: Vec<Vec<u8>>) -> Batch {
        assert!(templates.len() <= BATCH);
        let frames = templates
            .iter()
            .enumerate()
            .map(|(i, t)| Frame {
                start: i * CHUNK + HEADROOM,
                len: t.len(),
                headroom: HEADROOM,
            })
            .collect();
        Batch {
            actions: vec![Action::Drop(DropReason::FrameTruncated); templates.len()],
            umem: vec![0u8; templates.len() * CHUNK],
            frames,
            templates,
        }
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Replaces the frame templates (same count; the next run restores from them).
    pub fn set_templates(&mut self, templates: Vec<Vec<u8>>) {
        assert_eq!(templates.len(), self.templates.len());
        self.templates = templates;
    }

    /// Restores the frames and runs them through `w` as one batch.
    #[inline]
    pub fn run(&mut self, w: &mut Worker, tables: &Tables, now: u32) {
        self.restore();
        w.process_batch(&mut self.umem, &self.frames, tables, now, &mut self.actions);
    }

    /// [`Batch::run`], returning the time `process_batch` took: the restore is the bench's
    /// stand-in for the NIC (or the kernel's copy) writing fresh frames, not pipeline work.
    #[inline]
    pub fn run_timed(&mut self, w: &mut Worker, tables: &Tables, now: u32) -> Duration {
        self.restore();
        self.process_timed(w, tables, now)
    }

    /// [`Batch::run_timed`] on `frames` (one per frame of the batch) instead of the batch's
    /// own templates, which stay as they were: for benches that draw each batch from a pool.
    pub fn run_timed_on(
        &mut self,
        frames: &[Vec<u8>],
        w: &mut Worker,
        tables: &Tables,
        now: u32,
    ) -> Duration {
        assert_eq!(frames.len(), self.frames.len());
        copy_in(&mut self.umem, &mut self.frames, frames);
        self.process_timed(w, tables, now)
    }

    fn process_timed(&mut self, w: &mut Worker, tables: &Tables, now: u32) -> Duration {
        let t = Instant::now();
        w.process_batch(&mut self.umem, &self.frames, tables, now, &mut self.actions);
        t.elapsed()
    }

    fn restore(&mut self) {
        copy_in(&mut self.umem, &mut self.frames, &self.templates);
    }

    /// The bytes frame `i` of the last run was transmitted as (empty when dropped).
    pub fn output(&self, i: usize) -> &[u8] {
        match self.actions[i] {
            Action::Transmit(o) => &self.umem[o.start..o.start + o.len],
            Action::Drop(_) => &[],
        }
    }

    /// How many of the last run's frames were transmitted.
    pub fn transmitted(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Transmit(_)))
            .count()
    }
}

/// Writes each template into its frame of `umem`.
fn copy_in(umem: &mut [u8], frames: &mut [Frame], templates: &[Vec<u8>]) {
    for (f, t) in frames.iter_mut().zip(templates) {
        f.len = t.len();
        umem[f.start..f.start + t.len()].copy_from_slice(t);
    }
}

/// Resident memory of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The `i`-th pod flow of the lookup benches: distinct remotes, so every session gets the first
/// port it tries (ports are endpoint-dependent).
pub fn lookup_key(i: u32) -> FlowKey {
    FlowKey {
        src: 0x0a80_0000 | (i & 0xffff),
        dst: 0x0100_0000 + i,
        src_port: 40000,
        dst_port: 443,
        proto: PROTO_TCP,
    }
}

/// A one-worker table holding the sessions of `lookup_key(0..n)`, and the resident bytes the
/// table and the worker's free list added.
pub fn filled_table(n: u32) -> (Arc<SessionTable>, usize) {
    let rss0 = rss_bytes();
    let table = SessionTable::new(NatConfig {
        max_sessions: n,
        ..NatConfig::default()
    });
    let mut w = table.worker(0);
    for i in 0..n {
        let k = lookup_key(i);
        w.create(
            k,
            table.hash(&k),
            0xc0a8_4264,
            &[],
            TunnelEndpoint::default(),
            0,
            0,
        )
        .expect("room");
    }
    let resident = rss_bytes().saturating_sub(rss0);
    (table, resident)
}

/// `count` keys of live sessions among `lookup_key(0..n)`, in a fixed pseudo-random order.
pub fn random_keys(n: u32, count: usize) -> Vec<FlowKey> {
    let mut x = 0x2545_f491_u32;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            lookup_key(x % n)
        })
        .collect()
}
