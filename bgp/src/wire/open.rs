//! OPEN (RFC 4271 4.2) and capabilities (RFC 5492): multiprotocol (RFC 4760), route refresh
//! (RFC 2918), enhanced route refresh (RFC 7313), four-octet AS (RFC 6793), graceful restart
//! (RFC 4724). Capabilities we do not know are kept as bytes and otherwise ignored (RFC 5492
//! says a speaker must not refuse a session over an unknown capability). Extended optional
//! parameters (RFC 9072) are read.

use std::net::Ipv4Addr;

#[cfg(test)]
use super::prefix::{AFI_IPV4, SAFI_UNICAST};
use super::reader::Reader;
use super::{EncodeError, Notification, NotificationCode};

/// The two-octet AS placeholder for four-octet AS numbers (RFC 6793).
pub const AS_TRANS: u16 = 23456;

const PARAM_CAPABILITIES: u8 = 2;
const PARAM_EXTENDED: u8 = 255;

const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_GRACEFUL_RESTART: u8 = 64;
const CAP_FOUR_OCTET_AS: u8 = 65;
const CAP_ENHANCED_ROUTE_REFRESH: u8 = 70;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The two-octet field as sent (AS_TRANS when the AS needs four octets).
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol { afi: u16, safi: u8 },
    RouteRefresh,
    EnhancedRouteRefresh,
    FourOctetAs(u32),
    GracefulRestart(GracefulRestart),
    Unknown { code: u8, value: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// The restart-state and notification flags (top four bits of the first word).
    pub flags: u8,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    /// (AFI, SAFI, per-AF flags).
    pub families: Vec<(u16, u8, u8)>,
}

impl Open {
    /// The AS the peer says it is: the four-octet capability when present (RFC 6793 4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    pub fn has(&self, wanted: &Capability) -> bool {
        self.capabilities.iter().any(|c| c == wanted)
    }

    pub(super) fn decode(body: &[u8]) -> Result<Open, Notification> {
        let unspecific = || Notification::new(NotificationCode::OPEN_MESSAGE, 0, Vec::new());
        let mut r = Reader::new(body);
        let version = r.u8().ok_or_else(unspecific)?;
        if version != 4 {
            // Data: the largest version we support (RFC 4271 6.2).
            return Err(Notification::new(
                NotificationCode::OPEN_MESSAGE,
                1,
                vec![0, 4],
            ));
        }
        let my_as = r.u16().ok_or_else(unspecific)?;
        let hold_time = r.u16().ok_or_else(unspecific)?;
        let router_id = Ipv4Addr::from(r.u32().ok_or_else(unspecific)?);
        let mut opt_len = usize::from(r.u8().ok_or_else(unspecific)?);
        let mut extended = false;
        if opt_len == 255 && r.clone().u8() == Some(PARAM_EXTENDED) {
            r.u8();
            opt_len = usize::from(r.u16().ok_or_else(unspecific)?);
            extended = true;
        }
        if opt_len != r.remaining() {
            return Err(Notification::new(
                NotificationCode::MESSAGE_HEADER,
                2,
                ((body.len() + super::HEADER_LEN) as u16)
                    .to_be_bytes()
                    .to_vec(),
            ));
        }
        let mut capabilities = Vec::new();
        while !r.is_empty() {
            let kind = r.u8().ok_or_else(unspecific)?;
            let len = if extended {
                r.u16()
            } else {
                r.u8().map(u16::from)
            };
            let value = r
                .take(usize::from(len.ok_or_else(unspecific)?))
                .ok_or_else(unspecific)?;
            if kind != PARAM_CAPABILITIES {
                return Err(Notification::new(
                    NotificationCode::OPEN_MESSAGE,
                    4,
                    Vec::new(),
                ));
            }
            decode_capabilities(value, &mut capabilities)?;
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            router_id,
            capabilities,
        })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.router_id.octets());
        let len_at = out.len();
        out.extend_from_slice(&[0, PARAM_CAPABILITIES, 0]);
        for cap in &self.capabilities {
            encode_capability(cap, out);
        }
        let caps_len = out.len() - len_at - 3;
        if caps_len > 253 {
            return Err(EncodeError::OptionalParametersTooLong);
        }
        if caps_len == 0 {
            out.truncate(len_at + 1);
            return Ok(());
        }
        out[len_at] = (caps_len + 2) as u8;
        out[len_at + 2] = caps_len as u8;
        Ok(())
    }
}

fn decode_capabilities(bytes: &[u8], out: &mut Vec<Capability>) -> Result<(), Notification> {
    let bad = || Notification::new(NotificationCode::OPEN_MESSAGE, 0, Vec::new());
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let code = r.u8().ok_or_else(bad)?;
        let len = r.u8().ok_or_else(bad)?;
        let value = r.take(usize::from(len)).ok_or_else(bad)?;
        let mut v = Reader::new(value);
        let cap = match (code, len) {
            (CAP_MULTIPROTOCOL, 4) => {
                let afi = v.u16().ok_or_else(bad)?;
                v.u8();
                Capability::Multiprotocol {
                    afi,
                    safi: v.u8().ok_or_else(bad)?,
                }
            }
            (CAP_ROUTE_REFRESH, 0) => Capability::RouteRefresh,
            (CAP_ENHANCED_ROUTE_REFRESH, 0) => Capability::EnhancedRouteRefresh,
            (CAP_FOUR_OCTET_AS, 4) => Capability::FourOctetAs(v.u32().ok_or_else(bad)?),
            (CAP_GRACEFUL_RESTART, l) if l >= 2 && (l - 2) % 4 == 0 => {
                let word = v.u16().ok_or_else(bad)?;
                let mut families = Vec::new();
                while !v.is_empty() {
                    let afi = v.u16().ok_or_else(bad)?;
                    let safi = v.u8().ok_or_else(bad)?;
                    families.push((afi, safi, v.u8().ok_or_else(bad)?));
                }
                Capability::GracefulRestart(GracefulRestart {
                    flags: (word >> 12) as u8,
                    restart_time: word & 0x0fff,
                    families,
                })
            }
            (CAP_MULTIPROTOCOL | CAP_ROUTE_REFRESH | CAP_ENHANCED_ROUTE_REFRESH, _)
            | (CAP_FOUR_OCTET_AS | CAP_GRACEFUL_RESTART, _) => {
                // A known capability with the wrong length.
                return Err(Notification::new(
                    NotificationCode::OPEN_MESSAGE,
                    0,
                    Vec::new(),
                ));
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        };
        out.push(cap);
    }
    Ok(())
}

fn encode_capability(cap: &Capability, out: &mut Vec<u8>) {
    match cap {
        Capability::Multiprotocol { afi, safi } => {
            out.extend_from_slice(&[CAP_MULTIPROTOCOL, 4]);
            out.extend_from_slice(&afi.to_be_bytes());
            out.extend_from_slice(&[0, *safi]);
        }
        Capability::RouteRefresh => out.extend_from_slice(&[CAP_ROUTE_REFRESH, 0]),
        Capability::EnhancedRouteRefresh => out.extend_from_slice(&[CAP_ENHANCED_ROUTE_REFRESH, 0]),
        Capability::FourOctetAs(asn) => {
            out.extend_from_slice(&[CAP_FOUR_OCTET_AS, 4]);
            out.extend_from_slice(&asn.to_be_bytes());
        }
        Capability::GracefulRestart(gr) => {
            out.extend_from_slice(&[CAP_GRACEFUL_RESTART, (2 + 4 * gr.families.len()) as u8]);
            let word = (u16::from(gr.flags & 0x0f) << 12) | (gr.restart_time & 0x0fff);
            out.extend_from_slice(&word.to_be_bytes());
            for (afi, safi, flags) in &gr.families {
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[*safi, *flags]);
            }
        }
        Capability::Unknown { code, value } => {
            out.extend_from_slice(&[*code, value.len() as u8]);
            out.extend_from_slice(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Codec, Message};
    use super::*;

    /// The OPEN FRR 8.4 bgpd (AS 64512, router id 192.168.99.12, `timers 3 9`) sent to a test
    /// listener in a network namespace, captured from the socket: one capabilities parameter
    /// per capability, including the old Cisco route refresh (128), extended message (6),
    /// AddPath (69), FQDN (73) and long-lived graceful restart (71), which we keep as unknown.
    const FRR_OPEN: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x00, 0x5e, 0x01, 0x04, 0xfc, 0x00, 0x00, 0x09, 0xc0, 0xa8, 0x63, 0x0c, 0x41, 0x02,
        0x06, 0x01, 0x04, 0x00, 0x01, 0x00, 0x01, 0x02, 0x02, 0x80, 0x00, 0x02, 0x02, 0x02, 0x00,
        0x02, 0x02, 0x46, 0x00, 0x02, 0x06, 0x41, 0x04, 0x00, 0x00, 0xfc, 0x00, 0x02, 0x02, 0x06,
        0x00, 0x02, 0x06, 0x45, 0x04, 0x00, 0x01, 0x01, 0x01, 0x02, 0x06, 0x49, 0x04, 0x02, 0x76,
        0x6d, 0x00, 0x02, 0x04, 0x40, 0x02, 0xc0, 0x78, 0x02, 0x09, 0x47, 0x07, 0x00, 0x01, 0x01,
        0x80, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn golden_open_round_trip() {
        let Ok(Message::Open(open)) = Message::decode(FRR_OPEN, Codec::INITIAL) else {
            panic!("FRR's OPEN did not decode");
        };
        assert_eq!(open.my_as, 64512);
        assert_eq!(open.hold_time, 9);
        assert_eq!(open.router_id, Ipv4Addr::new(192, 168, 99, 12));
        assert_eq!(
            open.capabilities,
            vec![
                Capability::Multiprotocol {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST
                },
                Capability::Unknown {
                    code: 128,
                    value: vec![]
                },
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::FourOctetAs(64512),
                Capability::Unknown {
                    code: 6,
                    value: vec![]
                },
                Capability::Unknown {
                    code: 69,
                    value: vec![0, 1, 1, 1]
                },
                Capability::Unknown {
                    code: 73,
                    value: b"\x02vm\x00".to_vec()
                },
                Capability::GracefulRestart(GracefulRestart {
                    flags: 0xc,
                    restart_time: 120,
                    families: vec![]
                }),
                Capability::Unknown {
                    code: 71,
                    value: vec![0, 1, 1, 0x80, 0, 0, 0]
                },
            ]
        );
        assert_eq!(open.asn(), 64512);
        // We emit all capabilities in one parameter (FRR sends one parameter each, 2 bytes
        // apiece); decoding that gives the same OPEN.
        let mut out = Vec::new();
        Message::Open(open.clone())
            .encode(Codec::INITIAL, &mut out)
            .unwrap();
        assert_eq!(
            out.len(),
            FRR_OPEN.len() - 2 * (open.capabilities.len() - 1)
        );
        assert_eq!(
            Message::decode(&out, Codec::INITIAL),
            Ok(Message::Open(open))
        );
    }

    #[test]
    fn four_octet_as_and_graceful_restart_and_unknown() {
        let open = Open {
            version: 4,
            my_as: AS_TRANS,
            hold_time: 90,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            capabilities: vec![
                Capability::FourOctetAs(4_200_000_001),
                Capability::GracefulRestart(GracefulRestart {
                    flags: 0x8,
                    restart_time: 120,
                    families: vec![(1, 1, 0x80)],
                }),
                Capability::Unknown {
                    code: 73,
                    value: b"\x03gw1\x00".to_vec(),
                },
            ],
        };
        let mut out = Vec::new();
        Message::Open(open.clone())
            .encode(Codec::INITIAL, &mut out)
            .unwrap();
        let Ok(Message::Open(back)) = Message::decode(&out, Codec::INITIAL) else {
            panic!()
        };
        assert_eq!(back, open);
        assert_eq!(back.asn(), 4_200_000_001);
        // Byte view of the GR capability: flags in the top nibble, 12-bit time.
        let gr = [64u8, 6, 0x80, 120, 0, 1, 1, 0x80];
        assert!(out.windows(gr.len()).any(|w| w == gr));
    }

    #[test]
    fn errors() {
        let mut v5 = FRR_OPEN.to_vec();
        v5[19] = 5;
        let n = Message::decode(&v5, Codec::INITIAL).unwrap_err();
        assert_eq!((n.code, n.subcode, n.data), (2, 1, vec![0, 4]));

        let mut unknown_param = FRR_OPEN.to_vec();
        unknown_param[29] = 3;
        let n = Message::decode(&unknown_param, Codec::INITIAL).unwrap_err();
        assert_eq!((n.code, n.subcode), (2, 4));

        let mut short_params = FRR_OPEN.to_vec();
        short_params[28] = 15;
        let n = Message::decode(&short_params, Codec::INITIAL).unwrap_err();
        assert_eq!((n.code, n.subcode), (1, 2));

        let mut bad_cap_len = FRR_OPEN.to_vec();
        bad_cap_len[32] = 3; // MP capability of length 3 (and then the next one misparses)
        assert!(Message::decode(&bad_cap_len, Codec::INITIAL).is_err());
    }

    #[test]
    fn extended_optional_parameters() {
        // RFC 9072: non-extended length 255, type 255, two-byte length, two-byte param lengths.
        let mut bytes = vec![0xff; 16];
        let params = [2u8, 0, 6, 1, 4, 0, 1, 0, 1];
        let len = 19 + 10 + 3 + params.len();
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
        bytes.push(1);
        bytes.extend_from_slice(&[
            4,
            0xfc,
            0,
            0,
            90,
            1,
            2,
            3,
            4,
            255,
            255,
            0,
            params.len() as u8,
        ]);
        bytes.extend_from_slice(&params);
        let Ok(Message::Open(open)) = Message::decode(&bytes, Codec::INITIAL) else {
            panic!()
        };
        assert_eq!(
            open.capabilities,
            vec![Capability::Multiprotocol { afi: 1, safi: 1 }]
        );
    }
}
