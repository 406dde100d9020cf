//! The egressgw dataplane: typed views over packet bytes (`wire`), the pure NAT and
//! connection-tracking core (`nat`), and the per-frame pipeline (`pipeline`) that joins them.
//! Nothing here does I/O or reads a clock; AF_XDP and the daemon wrap it (see ARCHITECTURE.md).

pub mod bgp_config;
pub mod config;
pub mod control_handler;
pub mod daemon;
pub mod drop;
pub mod flush;
pub mod health;
pub mod map_state;
pub mod metrics;
pub mod nat;
pub mod neigh;
pub mod pipeline;
pub mod published;
pub mod testutil;
pub mod trace;
pub mod wire;
pub mod xdp;
