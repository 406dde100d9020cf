//! TCP segment headers (RFC 9293): what NAT and connection tracking read and rewrite.

use super::checksum;
use super::{be16, be32, put16, Error, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

pub const HEADER_LEN: usize = 20;

/// TCP flag bits as they sit in byte 13.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Checks the fixed header fits, data offset >= 5, and the options fit.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.header_len() < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if p.header_len() > len {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    #[inline(always)]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        be16(self.b(), field::SRC_PORT)
    }

    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), field::DST_PORT)
    }

    #[inline(always)]
    pub fn seq(&self) -> u32 {
        be32(self.b(), field::SEQ)
    }

    #[inline(always)]
    pub fn ack(&self) -> u32 {
        be32(self.b(), field::ACK)
    }

    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::OFF] >> 4) * 4
    }

    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    #[inline(always)]
    pub fn window(&self) -> u16 {
        be16(self.b(), field::WINDOW)
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    /// Verifies the checksum of the whole buffer as the segment.
    #[inline(always)]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let acc = checksum::pseudo_header(src, dst, 6, self.b().len() as u16);
        checksum::verifies(acc, self.b())
    }

    /// [`Self::verify_checksum`] over IPv6.
    #[inline(always)]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        let acc = checksum::pseudo_header_v6(src, dst, 6, self.b().len() as u32);
        checksum::verifies(acc, self.b())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline(always)]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Computes the checksum over the pseudo-header and the whole buffer.
    #[inline(always)]
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let acc = checksum::pseudo_header(src, dst, 6, self.buffer.as_ref().len() as u16);
        let c = !checksum::fold(checksum::sum(acc, self.buffer.as_ref()));
        self.set_checksum(c);
    }

    /// [`Self::fill_checksum`] over IPv6.
    #[inline(always)]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let acc = checksum::pseudo_header_v6(src, dst, 6, self.buffer.as_ref().len() as u32);
        let c = !checksum::fold(checksum::sum(acc, self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

/// The meaning of a TCP header without options (what tests and generated segments need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

impl Repr {
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq(),
            ack: p.ack(),
            flags: p.flags(),
            window: p.window(),
        })
    }

    /// Writes a 20-byte header with a zero checksum.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        put16(buf, field::SRC_PORT, self.src_port);
        put16(buf, field::DST_PORT, self.dst_port);
        buf[field::SEQ..field::SEQ + 4].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::ACK..field::ACK + 4].copy_from_slice(&self.ack.to_be_bytes());
        buf[field::OFF] = 5 << 4;
        buf[field::FLAGS] = self.flags;
        put16(buf, field::WINDOW, self.window);
        put16(buf, field::CHECKSUM, 0);
        put16(buf, field::URGENT, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A SYN 40000 -> 80, seq 1, window 64240, checksum for 10.133.0.3 -> 192.168.55.13.
    const SYN: [u8; 20] = [
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq(), p.ack()),
            (40000, 80, 1, 0)
        );
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!((p.header_len(), p.window()), (20, 64240));
        assert!(p.payload().is_empty());
    }

    #[test]
    fn construct() {
        let r = Repr::parse(&Packet::new_checked(&SYN[..]).unwrap()).unwrap();
        let mut buf = [0xffu8; 20];
        r.emit(&mut buf).unwrap();
        assert_eq!(buf, SYN);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(0x0a85_0003, 0xc0a8_370d);
        assert!(p.verify_checksum(0x0a85_0003, 0xc0a8_370d));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = SYN;
        b[12] = 4 << 4;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        b[12] = 6 << 4; // options claimed but absent
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
    }
}
