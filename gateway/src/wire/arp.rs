//! ARP over Ethernet for IPv4 (RFC 826): recognised so it is never mistaken for payload.

use super::ethernet::MacAddr;
use super::{be16, be32, put16, put32, Error, Result};

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

pub const PACKET_LEN: usize = 28;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the length and that this is Ethernet (1) / IPv4 (0x0800) with 6/4 address lengths.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        let b = p.buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if be16(b, field::HTYPE) != 1
            || be16(b, field::PTYPE) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    #[inline]
    fn mac(&self, at: usize) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[at..at + 6]);
        MacAddr(m)
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER)
    }

    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        self.mac(field::SHA)
    }

    #[inline]
    pub fn sender_ip(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SPA)
    }

    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        self.mac(field::THA)
    }

    #[inline]
    pub fn target_ip(&self) -> u32 {
        be32(self.buffer.as_ref(), field::TPA)
    }
}

/// The meaning of an ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// 1 request, 2 reply.
    pub operation: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: u32,
    pub target_mac: MacAddr,
    pub target_ip: u32,
}

impl Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        put16(buf, field::HTYPE, 1);
        put16(buf, field::PTYPE, 0x0800);
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        put16(buf, field::OPER, self.operation);
        buf[field::SHA..field::SHA + 6].copy_from_slice(&self.sender_mac.0);
        put32(buf, field::SPA, self.sender_ip);
        buf[field::THA..field::THA + 6].copy_from_slice(&self.target_mac.0);
        put32(buf, field::TPA, self.target_ip);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who has 192.168.99.12? Tell 192.168.99.23.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x17, 0xc0,
        0xa8, 0x63, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x63, 0x0c,
    ];

    #[test]
    fn round_trip() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.operation, 1);
        assert_eq!(r.sender_mac, MacAddr([2, 0, 0, 0, 0, 0x17]));
        assert_eq!((r.sender_ip, r.target_ip), (0xc0a8_6317, 0xc0a8_630c));
        let mut out = [0u8; 28];
        r.emit(&mut out).unwrap();
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut b = REQUEST;
        b[5] = 16;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }
}
