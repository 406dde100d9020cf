//! Geneve (RFC 8926): the base header, a checked TLV option iterator, and OVN's option
//! (class 0x0102, type 0x80, 4 bytes: 1 reserved bit, 15-bit ingress port key, 16-bit egress
//! port key) as a typed accessor.

use super::{be16, put16, Error, Result};

mod field {
    pub const VER_OPTLEN: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: usize = 2;
    pub const VNI: core::ops::Range<usize> = 4..7;
}

pub const HEADER_LEN: usize = 8;
/// UDP destination port assigned to Geneve.
pub const UDP_PORT: u16 = 6081;
/// Protocol type of an Ethernet payload (Transparent Ethernet Bridging).
pub const PROTO_ETHERNET: u16 = 0x6558;
/// OVN's option class and type (the type's high bit is the critical bit).
pub const OVN_CLASS: u16 = 0x0102;
pub const OVN_TYPE: u8 = 0x80;
/// OVN option on the wire: 4-byte option header + 4 bytes of data.
pub const OVN_OPTION_LEN: usize = 8;
/// VNI of OVN-Kubernetes' transit switch on the default network.
pub const OVN_TRANSIT_VNI: u32 = 0x00ff_0003;

const FLAG_OAM: u8 = 0x80;
const FLAG_CRITICAL: u8 = 0x40;
const OPT_TYPE_CRITICAL: u8 = 0x80;

/// A view of a Geneve header and its options; the payload follows the options.
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Checks version 0 and that the options area fits the buffer.
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Header { buffer };
        let len = h.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if h.version() != 0 {
            return Err(Error::Malformed);
        }
        if h.header_len() > len {
            return Err(Error::Truncated);
        }
        Ok(h)
    }

    #[inline(always)]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.b()[field::VER_OPTLEN] >> 6
    }

    /// Length of the options in bytes.
    #[inline(always)]
    pub fn options_len(&self) -> usize {
        usize::from(self.b()[field::VER_OPTLEN] & 0x3f) * 4
    }

    #[inline(always)]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// OAM frames are control traffic, not payload.
    #[inline(always)]
    pub fn oam(&self) -> bool {
        self.b()[field::FLAGS] & FLAG_OAM != 0
    }

    /// The sender marked at least one option critical.
    #[inline(always)]
    pub fn critical(&self) -> bool {
        self.b()[field::FLAGS] & FLAG_CRITICAL != 0
    }

    #[inline(always)]
    pub fn protocol(&self) -> u16 {
        be16(self.b(), field::PROTOCOL)
    }

    #[inline(always)]
    pub fn vni(&self) -> u32 {
        let v = &self.b()[field::VNI];
        u32::from_be_bytes([0, v[0], v[1], v[2]])
    }

    #[inline(always)]
    pub fn options(&self) -> Options<'_> {
        Options {
            rest: &self.b()[HEADER_LEN..self.header_len()],
        }
    }

    /// OVN's (ingress, egress) logical port keys when the OVN option is present and well formed.
    #[inline(always)]
    pub fn ovn_ports(&self) -> Option<(u16, u16)> {
        self.options()
            .filter_map(|o| o.ok())
            .find_map(|o| o.ovn_ports())
    }

    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
}

/// One TLV option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOption<'a> {
    pub class: u16,
    /// The type byte; its high bit is the critical bit.
    pub opt_type: u8,
    pub data: &'a [u8],
}

impl GeneveOption<'_> {
    /// A receiver that does not understand a critical option must drop the packet (RFC 8926 3.5).
    #[inline(always)]
    pub fn is_critical(&self) -> bool {
        self.opt_type & OPT_TYPE_CRITICAL != 0
    }

    #[inline(always)]
    pub fn is_ovn(&self) -> bool {
        self.class == OVN_CLASS && self.opt_type == OVN_TYPE
    }

    #[inline(always)]
    pub fn ovn_ports(&self) -> Option<(u16, u16)> {
        if !self.is_ovn() || self.data.len() != 4 {
            return None;
        }
        Some((be16(self.data, 0) & 0x7fff, be16(self.data, 2)))
    }
}

/// Iterates over options; yields one `Err` and stops if an option overruns the options area.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<GeneveOption<'a>>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(Error::Truncated));
        }
        let data_len = usize::from(self.rest[3] & 0x1f) * 4;
        if 4 + data_len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Error::Truncated));
        }
        let opt = GeneveOption {
            class: be16(self.rest, 0),
            opt_type: self.rest[2],
            data: &self.rest[4..4 + data_len],
        };
        self.rest = &self.rest[4 + data_len..];
        Some(Ok(opt))
    }
}

/// The meaning of a Geneve header as this gateway emits it: Ethernet payload, at most the OVN option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub vni: u32,
    /// OVN (ingress, egress) port keys; `None` emits no option.
    pub ovn_ports: Option<(u16, u16)>,
}

impl Repr {
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        HEADER_LEN
            + if self.ovn_ports.is_some() {
                OVN_OPTION_LEN
            } else {
                0
            }
    }

    /// Writes the header and option into the front of `buf`.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < self.header_len() || self.vni > 0x00ff_ffff {
            return Err(Error::Truncated);
        }
        let opt_words = if self.ovn_ports.is_some() {
            (OVN_OPTION_LEN / 4) as u8
        } else {
            0
        };
        buf[field::VER_OPTLEN] = opt_words;
        buf[field::FLAGS] = if self.ovn_ports.is_some() {
            FLAG_CRITICAL
        } else {
            0
        };
        put16(buf, field::PROTOCOL, PROTO_ETHERNET);
        buf[4..8].copy_from_slice(&(self.vni << 8).to_be_bytes());
        if let Some((ingress, egress)) = self.ovn_ports {
            put16(buf, 8, OVN_CLASS);
            buf[10] = OVN_TYPE;
            buf[11] = 1;
            put16(buf, 12, ingress & 0x7fff);
            put16(buf, 14, egress);
        }
        Ok(())
    }

    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Repr> {
        for o in h.options() {
            o?;
        }
        Ok(Repr {
            vni: h.vni(),
            ovn_ports: h.ovn_ports(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // As OVN sends from master-03 (node-id 2... ingress key 2) to master-01 (egress key 4):
    // version 0, 2 option words, C flag, proto 0x6558, VNI 0xff0003, option 0102/80/len 1.
    const OVN_HEADER: [u8; 16] = [
        0x02, 0x40, 0x65, 0x58, 0xff, 0x00, 0x03, 0x00, 0x01, 0x02, 0x80, 0x01, 0x00, 0x02, 0x00,
        0x04,
    ];

    #[test]
    fn deconstruct() {
        let h = Header::new_checked(&OVN_HEADER[..]).unwrap();
        assert_eq!((h.version(), h.options_len(), h.header_len()), (0, 8, 16));
        assert!(h.critical() && !h.oam());
        assert_eq!((h.protocol(), h.vni()), (PROTO_ETHERNET, OVN_TRANSIT_VNI));
        let opts: Vec<_> = h.options().collect();
        assert_eq!(opts.len(), 1);
        let o = opts[0].unwrap();
        assert!(o.is_ovn() && o.is_critical());
        assert_eq!(h.ovn_ports(), Some((2, 4)));
        assert!(h.payload().is_empty());
    }

    #[test]
    fn construct() {
        let r = Repr::parse(&Header::new_checked(&OVN_HEADER[..]).unwrap()).unwrap();
        assert_eq!(
            r,
            Repr {
                vni: OVN_TRANSIT_VNI,
                ovn_ports: Some((2, 4))
            }
        );
        let mut out = [0u8; 16];
        r.emit(&mut out).unwrap();
        assert_eq!(out, OVN_HEADER);
    }

    #[test]
    fn option_overrun_and_bad_version() {
        let mut b = OVN_HEADER;
        b[11] = 2; // option claims 8 data bytes, only 4 in the options area
        let h = Header::new_checked(&b[..]).unwrap();
        assert_eq!(h.options().next(), Some(Err(Error::Truncated)));
        assert_eq!(h.ovn_ports(), None);
        let mut b = OVN_HEADER;
        b[0] = 0x03; // three option words, only two present
        assert_eq!(Header::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        b[0] = 0x42; // version 1
        assert_eq!(Header::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn reserved_bit_of_ingress_key_is_masked() {
        let mut b = OVN_HEADER;
        b[12] = 0x80;
        assert_eq!(
            Header::new_checked(&b[..]).unwrap().ovn_ports(),
            Some((2, 4))
        );
    }
}
