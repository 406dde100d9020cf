//! One AF_XDP socket on one queue of one interface, with its own UMEM (xsk-rs over libxdp).
//!
//! Every UMEM frame is owned by exactly one party at a time: the kernel (after the fill ring
//! hands it over) or this port (after the RX ring hands it back). `receive` lends frames to the
//! caller for the length of a callback and returns them to the fill ring afterwards, so the
//! caller never holds a frame the kernel may write. Half the frames serve receive (the fill
//! ring), half transmit: `queue` copies a packet into a free transmit frame, `flush` hands a
//! batch over with one wakeup, and frames come back to the free list from the completion ring.
//!
//! xsk-rs fixes where a packet starts in its frame, while the pipeline moves the start
//! (decapsulation, encapsulation), so forwarding costs a copy per packet for now; owning the
//! rings would remove it (see the dataplane issue).

use std::io::{self, Write};
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use xsk_rs::config::{
    BindFlags, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// How the kernel moves frames between the device and the UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    ZeroCopy,
    /// The kernel copies each frame (veth, and devices without zero-copy support).
    Copy,
}

impl XdpMode {
    /// The name operators see (`egressctl stats`).
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::ZeroCopy => "zero-copy",
            XdpMode::Copy => "copy",
        }
    }
}

/// Extra wakeups per flush: 64 frames need two in copy mode; more only when the ring was
/// already backed up.
const MAX_TX_WAKEUPS: usize = 4;

/// Which XDP program sends the queue's frames to the socket.
#[derive(Debug, Clone, Copy)]
enum Program {
    /// libxdp's default (every frame), in driver mode where the driver has it.
    Libxdp,
    /// libxdp's default in generic mode.
    LibxdpGeneric,
    /// The caller's (the steering program).
    Own,
}

/// Gives `frames` back through `produce` (which takes a prefix of what it is offered and
/// says how many: libxdp takes all or none), after the frames `held` from earlier calls; what
/// it does not take is held for the next call. The kernel publishes how far it has read the
/// fill ring lazily, so the ring can look full while we hold frames it has room for: the seed
/// lab once lost its worker to that (an assertion), and a release build would have lost the
/// frame for good.
fn refill<T: Copy>(held: &mut Vec<T>, frames: &[T], mut produce: impl FnMut(&[T]) -> usize) {
    if !held.is_empty() {
        let taken = produce(held).min(held.len());
        held.drain(..taken);
    }
    if !frames.is_empty() {
        let taken = produce(frames).min(frames.len());
        held.extend_from_slice(&frames[taken..]);
    }
}

/// An AF_XDP socket and the UMEM behind it.
pub struct XskPort {
    umem: Umem,
    rx: RxQueue,
    tx: TxQueue,
    fill: FillQueue,
    comp: CompQueue,
    /// Scratch descriptors the RX ring is consumed into.
    batch: Vec<FrameDesc>,
    /// Received frames the fill ring had no room for yet, given back first at the next
    /// receive (see [`refill`]). Room for every receive frame, so holding never allocates.
    unfilled: Vec<FrameDesc>,
    /// Transmit frames not in the kernel's hands.
    tx_free: Vec<FrameDesc>,
    /// Frames written by `queue`, handed over at `flush` (at most a batch).
    tx_pending: Vec<FrameDesc>,
    /// Scratch descriptors the completion ring is consumed into.
    completed: Vec<FrameDesc>,
    mode: XdpMode,
    /// Slots of the TX ring.
    tx_ring: u32,
    /// Frames the kernel sends per wakeup when it took `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+;
    /// copy mode's default is 32); `None` when it refused the option.
    tx_budget: Option<u32>,
    /// Wakeups (`sendto`) made so far to transmit.
    tx_wakeups: u64,
}

impl std::fmt::Debug for XskPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskPort")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// `setsockopt(SOL_XDP, XDP_MAX_TX_SKB_BUDGET)`: how many frames one copy-mode wakeup sends.
/// False where the kernel does not know the option (before 6.17) or refuses the value.
fn set_tx_budget(fd: RawFd, frames: u32) -> bool {
    const SOL_XDP: libc::c_int = 283;
    const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
    // SAFETY: `fd` is the socket just created; the option value is a u32 of the size given,
    // read by the kernel during the call only.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&frames as *const u32).cast(),
            core::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    rc == 0
}

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

impl XskPort {
    /// Binds queue `queue` of `ifname` with a UMEM of `frames` frames, all handed to the
    /// kernel's fill ring, with libxdp's default program (which takes every frame). Tries
    /// zero-copy first and falls back to copy mode.
    pub fn open(ifname: &str, queue: u32, frames: u32) -> io::Result<XskPort> {
        Self::open_with(ifname, queue, frames, Program::Libxdp)
    }

    /// [`Self::open`] with libxdp's program attached in generic mode: it then runs after the
    /// kernel steered the packet to a core (RPS on veth), not on the sender's core.
    pub fn open_generic(ifname: &str, queue: u32, frames: u32) -> io::Result<XskPort> {
        Self::open_with(ifname, queue, frames, Program::LibxdpGeneric)
    }

    /// [`Self::open`] without loading libxdp's program: the caller's own (the steering
    /// program) redirects to this socket once [`Self::fd`] is in its map.
    pub fn open_steered(ifname: &str, queue: u32, frames: u32) -> io::Result<XskPort> {
        Self::open_with(ifname, queue, frames, Program::Own)
    }

    fn open_with(ifname: &str, queue: u32, frames: u32, program: Program) -> io::Result<XskPort> {
        let count = NonZeroU32::new(frames).ok_or_else(|| err("UMEM", "zero frames"))?;
        let iface: Interface = ifname.parse().map_err(|e| err("interface name", e))?;
        // Every ring holds half the frames (rounded up to a power of two, as rings must be):
        // the fill ring can take every receive frame at once, the TX ring every transmit one.
        let ring = QueueSize::new((frames / 2).max(1).next_power_of_two())
            .map_err(|e| err("ring size", e))?;
        let umem_config = UmemConfig::builder()
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .build()
            .map_err(|e| err("UMEM", e))?;
        let mut last = None;
        for (mode, flags) in [
            (XdpMode::ZeroCopy, BindFlags::XDP_ZEROCOPY),
            (XdpMode::Copy, BindFlags::XDP_COPY),
        ] {
            let (umem, descs) = Umem::new(umem_config, count, false).map_err(|e| err("UMEM", e))?;
            let mut builder = SocketConfig::builder();
            builder.rx_queue_size(ring).tx_queue_size(ring);
            builder.bind_flags(flags | BindFlags::XDP_USE_NEED_WAKEUP);
            match program {
                Program::Libxdp => {}
                Program::LibxdpGeneric => {
                    builder.xdp_flags(XdpFlags::XDP_FLAGS_SKB_MODE);
                }
                Program::Own => {
                    builder.libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD);
                }
            }
            let config = builder.build();
            // SAFETY: the UMEM is new and not shared with any other socket, which is the
            // condition `Socket::new` puts on callers.
            match unsafe { Socket::new(config, &umem, &iface, queue) } {
                Ok((tx, rx, Some((mut fill, comp)))) => {
                    let mut descs = descs;
                    let tx_free = descs.split_off(descs.len() / 2);
                    // SAFETY: the descriptors come from this UMEM and none is in use elsewhere.
                    let given = unsafe { fill.produce(&descs) };
                    if given != descs.len() {
                        return Err(err(
                            "fill ring",
                            format!("took {given} of {} frames", descs.len()),
                        ));
                    }
                    // One wakeup for a whole batch: let the kernel send the ring's worth per
                    // call instead of copy mode's 32 (XDP_MAX_TX_SKB_BUDGET, 6.17+; older
                    // kernels refuse it and the flush wakes them again instead).
                    let tx_budget =
                        set_tx_budget(tx.fd().as_raw_fd(), ring.get()).then_some(ring.get());
                    let unfilled = Vec::with_capacity(descs.len());
                    let batch = descs.into_iter().take(64).collect();
                    let completed = tx_free.iter().take(64).copied().collect();
                    return Ok(XskPort {
                        umem,
                        rx,
                        tx,
                        fill,
                        comp,
                        batch,
                        unfilled,
                        tx_free,
                        // A batch's frames and the pieces of the replies it cut.
                        tx_pending: Vec::with_capacity(
                            crate::pipeline::refragment::MAX_FRAMES_PER_BATCH,
                        ),
                        completed,
                        mode,
                        tx_ring: ring.get(),
                        tx_budget,
                        tx_wakeups: 0,
                    });
                }
                Ok(_) => {
                    return Err(err(
                        "AF_XDP socket",
                        "no fill/completion ring for a fresh UMEM",
                    ))
                }
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(err(
            &format!("AF_XDP socket on {ifname} queue {queue}"),
            last.unwrap_or_default(),
        ))
    }

    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The socket's file descriptor, for the steering program's map.
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Copies `packet` into a free transmit frame, to go out at the next [`Self::flush`].
    /// Returns false (the caller counts a drop) when every transmit frame is in flight or
    /// `packet` does not fit a frame.
    pub fn queue(&mut self, packet: &[u8]) -> bool {
        if self.tx_free.is_empty() {
            self.reclaim();
        }
        let Some(mut desc) = self.tx_free.pop() else {
            return false;
        };
        // SAFETY: a free transmit frame belongs to no ring, so nothing else reads or writes it.
        let written = unsafe { self.umem.data_mut(&mut desc) }
            .cursor()
            .write_all(packet)
            .is_ok();
        if written {
            self.tx_pending.push(desc);
        } else {
            self.tx_free.push(desc);
        }
        written
    }

    /// Hands the queued frames to the kernel with one wakeup for the lot (one syscall per
    /// batch, not per packet) and reclaims completed ones. Returns how many were taken; the
    /// rest (the ring was full) go back to the free list.
    pub fn flush(&mut self) -> io::Result<usize> {
        if self.tx_pending.is_empty() {
            self.reclaim();
            return Ok(0);
        }
        // SAFETY: the queued frames hold their packets and belong to no ring; the kernel owns
        // them until the completion ring returns them (`reclaim`).
        let sent = unsafe { self.tx.produce(&self.tx_pending) };
        if self.tx.needs_wakeup() {
            self.tx.wakeup()?;
            self.tx_wakeups += 1;
        }
        if sent == 0 {
            self.tx_free.extend_from_slice(&self.tx_pending);
        }
        // In copy mode one wakeup sends at most 32 frames (the kernel's TX_BATCH_SIZE): wake
        // it again until it has taken the batch, or the ring was full before (bounded).
        for _ in 0..MAX_TX_WAKEUPS {
            if self.tx.nb_free_exact() >= self.tx_ring || !self.tx.needs_wakeup() {
                break;
            }
            self.tx.wakeup()?;
            self.tx_wakeups += 1;
        }
        self.tx_pending.clear();
        self.reclaim();
        Ok(sent)
    }

    /// Frames the kernel sends per wakeup, when it took the raised budget.
    pub fn tx_budget(&self) -> Option<u32> {
        self.tx_budget
    }

    /// Wakeups made to transmit so far.
    pub fn tx_wakeups(&self) -> u64 {
        self.tx_wakeups
    }

    /// Takes transmitted frames back from the completion ring.
    fn reclaim(&mut self) {
        // SAFETY: the completion ring returns frames the kernel has finished sending; they are
        // ours again, and go to the free list.
        let n = unsafe { self.comp.consume(&mut self.completed) };
        self.tx_free.extend_from_slice(&self.completed[..n]);
    }

    /// Waits up to `timeout_ms` for frames, passes each received frame's bytes to `f`, and
    /// gives the frames back to the kernel. Returns how many were received. Frames already
    /// waiting are taken without a syscall; only an empty ring is waited on (`poll`).
    pub fn receive(&mut self, timeout_ms: i32, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        // SAFETY: the scratch descriptors are overwritten by the RX ring with frames the kernel
        // has finished with; they are read below and returned to the fill ring before the
        // next call.
        let mut n = unsafe { self.rx.consume(&mut self.batch) };
        if n == 0 && timeout_ms != 0 {
            // SAFETY: as above.
            n = unsafe { self.rx.poll_and_consume(&mut self.batch, timeout_ms)? };
        }
        for desc in &self.batch[..n] {
            // SAFETY: the frame was just handed to us by the RX ring, so the kernel does not
            // write it until it is produced to the fill ring again below.
            let data = unsafe { self.umem.data(desc) };
            f(data.contents());
        }
        let fill = &mut self.fill;
        refill(&mut self.unfilled, &self.batch[..n], |frames| {
            // SAFETY: frames held from before or just read: ours, unused, each offered until
            // the ring takes it and then never again.
            unsafe { fill.produce(frames) }
        });
        // A zero-copy driver that ran dry waits for a wakeup; `poll` above gave one only when
        // the ring was empty.
        if n > 0 && self.fill.needs_wakeup() {
            self.fill.wakeup(self.rx.fd_mut(), 0)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::refill;

    /// A fill ring of `room` slots that takes all or none, as libxdp's reserve does.
    struct Ring {
        room: usize,
        given: Vec<u32>,
    }

    impl Ring {
        fn produce(&mut self, frames: &[u32]) -> usize {
            if frames.len() > self.room {
                return 0;
            }
            self.room -= frames.len();
            self.given.extend_from_slice(frames);
            frames.len()
        }
    }

    #[test]
    fn frames_the_ring_cannot_take_are_held_not_lost() {
        let mut ring = Ring {
            room: 3,
            given: vec![],
        };
        let mut held = Vec::with_capacity(8);
        refill(&mut held, &[1, 2], |f| ring.produce(f));
        assert_eq!((ring.given.clone(), held.clone()), (vec![1, 2], vec![]));
        // One slot left: a batch of two is held whole.
        refill(&mut held, &[3, 4], |f| ring.produce(f));
        assert_eq!(held, [3, 4]);
        // Still no room for the held pair: the next batch is held behind it.
        refill(&mut held, &[5], |f| ring.produce(f));
        assert_eq!(held, [3, 4]);
        assert_eq!(ring.given, [1, 2, 5]);
        // The kernel catches up: held frames go first, then the new ones.
        ring.room = 8;
        refill(&mut held, &[6], |f| ring.produce(f));
        assert!(held.is_empty());
        assert_eq!(ring.given, [1, 2, 5, 3, 4, 6]);
        // Every frame went back exactly once.
        let mut all = ring.given.clone();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn an_empty_batch_only_retries_what_is_held() {
        let mut calls = 0;
        let mut held = vec![7u32];
        refill(&mut held, &[], |f| {
            calls += 1;
            f.len()
        });
        assert_eq!((calls, held.len()), (1, 0));
        refill(&mut held, &[], |_| {
            calls += 1;
            0
        });
        assert_eq!(calls, 1, "nothing held, nothing offered: no call");
    }
}
