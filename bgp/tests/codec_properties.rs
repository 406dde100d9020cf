//! Property tests of the codec: any bytes decode to a message or a NOTIFICATION without
//! panicking; any message we can build encodes and decodes back to itself; and a framed stream
//! split at arbitrary points yields the same messages.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::wire::{
    frame_len, AsSegment, Attributes, Capability, Codec, Family, Message, NextHop6, Notification,
    Open, Origin, Prefix, RawAttribute, Update, MARKER,
};
use proptest::prelude::*;

fn prefix() -> impl Strategy<Value = Prefix> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Prefix::new(Ipv4Addr::from(a), l).unwrap())
}

fn prefix6() -> impl Strategy<Value = Prefix> {
    (any::<u128>(), 0u8..=128).prop_map(|(a, l)| Prefix::new(Ipv6Addr::from(a), l).unwrap())
}

/// Routes of both families, IPv4 first as the decoder returns them (the UPDATE's own field,
/// then the MP attribute).
fn routes(min: usize) -> impl Strategy<Value = Vec<Prefix>> {
    (
        prop::collection::vec(prefix(), 0..40),
        prop::collection::vec(prefix6(), 0..20),
    )
        .prop_filter("enough routes", move |(a, b)| a.len() + b.len() >= min)
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
}

fn next_hop6() -> impl Strategy<Value = NextHop6> {
    (any::<u128>(), prop::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

fn attributes() -> impl Strategy<Value = Attributes> {
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        prop::collection::vec(prop::collection::vec(any::<u32>(), 1..5), 0..3),
        any::<u32>(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec(
            (100u8..200, prop::collection::vec(any::<u8>(), 0..300)),
            0..2,
        ),
    )
        .prop_map(|(origin, path, nh, med, lp, communities, other)| {
            let mut other: Vec<RawAttribute> = other
                .into_iter()
                .map(|(code, value)| RawAttribute {
                    flags: 0xe0,
                    type_code: code,
                    value,
                })
                .collect();
            other.dedup_by_key(|a| a.type_code);
            Attributes {
                origin: Some(origin),
                as_path: path.into_iter().map(AsSegment::Sequence).collect(),
                next_hop: Some(Ipv4Addr::from(nh)),
                med,
                local_pref: lp,
                communities,
                other,
                ..Attributes::default()
            }
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Keepalive),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        (routes(0), attributes(), routes(1), next_hop6()).prop_map(
            |(withdrawn, mut attributes, nlri, nh6)| {
                // The IPv6 next hop travels in MP_REACH_NLRI, there only with IPv6 routes.
                attributes.next_hop_v6 = nlri
                    .iter()
                    .any(|p| p.family() == Family::Ipv6)
                    .then_some(nh6);
                Message::Update(Update {
                    withdrawn,
                    attributes,
                    nlri,
                    errors: Vec::new(),
                    end_of_rib: None,
                })
            }
        ),
        prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)]
            .prop_map(|f| Message::Update(Update::end_of_rib(f))),
        (any::<u16>(), any::<u16>(), 1u32.., any::<u32>()).prop_map(|(my_as, hold, id, asn)| {
            Message::Open(Open {
                version: 4,
                my_as,
                hold_time: hold,
                router_id: Ipv4Addr::from(id),
                capabilities: vec![
                    Capability::Multiprotocol { afi: 1, safi: 1 },
                    Capability::FourOctetAs(asn),
                    Capability::Unknown {
                        code: 200,
                        value: vec![1, 2],
                    },
                ],
            })
        }),
    ]
}

const FOUR: Codec = Codec {
    four_octet_as: true,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..600), kind in 0u8..7) {
        let mut frame = MARKER.to_vec();
        frame.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        frame.push(kind);
        frame.extend_from_slice(&body);
        let _ = Message::decode(&frame, FOUR);
        let _ = Message::decode(&frame, Codec::INITIAL);
        let _ = frame_len(&body);
    }

    #[test]
    fn mutated_messages_never_panic(msg in message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut out = Vec::new();
        msg.encode(FOUR, &mut out).unwrap();
        let i = at.index(out.len());
        out[i] = byte;
        let _ = Message::decode(&out, FOUR);
    }

    #[test]
    fn encode_then_decode_is_identity(msg in message()) {
        let mut out = Vec::new();
        prop_assume!(msg.encode(FOUR, &mut out).is_ok());
        prop_assert_eq!(Message::decode(&out, FOUR), Ok(msg));
    }

    #[test]
    fn framing_survives_any_split(msgs in prop::collection::vec(message(), 1..6), cut in any::<prop::sample::Index>()) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode(FOUR, &mut stream).unwrap();
        }
        let cut = cut.index(stream.len());
        let mut buf = stream[..cut].to_vec();
        let mut got = Vec::new();
        for chunk in [&stream[cut..], &[][..]] {
            while let Some(len) = frame_len(&buf).unwrap() {
                got.push(Message::decode(&buf[..len], FOUR).unwrap());
                buf.drain(..len);
            }
            buf.extend_from_slice(chunk);
        }
        while let Some(len) = frame_len(&buf).unwrap() {
            got.push(Message::decode(&buf[..len], FOUR).unwrap());
            buf.drain(..len);
        }
        prop_assert_eq!(got, msgs);
    }
}
