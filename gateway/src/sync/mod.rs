//! Session replication between the gateways that serve one egress IP (issue 16), pure: the
//! sync messages' wire format here; the channel (sequence numbers, acks, NACKs, resends)
//! and the sync thread that does the I/O come next.

pub mod receive;
pub mod wire;
