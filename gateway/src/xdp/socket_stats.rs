//! What the kernel drops before the dataplane sees a frame: an AF_XDP socket's own counters
//! (`XDP_STATISTICS`: a full RX ring, an empty fill ring, bad descriptors) and the interface's
//! receive drops. Read by the control thread and the metrics endpoint, never on the packet
//! path: the socket is a duplicate of the worker's, so it stays valid whatever the worker does.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// One socket's counters (`struct xdp_statistics`), as the kernel keeps them since bind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SocketStats {
    /// Frames dropped for other reasons (no UMEM frame, a frame too big).
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full (the worker fell behind).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (no frame to receive into).
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the TX ring empty on a wakeup.
    pub tx_ring_empty_descs: u64,
}

impl SocketStats {
    /// (name, value) of each counter, names as `egressctl stats` and the metrics show them.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("rx_dropped", self.rx_dropped),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty", self.rx_fill_ring_empty_descs),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("tx_ring_empty", self.tx_ring_empty_descs),
        ]
    }
}

/// A duplicate of an AF_XDP socket, to read its counters from another thread.
#[derive(Debug)]
pub struct StatsHandle {
    fd: OwnedFd,
}

const SOL_XDP: libc::c_int = 283;
const XDP_STATISTICS: libc::c_int = 7;

impl StatsHandle {
    /// Duplicates the socket `fd` (it must be open now; the duplicate keeps the socket alive).
    pub fn new(fd: RawFd) -> io::Result<StatsHandle> {
        // SAFETY: `fd` is the worker's socket, open while this call runs (the caller holds
        // the port); the borrow ends within the statement, and the duplicate is our own.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        Ok(StatsHandle { fd })
    }

    pub fn read(&self) -> io::Result<SocketStats> {
        let mut stats = SocketStats::default();
        let mut len = core::mem::size_of::<SocketStats>() as libc::socklen_t;
        // SAFETY: `stats` is a writable `struct xdp_statistics` (repr(C), six u64) of the
        // size given in `len`; the kernel writes at most `len` bytes and sets `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_XDP,
                XDP_STATISTICS,
                (&mut stats as *mut SocketStats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != core::mem::size_of::<SocketStats>() {
            return Err(io::Error::other(format!(
                "XDP_STATISTICS returned {len} bytes, not {}",
                core::mem::size_of::<SocketStats>()
            )));
        }
        Ok(stats)
    }
}

/// The interface's own receive drops (`/sys/class/net/IF/statistics/rx_dropped`), frames the
/// kernel dropped before any program or socket had them.
pub fn interface_rx_dropped(ifname: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/rx_dropped"))?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::other(format!("{ifname} rx_dropped: {e}")))
}
