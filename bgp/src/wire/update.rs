//! UPDATE (RFC 4271 4.3) with IPv4 NLRI and the path attributes of section 5, plus COMMUNITIES
//! (RFC 1997) and IPv6 unicast in the multiprotocol attributes (RFC 4760, `mp`). Errors follow
//! RFC 7606: NLRI and withdrawn-routes framing errors reset the session, as does an MP
//! attribute that cannot be read; other attribute errors withdraw the announced routes
//! (treat-as-withdraw) or drop the attribute (attribute discard), and the decoded `Update`
//! says which.

use std::net::Ipv4Addr;

use super::mp::{self, MpValue, NextHop6};
use super::prefix::{Family, Prefix};
use super::reader::Reader;
use super::{Codec, EncodeError, Notification, NotificationCode};

const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_PARTIAL: u8 = 0x20;
const FLAG_EXTENDED_LENGTH: u8 = 0x10;

pub const ATTR_ORIGIN: u8 = 1;
pub const ATTR_AS_PATH: u8 = 2;
pub const ATTR_NEXT_HOP: u8 = 3;
pub const ATTR_MED: u8 = 4;
pub const ATTR_LOCAL_PREF: u8 = 5;
pub const ATTR_ATOMIC_AGGREGATE: u8 = 6;
pub const ATTR_AGGREGATOR: u8 = 7;
pub const ATTR_COMMUNITIES: u8 = 8;
pub const ATTR_MP_REACH: u8 = 14;
pub const ATTR_MP_UNREACH: u8 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsSegment {
    Set(Vec<u32>),
    Sequence(Vec<u32>),
    ConfedSequence(Vec<u32>),
    ConfedSet(Vec<u32>),
}

impl AsSegment {
    fn parts(&self) -> (u8, &[u32]) {
        match self {
            AsSegment::Set(a) => (1, a),
            AsSegment::Sequence(a) => (2, a),
            AsSegment::ConfedSequence(a) => (3, a),
            AsSegment::ConfedSet(a) => (4, a),
        }
    }
}

/// An attribute carried without interpretation (unknown optional transitive ones, and the
/// multiprotocol ones for families we did not negotiate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub origin: Option<Origin>,
    pub as_path: Vec<AsSegment>,
    /// The IPv4 routes' next hop (NEXT_HOP).
    pub next_hop: Option<Ipv4Addr>,
    /// The IPv6 routes' next hop (in MP_REACH_NLRI).
    pub next_hop_v6: Option<NextHop6>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub other: Vec<RawAttribute>,
}

impl Attributes {
    /// The AS_PATH flattened to its AS numbers in order (sets in their listed order).
    pub fn as_path_asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_path
            .iter()
            .flat_map(|s| s.parts().1.iter().copied())
    }
}

/// The RFC 7606 action an attribute error calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrErrorAction {
    /// The UPDATE's NLRI are handled as withdrawn.
    TreatAsWithdraw,
    /// The attribute is dropped; the routes stay.
    AttributeDiscard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrError {
    pub type_code: u8,
    pub action: AttrErrorAction,
    pub reason: &'static str,
}

/// An UPDATE of either family: IPv4 routes travel in its own fields, IPv6 ones in the MP
/// attributes, and `withdrawn` and `nlri` hold both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Prefix>,
    pub attributes: Attributes,
    pub nlri: Vec<Prefix>,
    /// Attribute errors found while decoding (RFC 7606). When any says treat-as-withdraw, the
    /// decoder has already moved `nlri` into `withdrawn` and cleared `attributes`.
    pub errors: Vec<AttrError>,
    /// The End-of-RIB marker's family (RFC 4724 2), set by the decoder on a marker and written
    /// by the encoder: for IPv4 an UPDATE with nothing in it, for IPv6 one holding only an
    /// empty MP_UNREACH_NLRI.
    pub end_of_rib: Option<Family>,
}

impl Update {
    /// The End-of-RIB marker of `family`.
    pub fn end_of_rib(family: Family) -> Update {
        Update {
            end_of_rib: Some(family),
            ..Update::default()
        }
    }

    pub fn treated_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == AttrErrorAction::TreatAsWithdraw)
    }

    pub(super) fn decode(body: &[u8], codec: Codec) -> Result<Update, Notification> {
        let malformed = || Notification::new(NotificationCode::UPDATE_MESSAGE, 1, Vec::new());
        let mut r = Reader::new(body);
        let withdrawn_len = r.u16().ok_or_else(malformed)?;
        let withdrawn_bytes = r.take(usize::from(withdrawn_len)).ok_or_else(malformed)?;
        let attrs_len = r.u16().ok_or_else(malformed)?;
        let attr_bytes = r.take(usize::from(attrs_len)).ok_or_else(malformed)?;
        let nlri_bytes = r.rest();

        // RFC 7606 5.3: a prefix that cannot be parsed resets the session.
        let invalid_network =
            || Notification::new(NotificationCode::UPDATE_MESSAGE, 10, Vec::new());
        let mut update = Update {
            withdrawn: Prefix::decode_all(withdrawn_bytes, Family::Ipv4)
                .ok_or_else(invalid_network)?,
            nlri: Prefix::decode_all(nlri_bytes, Family::Ipv4).ok_or_else(invalid_network)?,
            ..Update::default()
        };
        let empty_unreach_v6 = decode_attributes(attr_bytes, codec, &mut update)?;
        if update.withdrawn.is_empty()
            && update.nlri.is_empty()
            && update.errors.is_empty()
            && update.attributes == Attributes::default()
        {
            update.end_of_rib = if empty_unreach_v6 {
                Some(Family::Ipv6)
            } else if attr_bytes.is_empty() {
                Some(Family::Ipv4)
            } else {
                None
            };
        }

        if !update.nlri.is_empty() {
            let has_ipv4 = update.nlri.iter().any(|p| p.family() == Family::Ipv4);
            for (code, present) in [
                (ATTR_ORIGIN, update.attributes.origin.is_some()),
                (
                    ATTR_AS_PATH,
                    update.errors.iter().all(|e| e.type_code != ATTR_AS_PATH)
                        && has_as_path(attr_bytes),
                ),
                // IPv6 routes bring their next hop in MP_REACH_NLRI.
                (
                    ATTR_NEXT_HOP,
                    !has_ipv4 || update.attributes.next_hop.is_some(),
                ),
            ] {
                if !present && update.errors.iter().all(|e| e.type_code != code) {
                    update.errors.push(AttrError {
                        type_code: code,
                        action: AttrErrorAction::TreatAsWithdraw,
                        reason: "missing well-known mandatory attribute",
                    });
                }
            }
        }
        if update.treated_as_withdraw() {
            let nlri = std::mem::take(&mut update.nlri);
            update.withdrawn.extend(nlri);
            update.attributes = Attributes::default();
        }
        Ok(update)
    }

    pub(super) fn encode(&self, codec: Codec, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        for p in of(&self.withdrawn, Family::Ipv4) {
            p.encode(out);
        }
        let withdrawn_len = (out.len() - at - 2) as u16;
        out[at..at + 2].copy_from_slice(&withdrawn_len.to_be_bytes());
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        encode_attributes(&self.attributes, codec, out);
        if of(&self.nlri, Family::Ipv6).next().is_some() {
            let next_hop = self
                .attributes
                .next_hop_v6
                .ok_or(EncodeError::NoIpv6NextHop)?;
            let value = mp::encode_reach(&next_hop, of(&self.nlri, Family::Ipv6));
            put_attribute(out, FLAG_OPTIONAL, ATTR_MP_REACH, &value);
        }
        if of(&self.withdrawn, Family::Ipv6).next().is_some()
            || self.end_of_rib == Some(Family::Ipv6)
        {
            let value = mp::encode_unreach(of(&self.withdrawn, Family::Ipv6));
            put_attribute(out, FLAG_OPTIONAL, ATTR_MP_UNREACH, &value);
        }
        let attrs_len = (out.len() - at - 2) as u16;
        out[at..at + 2].copy_from_slice(&attrs_len.to_be_bytes());
        for p in of(&self.nlri, Family::Ipv4) {
            p.encode(out);
        }
        Ok(())
    }
}

/// Whether an AS_PATH attribute header appears at all (an empty AS_PATH, as on iBGP, decodes
/// to no segments, so presence is tracked separately from content).
fn has_as_path(attr_bytes: &[u8]) -> bool {
    let mut r = Reader::new(attr_bytes);
    while let (Some(flags), Some(code)) = (r.u8(), r.u8()) {
        if code == ATTR_AS_PATH {
            return true;
        }
        let len = if flags & FLAG_EXTENDED_LENGTH != 0 {
            r.u16()
        } else {
            r.u8().map(u16::from)
        };
        if len.and_then(|l| r.take(usize::from(l))).is_none() {
            return false;
        }
    }
    false
}

/// Decodes the attribute list into `update`; true when it held an empty IPv6 MP_UNREACH_NLRI
/// (the IPv6 End-of-RIB marker, if nothing else came).
fn decode_attributes(
    bytes: &[u8],
    codec: Codec,
    update: &mut Update,
) -> Result<bool, Notification> {
    let mut r = Reader::new(bytes);
    let mut seen = [false; 256];
    let mut empty_unreach_v6 = false;
    while !r.is_empty() {
        let (Some(flags), Some(code)) = (r.u8(), r.u8()) else {
            withdraw_rest(update, 0, "attribute header overruns the attribute list");
            return Ok(empty_unreach_v6);
        };
        let len = if flags & FLAG_EXTENDED_LENGTH != 0 {
            r.u16()
        } else {
            r.u8().map(u16::from)
        };
        let Some(value) = len.and_then(|l| r.take(usize::from(l))) else {
            withdraw_rest(update, code, "attribute length overruns the attribute list");
            return Ok(empty_unreach_v6);
        };
        if std::mem::replace(&mut seen[usize::from(code)], true) {
            if code == ATTR_MP_REACH || code == ATTR_MP_UNREACH {
                // RFC 7606 3(g).
                return Err(Notification::new(
                    NotificationCode::UPDATE_MESSAGE,
                    1,
                    Vec::new(),
                ));
            }
            continue; // RFC 7606 3(g): keep the first, discard repeats.
        }
        if code == ATTR_MP_REACH || code == ATTR_MP_UNREACH {
            // RFC 4760 3, 4: optional non-transitive; other flags leave the NLRI unreadable.
            if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != FLAG_OPTIONAL {
                return Err(Notification::new(
                    NotificationCode::UPDATE_MESSAGE,
                    9,
                    Vec::new(),
                ));
            }
            let decoded = if code == ATTR_MP_REACH {
                mp::decode_reach(value)?
            } else {
                mp::decode_unreach(value)?
            };
            match decoded {
                MpValue::Reach { next_hop, nlri } => {
                    update.attributes.next_hop_v6 = Some(next_hop);
                    update.nlri.extend(nlri);
                }
                MpValue::Unreach { withdrawn } => {
                    empty_unreach_v6 = withdrawn.is_empty();
                    update.withdrawn.extend(withdrawn);
                }
                // Not negotiated: kept as it came, its routes unused (RFC 4760 7).
                MpValue::OtherFamily => update.attributes.other.push(RawAttribute {
                    flags: flags & !FLAG_EXTENDED_LENGTH,
                    type_code: code,
                    value: value.to_vec(),
                }),
            }
            continue;
        }
        decode_attribute(flags, code, value, codec, update)?;
    }
    Ok(empty_unreach_v6)
}

fn of(list: &[Prefix], family: Family) -> impl Iterator<Item = &Prefix> {
    list.iter().filter(move |p| p.family() == family)
}

fn withdraw_rest(update: &mut Update, code: u8, reason: &'static str) {
    update.errors.push(AttrError {
        type_code: code,
        action: AttrErrorAction::TreatAsWithdraw,
        reason,
    });
}

fn decode_attribute(
    flags: u8,
    code: u8,
    value: &[u8],
    codec: Codec,
    update: &mut Update,
) -> Result<(), Notification> {
    let attrs = &mut update.attributes;
    let well_known = flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == FLAG_TRANSITIVE;
    let optional_non_transitive = flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == FLAG_OPTIONAL;
    let optional_transitive =
        flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == FLAG_OPTIONAL | FLAG_TRANSITIVE;
    let mut v = Reader::new(value);
    let error = |reason| AttrError {
        type_code: code,
        action: AttrErrorAction::TreatAsWithdraw,
        reason,
    };
    let discard = |reason| AttrError {
        type_code: code,
        action: AttrErrorAction::AttributeDiscard,
        reason,
    };
    let problem = match code {
        ATTR_ORIGIN => match (well_known, value) {
            (true, [0]) => (attrs.origin = Some(Origin::Igp), None).1,
            (true, [1]) => (attrs.origin = Some(Origin::Egp), None).1,
            (true, [2]) => (attrs.origin = Some(Origin::Incomplete), None).1,
            _ => Some(error("malformed ORIGIN")),
        },
        ATTR_AS_PATH => match (well_known, decode_as_path(value, codec)) {
            (true, Some(path)) => (attrs.as_path = path, None).1,
            _ => Some(error("malformed AS_PATH")),
        },
        ATTR_NEXT_HOP => match (well_known, v.u32(), v.is_empty()) {
            (true, Some(nh), true) => (attrs.next_hop = Some(Ipv4Addr::from(nh)), None).1,
            _ => Some(error("malformed NEXT_HOP")),
        },
        ATTR_MED => match (optional_non_transitive, v.u32(), v.is_empty()) {
            (true, Some(med), true) => (attrs.med = Some(med), None).1,
            _ => Some(error("malformed MULTI_EXIT_DISC")),
        },
        ATTR_LOCAL_PREF => match (well_known, v.u32(), v.is_empty()) {
            (true, Some(lp), true) => (attrs.local_pref = Some(lp), None).1,
            _ => Some(error("malformed LOCAL_PREF")),
        },
        ATTR_ATOMIC_AGGREGATE => match (well_known, value.is_empty()) {
            (true, true) => (attrs.atomic_aggregate = true, None).1,
            _ => Some(discard("malformed ATOMIC_AGGREGATE")),
        },
        ATTR_AGGREGATOR => {
            let asn = if codec.four_octet_as {
                v.u32()
            } else {
                v.u16().map(u32::from)
            };
            match (optional_transitive, asn, v.u32(), v.is_empty()) {
                (true, Some(asn), Some(id), true) => {
                    (attrs.aggregator = Some((asn, Ipv4Addr::from(id))), None).1
                }
                _ => Some(discard("malformed AGGREGATOR")),
            }
        }
        ATTR_COMMUNITIES => {
            if optional_transitive && !value.is_empty() && value.len().is_multiple_of(4) {
                attrs.communities = value
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                None
            } else {
                Some(error("malformed COMMUNITIES"))
            }
        }
        _ if flags & FLAG_OPTIONAL == 0 => {
            // RFC 4271 6.3: an unrecognized well-known attribute resets the session.
            let mut data = vec![flags, code];
            data.extend_from_slice(value);
            return Err(Notification::new(NotificationCode::UPDATE_MESSAGE, 2, data));
        }
        // Unrecognized optional non-transitive attributes are quietly ignored (RFC 4271 5).
        _ if optional_non_transitive => None,
        _ => {
            let flags = if optional_transitive {
                flags | FLAG_PARTIAL
            } else {
                flags
            };
            attrs.other.push(RawAttribute {
                flags: flags & !FLAG_EXTENDED_LENGTH,
                type_code: code,
                value: value.to_vec(),
            });
            None
        }
    };
    update.errors.extend(problem);
    Ok(())
}

fn decode_as_path(value: &[u8], codec: Codec) -> Option<Vec<AsSegment>> {
    let mut r = Reader::new(value);
    let mut path = Vec::new();
    while !r.is_empty() {
        let kind = r.u8()?;
        let count = r.u8()?;
        if count == 0 {
            return None; // RFC 7606 7.2
        }
        let mut asns = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            asns.push(if codec.four_octet_as {
                r.u32()?
            } else {
                u32::from(r.u16()?)
            });
        }
        path.push(match kind {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            3 => AsSegment::ConfedSequence(asns),
            4 => AsSegment::ConfedSet(asns),
            _ => return None,
        });
    }
    Some(path)
}

fn put_attribute(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.extend_from_slice(&[flags | FLAG_EXTENDED_LENGTH, code]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags & !FLAG_EXTENDED_LENGTH, code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

fn encode_attributes(attrs: &Attributes, codec: Codec, out: &mut Vec<u8>) {
    if let Some(origin) = attrs.origin {
        put_attribute(out, FLAG_TRANSITIVE, ATTR_ORIGIN, &[origin as u8]);
    }
    // AS_PATH is mandatory whenever there is NLRI, even empty on iBGP; we emit it whenever an
    // ORIGIN is there (every announcement) or segments exist.
    if attrs.origin.is_some() || !attrs.as_path.is_empty() {
        let mut path = Vec::new();
        for segment in &attrs.as_path {
            let (kind, asns) = segment.parts();
            for chunk in asns.chunks(255) {
                path.extend_from_slice(&[kind, chunk.len() as u8]);
                for asn in chunk {
                    if codec.four_octet_as {
                        path.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let two = u16::try_from(*asn).unwrap_or(super::AS_TRANS);
                        path.extend_from_slice(&two.to_be_bytes());
                    }
                }
            }
        }
        put_attribute(out, FLAG_TRANSITIVE, ATTR_AS_PATH, &path);
    }
    if let Some(nh) = attrs.next_hop {
        put_attribute(out, FLAG_TRANSITIVE, ATTR_NEXT_HOP, &nh.octets());
    }
    if let Some(med) = attrs.med {
        put_attribute(out, FLAG_OPTIONAL, ATTR_MED, &med.to_be_bytes());
    }
    if let Some(lp) = attrs.local_pref {
        put_attribute(out, FLAG_TRANSITIVE, ATTR_LOCAL_PREF, &lp.to_be_bytes());
    }
    if attrs.atomic_aggregate {
        put_attribute(out, FLAG_TRANSITIVE, ATTR_ATOMIC_AGGREGATE, &[]);
    }
    if let Some((asn, id)) = attrs.aggregator {
        let mut value = Vec::with_capacity(8);
        if codec.four_octet_as {
            value.extend_from_slice(&asn.to_be_bytes());
        } else {
            value.extend_from_slice(&u16::try_from(asn).unwrap_or(super::AS_TRANS).to_be_bytes());
        }
        value.extend_from_slice(&id.octets());
        put_attribute(
            out,
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_AGGREGATOR,
            &value,
        );
    }
    if !attrs.communities.is_empty() {
        let value: Vec<u8> = attrs
            .communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        put_attribute(
            out,
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_COMMUNITIES,
            &value,
        );
    }
    for raw in &attrs.other {
        put_attribute(out, raw.flags, raw.type_code, &raw.value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Codec, EncodeError, Message};
    use super::*;

    const FOUR: Codec = Codec {
        four_octet_as: true,
    };

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        v.push(2);
        v.extend_from_slice(body);
        v
    }

    /// What the gateway announces on iBGP: 192.168.66.100/32, ORIGIN IGP, empty AS_PATH,
    /// NEXT_HOP 192.168.99.23, LOCAL_PREF 100.
    const ANNOUNCE: &[u8] = &[
        0x00, 0x00, // no withdrawn routes
        0x00, 0x15, // 21 bytes of attributes
        0x40, 0x01, 0x01, 0x00, // ORIGIN IGP
        0x40, 0x02, 0x00, // AS_PATH empty
        0x40, 0x03, 0x04, 192, 168, 99, 23, // NEXT_HOP
        0x40, 0x05, 0x04, 0, 0, 0, 100, // LOCAL_PREF 100
        32, 192, 168, 66, 100, // NLRI
    ];

    fn announce() -> Update {
        Update {
            nlri: vec![p("192.168.66.100/32")],
            attributes: Attributes {
                origin: Some(Origin::Igp),
                next_hop: Some(Ipv4Addr::new(192, 168, 99, 23)),
                local_pref: Some(100),
                ..Attributes::default()
            },
            ..Update::default()
        }
    }

    /// `bytes` decodes to `update`, and `update` encodes to `bytes`.
    fn both_ways(bytes: &[u8], update: Update) {
        assert_eq!(
            Message::decode(bytes, FOUR),
            Ok(Message::Update(update.clone()))
        );
        let mut out = Vec::new();
        Message::Update(update).encode(FOUR, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn golden_announcement_both_ways() {
        let bytes = frame(ANNOUNCE);
        both_ways(&bytes, announce());
    }

    /// FRR 8.4's UPDATE for `network 192.168.55.0/24` on an iBGP session, captured from the
    /// socket by a test peer: AS_PATH comes with the extended-length flag (0x50) and a
    /// two-byte zero length, MED 0 and LOCAL_PREF 100.
    const FRR_UPDATE: &str = "ffffffffffffffffffffffffffffffff0038020000001d40010100500200004003\
                              040a090001800404000000004005040000006418c0a837";

    #[test]
    fn golden_frr_update() {
        let expected = Update {
            nlri: vec![p("192.168.55.0/24")],
            attributes: Attributes {
                origin: Some(Origin::Igp),
                next_hop: Some(Ipv4Addr::new(10, 9, 0, 1)),
                med: Some(0),
                local_pref: Some(100),
                ..Attributes::default()
            },
            ..Update::default()
        };
        // We write the empty AS_PATH with a one-byte length: 1 byte shorter, same meaning.
        captured_decodes_and_ours_reads_back(FRR_UPDATE, expected, 1);
    }

    /// `hex` (a captured UPDATE) decodes to `expected`; ours for it is `shorter` bytes shorter
    /// and decodes to the same.
    fn captured_decodes_and_ours_reads_back(hex: &str, expected: Update, shorter: usize) {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            Message::decode(&bytes, FOUR),
            Ok(Message::Update(expected.clone()))
        );
        let mut out = Vec::new();
        Message::Update(expected.clone())
            .encode(FOUR, &mut out)
            .unwrap();
        assert_eq!(out.len(), bytes.len() - shorter);
        assert_eq!(Message::decode(&out, FOUR), Ok(Message::Update(expected)));
    }

    #[test]
    fn golden_withdrawal_and_end_of_rib() {
        let bytes = frame(&[0, 5, 32, 192, 168, 66, 100, 0, 0]);
        let withdraw = Update {
            withdrawn: vec![p("192.168.66.100/32")],
            ..Update::default()
        };
        both_ways(&bytes, withdraw);
        let Ok(Message::Update(eor)) = Message::decode(&frame(&[0, 0, 0, 0]), FOUR) else {
            panic!()
        };
        assert_eq!(eor.end_of_rib, Some(Family::Ipv4));
    }

    #[test]
    fn ebgp_path_med_communities_and_unknown_transitive() {
        let update = Update {
            nlri: vec![p("192.168.55.0/24"), p("10.0.0.0/8"), p("0.0.0.0/0")],
            attributes: Attributes {
                origin: Some(Origin::Incomplete),
                as_path: vec![
                    AsSegment::Sequence(vec![65001, 4_200_000_000]),
                    AsSegment::Set(vec![7, 8]),
                ],
                next_hop: Some(Ipv4Addr::new(192, 168, 99, 12)),
                med: Some(5),
                atomic_aggregate: true,
                aggregator: Some((65001, Ipv4Addr::new(1, 1, 1, 1))),
                communities: vec![0xfde8_0001],
                other: vec![RawAttribute {
                    flags: 0xe0,
                    type_code: 99,
                    value: vec![1, 2, 3],
                }],
                ..Attributes::default()
            },
            ..Update::default()
        };
        let mut out = Vec::new();
        Message::Update(update.clone())
            .encode(FOUR, &mut out)
            .unwrap();
        assert_eq!(
            Message::decode(&out, FOUR),
            Ok(Message::Update(update.clone()))
        );
        // Two-octet sessions read the same path when every AS fits in 16 bits.
        let two = Codec {
            four_octet_as: false,
        };
        let mut small = update.clone();
        small.attributes.as_path = vec![AsSegment::Sequence(vec![65001])];
        let mut out = Vec::new();
        Message::Update(small.clone())
            .encode(two, &mut out)
            .unwrap();
        assert_eq!(Message::decode(&out, two), Ok(Message::Update(small)));
    }

    #[test]
    fn unknown_optional_transitive_is_kept_with_partial_set() {
        let mut body = ANNOUNCE.to_vec();
        body[3] += 5;
        body.splice(25..25, [0xc0, 99, 2, 7, 7]);
        let Ok(Message::Update(u)) = Message::decode(&frame(&body), FOUR) else {
            panic!()
        };
        assert_eq!(
            u.attributes.other,
            vec![RawAttribute {
                flags: 0xe0,
                type_code: 99,
                value: vec![7, 7]
            }]
        );
        assert_eq!(u.nlri, vec![p("192.168.66.100/32")]);
    }

    fn with_attr_bytes(attrs: &[u8]) -> Update {
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        body.extend_from_slice(&[24, 192, 168, 55]);
        match Message::decode(&frame(&body), FOUR) {
            Ok(Message::Update(u)) => u,
            other => panic!("{other:?}"),
        }
    }

    const ORIGIN: [u8; 4] = [0x40, 1, 1, 0];
    const PATH: [u8; 3] = [0x40, 2, 0];
    const NH: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 1];

    #[test]
    fn rfc7606_treat_as_withdraw() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x40, 1, 1, 3], "malformed ORIGIN"),
            (&[0x40, 1, 2, 0, 0], "malformed ORIGIN"),
            (&[0x40, 2, 4, 2, 0, 0, 0], "malformed AS_PATH"),
            (&[0x40, 2, 6, 9, 1, 0, 0, 0, 1], "malformed AS_PATH"),
            (&[0x40, 3, 3, 10, 0, 0], "malformed NEXT_HOP"),
            (&[0x80, 4, 2, 0, 0], "malformed MULTI_EXIT_DISC"),
            (&[0x40, 5, 3, 0, 0, 0], "malformed LOCAL_PREF"),
            (&[0xc0, 8, 3, 0, 0, 0], "malformed COMMUNITIES"),
            (&[0x80, 1, 1, 0], "malformed ORIGIN"), // flags say optional
            (
                &[0x40, 99, 9],
                "attribute length overruns the attribute list",
            ),
        ];
        for (bad, reason) in cases {
            let mut attrs = Vec::new();
            let base: [&[u8]; 3] = [&ORIGIN, &PATH, &NH];
            for b in base {
                if b[1] != bad[1] {
                    attrs.extend_from_slice(b);
                }
            }
            attrs.extend_from_slice(bad);
            let u = with_attr_bytes(&attrs);
            assert!(u.treated_as_withdraw(), "{reason}: {u:?}");
            assert!(
                u.errors.iter().any(|e| e.reason == *reason),
                "{reason}: {:?}",
                u.errors
            );
            assert_eq!(u.withdrawn, vec![p("192.168.55.0/24")], "{reason}");
            assert!(u.nlri.is_empty() && u.attributes == Attributes::default());
        }
    }

    #[test]
    fn rfc7606_missing_mandatory_and_discard() {
        let u = with_attr_bytes(&[ORIGIN.as_slice(), &NH].concat());
        assert!(u.treated_as_withdraw(), "no AS_PATH");
        let u = with_attr_bytes(&[ORIGIN.as_slice(), &PATH].concat());
        assert!(u.treated_as_withdraw(), "no NEXT_HOP");

        let u = with_attr_bytes(&[ORIGIN.as_slice(), &PATH, &NH, &[0x40, 6, 1, 0]].concat());
        assert!(!u.treated_as_withdraw());
        assert_eq!(u.errors[0].action, AttrErrorAction::AttributeDiscard);
        assert!(!u.attributes.atomic_aggregate);
        assert_eq!(u.nlri, vec![p("192.168.55.0/24")]);

        // A repeated attribute: the first wins.
        let u = with_attr_bytes(&[ORIGIN.as_slice(), &PATH, &NH, &[0x40, 1, 1, 2]].concat());
        assert_eq!(u.attributes.origin, Some(Origin::Igp));
        assert!(u.errors.is_empty());
    }

    #[test]
    fn session_reset_errors() {
        // Withdrawn length beyond the message.
        let n = Message::decode(&frame(&[0, 9, 32, 1, 2, 3, 4, 0, 0]), FOUR).unwrap_err();
        assert_eq!((n.code, n.subcode), (3, 1));
        // Prefix length 33 in NLRI.
        let mut body = ANNOUNCE.to_vec();
        body[25] = 33;
        let n = Message::decode(&frame(&body), FOUR).unwrap_err();
        assert_eq!((n.code, n.subcode), (3, 10));
        // NLRI prefix overrunning the message.
        let n = Message::decode(&frame(&ANNOUNCE[..ANNOUNCE.len() - 1]), FOUR).unwrap_err();
        assert_eq!((n.code, n.subcode), (3, 10));
        // Unrecognized well-known attribute.
        let u = [ORIGIN.as_slice(), &PATH, &NH, &[0x40, 77, 0]].concat();
        let mut body = vec![0, 0];
        body.extend_from_slice(&(u.len() as u16).to_be_bytes());
        body.extend_from_slice(&u);
        let n = Message::decode(&frame(&body), FOUR).unwrap_err();
        assert_eq!((n.code, n.subcode, n.data), (3, 2, vec![0x40, 77]));
        // Two MP_REACH_NLRI.
        let reach = mp_reach(16, &[]);
        let n = decode_attrs(&[reach.as_slice(), &reach].concat()).unwrap_err();
        assert_eq!((n.code, n.subcode), (3, 1));
    }

    fn decode_attrs(attrs: &[u8]) -> Result<Message, Notification> {
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        Message::decode(&frame(&body), FOUR)
    }

    /// MP_REACH_NLRI for IPv6 unicast with a next hop of `nh_len` bytes (fd00:99::23, then
    /// fe80::23 for 32) and `nlri` as encoded.
    fn mp_reach(nh_len: u8, nlri: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 2, 1, nh_len];
        let hops = [
            "fd00:99::23"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "fe80::23".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        ];
        v.extend(hops.concat().iter().cycle().take(usize::from(nh_len)));
        v.push(0);
        v.extend_from_slice(nlri);
        let mut attr = vec![0x80, 14, v.len() as u8];
        attr.extend(v);
        attr
    }

    const V6_HOST: [u8; 17] = [128, 0xfd, 0, 0, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];

    /// What the gateway announces for an IPv6 egress IP on iBGP: fd00:66::100/128 in
    /// MP_REACH_NLRI with next hop fd00:99::23 (RFC 4760 3, RFC 2545 3), ORIGIN IGP, empty
    /// AS_PATH, LOCAL_PREF 100, and no NEXT_HOP attribute; the withdrawal in MP_UNREACH_NLRI;
    /// the End-of-RIB an empty MP_UNREACH_NLRI (RFC 4724 2).
    #[test]
    fn golden_ipv6_announcement_withdrawal_and_end_of_rib() {
        let attrs = [
            &[0x40u8, 0x01, 0x01, 0x00][..],   // ORIGIN IGP
            &[0x40, 0x02, 0x00],               // AS_PATH empty
            &[0x40, 0x05, 0x04, 0, 0, 0, 100], // LOCAL_PREF 100
            &mp_reach(16, &V6_HOST),
        ]
        .concat();
        let mut body = vec![0, 0, 0, attrs.len() as u8];
        body.extend_from_slice(&attrs);
        let bytes = frame(&body);
        let nh6 = NextHop6 {
            global: "fd00:99::23".parse().unwrap(),
            link_local: None,
        };
        let announce = Update {
            nlri: vec![p("fd00:66::100/128")],
            attributes: Attributes {
                origin: Some(Origin::Igp),
                next_hop_v6: Some(nh6),
                local_pref: Some(100),
                ..Attributes::default()
            },
            ..Update::default()
        };
        both_ways(&bytes, announce);

        let unreach = [&[0x80u8, 15, 20, 0, 2, 1][..], &V6_HOST].concat();
        let bytes = frame(&[&[0u8, 0, 0, unreach.len() as u8][..], &unreach].concat());
        let withdraw = Update {
            withdrawn: vec![p("fd00:66::100/128")],
            ..Update::default()
        };
        both_ways(&bytes, withdraw);

        let bytes = frame(&[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        let eor = Update::end_of_rib(Family::Ipv6);
        both_ways(&bytes, eor);
        // IPv6 routes with no IPv6 next hop cannot be encoded.
        let bare = Update {
            nlri: vec![p("fd00:66::100/128")],
            ..Update::default()
        };
        assert_eq!(
            Message::Update(bare).encode(FOUR, &mut Vec::new()),
            Err(EncodeError::NoIpv6NextHop)
        );
    }

    /// FRR 8.4's UPDATE for `network fd00:55::/64` on an iBGP session over IPv6, captured from
    /// the socket by a test peer in a namespace: MP_REACH_NLRI first, with the extended-length
    /// flag, and a 32-byte next hop (FRR's global address, then its link-local one, RFC 2545
    /// 3); no NEXT_HOP attribute.
    const FRR_UPDATE_V6: &str = "ffffffffffffffffffffffffffffffff005f0200000048900e002e00020120\
                                 fd000099000000000000000000000012fe80000000000000d4b2e7fffe1eac47\
                                 0040fd00005500000000400101005002000080040400000000400504000000\
                                 64";

    #[test]
    fn golden_frr_ipv6_update() {
        let expected = Update {
            nlri: vec![p("fd00:55::/64")],
            attributes: Attributes {
                origin: Some(Origin::Igp),
                next_hop_v6: Some(NextHop6 {
                    global: "fd00:99::12".parse().unwrap(),
                    link_local: Some("fe80::d4b2:e7ff:fe1e:ac47".parse().unwrap()),
                }),
                med: Some(0),
                local_pref: Some(100),
                ..Attributes::default()
            },
            ..Update::default()
        };
        // We write MP_REACH_NLRI (under 256 bytes) and the empty AS_PATH with one-byte
        // lengths: 2 bytes shorter, same meaning.
        captured_decodes_and_ours_reads_back(FRR_UPDATE_V6, expected, 2);
    }

    #[test]
    fn ipv6_next_hop_with_link_local_and_both_families_in_one_update() {
        let attrs = [
            ORIGIN.as_slice(),
            &PATH,
            &NH,
            &mp_reach(32, &[&V6_HOST[..], &[33, 0xfd, 0, 0, 0x55, 0]].concat()),
        ]
        .concat();
        let Ok(Message::Update(u)) = with_attrs_and_ipv4(&attrs) else {
            panic!()
        };
        assert_eq!(
            u.nlri,
            vec![
                p("192.168.55.0/24"),
                p("fd00:66::100/128"),
                p("fd00:55::/33")
            ]
        );
        assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            u.attributes.next_hop_v6,
            Some(NextHop6 {
                global: "fd00:99::23".parse().unwrap(),
                link_local: Some("fe80::23".parse().unwrap()),
            })
        );
        // Treat-as-withdraw takes the IPv6 routes too (RFC 7606 5.1).
        let bad = [&attrs[..], &[0x40, 5, 3, 0, 0, 0]].concat();
        let Ok(Message::Update(u)) = with_attrs_and_ipv4(&bad) else {
            panic!()
        };
        assert!(u.treated_as_withdraw() && u.nlri.is_empty());
        assert_eq!(u.withdrawn.len(), 3);
        // IPv6 routes alone need no NEXT_HOP attribute; they do need ORIGIN and AS_PATH.
        let Ok(Message::Update(u)) =
            decode_attrs(&[ORIGIN.as_slice(), &PATH, &mp_reach(16, &V6_HOST)].concat())
        else {
            panic!()
        };
        assert!(u.errors.is_empty(), "{:?}", u.errors);
        let Ok(Message::Update(u)) =
            decode_attrs(&[PATH.as_slice(), &mp_reach(16, &V6_HOST)].concat())
        else {
            panic!()
        };
        assert!(u.treated_as_withdraw());
        assert_eq!(u.withdrawn, vec![p("fd00:66::100/128")]);
    }

    fn with_attrs_and_ipv4(attrs: &[u8]) -> Result<Message, Notification> {
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        body.extend_from_slice(&[24, 192, 168, 55]);
        Message::decode(&frame(&body), FOUR)
    }

    /// RFC 7606 7.11 and 5.3: an MP attribute that cannot be read resets the session; one of a
    /// family we do not speak is kept as it came and its routes are not ours.
    #[test]
    fn mp_attribute_errors_and_other_families() {
        let with_base = |mp: &[u8]| decode_attrs(&[ORIGIN.as_slice(), &PATH, mp].concat());
        for (mp, subcode, what) in [
            (mp_reach(8, &V6_HOST), 9, "next hop of 8 bytes"),
            (mp_reach(0, &V6_HOST), 9, "no next hop"),
            (mp_reach(16, &[129; 17]), 10, "prefix over 128"),
            (mp_reach(16, &V6_HOST[..10]), 10, "prefix overruns"),
            (vec![0x80, 14, 2, 0, 2], 9, "truncated header"),
            (vec![0x80, 15, 1, 0], 9, "truncated unreach"),
            (
                vec![0x80, 15, 4, 0, 2, 1, 64],
                10,
                "unreach prefix overruns",
            ),
            (
                [&[0xc0u8][..], &mp_reach(16, &V6_HOST)[1..]].concat(),
                9,
                "flagged transitive",
            ),
        ] {
            let n = with_base(&mp).unwrap_err();
            assert_eq!((n.code, n.subcode), (3, subcode), "{what}");
        }
        // IPv4 multicast (SAFI 2) in MP_REACH_NLRI: not ours, kept raw, no routes.
        let other = [0x80u8, 14, 11, 0, 1, 2, 4, 10, 0, 0, 1, 0, 8, 224];
        let Ok(Message::Update(u)) = with_base(&other) else {
            panic!()
        };
        assert!(u.nlri.is_empty() && u.attributes.next_hop_v6.is_none());
        assert_eq!(u.attributes.other[0].type_code, ATTR_MP_REACH);
    }

    #[test]
    fn stray_host_bits_in_nlri_are_cleared() {
        // Stray host bits on the wire are cleared, not trusted.
        let mut body = ANNOUNCE.to_vec();
        body.truncate(25);
        body.extend_from_slice(&[23, 192, 168, 55]);
        let Ok(Message::Update(u)) = Message::decode(&frame(&body), FOUR) else {
            panic!()
        };
        assert_eq!(u.nlri, vec![p("192.168.54.0/23")]);
    }
}
