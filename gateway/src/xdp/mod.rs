//! Everything that touches memory or the kernel the safe language cannot describe: the AF_XDP
//! sockets and UMEM (the dataplane issue), and the huge-page backed arrays of the session table.
//! This is the only module with `unsafe`; each block says why it is sound.

pub mod hugemem;
