//! What to send a peer so that it holds exactly the routes we want it to: the difference between
//! what it has from us and what we announce now, packed into UPDATEs under 4096 bytes.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::wire::{AsSegment, Attributes, Origin, Prefix, Update, HEADER_LEN, MAX_MESSAGE_LEN};

/// Path attributes for our /32s: identical on every node (ORIGIN IGP, no MED) so the router
/// can use them for ECMP.
pub fn attributes(local_as: u32, ibgp: bool, next_hop: Ipv4Addr) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: if ibgp {
            Vec::new()
        } else {
            vec![AsSegment::Sequence(vec![local_as])]
        },
        next_hop: Some(next_hop),
        local_pref: ibgp.then_some(100),
        ..Attributes::default()
    }
}

/// Room for prefixes in one UPDATE, after the header, the two length fields and attributes
/// (ours are under 64 bytes).
const PREFIX_ROOM: usize = MAX_MESSAGE_LEN - HEADER_LEN - 4 - 64;

/// UPDATEs that take the peer from `advertised` to `wanted`; `advertised` becomes `wanted`.
pub fn updates(
    advertised: &mut BTreeSet<Prefix>,
    wanted: &BTreeSet<Prefix>,
    attrs: &Attributes,
) -> Vec<Update> {
    let withdraw: Vec<Prefix> = advertised.difference(wanted).copied().collect();
    let announce: Vec<Prefix> = wanted.difference(advertised).copied().collect();
    let mut out = Vec::new();
    for chunk in chunks(&withdraw) {
        out.push(Update {
            withdrawn: chunk.to_vec(),
            ..Update::default()
        });
    }
    for chunk in chunks(&announce) {
        out.push(Update {
            nlri: chunk.to_vec(),
            attributes: attrs.clone(),
            ..Update::default()
        });
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
        let attrs = attributes(64512, true, Ipv4Addr::new(192, 168, 99, 23));
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
        let attrs = attributes(64512, false, Ipv4Addr::new(192, 168, 99, 23));
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
}
