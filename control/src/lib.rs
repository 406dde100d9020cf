//! The control protocol (`proto`), its server (`server`, in the daemon) and client (`client`,
//! in `egressctl` and the watcher).

pub mod client;
pub mod proto;
pub mod server;
pub mod watcher;
