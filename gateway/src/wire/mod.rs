//! Typed zero-copy views over packet bytes, one file per header (smoltcp style).
//!
//! Each view is generic over its buffer (`T: AsRef<[u8]>` to read, `AsMut` to write), checks
//! lengths once in `new_checked`, and never panics afterwards. `Repr` types carry the parsed
//! meaning and are emitted into a buffer as a separate step.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod geneve;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use core::fmt;

/// What is wrong with a buffer handed to a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the header or a length field says.
    Truncated,
    /// A field holds a value the format forbids (version, header length, length field).
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated"),
            Error::Malformed => f.write_str("malformed"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian u16 at `at`; callers have checked the length in `new_checked`.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
