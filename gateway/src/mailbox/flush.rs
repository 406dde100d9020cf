//! Operator flushes of NAT sessions. A session is freed only by the worker that owns it (its
//! slot and ports are in that worker's free lists), so the control thread posts the filter to
//! every worker's mailbox and waits a little for each to carry it out on its next turn.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::nat::session::Entry;
use crate::nat::{PROTO_ICMP, PROTO_ICMPV6};

/// Which sessions to free; absent fields match everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushFilter {
    pub pod: Option<IpAddr>,
    pub egress_ip: Option<IpAddr>,
    pub protocol: Option<u8>,
}

impl FlushFilter {
    /// Whether the filter takes `entry`: an address matches sessions of its own family only;
    /// ICMP takes ICMPv6 too.
    pub fn matches(&self, entry: &Entry) -> bool {
        let proto = entry.proto();
        let protocol = self
            .protocol
            .is_none_or(|p| p == proto || (p == PROTO_ICMP && proto == PROTO_ICMPV6));
        protocol
            && match entry {
                Entry::V4(d) => {
                    let is = |want: IpAddr, have: u32| want == IpAddr::from(have.to_be_bytes());
                    self.pod.is_none_or(|p| is(p, d.inside.src))
                        && self.egress_ip.is_none_or(|e| is(e, d.ext_ip))
                }
                Entry::V6(d) => {
                    let is = |want: IpAddr, have: u128| want == IpAddr::from(have.to_be_bytes());
                    self.pod.is_none_or(|p| is(p, d.inside.src))
                        && self.egress_ip.is_none_or(|e| is(e, d.ext_ip))
                }
            }
    }
}

/// One worker's mailbox: a request number, its filter, and how far the worker got.
#[derive(Debug, Default)]
pub struct FlushMailbox {
    requested: AtomicU64,
    filter: Mutex<FlushFilter>,
    done: AtomicU64,
    freed: AtomicU64,
}

impl FlushMailbox {
    /// Posts a flush; returns its number.
    pub fn post(&self, filter: FlushFilter) -> u64 {
        *self.filter.lock().unwrap_or_else(|e| e.into_inner()) = filter;
        self.requested.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The worker's side, once a turn (one load when nothing is asked): the filter to apply,
    /// if a flush is pending.
    #[inline(always)]
    pub fn pending(&self) -> Option<(u64, FlushFilter)> {
        let asked = self.requested.load(Ordering::Acquire);
        if asked == self.done.load(Ordering::Relaxed) {
            return None;
        }
        Some((
            asked,
            *self.filter.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    pub fn finish(&self, request: u64, freed: usize) {
        self.freed.store(freed as u64, Ordering::Relaxed);
        self.done.store(request, Ordering::Release);
    }

    /// Sessions freed by `request`, once the worker has carried it out.
    pub fn result(&self, request: u64) -> Option<u64> {
        (self.done.load(Ordering::Acquire) >= request).then(|| self.freed.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_pending_finish() {
        let m = FlushMailbox::default();
        assert_eq!(m.pending(), None);
        let f = FlushFilter {
            protocol: Some(6),
            ..FlushFilter::default()
        };
        let n = m.post(f);
        assert_eq!(m.pending(), Some((n, f)));
        assert_eq!(m.result(n), None);
        m.finish(n, 3);
        assert_eq!(m.result(n), Some(3));
        assert_eq!(m.pending(), None);
    }
}
