//! The pure NAT and connection-tracking core: flow keys, the session table shared by all
//! workers, per-worker port pools and session slots, TCP state, expiry. No I/O, no clock:
//! `now` (whole seconds on a monotonic clock) is always an argument.

pub mod af;
pub mod blocks;
pub mod fair;
pub mod flow;
pub mod index;
pub mod ports;
pub mod session;
pub mod table;
pub mod tcp;

pub use fair::{Destination, FairLimits};
pub use flow::{
    FlowHasher, FlowKey, FlowKey6, InsideKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
pub use session::{
    Binding, Binding6, Entry, ReplyTunnel, SessionData, SessionData6, Snapshot, Snapshot6,
    TunnelEndpoint,
};
pub use table::{
    Found, NatWorker, NewSession, NewSession6, ReplicaOutcome, SessionEvents, SessionRef,
    SessionRef6, SessionTable,
};
pub use tcp::Direction;

use core::ops::RangeInclusive;

/// Idle timeouts in seconds (defaults: VPP NAT44-ED's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_established: u32,
    /// SYN-sent, closing, closed and reset TCP sessions.
    pub tcp_transitory: u32,
    pub udp: u32,
    pub icmp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 7440,
            tcp_transitory: 240,
            udp: 300,
            icmp: 60,
        }
    }
}

/// Sizing and policy of the session table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Bound on IPv4 sessions; each worker gets an equal share of the slots.
    pub max_sessions: u32,
    /// Bound on IPv6 sessions (two cache lines each), shared the same way.
    pub max_sessions_v6: u32,
    pub workers: u16,
    /// This node's slice of every egress IP's ports; split again per worker.
    pub port_range: RangeInclusive<u16>,
    pub timeouts: Timeouts,
    /// How many ports a new flow tries before counting `port_exhausted`.
    pub max_port_tries: usize,
    /// Slots kept for sessions replicated from the other gateways of the set (taken from
    /// `max_sessions`; 0 without failover).
    pub replica_slots: u32,
    /// The same for IPv6 sessions (taken from `max_sessions_v6`).
    pub replica_slots_v6: u32,
    /// Per-pod limits (off here; the daemon's configuration turns them on by default).
    pub fair: FairLimits,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            max_sessions: 1 << 20,
            max_sessions_v6: 0,
            workers: 1,
            port_range: 1024..=65535,
            timeouts: Timeouts::default(),
            max_port_tries: 512,
            replica_slots: 0,
            replica_slots_v6: 0,
            fair: FairLimits::NONE,
        }
    }
}
