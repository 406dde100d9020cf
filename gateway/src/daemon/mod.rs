//! The daemon: everything with I/O or a clock above the dataplane. Its configuration, its
//! answers to control requests, the map as operators edit it, next hops from the kernel, the
//! metrics endpoint, the health gate, the drain of a gateway set's member, and the wiring that starts and stops the workers.

mod affinity;
pub mod bgp_config;
pub mod config;
pub mod config_error;
pub mod control_handler;
pub mod drain;
pub mod ha_config;
pub mod health;
pub mod map_state;
pub mod metrics;
pub mod next_hops;
mod run;
pub mod sync_gate;
pub mod sync_thread;

pub use run::{run, Signals};
