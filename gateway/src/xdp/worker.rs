//! One dataplane worker: an AF_XDP port, the pipeline state of its queue, and a scratch area
//! the batch is translated in. `poll` is one turn of the busy loop: receive up to a batch,
//! translate it, transmit, expire a few sessions.

use crate::drop::{add, DropReason};
use crate::flush::FlushMailbox;
use crate::pipeline::{Action, Frame, Tables, Worker, BATCH, HEADROOM};
use crate::published::Reader;
use crate::trace::TraceBuffer;
use crate::xdp::port::XskPort;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bytes per scratch slot: headroom plus the largest frame a UMEM frame holds.
const SLOT: usize = 4096;
/// Sessions examined for expiry per turn (cheap: the owner's own slots, a cursor).
const EXPIRY_BUDGET: usize = 64;

/// What one turn did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub received: usize,
    pub transmitted: usize,
}

/// A worker bound to one queue.
#[derive(Debug)]
pub struct DataplaneWorker {
    port: XskPort,
    pub pipeline: Worker,
    scratch: Vec<u8>,
    frames: Vec<Frame>,
    actions: Vec<Action>,
    /// Packet trace and capture, when the daemon asks (see `trace.rs`).
    trace: Option<(u32, Arc<TraceBuffer>)>,
    /// Operator session flushes (see `flush.rs`).
    flush: Option<Arc<FlushMailbox>>,
}

impl DataplaneWorker {
    pub fn new(port: XskPort, pipeline: Worker) -> DataplaneWorker {
        DataplaneWorker {
            port,
            pipeline,
            scratch: vec![0; BATCH * SLOT],
            frames: Vec::with_capacity(BATCH),
            actions: vec![Action::Drop(DropReason::FrameTruncated); BATCH],
            trace: None,
            flush: None,
        }
    }

    /// Lets the control thread flush this worker's sessions.
    pub fn with_flush(mut self, mailbox: Arc<FlushMailbox>) -> Self {
        self.flush = Some(mailbox);
        self
    }

    /// Lets the control thread trace this worker's packets (`queue` labels the records).
    pub fn with_trace(mut self, queue: u32, buffer: Arc<TraceBuffer>) -> Self {
        self.trace = Some((queue, buffer));
        self
    }

    pub fn port(&self) -> &XskPort {
        &self.port
    }

    /// Receives up to a batch (waiting up to `timeout_ms` for the first frame), translates it
    /// and transmits what the pipeline sends out.
    pub fn poll(
        &mut self,
        tables: &mut Reader<Tables>,
        now: u32,
        timeout_ms: i32,
    ) -> io::Result<Turn> {
        self.frames.clear();
        let (scratch, frames) = (&mut self.scratch, &mut self.frames);
        // xsk-rs fixes where a packet starts in its UMEM frame while the pipeline moves it, so
        // the batch is copied into slots with headroom (the dataplane issue weighs owning the
        // rings instead).
        // Busy time starts at the first frame, after the wait: the copy below counts.
        let mut busy_from = None;
        let received = self.port.receive(timeout_ms, |bytes| {
            let i = frames.len();
            if i == 0 {
                busy_from = Some(std::time::Instant::now());
            }
            let len = bytes.len().min(SLOT - HEADROOM);
            let start = i * SLOT + HEADROOM;
            scratch[start..start + len].copy_from_slice(&bytes[..len]);
            frames.push(Frame {
                start,
                len,
                headroom: HEADROOM,
            });
        })?;
        let n = self.frames.len();
        // The tables are taken after the wait, not before it: a batch that arrives after a
        // publication is translated with the new tables.
        match &self.trace {
            Some((queue, buffer)) if n > 0 && buffer.armed() => {
                // One packet at a time, recorded before and after.
                for (i, frame) in self.frames.iter().enumerate() {
                    let claimed = buffer.claim();
                    let input = claimed
                        .then(|| self.scratch[frame.start..frame.start + frame.len].to_vec());
                    let made = self
                        .pipeline
                        .counters
                        .sessions_created
                        .load(Ordering::Relaxed);
                    let action =
                        self.pipeline
                            .process(&mut self.scratch, *frame, tables.get(), now);
                    self.actions[i] = action;
                    if let Some(input) = input {
                        let output = match action {
                            Action::Transmit(o) => &self.scratch[o.start..o.start + o.len],
                            Action::Drop(_) => &[][..],
                        };
                        let created = self
                            .pipeline
                            .counters
                            .sessions_created
                            .load(Ordering::Relaxed)
                            != made;
                        buffer.record(*queue, &input, action, output, created);
                    }
                }
            }
            _ => self.pipeline.process_batch(
                &mut self.scratch,
                &self.frames,
                tables.get(),
                now,
                &mut self.actions[..n],
            ),
        }
        let mut queued = 0;
        let mut tx_bytes = 0;
        for action in &self.actions[..n] {
            if let Action::Transmit(out) = *action {
                if self
                    .port
                    .queue(&self.scratch[out.start..out.start + out.len])
                {
                    queued += 1;
                    tx_bytes += out.len as u64;
                } else {
                    self.pipeline.counters.count_drop(DropReason::TxRingFull);
                }
            }
        }
        let transmitted = self.port.flush()?;
        for _ in transmitted..queued {
            self.pipeline.counters.count_drop(DropReason::TxRingFull);
        }
        let counters = &self.pipeline.counters;
        add(&counters.rx_batches, 1);
        self.pipeline.nat.expire(now, EXPIRY_BUDGET);
        if let Some((request, filter)) = self.flush.as_ref().and_then(|m| m.pending()) {
            let freed = self.pipeline.nat.flush(|d| filter.matches(d));
            if let Some(m) = &self.flush {
                m.finish(request, freed);
            }
        }
        if let Some(from) = busy_from {
            let rx_bytes: usize = self.frames.iter().map(|f| f.len).sum();
            add(&counters.rx_bytes, rx_bytes as u64);
            add(&counters.tx_bytes, tx_bytes);
            add(&counters.busy_ns, from.elapsed().as_nanos() as u64);
        }
        Ok(Turn {
            received,
            transmitted,
        })
    }
}
