//! egressgw's gateway: the dataplane and the daemon that runs it, in layers. Each module uses
//! only those listed above it (`tests/layering.rs` holds the crate to that).
//!
//! - `mem`: huge-page arrays and the prefetch hint, the memory the NAT core needs that safe
//!   Rust cannot describe (`unsafe`).
//! - The pure core, with no I/O and no clock (time is an argument): `wire` (typed views over
//!   packet bytes), `drop` (the drop reasons), `nat` (sessions, ports, TCP state, expiry) and
//!   `pipeline` (one frame in, one action out); then `sync` (the gateways' session
//!   replication messages), which uses the NAT core's types.
//! - `mailbox`: what the workers and the control thread share (published tables, flush
//!   requests, the packet trace).
//! - `xdp`: AF_XDP sockets, the steering program and the worker loop (`unsafe`).
//! - `daemon`: configuration, control answers, next hops, metrics, health and the wiring.

pub mod mem;

pub mod drop;
pub mod nat;
pub mod pipeline;
pub mod wire;

pub mod sync;

pub mod mailbox;

pub mod xdp;

pub mod daemon;

#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
