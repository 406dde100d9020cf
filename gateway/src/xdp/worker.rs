//! One dataplane worker: an AF_XDP port (two in two-armed mode: the underlay's and the external
//! interface's, same queue), the pipeline state of its queue, and a scratch area the batch is
//! translated in. `poll` is one turn of the busy loop: receive up to a batch from each port,
//! translate it, transmit each frame on the port of the interface the pipeline chose, expire a
//! few sessions.

use crate::drop::{add, DropReason};
use crate::mailbox::flush::FlushMailbox;
use crate::mailbox::pods::{PodBoard, PodReport};
use crate::mailbox::published::Reader;
use crate::mailbox::trace::TraceBuffer;
use crate::nat::blocks::PortBlocks;
use crate::pipeline::{Action, Frame, Iface, Tables, Worker, BATCH, FRAME_STRIDE, HEADROOM};
use crate::xdp::port::XskPort;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Bytes per scratch slot: headroom plus the largest frame a UMEM frame holds, staggered.
const SLOT: usize = FRAME_STRIDE;
/// Slots examined for expiry per turn (the owner's own slots, from a cursor): a few after a
/// full batch, so that a loaded worker spends little on it; more after a partial one; many
/// after an idle wait, which costs nothing. A sweep of a million slots takes about a second
/// idle (a wait is `WORKER_WAKE_MS`), so sessions are gone soon after their timeout however
/// big the table; at 64 a turn an idle sweep took three minutes and a churning pod kept about
/// twice its sessions.
const EXPIRY_BUDGET: usize = 64;
const PARTIAL_EXPIRY_BUDGET: usize = 256;
const IDLE_EXPIRY_BUDGET: usize = 8192;

/// What one turn did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub received: usize,
    pub transmitted: usize,
}

/// The smallest batch after which receive coalescing waits (`dataplane.rx_coalesce_us`).
pub const COALESCE_MIN_BATCH: usize = 4;

impl Turn {
    /// Whether waiting before the next look would gather a bigger batch: this one was short
    /// of full yet held several frames, so they come faster than the worker looks. One to
    /// three frames say they come slower, and a wait would only add latency.
    pub fn worth_coalescing(&self) -> bool {
        (COALESCE_MIN_BATCH..BATCH).contains(&self.received)
    }
}

/// A worker bound to one queue.
#[derive(Debug)]
pub struct DataplaneWorker {
    port: XskPort,
    /// Two-armed mode: the external interface's port (`port` is then the underlay's).
    external: Option<XskPort>,
    pub pipeline: Worker,
    scratch: Vec<u8>,
    frames: Vec<Frame>,
    actions: Vec<Action>,
    /// Packet trace and capture, when the daemon asks (`mailbox::trace`).
    trace: Option<(u32, Arc<TraceBuffer>)>,
    /// Operator session flushes (`mailbox::flush`).
    flush: Option<Arc<FlushMailbox>>,
    /// Failover: the port blocks this node owns, as the sync thread publishes them.
    blocks: Option<Reader<PortBlocks>>,
    /// Where the per-pod accounts are copied once a second, and the second of the last copy.
    pods: Option<(Arc<PodBoard>, u32)>,
}

impl DataplaneWorker {
    pub fn new(port: XskPort, pipeline: Worker) -> DataplaneWorker {
        DataplaneWorker {
            port,
            external: None,
            pipeline,
            scratch: vec![0; BATCH * SLOT],
            frames: Vec::with_capacity(BATCH),
            actions: vec![Action::Drop(DropReason::FrameTruncated); BATCH],
            trace: None,
            flush: None,
            blocks: None,
            pods: None,
        }
    }

    /// Copies the per-pod accounts to `board` once a second.
    pub fn with_pod_board(mut self, board: Arc<PodBoard>) -> Self {
        self.pods = Some((board, u32::MAX));
        self
    }

    /// Takes up each ownership of the port blocks `blocks` publishes, between batches.
    pub fn with_blocks(mut self, blocks: Reader<PortBlocks>) -> Self {
        self.pipeline.nat.set_blocks(Arc::clone(blocks.current()));
        self.blocks = Some(blocks);
        self
    }

    /// Two-armed mode: frames for the outside go out on `port`, and what arrives on it is
    /// translated too.
    pub fn with_external(mut self, port: XskPort) -> Self {
        self.external = Some(port);
        self
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

    /// Receives up to a batch from each port (waiting up to `timeout_ms` for the first frame),
    /// translates it and transmits what the pipeline sends out; then expires a few sessions
    /// and serves a pending flush.
    pub fn poll(
        &mut self,
        tables: &mut Reader<Tables>,
        now: u32,
        timeout_ms: i32,
    ) -> io::Result<Turn> {
        // One atomic load when nothing changed.
        if let Some(b) = self.blocks.as_mut().and_then(Reader::changed) {
            self.pipeline.nat.set_blocks(b);
        }
        let turn = match self.external.as_ref().map(XskPort::fd) {
            None => self.turn(false, tables, now, timeout_ms)?,
            Some(external_fd) => {
                let mut t = self.turn(false, tables, now, 0)?;
                let e = self.turn(true, tables, now, 0)?;
                t.received += e.received;
                t.transmitted += e.transmitted;
                if t.received == 0 && timeout_ms != 0 {
                    wait_readable(&[self.port.fd(), external_fd], timeout_ms)?;
                }
                t
            }
        };
        let budget = match turn.received {
            0 => IDLE_EXPIRY_BUDGET,
            n if n < BATCH => PARTIAL_EXPIRY_BUDGET,
            _ => EXPIRY_BUDGET,
        };
        self.pipeline.nat.expire(now, budget);
        let live = u64::from(self.pipeline.nat.live());
        self.pipeline
            .counters
            .slots_in_use
            .store(live, Ordering::Relaxed);
        if let Some((board, reported)) = self.pods.as_mut().filter(|(_, at)| *at != now) {
            *reported = now;
            let t = tables.get();
            let (map, map6) = (&t.egress, &t.ipv6.egress);
            let nat = &mut self.pipeline.nat;
            nat.prune_pods(|pod| map.maps(pod), |pod| map6.maps(pod));
            board.publish(nat.pod_usage().map(|(pod, u)| PodReport {
                pod,
                sessions: u64::from(u.sessions),
                drops: u.drops,
            }));
        }
        if let Some((request, filter)) = self.flush.as_ref().and_then(|m| m.pending()) {
            let freed = self.pipeline.nat.flush(|d| filter.matches(d));
            if let Some(m) = &self.flush {
                m.finish(request, freed);
            }
        }
        Ok(turn)
    }

    /// One batch from one port (the external one if `external`), through the pipeline and out.
    fn turn(
        &mut self,
        external: bool,
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
        let port = match (&mut self.external, external) {
            (Some(p), true) => p,
            _ => &mut self.port,
        };
        let received = port.receive(timeout_ms, |bytes| {
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
                    let claimed = buffer.claim().map(|claim| {
                        (
                            claim,
                            self.scratch[frame.start..frame.start + frame.len].to_vec(),
                        )
                    });
                    let made = self
                        .pipeline
                        .counters
                        .sessions_created
                        .load(Ordering::Relaxed);
                    let action =
                        self.pipeline
                            .process(&mut self.scratch, *frame, tables.get(), now);
                    self.actions[i] = action;
                    if let Some((claim, input)) = claimed {
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
                        buffer.record(claim, *queue, &input, action, output, created);
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
        if n == 0 {
            return Ok(Turn::default());
        }
        let mut queued = [0usize; 2];
        let mut tx_bytes = 0;
        for action in &self.actions[..n] {
            if let Action::Transmit(out) = *action {
                // One-armed, both interfaces are the one port.
                let (i, port) = match (out.iface, &mut self.external) {
                    (Iface::External, Some(p)) => (1, p),
                    _ => (0, &mut self.port),
                };
                if port.queue(&self.scratch[out.start..out.start + out.len]) {
                    queued[i] += 1;
                    tx_bytes += out.len as u64;
                } else {
                    self.pipeline.counters.count_drop(DropReason::TxRingFull);
                }
            }
        }
        // Replies cut to fit the underlay: their pieces beyond the first (`refragment`).
        let spill = &mut self.pipeline.pieces.spill;
        for out in spill.outputs() {
            let (i, port) = match (out.iface, &mut self.external) {
                (Iface::External, Some(p)) => (1, p),
                _ => (0, &mut self.port),
            };
            if port.queue(spill.bytes(out)) {
                queued[i] += 1;
                tx_bytes += out.len as u64;
                let c = &self.pipeline.counters;
                add(
                    match out.iface {
                        Iface::Underlay => &c.tx_underlay,
                        Iface::External => &c.tx_external,
                    },
                    1,
                );
            } else {
                self.pipeline.counters.count_drop(DropReason::TxRingFull);
            }
        }
        spill.clear();
        let mut transmitted = 0;
        for (i, port) in [Some(&mut self.port), self.external.as_mut()]
            .into_iter()
            .enumerate()
        {
            let Some(port) = port else { continue };
            let sent = port.flush()?;
            for _ in sent..queued[i] {
                self.pipeline.counters.count_drop(DropReason::TxRingFull);
            }
            transmitted += sent;
        }
        let counters = &self.pipeline.counters;
        add(&counters.rx_batches, 1);
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

/// Waits until either socket has frames, or `timeout_ms` passes (two-armed mode's idle wait).
fn wait_readable(fds: &[std::os::fd::RawFd; 2], timeout_ms: i32) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::BorrowedFd;
    // SAFETY: both descriptors belong to this worker's ports, which outlive this call.
    let borrowed = unsafe { fds.map(|fd| BorrowedFd::borrow_raw(fd)) };
    let mut set = borrowed.map(|fd| PollFd::new(fd, PollFlags::POLLIN));
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
    match poll(&mut set, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_waits_after_several_frames_short_of_a_full_batch() {
        let turn = |received| Turn {
            received,
            transmitted: 0,
        };
        let waits: Vec<usize> = (0..=BATCH + 1)
            .filter(|&n| turn(n).worth_coalescing())
            .collect();
        // An empty turn waited in poll already; one to three frames come slower than the
        // worker looks; a full batch says more are waiting.
        assert_eq!(waits, (COALESCE_MIN_BATCH..BATCH).collect::<Vec<_>>());
    }
}
