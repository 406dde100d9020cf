//! What to send a peer so that it holds exactly the routes we want it to: the difference between
//! what it has from us and what we announce now, packed into UPDATEs under 4096 bytes, one
//! family per UPDATE.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::{
    AsSegment, Attributes, Family, NextHop6, Origin, Prefix, Update, HEADER_LEN, MAX_MESSAGE_LEN,
};

/// Path attributes for our /32s and /128s: identical on every node (ORIGIN IGP, no MED) so the
/// router can use them for ECMP. Each family's routes go with its own next hop.
pub fn attributes(
    local_as: u32,
    ibgp: bool,
    next_hop: Option<Ipv4Addr>,
    next_hop_v6: Option<Ipv6Addr>,
) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: if ibgp {
            Vec::new()
        } else {
            vec![AsSegment::Sequence(vec![local_as])]
        },
        next_hop,
        next_hop_v6: next_hop_v6.map(|global| NextHop6 {
            global,
            link_local: None,
        }),
        local_pref: ibgp.then_some(100),
        ..Attributes::default()
    }
}

/// Room for prefixes in one UPDATE, after the header, the two length fields, attributes (ours
/// are under 64 bytes) and the MP attribute's own header and next hop (under 64 more).
const PREFIX_ROOM: usize = MAX_MESSAGE_LEN - HEADER_LEN - 4 - 64 - 64;

/// UPDATEs that take the peer from `advertised` to `wanted`; `advertised` becomes `wanted`.
/// `attrs` holds the next hop of every family in `wanted`.
pub fn updates(
    advertised: &mut BTreeSet<Prefix>,
    wanted: &BTreeSet<Prefix>,
    attrs: &Attributes,
) -> Vec<Update> {
    let mut out = Vec::new();
    for family in Family::ALL {
        let withdraw: Vec<Prefix> = advertised
            .difference(wanted)
            .filter(|p| p.family() == family)
            .copied()
            .collect();
        for chunk in chunks(&withdraw) {
            out.push(Update {
                withdrawn: chunk.to_vec(),
                ..Update::default()
            });
        }
    }
    for family in Family::ALL {
        let announce: Vec<Prefix> = wanted
            .difference(advertised)
            .filter(|p| p.family() == family)
            .copied()
            .collect();
        // Each family's UPDATEs carry its own next hop alone: IPv6 ones no NEXT_HOP
        // attribute (RFC 4760 3, GoBGP would show it as the route's next hop).
        let mut family_attrs = attrs.clone();
        match family {
            Family::Ipv4 => family_attrs.next_hop_v6 = None,
            Family::Ipv6 => family_attrs.next_hop = None,
        }
        for chunk in chunks(&announce) {
            out.push(Update {
                nlri: chunk.to_vec(),
                attributes: family_attrs.clone(),
                ..Update::default()
            });
        }
    }
    *advertised = wanted.clone();
    out
}

fn chunks(prefixes: &[Prefix]) -> impl Iterator<Item = &[Prefix]> {
    let mut rest = prefixes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut used = 0;
        let n = rest
            .iter()
            .take_while(|p| {
                used += p.encoded_len();
                used <= PREFIX_ROOM
            })
            .count();
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Codec, Message};

    fn hosts(range: std::ops::Range<u32>) -> BTreeSet<Prefix> {
        range
            .map(|i| Prefix::host(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect()
    }

    #[test]
    fn sends_only_the_difference() {
        let attrs = attributes(64512, true, Some(Ipv4Addr::new(192, 168, 99, 23)), None);
        let mut advertised = hosts(0..3);
        let wanted = hosts(1..5);
        let ups = updates(&mut advertised, &wanted, &attrs);
        assert_eq!(ups.len(), 2);
        assert_eq!(
            ups[0].withdrawn,
            hosts(0..1).into_iter().collect::<Vec<_>>()
        );
        assert_eq!(ups[1].nlri, hosts(3..5).into_iter().collect::<Vec<_>>());
        assert_eq!(ups[1].attributes.local_pref, Some(100));
        assert_eq!(advertised, wanted);
        assert!(updates(&mut advertised, &wanted, &attrs).is_empty());
    }

    #[test]
    fn large_sets_split_into_messages_that_encode() {
        let attrs = attributes(64512, false, Some(Ipv4Addr::new(192, 168, 99, 23)), None);
        assert_eq!(attrs.as_path, vec![AsSegment::Sequence(vec![64512])]);
        let wanted = hosts(0..5000);
        let ups = updates(&mut BTreeSet::new(), &wanted, &attrs);
        assert!(ups.len() >= 7);
        let mut total = 0;
        for u in ups {
            total += u.nlri.len();
            let mut out = Vec::new();
            Message::Update(u)
                .encode(
                    Codec {
                        four_octet_as: true,
                    },
                    &mut out,
                )
                .expect("fits");
        }
        assert_eq!(total, 5000);
    }

    #[test]
    fn each_family_in_its_own_updates_with_its_next_hop() {
        let nh6 = "fd00:99::23".parse().unwrap();
        let attrs = attributes(
            64512,
            true,
            Some(Ipv4Addr::new(192, 168, 99, 23)),
            Some(nh6),
        );
        let v6 = |i: u128| Prefix::host(Ipv6Addr::from(0xfd00_0066_u128 << 96 | i));
        let mut wanted: BTreeSet<Prefix> = (0..3000).map(v6).collect();
        wanted.extend(hosts(0..2));
        let mut advertised = BTreeSet::new();
        let ups = updates(&mut advertised, &wanted, &attrs);
        // 3000 /128s take 17 bytes each: at least 14 UPDATEs, none mixing the families.
        assert!(ups.len() >= 14, "{}", ups.len());
        let mut seen = BTreeSet::new();
        for u in &ups {
            let families: BTreeSet<Family> = u.nlri.iter().map(Prefix::family).collect();
            assert_eq!(families.len(), 1, "{u:?}");
            let mut out = Vec::new();
            Message::Update(u.clone())
                .encode(
                    Codec {
                        four_octet_as: true,
                    },
                    &mut out,
                )
                .expect("fits");
            let Ok(Message::Update(back)) = Message::decode(
                &out,
                Codec {
                    four_octet_as: true,
                },
            ) else {
                panic!("does not decode")
            };
            assert_eq!(back.nlri, u.nlri);
            let next_hops = (back.attributes.next_hop, back.attributes.next_hop_v6);
            match u.nlri[0].family() {
                Family::Ipv4 => assert_eq!(next_hops, (attrs.next_hop, None)),
                Family::Ipv6 => assert_eq!(next_hops, (None, attrs.next_hop_v6)),
            }
            seen.extend(back.nlri);
        }
        assert_eq!(seen, wanted);
        // Withdrawing the IPv6 ones: MP_UNREACH_NLRI only.
        let ups = updates(&mut advertised, &hosts(0..2), &attrs);
        assert!(ups.iter().all(|u| u.nlri.is_empty()));
        assert_eq!(ups.iter().map(|u| u.withdrawn.len()).sum::<usize>(), 3000);
    }
}
