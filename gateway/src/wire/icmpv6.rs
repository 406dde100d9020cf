//! ICMPv6 (RFC 4443): echo request and reply, and the errors that carry the packet that
//! caused them (destination unreachable, packet too big, time exceeded, parameter problem).
//! The checksum covers the IPv6 pseudo-header, so checking it takes both addresses.

use super::checksum;
use super::ipv6;
use super::{be16, put16, Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    /// Packet too big: the MTU of the next hop; parameter problem: the pointer.
    pub const REST: usize = 4;
}

pub const HEADER_LEN: usize = 8;

/// ICMPv6's next-header value.
pub const PROTOCOL: u8 = 58;

/// The least MTU of an IPv6 link (RFC 8200 section 5): an error message is cut to fit it.
pub const MIN_MTU: usize = 1280;

/// Message types this gateway names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    DstUnreachable,
    PacketTooBig,
    TimeExceeded,
    ParamProblem,
    EchoRequest,
    EchoReply,
    Unknown(u8),
}

impl From<u8> for Message {
    #[inline(always)]
    fn from(v: u8) -> Self {
        match v {
            1 => Message::DstUnreachable,
            2 => Message::PacketTooBig,
            3 => Message::TimeExceeded,
            4 => Message::ParamProblem,
            128 => Message::EchoRequest,
            129 => Message::EchoReply,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    #[inline(always)]
    fn from(v: Message) -> u8 {
        match v {
            Message::DstUnreachable => 1,
            Message::PacketTooBig => 2,
            Message::TimeExceeded => 3,
            Message::ParamProblem => 4,
            Message::EchoRequest => 128,
            Message::EchoReply => 129,
            Message::Unknown(other) => other,
        }
    }
}

impl Message {
    /// Error messages (types 0-127) carry as much of the offending packet as fits.
    #[inline(always)]
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

/// A view of an ICMPv6 message: the whole buffer is the message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn msg_type(&self) -> Message {
        self.buffer.as_ref()[field::TYPE].into()
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }

    /// The 4 bytes after the checksum: the MTU of a packet too big, the pointer of a
    /// parameter problem, unused otherwise.
    #[inline]
    pub fn rest(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// After the 8-byte header: an error's invoking packet, an echo's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Verifies the checksum over the pseudo-header of `src` -> `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_header_v6(src, dst, PROTOCOL, b.len() as u32);
        checksum::verifies(acc, b)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Rewrites an echo's identifier, updating the checksum incrementally.
    #[inline]
    pub fn rewrite_echo_ident(&mut self, new: u16) {
        let c = checksum::update16(self.checksum(), self.echo_ident(), new);
        put16(self.buffer.as_mut(), field::IDENT, new);
        self.set_checksum(c);
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the pseudo-header of `src` -> `dst` and the message.
    pub fn fill_checksum(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_header_v6(src, dst, PROTOCOL, b.len() as u32);
        let c = !checksum::fold(checksum::sum(acc, b));
        self.set_checksum(c);
    }
}

/// The meaning of an ICMPv6 header (the data is handled by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    Echo {
        request: bool,
        ident: u16,
        seq: u16,
    },
    /// Packet too big, with the next hop's MTU.
    PacketTooBig {
        mtu: u32,
    },
    /// Another error; `rest` is the 4 bytes after the checksum (the pointer of a parameter
    /// problem, else unused).
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
    /// Parses `p`, sent from `src` to `dst`; a wrong checksum is `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>, src: &[u8; 16], dst: &[u8; 16]) -> Result<Repr> {
        if !p.verify_checksum(src, dst) {
            return Err(Error::Malformed);
        }
        Ok(match p.msg_type() {
            m @ (Message::EchoRequest | Message::EchoReply) => Repr::Echo {
                request: m == Message::EchoRequest,
                ident: p.echo_ident(),
                seq: p.echo_seq(),
            },
            Message::PacketTooBig => Repr::PacketTooBig { mtu: p.rest() },
            m if m.is_error() => Repr::Error {
                msg: m,
                code: p.code(),
                rest: p.rest(),
            },
            m => Repr::Other {
                msg: m,
                code: p.code(),
            },
        })
    }

    /// Writes the 8-byte header with a zero checksum; fill it once the data is in place.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let h = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
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
            Repr::PacketTooBig { mtu } => (Message::PacketTooBig, 0, mtu),
            Repr::Error { msg, code, rest } => (msg, code, rest),
            Repr::Other { msg, code } => (msg, code, 0),
        };
        h[field::TYPE] = t.into();
        h[field::CODE] = code;
        put16(h, field::CHECKSUM, 0);
        h[field::REST..HEADER_LEN].copy_from_slice(&rest.to_be_bytes());
        Ok(())
    }
}

/// The packet an error quotes (RFC 4443 section 2.4 (c): as much of the invoking packet as
/// fits in the least MTU), read as far as NAT needs it: its addresses, the upper layer its
/// extension headers lead to, and that layer's first 8 bytes (ports, or an echo's
/// identifier). Its payload length names the original packet's size, not the bytes quoted,
/// so the walk goes only as far as the quote does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invoking<'a> {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub next_header: u8,
    /// Where the upper layer starts in the quoted bytes.
    pub upper_offset: usize,
    /// The upper layer's first 8 bytes.
    pub upper: &'a [u8],
}

/// Why a quoted packet cannot say which flow it belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokingError {
    /// The message is not an error (echo, or a type this gateway does not name as one).
    NotAnError,
    /// Shorter than its header, its extension headers and 8 bytes of the upper layer.
    Truncated,
    /// Not an IPv6 header.
    NotIpv6,
    /// Its extension headers cannot be walked (see [`ipv6::ChainError`]).
    Chain(ipv6::ChainError),
    /// A fragment: the gateway translates none, so no flow of its own was quoted.
    Fragment,
}

impl<'a> Invoking<'a> {
    pub fn parse(quoted: &'a [u8]) -> core::result::Result<Invoking<'a>, InvokingError> {
        let header = quoted
            .get(..ipv6::HEADER_LEN)
            .ok_or(InvokingError::Truncated)?;
        if header[0] >> 4 != 6 {
            return Err(InvokingError::NotIpv6);
        }
        let rest = &quoted[ipv6::HEADER_LEN..];
        let chain = ipv6::walk(header[6], rest).map_err(|e| match e {
            ipv6::ChainError::Truncated => InvokingError::Truncated,
            other => InvokingError::Chain(other),
        })?;
        let (next_header, offset) = match chain {
            ipv6::UpperLayer::Protocol {
                next_header,
                offset,
            } => (next_header, offset),
            ipv6::UpperLayer::Fragment { .. } => return Err(InvokingError::Fragment),
        };
        let upper = rest
            .get(offset..offset + 8)
            .ok_or(InvokingError::Truncated)?;
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&header[8..24]);
        dst.copy_from_slice(&header[24..40]);
        Ok(Invoking {
            src,
            dst,
            next_header,
            upper_offset: ipv6::HEADER_LEN + offset,
            upper,
        })
    }

    /// Source and destination port of a quoted TCP or UDP packet.
    pub fn ports(&self) -> Option<(u16, u16)> {
        matches!(
            self.next_header,
            ipv6::next_header::TCP | ipv6::next_header::UDP
        )
        .then(|| (be16(self.upper, 0), be16(self.upper, 2)))
    }

    /// The identifier of a quoted echo request or reply.
    pub fn echo_ident(&self) -> Option<u16> {
        let echo = self.next_header == PROTOCOL
            && matches!(
                Message::from(self.upper[field::TYPE]),
                Message::EchoRequest | Message::EchoReply
            );
        echo.then(|| be16(self.upper, field::IDENT))
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The packet an error message quotes.
    pub fn invoking(&self) -> core::result::Result<Invoking<'_>, InvokingError> {
        if !self.msg_type().is_error() {
            return Err(InvokingError::NotAnError);
        }
        Invoking::parse(self.data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6;

    /// `ping -6 -c 1 -s 8 ::1` as Linux 6.18 sent it on loopback (tcpdump, in a namespace of
    /// its own, 2026-12-06): the IPv6 header (flow label 0x1c16c), then the echo request
    /// (ident 0x02d0, seq 1, 8 data bytes) with the kernel's checksum.
    const PING: [u8; 56] = [
        0x60, 0x01, 0xc1, 0x6c, 0x00, 0x10, 0x3a, 0x40, // version .. hop limit 64
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // ::1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // ::1
        0x80, 0x00, 0x70, 0xd2, 0x02, 0xd0, 0x00, 0x01, // echo request
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // data
    ];

    fn ping() -> Vec<u8> {
        PING.to_vec()
    }

    #[test]
    fn an_echo_request_parses_and_its_checksum_holds() {
        let b = ping();
        let ip = ipv6::Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            ip.upper_layer(),
            Ok(ipv6::UpperLayer::Protocol {
                next_header: PROTOCOL,
                offset: 0
            })
        );
        let (src, dst) = (ip.src_bytes(), ip.dst_bytes());
        let m = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            Repr::parse(&m, &src, &dst),
            Ok(Repr::Echo {
                request: true,
                ident: 0x02d0,
                seq: 1
            })
        );
        assert_eq!(ip.flow_label(), 0x1c16c);
        // Computing the checksum afresh gives the kernel's.
        let mut again = b.clone();
        Packet::new_checked(&mut again[40..])
            .unwrap()
            .fill_checksum(&src, &dst);
        assert_eq!(again, b);
        // The same bytes from another source fail: the pseudo-header counts.
        let mut other = src;
        other[0] = 0xfd;
        assert_eq!(Repr::parse(&m, &other, &dst), Err(Error::Malformed));
    }

    #[test]
    fn rewriting_the_identifier_keeps_the_checksum() {
        let mut b = ping();
        let (src, dst) = {
            let ip = ipv6::Packet::new_checked(&b[..]).unwrap();
            (ip.src_bytes(), ip.dst_bytes())
        };
        let mut m = Packet::new_checked(&mut b[40..]).unwrap();
        m.rewrite_echo_ident(0xbeef);
        assert_eq!(m.echo_ident(), 0xbeef);
        assert!(m.verify_checksum(&src, &dst));
    }

    #[test]
    fn errors_and_their_fields() {
        let (src, dst) = ([1; 16], [2; 16]);
        let mut b = [0u8; 48];
        for repr in [
            Repr::PacketTooBig { mtu: 1400 },
            Repr::Error {
                msg: Message::DstUnreachable,
                code: 4,
                rest: 0,
            },
            Repr::Error {
                msg: Message::TimeExceeded,
                code: 0,
                rest: 0,
            },
            Repr::Error {
                msg: Message::ParamProblem,
                code: 1,
                rest: 40,
            },
            Repr::Other {
                msg: Message::Unknown(135),
                code: 0,
            },
        ] {
            repr.emit(&mut b).unwrap();
            let mut p = Packet::new_checked(&mut b[..]).unwrap();
            p.fill_checksum(&src, &dst);
            assert_eq!(Repr::parse(&p, &src, &dst), Ok(repr));
            assert_eq!(p.msg_type().is_error(), !matches!(repr, Repr::Other { .. }));
        }
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(
            Repr::PacketTooBig { mtu: 1 }.emit(&mut b[..7]),
            Err(Error::Truncated)
        );
    }

    /// A quoted packet: an IPv6 header (payload length as the original's, 1000), then
    /// `chain`, then `upper`.
    fn quoted(next_header: u8, chain: &[u8], upper: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; ipv6::HEADER_LEN];
        ipv6::Repr {
            src: "fd00::a".parse().unwrap(),
            dst: "2001:db8::5".parse().unwrap(),
            next_header,
            hop_limit: 63,
            payload_len: 1000,
        }
        .emit(&mut b)
        .unwrap();
        b.extend_from_slice(chain);
        b.extend_from_slice(upper);
        b
    }

    const UDP_HEAD: [u8; 8] = [0x9c, 0x40, 0x13, 0x89, 0x03, 0xe8, 0x12, 0x34];

    #[test]
    fn a_quoted_udp_packet_gives_its_addresses_and_ports() {
        let q = quoted(ipv6::next_header::UDP, &[], &UDP_HEAD);
        let inv = Invoking::parse(&q).unwrap();
        assert_eq!(
            inv.src,
            "fd00::a".parse::<std::net::Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            inv.dst,
            "2001:db8::5"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!((inv.next_header, inv.upper_offset), (17, 40));
        assert_eq!(inv.ports(), Some((40000, 5001)));
        assert_eq!(inv.echo_ident(), None);
        // Every shorter quote is truncated, none panics.
        for len in 0..q.len() {
            assert_eq!(
                Invoking::parse(&q[..len]),
                Err(InvokingError::Truncated),
                "{len}"
            );
        }
    }

    #[test]
    fn extension_headers_are_walked_within_the_quote() {
        // Destination options (8 bytes), then TCP.
        let opts = [ipv6::next_header::TCP, 0, 1, 4, 0, 0, 0, 0];
        let q = quoted(ipv6::next_header::DESTINATION_OPTIONS, &opts, &UDP_HEAD);
        let inv = Invoking::parse(&q).unwrap();
        assert_eq!((inv.next_header, inv.upper_offset), (6, 48));
        assert_eq!(inv.ports(), Some((40000, 5001)));
        // An options header longer than the quote is truncated, not read past.
        let long = [ipv6::next_header::TCP, 4, 1, 4, 0, 0, 0, 0];
        let q = quoted(ipv6::next_header::DESTINATION_OPTIONS, &long, &UDP_HEAD);
        assert_eq!(Invoking::parse(&q), Err(InvokingError::Truncated));
        // ESP, a fragment, a header that is not IPv6.
        let q = quoted(ipv6::next_header::ESP, &[], &UDP_HEAD);
        assert_eq!(
            Invoking::parse(&q),
            Err(InvokingError::Chain(ipv6::ChainError::Unsupported(50)))
        );
        let frag = [ipv6::next_header::UDP, 0, 0, 1, 0, 0, 0, 7];
        let q = quoted(ipv6::next_header::FRAGMENT, &frag, &UDP_HEAD);
        assert_eq!(Invoking::parse(&q), Err(InvokingError::Fragment));
        let mut q = quoted(ipv6::next_header::UDP, &[], &UDP_HEAD);
        q[0] = 0x45;
        assert_eq!(Invoking::parse(&q), Err(InvokingError::NotIpv6));
    }

    #[test]
    fn a_quoted_echo_gives_its_identifier_and_only_errors_quote() {
        let echo = [128, 0, 0, 0, 0xab, 0xcd, 0, 1];
        let q = quoted(PROTOCOL, &[], &echo);
        assert_eq!(Invoking::parse(&q).unwrap().echo_ident(), Some(0xabcd));
        assert_eq!(Invoking::parse(&q).unwrap().ports(), None);
        // Packet too big carrying it; an echo reply carries no quote.
        let mut b = vec![0u8; HEADER_LEN];
        Repr::PacketTooBig { mtu: 1280 }.emit(&mut b).unwrap();
        b.extend_from_slice(&q);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.invoking().unwrap().echo_ident(), Some(0xabcd));
        let mut b = ping();
        let reply = Packet::new_checked(&mut b[40..]).unwrap();
        assert_eq!(reply.invoking(), Err(InvokingError::NotAnError));
    }
}
