//! Memory the NAT core needs that safe Rust cannot describe: zeroed arrays backed by huge
//! pages, and the prefetch hint. With `xdp/`, the only module with `unsafe`.

pub mod hugemem;
pub mod prefetch;
