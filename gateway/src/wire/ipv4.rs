//! IPv4 headers (RFC 791), with options and fragment fields.

use super::checksum;
use super::{be16, be32, put16, put32, Error, Result};

/// IP protocol numbers this gateway names; others are kept as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Icmp,
    Tcp,
    Udp,
    Unknown(u8),
}

impl From<u8> for Protocol {
    #[inline(always)]
    fn from(v: u8) -> Self {
        match v {
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u8 {
    #[inline(always)]
    fn from(v: Protocol) -> u8 {
        match v {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Unknown(other) => other,
        }
    }
}

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;

/// A view of an IPv4 packet. The buffer may be longer than the packet (Ethernet padding).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Checks version 4, IHL >= 5, and that header and total length fit the buffer.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 4 || p.header_len() < HEADER_LEN {
            return Err(Error::Malformed);
        }
        let total = usize::from(p.total_len());
        if total < p.header_len() {
            return Err(Error::Malformed);
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    #[inline(always)]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline(always)]
    pub fn dscp_ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }

    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        be16(self.b(), field::LENGTH)
    }

    #[inline(always)]
    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT)
    }

    #[inline(always)]
    pub fn dont_frag(&self) -> bool {
        be16(self.b(), field::FLG_OFF) & FLAG_DF != 0
    }

    #[inline(always)]
    pub fn more_frags(&self) -> bool {
        be16(self.b(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline(always)]
    pub fn frag_offset(&self) -> u16 {
        (be16(self.b(), field::FLG_OFF) & 0x1fff) * 8
    }

    /// Whether this is any fragment (first, middle or last) rather than a whole datagram.
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        be16(self.b(), field::FLG_OFF) & (FLAG_MF | 0x1fff) != 0
    }

    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    #[inline(always)]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.b()[field::PROTOCOL])
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    #[inline(always)]
    pub fn src(&self) -> u32 {
        be32(self.b(), field::SRC)
    }

    #[inline(always)]
    pub fn dst(&self) -> u32 {
        be32(self.b(), field::DST)
    }

    /// The options bytes (empty when IHL is 5).
    #[inline(always)]
    pub fn options(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.header_len()]
    }

    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        let b = self.b();
        match b.first_chunk::<HEADER_LEN>() {
            // The common case, without options: five 32-bit words summed at once.
            Some(h) if self.header_len() == HEADER_LEN => checksum::verifies_header20(h),
            _ => checksum::verifies(0, &b[..self.header_len()]),
        }
    }

    /// The payload up to the total length (padding excluded).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }

    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    #[inline(always)]
    pub fn set_ttl(&mut self, v: u8) {
        self.bm()[field::TTL] = v;
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.bm(), field::CHECKSUM, v);
    }

    #[inline(always)]
    pub fn set_src(&mut self, v: u32) {
        put32(self.bm(), field::SRC, v);
    }

    #[inline(always)]
    pub fn set_dst(&mut self, v: u32) {
        put32(self.bm(), field::DST, v);
    }

    /// Recomputes the header checksum from scratch.
    #[inline(always)]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.b()[..hl]);
        self.set_checksum(c);
    }

    /// Decrements TTL and patches the checksum (RFC 1624); returns the new TTL.
    #[inline(always)]
    pub fn decrement_ttl(&mut self) -> u8 {
        let old = be16(self.b(), field::TTL);
        let ttl = self.ttl().wrapping_sub(1);
        self.set_ttl(ttl);
        let new = be16(self.b(), field::TTL);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
        ttl
    }

    /// Rewrites the source address and patches the header checksum.
    #[inline(always)]
    pub fn rewrite_src(&mut self, new: u32) {
        let c = checksum::update32(self.checksum(), self.src(), new);
        self.set_src(new);
        self.set_checksum(c);
    }

    /// Rewrites the destination address and patches the header checksum.
    #[inline(always)]
    pub fn rewrite_dst(&mut self, new: u32) {
        let c = checksum::update32(self.checksum(), self.dst(), new);
        self.set_dst(new);
        self.set_checksum(c);
    }

    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        &mut self.bm()[h..t]
    }
}

/// The meaning of an IPv4 header without options (the only kind this gateway emits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: u32,
    pub dst: u32,
    pub protocol: Protocol,
    pub payload_len: u16,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Parses a header; options are accepted and dropped from the meaning.
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if !p.verify_checksum() {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len() as u16,
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    /// Writes a 20-byte header with a correct checksum into the front of `buf`.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let total = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(Error::Malformed)?;
        buf[field::VER_IHL] = 0x45;
        buf[field::DSCP_ECN] = self.dscp_ecn;
        put16(buf, field::LENGTH, total);
        put16(buf, field::IDENT, self.ident);
        put16(
            buf,
            field::FLG_OFF,
            if self.dont_frag { FLAG_DF } else { 0 },
        );
        buf[field::TTL] = self.ttl;
        buf[field::PROTOCOL] = self.protocol.into();
        put16(buf, field::CHECKSUM, 0);
        put32(buf, field::SRC, self.src);
        put32(buf, field::DST, self.dst);
        if let Some(h) = buf.first_chunk::<HEADER_LEN>() {
            let c = checksum::header20(h);
            put16(buf, field::CHECKSUM, c);
        }
        Ok(())
    }
}

/// Formats a host-order address as dotted quad (for logs and tests).
pub fn fmt_addr(a: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.133.0.3 -> 192.168.55.13, ICMP, id 0x1c46, DF, TTL 64, 4 payload bytes; checksum from a Python one-liner.
    const PACKET: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x1c, 0x62, 0x0a, 0x85, 0x00,
        0x03, 0xc0, 0xa8, 0x37, 0x0d, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn repr() -> Repr {
        Repr {
            src: 0x0a85_0003,
            dst: 0xc0a8_370d,
            protocol: Protocol::Icmp,
            payload_len: 4,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0x1c46,
            dont_frag: true,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::Icmp);
        assert_eq!(fmt_addr(p.src()).to_string(), "10.133.0.3");
        assert_eq!(fmt_addr(p.dst()).to_string(), "192.168.55.13");
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn construct() {
        let mut buf = PACKET;
        buf[..20].fill(0);
        repr().emit(&mut buf).unwrap();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn rewrite_and_ttl_keep_checksum_valid() {
        let mut buf = PACKET;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.rewrite_src(0xc0a8_4264);
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        assert_eq!(fmt_addr(p.src()).to_string(), "192.168.66.100");
    }

    #[test]
    fn options_and_fragments() {
        let mut buf = [0u8; 28];
        buf[..20].copy_from_slice(&PACKET[..20]);
        buf[0] = 0x46; // IHL 6: one word of options
        buf[3] = 28;
        buf[6] = 0x20; // MF, offset 0x0b9 * 8
        buf[7] = 0xb9;
        buf[20..24].copy_from_slice(&[0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert!(p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0xb9 * 8);
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&PACKET[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut b = PACKET;
        b[0] = 0x44; // IHL 4
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = PACKET;
        b[0] = 0x65; // version 6
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = PACKET;
        b[3] = 100; // total length beyond the buffer
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        let mut b = PACKET;
        b[3] = 10; // total length shorter than the header
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut b = PACKET;
        b[11] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::Malformed);
    }
}
