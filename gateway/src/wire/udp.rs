//! UDP datagrams (RFC 768).

use super::checksum;
use super::{be16, put16, Error, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram. The buffer may be longer than the UDP length field.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Checks the header fits and the length field is at least 8 and within the buffer.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let ulen = usize::from(p.len());
        if ulen < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if ulen > len {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline(always)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Verifies the checksum against the pseudo-header; zero means "not computed" (RFC 768).
    #[inline(always)]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let acc = checksum::pseudo_header(src, dst, 17, self.len());
        checksum::verifies(acc, &self.buffer.as_ref()[..usize::from(self.len())])
    }

    /// Verifies the checksum over IPv6: there zero is not "not computed" but invalid (RFC
    /// 8200 section 8.1; only tunnels may agree otherwise, RFC 6935, and they check apart).
    #[inline(always)]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let acc = checksum::pseudo_header_v6(src, dst, 17, u32::from(self.len()));
        checksum::verifies(acc, &self.buffer.as_ref()[..usize::from(self.len())])
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

    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes the checksum over the pseudo-header and datagram (0 is sent as 0xffff).
    #[inline(always)]
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let acc = checksum::pseudo_header(src, dst, 17, self.len());
        let c = !checksum::fold(checksum::sum(
            acc,
            &self.buffer.as_ref()[..usize::from(self.len())],
        ));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// [`Self::fill_checksum`] over IPv6 (zero is never sent: it goes as 0xffff).
    #[inline(always)]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let acc = checksum::pseudo_header_v6(src, dst, 17, u32::from(self.len()));
        let c = !checksum::fold(checksum::sum(
            acc,
            &self.buffer.as_ref()[..usize::from(self.len())],
        ));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// The meaning of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: u16,
}

impl Repr {
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.len() - HEADER_LEN as u16,
        })
    }

    /// Writes the header with a zero checksum (fill it afterwards if wanted).
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(Error::Malformed)?;
        put16(buf, field::SRC_PORT, self.src_port);
        put16(buf, field::DST_PORT, self.dst_port);
        put16(buf, field::LENGTH, len);
        put16(buf, field::CHECKSUM, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 49152 -> 6081 (Geneve), 4 bytes of payload, checksum over 10.0.0.1 -> 10.0.0.2.
    const DATAGRAM: [u8; 12] = [
        0xc0, 0x00, 0x17, 0xc1, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (49152, 6081, 12));
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert!(p.verify_checksum(0x0a00_0001, 0x0a00_0002)); // zero: not computed
    }

    #[test]
    fn construct_and_checksum() {
        let mut buf = [0u8; 12];
        Repr {
            src_port: 49152,
            dst_port: 6081,
            payload_len: 4,
        }
        .emit(&mut buf)
        .unwrap();
        buf[8..].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(buf, DATAGRAM);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(0x0a00_0001, 0x0a00_0002);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(0x0a00_0001, 0x0a00_0002));
        assert!(!p.verify_checksum(0x0a00_0001, 0x0a00_0003));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&DATAGRAM[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut b = DATAGRAM;
        b[5] = 0; // length 0
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = DATAGRAM;
        b[5] = 13; // length beyond the buffer
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
    }
}
