//! Ethernet II frames, with an optional 802.1Q tag.

use super::{be16, put16, Error, Result};
use core::fmt;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The address as the first six bytes of a little-endian word, the last two zero: one
    /// 8-byte store writes it into a header (with two bytes after it, which the next field's
    /// store then overwrites); also how sessions and neighbour slots keep it.
    #[inline(always)]
    pub fn to_word(self) -> u64 {
        let b = self.0;
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    }

    /// The address in the first six bytes of a little-endian word (the rest ignored).
    #[inline(always)]
    pub fn from_word(v: u64) -> MacAddr {
        let b = v.to_le_bytes();
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }
}

/// An Ethernet header's bytes 6-13 for an IPv4 frame from `src` (source MAC, then the type),
/// as a little-endian word: stored after the destination's word, it completes the header.
#[inline(always)]
pub fn src_and_type_word(src: MacAddr) -> u64 {
    src_and_type_word_of(src, EtherType::Ipv4)
}

/// [`src_and_type_word`] with another Ethernet type (IPv6's).
#[inline(always)]
pub fn src_and_type_word_of(src: MacAddr, ethertype: EtherType) -> u64 {
    let t = u16::from(ethertype).to_be_bytes();
    src.to_word() | u64::from(u16::from_le_bytes(t)) << 48
}

/// Writes an Ethernet header as two overlapping 8-byte stores: the destination's word (see
/// [`MacAddr::to_word`]) at byte 0, then [`src_and_type_word`]'s at byte 6, which overwrites
/// the first word's two spare bytes.
#[inline(always)]
pub fn put_header_words(h: &mut [u8; HEADER_LEN], dst: u64, src_and_type: u64) {
    h[..8].copy_from_slice(&dst.to_le_bytes());
    h[6..].copy_from_slice(&src_and_type.to_le_bytes());
}

impl core::str::FromStr for MacAddr {
    type Err = Error;

    /// `aa:bb:cc:dd:ee:ff`, as the kernel and `ip` print it.
    fn from_str(s: &str) -> Result<MacAddr> {
        let mut m = [0u8; 6];
        let mut parts = s.trim().split(':');
        for b in &mut m {
            let part = parts.next().ok_or(Error::Truncated)?;
            *b = u8::from_str_radix(part, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(MacAddr(m))
    }
}

impl fmt::Debug for MacAddr {
    #[inline(always)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MacAddr {
    #[inline(always)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// EtherType values this gateway names; others are kept as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Arp,
    Vlan,
    Ipv6,
    Unknown(u16),
}

impl From<u16> for EtherType {
    #[inline(always)]
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline(always)]
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const VLAN_TCI: usize = 14;
    pub const VLAN_ETHERTYPE: usize = 16;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Checks that the header (and the 802.1Q tag, when present) fits.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Frame { buffer };
        let len = f.buffer.as_ref().len();
        if len < HEADER_LEN || (f.raw_ethertype() == 0x8100 && len < HEADER_LEN + VLAN_TAG_LEN) {
            return Err(Error::Truncated);
        }
        Ok(f)
    }

    #[inline(always)]
    pub fn dst(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(m)
    }

    #[inline(always)]
    pub fn src(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(m)
    }

    #[inline(always)]
    fn raw_ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The 802.1Q tag control information (PCP, DEI, VID), if tagged.
    #[inline(always)]
    pub fn vlan_tci(&self) -> Option<u16> {
        (self.raw_ethertype() == 0x8100).then(|| be16(self.buffer.as_ref(), field::VLAN_TCI))
    }

    /// The EtherType of the payload (after the 802.1Q tag when there is one).
    #[inline(always)]
    pub fn ethertype(&self) -> EtherType {
        match self.vlan_tci() {
            Some(_) => EtherType::from(be16(self.buffer.as_ref(), field::VLAN_ETHERTYPE)),
            None => EtherType::from(self.raw_ethertype()),
        }
    }

    #[inline(always)]
    pub fn header_len(&self) -> usize {
        if self.vlan_tci().is_some() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline(always)]
    pub fn set_dst(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&m.0);
    }

    #[inline(always)]
    pub fn set_src(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&m.0);
    }

    /// Sets the EtherType of an untagged frame.
    #[inline(always)]
    pub fn set_ethertype(&mut self, t: EtherType) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, t.into());
    }

    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// The meaning of an Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub vlan_tci: Option<u16>,
    pub ethertype: EtherType,
}

impl Repr {
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Result<Repr> {
        Ok(Repr {
            src: f.src(),
            dst: f.dst(),
            vlan_tci: f.vlan_tci(),
            ethertype: f.ethertype(),
        })
    }

    #[inline(always)]
    pub fn header_len(&self) -> usize {
        HEADER_LEN
            + if self.vlan_tci.is_some() {
                VLAN_TAG_LEN
            } else {
                0
            }
    }

    /// Writes the header into the front of `buf`, which must hold `header_len()` bytes.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        buf[field::DST].copy_from_slice(&self.dst.0);
        buf[field::SRC].copy_from_slice(&self.src.0);
        match self.vlan_tci {
            Some(tci) => {
                put16(buf, field::ETHERTYPE, 0x8100);
                put16(buf, field::VLAN_TCI, tci);
                put16(buf, field::VLAN_ETHERTYPE, self.ethertype.into());
            }
            None => put16(buf, field::ETHERTYPE, self.ethertype.into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // OVN transit-switch MACs of the seed: 0a:58:64:58:00:02 (master-03) -> 0a:58:64:58:00:04.
    const UNTAGGED: [u8; 16] = [
        0x0a, 0x58, 0x64, 0x58, 0x00, 0x04, 0x0a, 0x58, 0x64, 0x58, 0x00, 0x02, 0x08, 0x00, 0x45,
        0x00,
    ];
    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0x20,
        0x64, 0x08, 0x06, 0x00, 0x01,
    ];

    #[test]
    fn deconstruct_untagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), MacAddr([0x0a, 0x58, 0x64, 0x58, 0x00, 0x04]));
        assert_eq!(f.src(), MacAddr([0x0a, 0x58, 0x64, 0x58, 0x00, 0x02]));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn deconstruct_tagged() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.vlan_tci(), Some(0x2064));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x00, 0x01]);
    }

    #[test]
    fn construct_both() {
        let mut buf = [0u8; 16];
        let r = Repr::parse(&Frame::new_checked(&UNTAGGED[..]).unwrap()).unwrap();
        r.emit(&mut buf).unwrap();
        assert_eq!(buf[..14], UNTAGGED[..14]);
        let mut buf = [0u8; 20];
        let r = Repr::parse(&Frame::new_checked(&TAGGED[..]).unwrap()).unwrap();
        r.emit(&mut buf).unwrap();
        assert_eq!(buf[..18], TAGGED[..18]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Frame::new_checked(&TAGGED[..17]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn mac_from_str() {
        let m: MacAddr = "0a:58:64:58:00:02\n".parse().unwrap();
        assert_eq!(m, MacAddr([0x0a, 0x58, 0x64, 0x58, 0x00, 0x02]));
        assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
        assert_eq!("0a:58:64:58:00".parse::<MacAddr>(), Err(Error::Truncated));
        assert_eq!(
            "0a:58:64:58:00:02:03".parse::<MacAddr>(),
            Err(Error::Malformed)
        );
        assert_eq!(
            "0a:58:64:58:00:zz".parse::<MacAddr>(),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn mac_u64_round_trip() {
        let m = MacAddr([0x0a, 0x58, 0x64, 0x58, 0x00, 0x02]);
        assert_eq!(MacAddr::from_word(m.to_word()), m);
    }
}
