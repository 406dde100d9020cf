//! Session replication between the gateways that serve one egress IP (issue 16), pure: the
//! sync messages' wire format, the receiving end of a peer's stream (acks, NACKs, window)
//! and the sending end (resends of current state, batches). The sync thread that does the
//! I/O lives in the daemon.

pub mod receive;
pub mod send;
pub mod wire;

/// `a` is after `b` in serial-number order (RFC 1982): sequence numbers may wrap.
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}
