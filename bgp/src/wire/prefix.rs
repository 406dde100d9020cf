//! Address families (RFC 4760's AFI/SAFI pairs we speak: IPv4 and IPv6 unicast) and the
//! prefixes of either, as NLRI encodes them (RFC 4271 4.3, RFC 4760 5: a length in bits, then
//! as many bytes as it needs).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::reader::Reader;

pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

/// A unicast address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4, Family::Ipv6];

    /// The family of (AFI, SAFI), if it is one we speak.
    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (AFI_IPV4, SAFI_UNICAST) => Some(Family::Ipv4),
            (AFI_IPV6, SAFI_UNICAST) => Some(Family::Ipv6),
            _ => None,
        }
    }

    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    pub fn afi(self) -> u16 {
        match self {
            Family::Ipv4 => AFI_IPV4,
            Family::Ipv6 => AFI_IPV6,
        }
    }

    pub fn safi(self) -> u8 {
        SAFI_UNICAST
    }

    /// The longest prefix: 32 or 128.
    pub fn max_len(self) -> u8 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }

    /// As operators write it: `ipv4-unicast`, `ipv6-unicast`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4-unicast",
            Family::Ipv6 => "ipv6-unicast",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 or IPv6 prefix; host bits beyond the length are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// `None` when `len` exceeds the family's 32 or 128. Host bits are cleared.
    pub fn new(addr: impl Into<IpAddr>, len: u8) -> Option<Prefix> {
        let addr = addr.into();
        if len > Family::of(addr).max_len() {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Some(Prefix { addr, len })
    }

    /// The address alone: a /32 or a /128.
    pub fn host(addr: impl Into<IpAddr>) -> Prefix {
        let addr = addr.into();
        Prefix {
            addr,
            len: Family::of(addr).max_len(),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    pub fn length(&self) -> u8 {
        self.len
    }

    /// Whether `other` lies inside this prefix (same family, equal or more specific).
    pub fn contains(&self, other: &Prefix) -> bool {
        other.len >= self.len && Prefix::new(other.addr, self.len) == Some(*self)
    }

    /// One prefix of `family` from NLRI; `None` when it is too long or overruns.
    pub(super) fn decode(r: &mut Reader<'_>, family: Family) -> Option<Prefix> {
        let len = r.u8()?;
        if len > family.max_len() {
            return None;
        }
        let bytes = r.take(usize::from(len).div_ceil(8))?;
        let mut octets = [0u8; 16];
        octets[..bytes.len()].copy_from_slice(bytes);
        let addr = match family {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3])),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(octets)),
        };
        Prefix::new(addr, len)
    }

    /// Every prefix of `family` in `bytes`, or `None` if one is malformed.
    pub(super) fn decode_all(bytes: &[u8], family: Family) -> Option<Vec<Prefix>> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Prefix::decode(&mut r, family)?);
        }
        Some(out)
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        let bytes = usize::from(self.len).div_ceil(8);
        match self.addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..bytes]),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..bytes]),
        }
    }

    /// Bytes this prefix takes in an UPDATE.
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;

    /// `a.b.c.d/len` or `x:y::/len`; host bits must be zero so a typo is not silently
    /// widened.
    fn from_str(s: &str) -> Result<Prefix, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected address/length"))?;
        let addr: IpAddr = addr.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let len: u8 = len
            .parse()
            .map_err(|e| format!("{s:?}: prefix length: {e}"))?;
        let prefix = Prefix::new(addr, len)
            .ok_or_else(|| format!("{s:?}: length over {}", Family::of(addr).max_len()))?;
        if prefix.addr != addr {
            return Err(format!("{s:?}: host bits set (did you mean {prefix}?)"));
        }
        Ok(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn both_families_parse_print_and_contain() {
        assert_eq!(p("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("fd00:55::/64").to_string(), "fd00:55::/64");
        assert!("10.0.0.1/8"
            .parse::<Prefix>()
            .unwrap_err()
            .contains("host bits"));
        assert!("fd00::1/64"
            .parse::<Prefix>()
            .unwrap_err()
            .contains("host bits"));
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("fd00::/129"
            .parse::<Prefix>()
            .unwrap_err()
            .contains("over 128"));
        assert!(p("fd00::/16").contains(&p("fd00:55::/64")));
        assert!(!p("fd00:55::/64").contains(&p("fd00::/16")));
        assert!(p("::/0").contains(&p("2001:db8::1/128")));
        // A family never contains the other, not even from the default route.
        assert!(!p("0.0.0.0/0").contains(&p("::/128")));
        assert!(!p("::/0").contains(&p("10.0.0.0/8")));
        assert_eq!(Prefix::host(Ipv6Addr::LOCALHOST).length(), 128);
        assert_eq!(Prefix::host(Ipv4Addr::LOCALHOST).length(), 32);
        assert_eq!(Prefix::new(Ipv6Addr::from(u128::MAX), 0), Some(p("::/0")));
    }

    #[test]
    fn nlri_bytes_both_ways() {
        for (s, family, bytes) in [
            ("192.168.55.0/24", Family::Ipv4, &[24u8, 192, 168, 55][..]),
            ("0.0.0.0/0", Family::Ipv4, &[0][..]),
            (
                "fd00:66::100/128",
                Family::Ipv6,
                &[128, 0xfd, 0, 0, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0][..],
            ),
            ("fd00:55::/33", Family::Ipv6, &[33, 0xfd, 0, 0, 0x55, 0][..]),
        ] {
            let mut out = Vec::new();
            p(s).encode(&mut out);
            assert_eq!(out, bytes, "{s}");
            assert_eq!(p(s).encoded_len(), bytes.len());
            assert_eq!(Prefix::decode_all(bytes, family), Some(vec![p(s)]), "{s}");
        }
        // Too long for the family, or overrunning.
        assert_eq!(Prefix::decode_all(&[33, 1, 2, 3, 4, 5], Family::Ipv4), None);
        assert_eq!(Prefix::decode_all(&[129; 18], Family::Ipv6), None);
        assert_eq!(Prefix::decode_all(&[64, 0xfd, 0], Family::Ipv6), None);
        // Stray host bits on the wire are cleared, not trusted.
        assert_eq!(
            Prefix::decode_all(&[15, 0xfd, 0x01], Family::Ipv6),
            Some(vec![p("fd00::/15")])
        );
    }
}
