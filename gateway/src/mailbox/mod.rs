//! What the dataplane workers and the control thread share, each side through its own end:
//! the tables published to workers (read-copy-update), operator flushes of sessions, the workers' per-pod accounts, and the
//! packet trace and the session changes bound for the sync thread. Workers only ever poll
//! or push without waiting; they never wait on the control thread.

pub mod flush;
pub mod pods;
pub mod published;
pub mod sync_queue;
pub mod trace;
