//! The multiprotocol attributes (RFC 4760 3 and 4) for IPv6 unicast: MP_REACH_NLRI carries
//! the IPv6 routes and their next hop (a global address, and a link-local one when the
//! session is on a shared link, RFC 2545 3), MP_UNREACH_NLRI the withdrawn ones. IPv4 unicast
//! stays in the UPDATE's own fields. Values of other families are left to the caller.

use std::net::Ipv6Addr;

use super::prefix::{Family, Prefix};
use super::reader::Reader;
use super::{Notification, NotificationCode};

/// An IPv6 route's next hop as MP_REACH_NLRI carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop6 {
    pub global: Ipv6Addr,
    pub link_local: Option<Ipv6Addr>,
}

/// What an MP attribute's value holds, once its family is known to be ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MpValue {
    Reach {
        next_hop: NextHop6,
        nlri: Vec<Prefix>,
    },
    Unreach {
        withdrawn: Vec<Prefix>,
    },
    /// A family we do not speak: the caller keeps the attribute as it came.
    OtherFamily,
}

/// RFC 7606 7.11 and 5.3: an MP attribute that cannot be read, or whose prefixes cannot,
/// leaves no NLRI to treat as withdrawn: the session is reset.
fn malformed() -> Notification {
    Notification::new(NotificationCode::UPDATE_MESSAGE, 9, Vec::new())
}

fn invalid_network() -> Notification {
    Notification::new(NotificationCode::UPDATE_MESSAGE, 10, Vec::new())
}

pub(super) fn decode_reach(value: &[u8]) -> Result<MpValue, Notification> {
    let mut r = Reader::new(value);
    let (afi, safi) = (
        r.u16().ok_or_else(malformed)?,
        r.u8().ok_or_else(malformed)?,
    );
    let nh_len = r.u8().ok_or_else(malformed)?;
    let nh = r.take(usize::from(nh_len)).ok_or_else(malformed)?;
    let _reserved = r.u8().ok_or_else(malformed)?;
    if Family::from_afi_safi(afi, safi) != Some(Family::Ipv6) {
        return Ok(MpValue::OtherFamily);
    }
    let addr = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes"));
    let next_hop = match nh.len() {
        16 => NextHop6 {
            global: addr(nh),
            link_local: None,
        },
        32 => NextHop6 {
            global: addr(&nh[..16]),
            link_local: Some(addr(&nh[16..])),
        },
        _ => return Err(malformed()),
    };
    let nlri = Prefix::decode_all(r.rest(), Family::Ipv6).ok_or_else(invalid_network)?;
    Ok(MpValue::Reach { next_hop, nlri })
}

pub(super) fn decode_unreach(value: &[u8]) -> Result<MpValue, Notification> {
    let mut r = Reader::new(value);
    let (afi, safi) = (
        r.u16().ok_or_else(malformed)?,
        r.u8().ok_or_else(malformed)?,
    );
    if Family::from_afi_safi(afi, safi) != Some(Family::Ipv6) {
        return Ok(MpValue::OtherFamily);
    }
    let withdrawn = Prefix::decode_all(r.rest(), Family::Ipv6).ok_or_else(invalid_network)?;
    Ok(MpValue::Unreach { withdrawn })
}

/// MP_REACH_NLRI's value for IPv6 `nlri` via `next_hop`.
pub(super) fn encode_reach<'a>(
    next_hop: &NextHop6,
    nlri: impl Iterator<Item = &'a Prefix>,
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&Family::Ipv6.afi().to_be_bytes());
    v.push(Family::Ipv6.safi());
    match next_hop.link_local {
        None => {
            v.push(16);
            v.extend_from_slice(&next_hop.global.octets());
        }
        Some(ll) => {
            v.push(32);
            v.extend_from_slice(&next_hop.global.octets());
            v.extend_from_slice(&ll.octets());
        }
    }
    v.push(0); // reserved
    for p in nlri {
        p.encode(&mut v);
    }
    v
}

/// MP_UNREACH_NLRI's value withdrawing IPv6 `withdrawn` (none: the End-of-RIB marker).
pub(super) fn encode_unreach<'a>(withdrawn: impl Iterator<Item = &'a Prefix>) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&Family::Ipv6.afi().to_be_bytes());
    v.push(Family::Ipv6.safi());
    for p in withdrawn {
        p.encode(&mut v);
    }
    v
}
