//! BGP-4 message codec (RFC 4271 section 4, RFC 6793 four-octet AS, RFC 2918/7313 route
//! refresh, RFC 7606 revised UPDATE error handling).
//!
//! `decode` returns either a message or the NOTIFICATION the session must send, so the error
//! handling of RFC 4271 section 6 lives in the types. UPDATE attribute errors that RFC 7606
//! downgrades (treat-as-withdraw, attribute discard) come back inside the decoded `Update`.

mod mp;
mod notification;
mod open;
mod prefix;
mod reader;
mod update;

pub use mp::NextHop6;
pub use notification::{Notification, NotificationCode};
pub use open::{Capability, GracefulRestart, Open, AS_TRANS};
pub use prefix::{Family, Prefix, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
pub use update::{AsSegment, AttrError, AttrErrorAction, Attributes, Origin, RawAttribute, Update};

pub use reader::Reader;

/// Every message starts with 16 bytes of 0xFF (RFC 4271 4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
/// Without the extended message capability (RFC 8654), which we do not advertise.
pub const MAX_MESSAGE_LEN: usize = 4096;

pub const TYPE_OPEN: u8 = 1;
pub const TYPE_UPDATE: u8 = 2;
pub const TYPE_NOTIFICATION: u8 = 3;
pub const TYPE_KEEPALIVE: u8 = 4;
pub const TYPE_ROUTE_REFRESH: u8 = 5;

/// What decoding depends on: whether both sides negotiated four-octet AS numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub four_octet_as: bool,
}

impl Codec {
    /// Before the OPEN exchange AS_PATH encoding does not matter (only OPENs and NOTIFICATIONs
    /// flow); after it, `four_octet_as` is true when both OPENs carried the capability.
    pub const INITIAL: Codec = Codec {
        four_octet_as: false,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// RFC 2918, with the RFC 7313 subtype in the reserved byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    pub subtype: u8,
    pub safi: u8,
}

impl RouteRefresh {
    pub const NORMAL: u8 = 0;
    pub const BEGIN_OF_RIB: u8 = 1;
    pub const END_OF_RIB: u8 = 2;
}

/// Looks at the start of a receive buffer: `Ok(None)` until a whole message is there, then its
/// length. Header errors are the RFC 4271 6.1 NOTIFICATIONs.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, Notification> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16] != MARKER {
        return Err(Notification::new(
            NotificationCode::MESSAGE_HEADER,
            1,
            Vec::new(),
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    let kind = buf[18];
    let (min, max) = match kind {
        TYPE_OPEN => (29, MAX_MESSAGE_LEN),
        TYPE_UPDATE => (23, MAX_MESSAGE_LEN),
        TYPE_NOTIFICATION => (21, MAX_MESSAGE_LEN),
        TYPE_KEEPALIVE => (HEADER_LEN, HEADER_LEN),
        TYPE_ROUTE_REFRESH => (23, 23),
        _ => {
            return Err(Notification::new(
                NotificationCode::MESSAGE_HEADER,
                3,
                vec![kind],
            ))
        }
    };
    if len < min || len > max {
        return Err(Notification::new(
            NotificationCode::MESSAGE_HEADER,
            2,
            buf[16..18].to_vec(),
        ));
    }
    Ok((buf.len() >= len).then_some(len))
}

impl Message {
    /// Decodes one whole message (as delimited by `frame_len`).
    pub fn decode(frame: &[u8], codec: Codec) -> Result<Message, Notification> {
        match frame_len(frame)? {
            Some(len) if len == frame.len() => {}
            _ => {
                return Err(Notification::new(
                    NotificationCode::MESSAGE_HEADER,
                    2,
                    frame.get(16..18).unwrap_or(&[0, 0]).to_vec(),
                ))
            }
        }
        let body = &frame[HEADER_LEN..];
        match frame[18] {
            TYPE_OPEN => Open::decode(body).map(Message::Open),
            TYPE_UPDATE => Update::decode(body, codec).map(Message::Update),
            TYPE_NOTIFICATION => Ok(Message::Notification(Notification::decode(body))),
            TYPE_KEEPALIVE => Ok(Message::Keepalive),
            TYPE_ROUTE_REFRESH => {
                let mut r = Reader::new(body);
                Ok(Message::RouteRefresh(RouteRefresh {
                    afi: r.u16().unwrap_or(0),
                    subtype: r.u8().unwrap_or(0),
                    safi: r.u8().unwrap_or(0),
                }))
            }
            // frame_len rejected every other type.
            kind => Err(Notification::new(
                NotificationCode::MESSAGE_HEADER,
                3,
                vec![kind],
            )),
        }
    }

    /// Appends the encoded message to `out`. Callers keep messages under 4096 bytes (the
    /// speaker splits long NLRI lists); a longer one is an error, not a truncated message.
    pub fn encode(&self, codec: Codec, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&MARKER);
        out.extend_from_slice(&[0, 0, self.kind()]);
        match self {
            Message::Open(open) => open.encode(out)?,
            Message::Update(update) => update.encode(codec, out)?,
            Message::Notification(n) => n.encode(out),
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => {
                out.extend_from_slice(&rr.afi.to_be_bytes());
                out.extend_from_slice(&[rr.subtype, rr.safi]);
            }
        }
        let len = out.len() - start;
        if len > MAX_MESSAGE_LEN {
            out.truncate(start);
            return Err(EncodeError::TooLong(len));
        }
        out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    }

    pub fn kind(&self) -> u8 {
        match self {
            Message::Open(_) => TYPE_OPEN,
            Message::Update(_) => TYPE_UPDATE,
            Message::Notification(_) => TYPE_NOTIFICATION,
            Message::Keepalive => TYPE_KEEPALIVE,
            Message::RouteRefresh(_) => TYPE_ROUTE_REFRESH,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The message would exceed 4096 bytes.
    TooLong(usize),
    /// An OPEN's capabilities exceed the 255-byte optional parameter field.
    OptionalParametersTooLong,
    /// IPv6 routes without an IPv6 next hop to announce them with.
    NoIpv6NextHop,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::TooLong(n) => write!(f, "BGP message of {n} bytes exceeds 4096"),
            EncodeError::OptionalParametersTooLong => {
                write!(f, "OPEN optional parameters exceed 255 bytes")
            }
            EncodeError::NoIpv6NextHop => write!(f, "IPv6 routes without an IPv6 next hop"),
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u16, kind: u8) -> Vec<u8> {
        let mut v = MARKER.to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.push(kind);
        v
    }

    #[test]
    fn keepalive_golden() {
        let bytes = header(19, 4);
        assert_eq!(
            Message::decode(&bytes, Codec::INITIAL),
            Ok(Message::Keepalive)
        );
        let mut out = Vec::new();
        Message::Keepalive.encode(Codec::INITIAL, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn route_refresh_golden() {
        let mut bytes = header(23, 5);
        bytes.extend_from_slice(&[0, 1, 0, 1]);
        let msg = Message::RouteRefresh(RouteRefresh {
            afi: 1,
            subtype: 0,
            safi: 1,
        });
        assert_eq!(Message::decode(&bytes, Codec::INITIAL), Ok(msg.clone()));
        let mut out = Vec::new();
        msg.encode(Codec::INITIAL, &mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn header_errors_are_section_6_1_notifications() {
        let mut bad_marker = header(19, 4);
        bad_marker[3] = 0;
        let n = frame_len(&bad_marker).unwrap_err();
        assert_eq!((n.code, n.subcode), (NotificationCode::MESSAGE_HEADER, 1));

        let n = frame_len(&header(18, 4)).unwrap_err();
        assert_eq!(
            (n.code, n.subcode, n.data.as_slice()),
            (1, 2, &[0u8, 18][..])
        );
        let n = frame_len(&header(4097, 2)).unwrap_err();
        assert_eq!((n.code, n.subcode), (1, 2));
        let n = frame_len(&header(20, 4)).unwrap_err();
        assert_eq!((n.code, n.subcode), (1, 2), "KEEPALIVE is exactly 19 bytes");
        let n = frame_len(&header(19, 9)).unwrap_err();
        assert_eq!((n.code, n.subcode, n.data.as_slice()), (1, 3, &[9u8][..]));
    }

    #[test]
    fn frame_len_waits_for_the_whole_message() {
        let bytes = header(23, 5);
        assert_eq!(frame_len(&bytes[..10]), Ok(None));
        assert_eq!(frame_len(&bytes[..19]), Ok(None));
        let mut whole = bytes.clone();
        whole.extend_from_slice(&[0, 1, 0, 1, 0xff]);
        assert_eq!(frame_len(&whole), Ok(Some(23)));
    }
}
