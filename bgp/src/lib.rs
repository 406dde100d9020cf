//! BGP-4 speaker and BFD for egressgw, with no dependency on the gateway: a message codec
//! (`wire`), a sans-I/O session state machine (`fsm`), and the speaker that drives it.

pub mod announce;
pub mod bfd;
pub mod filter;
pub mod fsm;
pub mod speaker;
pub mod wire;
