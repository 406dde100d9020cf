//! Everything that touches memory or the kernel the safe language cannot describe: the AF_XDP
//! sockets and UMEM (the dataplane issue), the huge-page backed arrays of the session table, and
//! the prefetch instruction.
//! This is the only module with `unsafe`; each block says why it is sound.

pub mod hugemem;
pub mod port;
pub mod prefetch;
pub mod steer;
pub mod worker;
