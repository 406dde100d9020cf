//! The Kubernetes watcher's logic: the objects it reads (`objects`), the desired state they
//! imply for this node (`desired`), the requests that get the daemon there (`diff`), and in
//! standalone mode the host election written back to the cluster (`election`). The I/O
//! (watching the API server) is separate; this part is pure and tested here.

pub mod desired;
pub mod diff;
pub mod election;
pub mod objects;

#[cfg(test)]
mod tests;
