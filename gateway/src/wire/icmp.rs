//! ICMPv4 (RFC 792): echo request/reply and the errors that carry an embedded header.

use super::checksum;
use super::{be16, put16, Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const NEXT_HOP_MTU: usize = 6;
}

pub const HEADER_LEN: usize = 8;

/// Message types this gateway names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    EchoReply,
    DstUnreachable,
    EchoRequest,
    TimeExceeded,
    ParamProblem,
    Unknown(u8),
}

impl From<u8> for Message {
    #[inline(always)]
    fn from(v: u8) -> Self {
        match v {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            12 => Message::ParamProblem,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    #[inline(always)]
    fn from(v: Message) -> u8 {
        match v {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::ParamProblem => 12,
            Message::Unknown(other) => other,
        }
    }
}

impl Message {
    /// Errors carry the IP header and first bytes of the datagram that caused them.
    #[inline(always)]
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Message::DstUnreachable | Message::TimeExceeded | Message::ParamProblem
        )
    }
}

/// Destination-unreachable code 4: fragmentation needed and DF set (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    #[inline(always)]
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    #[inline(always)]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (the "port" NAT rewrites for echo).
    #[inline(always)]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline(always)]
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }

    /// Next-hop MTU of a fragmentation-needed message (RFC 1191).
    #[inline(always)]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// For errors, the embedded IP header and data; for echo, the echo data.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(0, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Rewrites the echo identifier and patches the checksum.
    #[inline(always)]
    pub fn rewrite_echo_ident(&mut self, new: u16) {
        let c = checksum::update16(self.checksum(), self.echo_ident(), new);
        put16(self.buffer.as_mut(), field::IDENT, new);
        self.set_checksum(c);
    }

    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    #[inline(always)]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The meaning of an ICMP header (the data is handled by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    Echo {
        request: bool,
        ident: u16,
        seq: u16,
    },
    /// An error; `rest` is the 4 bytes after the checksum (unused, or the next-hop MTU).
    Error {
        msg: Message,
        code: u8,
        rest: u32,
    },
    Other {
        msg: Message,
        code: u8,
    },
}

impl Repr {
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if !p.verify_checksum() {
            return Err(Error::Malformed);
        }
        let b = p.buffer.as_ref();
        Ok(match p.msg_type() {
            Message::EchoRequest => Repr::Echo {
                request: true,
                ident: p.echo_ident(),
                seq: p.echo_seq(),
            },
            Message::EchoReply => Repr::Echo {
                request: false,
                ident: p.echo_ident(),
                seq: p.echo_seq(),
            },
            m if m.is_error() => Repr::Error {
                msg: m,
                code: p.code(),
                rest: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            },
            m => Repr::Other {
                msg: m,
                code: p.code(),
            },
        })
    }

    /// Writes the 8-byte header with a zero checksum; fill it once the data is in place.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let (t, code, rest) = match *self {
            Repr::Echo {
                request,
                ident,
                seq,
            } => (
                if request {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                },
                0,
                (u32::from(ident) << 16) | u32::from(seq),
            ),
            Repr::Error { msg, code, rest } => (msg, code, rest),
            Repr::Other { msg, code } => (msg, code, 0),
        };
        buf[field::TYPE] = t.into();
        buf[field::CODE] = code;
        put16(buf, field::CHECKSUM, 0);
        buf[4..8].copy_from_slice(&rest.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request id 4 seq 1 with 4 data bytes, as in the seed's ping trace.
    const ECHO: [u8; 12] = [
        0x08, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64,
    ];
    // Fragmentation needed, next-hop MTU 1400, embedding a 20-byte header + 8 bytes.
    const FRAG_NEEDED_HDR: [u8; 8] = [0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x05, 0x78];

    #[test]
    fn echo_round_trip() {
        let mut buf = ECHO;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.checksum(), checksum::checksum(&ECHO));
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr::Echo {
                request: true,
                ident: 4,
                seq: 1
            }
        );
        p.rewrite_echo_ident(0x1234);
        assert!(p.verify_checksum());
        assert_eq!(p.echo_ident(), 0x1234);
        let mut out = [0u8; 12];
        Repr::Echo {
            request: true,
            ident: 4,
            seq: 1,
        }
        .emit(&mut out)
        .unwrap();
        out[8..].copy_from_slice(&ECHO[8..]);
        assert_eq!(out, ECHO);
    }

    #[test]
    fn frag_needed() {
        let mut buf = [0u8; 36];
        buf[..8].copy_from_slice(&FRAG_NEEDED_HDR);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.msg_type(), Message::DstUnreachable);
        assert_eq!((p.code(), p.next_hop_mtu()), (CODE_FRAG_NEEDED, 1400));
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr::Error {
                msg: Message::DstUnreachable,
                code: 4,
                rest: 1400
            }
        );
        assert_eq!(p.data().len(), 28);
        let mut out = [0u8; 8];
        Repr::Error {
            msg: Message::DstUnreachable,
            code: 4,
            rest: 1400,
        }
        .emit(&mut out)
        .unwrap();
        assert_eq!(out, FRAG_NEEDED_HDR);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
    }
}
