//! BFD (RFC 5880) for single-hop IPv4 (RFC 5881): the control packet, the sans-I/O session and
//! the UDP sockets.

pub mod packet;
pub mod session;
pub mod socket;

pub use packet::{ControlPacket, Diag, Discard, SessionState};
pub use session::{BfdConfig, BfdEvent, BfdSession, Discriminators};
