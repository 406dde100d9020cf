//! Shared pieces of the criterion benches: a batch of frames in a UMEM-like buffer, restored
//! before each run (the pipeline rewrites frames in place; a NIC hands it fresh ones), and
//! resident-memory readings.

use gateway::pipeline::{Action, DropReason, Frame, Tables, Worker, BATCH, HEADROOM};

pub use gateway::testutil;

/// Bytes per frame in the buffer, as an AF_XDP UMEM chunk.
pub const CHUNK: usize = 2048;

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

    /// Replaces the frame templates (same count).
    pub fn set_templates(&mut self, templates: Vec<Vec<u8>>) {
        assert_eq!(templates.len(), self.templates.len());
        for (f, t) in self.frames.iter_mut().zip(&templates) {
            f.len = t.len();
        }
        self.templates = templates;
    }

    /// Restores the frames and runs them through `w` as one batch.
    #[inline]
    pub fn run(&mut self, w: &mut Worker, tables: &Tables, now: u32) {
        for (f, t) in self.frames.iter().zip(&self.templates) {
            self.umem[f.start..f.start + t.len()].copy_from_slice(t);
        }
        w.process_batch(&mut self.umem, &self.frames, tables, now, &mut self.actions);
    }

    /// How many of the last run's frames were transmitted.
    pub fn transmitted(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Transmit(_)))
            .count()
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
