//! The line-rate harness: a generator and sink on AF_XDP (`tester`), three paths forwarding
//! the same traffic on the same topology (`paths`: egressgw, the seed's kernel path, the
//! plain AF_XDP floor), gateway CPU measured by what is left of its cores (`soak`) and, for
//! the all-CPU trials, every core's from perf's samples (`sampled`), the
//! zero-loss and partial-drop rates' search (`search`), the connection-rate mode's TCP cycles
//! answered without state (`tcp_cycle`), where the loss happened (`losses`), and the table
//! and plot (`report`).
//! The binary is `src/bin/linerate.rs`.

pub mod floor;
pub mod frames;
pub mod losses;
pub mod paths;
pub mod report;
pub mod sampled;
pub mod search;
pub mod soak;
pub mod tcp_cycle;
pub mod tester;
