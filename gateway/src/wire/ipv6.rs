//! IPv6 (RFC 8200): the fixed header, and a bounded walk of the extension headers to the
//! upper layer (hop-by-hop, routing, fragment, destination options).

use super::{be16, put16, Error, Result};
use core::fmt;
use std::net::Ipv6Addr;

mod field {
    pub const VER: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: core::ops::Range<usize> = 8..24;
    pub const DST: core::ops::Range<usize> = 24..40;
}

pub const HEADER_LEN: usize = 40;

/// Next-header values (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DESTINATION_OPTIONS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
    pub const EXPERIMENT1: u8 = 253;
    pub const EXPERIMENT2: u8 = 254;
}

/// Extension headers a walk passes at most: RFC 8200 recommends each at most once (and
/// destination options twice), so a longer chain is built to make a walk long.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// A view of an IPv6 packet: the fixed header and `payload_len` bytes after it (the buffer
/// may hold more, such as Ethernet padding).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        if HEADER_LEN + usize::from(p.payload_len()) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        (u32::from(b[1] & 0x0f) << 16) | u32::from(be16(b, 2))
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address as it lies in the header.
    #[inline]
    pub fn src_bytes(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        a
    }

    #[inline]
    pub fn dst_bytes(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        a
    }

    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        self.src_bytes().into()
    }

    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        self.dst_bytes().into()
    }

    /// The bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers to the upper layer (see [`walk`]).
    #[inline]
    pub fn upper_layer(&self) -> core::result::Result<UpperLayer, ChainError> {
        walk(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    #[inline]
    pub fn set_src(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a);
    }

    #[inline]
    pub fn set_dst(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Where the upper layer starts, or the fragment header that stands before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpperLayer {
    /// The upper layer's protocol (TCP, UDP, ICMPv6, or any other, including "no next
    /// header") and its offset in the payload (after the fixed header).
    Protocol { next_header: u8, offset: usize },
    /// A fragment: the walk stops at its header (at `offset` in the payload), since only the
    /// first fragment holds the upper layer's header and the gateway reassembles nothing.
    Fragment {
        offset: usize,
        /// The protocol of the fragmented part.
        next_header: u8,
        /// Offset of this fragment in the original payload, in bytes.
        fragment_offset: u16,
        more: bool,
        id: u32,
    },
}

/// Why an extension-header chain cannot be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// An extension header runs past the payload.
    Truncated,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers.
    TooLong,
    /// Hop-by-hop options anywhere but first (RFC 8200 section 4.1).
    HopByHopNotFirst,
    /// An extension header the gateway does not translate across (ESP, AH, mobility, HIP,
    /// shim6, the experimental values): rewriting the addresses under it would break it, or
    /// its length is not ours to know.
    Unsupported(u8),
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Truncated => f.write_str("extension header truncated"),
            ChainError::TooLong => write!(f, "more than {MAX_EXTENSION_HEADERS} extension headers"),
            ChainError::HopByHopNotFirst => f.write_str("hop-by-hop options not first"),
            ChainError::Unsupported(n) => write!(f, "unsupported extension header {n}"),
        }
    }
}

impl std::error::Error for ChainError {}

/// Walks the extension headers of `payload` (what follows the fixed header, whose next
/// header is `first`) to the upper layer. Bounded: every header moves at least 8 bytes on,
/// and at most [`MAX_EXTENSION_HEADERS`] are passed.
pub fn walk(first: u8, payload: &[u8]) -> core::result::Result<UpperLayer, ChainError> {
    use next_header::*;
    let (mut next, mut at) = (first, 0usize);
    for passed in 0..=MAX_EXTENSION_HEADERS {
        let len = match next {
            HOP_BY_HOP if passed > 0 => return Err(ChainError::HopByHopNotFirst),
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => {
                // Next header, then the length in 8-byte units, not counting the first 8.
                let h = payload.get(at..at + 2).ok_or(ChainError::Truncated)?;
                (usize::from(h[1]) + 1) * 8
            }
            FRAGMENT => {
                let h = payload.get(at..at + 8).ok_or(ChainError::Truncated)?;
                let field = be16(h, 2);
                return Ok(UpperLayer::Fragment {
                    offset: at,
                    next_header: h[0],
                    fragment_offset: field & !0x7,
                    more: field & 1 == 1,
                    id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                });
            }
            ESP | AH | MOBILITY | HIP | SHIM6 | EXPERIMENT1 | EXPERIMENT2 => {
                return Err(ChainError::Unsupported(next))
            }
            upper => {
                return Ok(UpperLayer::Protocol {
                    next_header: upper,
                    offset: at,
                })
            }
        };
        if passed == MAX_EXTENSION_HEADERS {
            return Err(ChainError::TooLong);
        }
        if at + len > payload.len() {
            return Err(ChainError::Truncated);
        }
        next = payload[at];
        at += len;
    }
    Err(ChainError::TooLong)
}

/// The meaning of a fixed header (traffic class and flow label left zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    pub payload_len: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            hop_limit: p.hop_limit(),
            payload_len: p.payload_len(),
        }
    }

    /// Writes the 40-byte fixed header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let h = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
        h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        put16(h, field::PAYLOAD_LEN, self.payload_len);
        h[field::NEXT_HEADER] = self.next_header;
        h[field::HOP_LIMIT] = self.hop_limit;
        h[field::SRC].copy_from_slice(&self.src.octets());
        h[field::DST].copy_from_slice(&self.dst.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_header::*;
    use super::*;

    // fd00::1 -> fd00::2, UDP, hop limit 64, 0 payload bytes.
    const PACKET: [u8; 40] = [
        0x60, 0, 0, 0, 0x00, 0x00, 17, 64, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xfd,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (0, 17, 64)
        );
        assert_eq!(p.src().to_string(), "fd00::1");
        assert_eq!(p.dst().to_string(), "fd00::2");
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 0));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&PACKET[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut b = PACKET;
        b[5] = 1;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        b[5] = 0;
        b[0] = 0x45;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn repr_round_trip_and_setters() {
        let repr = Repr::parse(&Packet::new_checked(&PACKET[..]).unwrap());
        let mut b = [0u8; 40];
        repr.emit(&mut b).unwrap();
        assert_eq!(b, PACKET);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_hop_limit(63);
        p.set_src(Ipv6Addr::LOCALHOST.octets());
        assert_eq!((p.hop_limit(), p.src()), (63, Ipv6Addr::LOCALHOST));
        // Traffic class 0xab and flow label 0xcdef1 straddle the first four bytes.
        b[..4].copy_from_slice(&[0x6a, 0xbc, 0xde, 0xf1]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.traffic_class(), p.flow_label()), (0xab, 0xcdef1));
    }

    /// An options header (hop-by-hop, routing or destination options) of `len` bytes with
    /// `next` as its next header.
    fn options(next: u8, len: usize) -> Vec<u8> {
        let mut h = vec![0u8; len];
        h[0] = next;
        h[1] = (len / 8 - 1) as u8;
        h
    }

    #[test]
    fn walks_each_extension_header_to_the_upper_layer() {
        let mut chain = options(ROUTING, 8);
        chain.extend(options(DESTINATION_OPTIONS, 24));
        chain.extend(options(TCP, 16));
        chain.extend([0u8; 20]);
        assert_eq!(
            walk(HOP_BY_HOP, &chain),
            Ok(UpperLayer::Protocol {
                next_header: TCP,
                offset: 48
            })
        );
        assert_eq!(
            walk(UDP, &[]),
            Ok(UpperLayer::Protocol {
                next_header: UDP,
                offset: 0
            })
        );
    }

    #[test]
    fn stops_at_a_fragment_header() {
        let mut chain = options(FRAGMENT, 8);
        // Next header UDP, offset 185 * 8, more fragments, id 0x01020304.
        chain.extend([UDP, 0, 0x05, 0xc9, 1, 2, 3, 4]);
        assert_eq!(
            walk(DESTINATION_OPTIONS, &chain),
            Ok(UpperLayer::Fragment {
                offset: 8,
                next_header: UDP,
                fragment_offset: 1480,
                more: true,
                id: 0x0102_0304
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_walk() {
        // Truncated: in the length byte, and in the body the length promises.
        assert_eq!(walk(ROUTING, &[TCP]), Err(ChainError::Truncated));
        assert_eq!(
            walk(ROUTING, &options(TCP, 16)[..12]),
            Err(ChainError::Truncated)
        );
        assert_eq!(walk(FRAGMENT, &[UDP, 0, 0, 0]), Err(ChainError::Truncated));
        // Hop-by-hop after another header.
        assert_eq!(
            walk(DESTINATION_OPTIONS, &options(HOP_BY_HOP, 8)),
            Err(ChainError::HopByHopNotFirst)
        );
        for n in [ESP, AH, MOBILITY, HIP, SHIM6, EXPERIMENT1, EXPERIMENT2] {
            assert_eq!(walk(n, &[0; 64]), Err(ChainError::Unsupported(n)));
        }
        // A chain of destination options longer than the bound, each one valid.
        let mut chain = Vec::new();
        for _ in 0..MAX_EXTENSION_HEADERS + 1 {
            chain.extend(options(DESTINATION_OPTIONS, 8));
        }
        chain.extend(options(UDP, 8));
        assert_eq!(walk(DESTINATION_OPTIONS, &chain), Err(ChainError::TooLong));
        // Exactly the bound passes.
        let at = MAX_EXTENSION_HEADERS * 8;
        chain.truncate(at);
        chain[at - 8] = UDP;
        assert_eq!(
            walk(DESTINATION_OPTIONS, &chain),
            Ok(UpperLayer::Protocol {
                next_header: UDP,
                offset: at
            })
        );
    }
}
