//! IPv6 (RFC 8200): enough to recognise a packet and name its addresses and next header, so
//! the pipeline can drop it with a reason (the gateway translates IPv4 only).

use super::{be16, Error, Result};

mod field {
    pub const VER: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: core::ops::Range<usize> = 8..24;
    pub const DST: core::ops::Range<usize> = 24..40;
}

pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 fixed header.
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

    #[inline]
    pub fn src(&self) -> std::net::Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        a.into()
    }

    #[inline]
    pub fn dst(&self) -> std::net::Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        a.into()
    }
}

#[cfg(test)]
mod tests {
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
}
