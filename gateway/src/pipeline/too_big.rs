//! ICMP fragmentation-needed (RFC 1191) for a reply that would not fit the underlay once
//! encapsulated: built in place in front of the offending packet, as a router answers.

use crate::wire::ethernet::{self, EtherType, MacAddr};
use crate::wire::icmp::{self, Message, CODE_FRAG_NEEDED};
use crate::wire::ipv4::{self, Protocol};
use crate::wire::{self, be32, checksum};

/// Bytes the message needs in front of the original frame (IPv4 + ICMP headers).
pub const HEADROOM: usize = ipv4::HEADER_LEN + icmp::HEADER_LEN;
/// RFC 1812 4.3.2.3: quote as much as fits in a 576-byte datagram.
const MAX_QUOTE: usize = 576 - ipv4::HEADER_LEN - icmp::HEADER_LEN;

/// Turns the frame at `start` (Ethernet + IPv4, already validated) into an ICMP error to its
/// sender, from `src_ip`, announcing `mtu`. Returns the new (start, len). The caller checked
/// that [`HEADROOM`] bytes before `start` are the frame's; the emitters check lengths anyway.
pub fn frag_needed(
    buf: &mut [u8],
    start: usize,
    mtu: u16,
    src_ip: u32,
    our_mac: MacAddr,
) -> Result<(usize, usize), wire::Error> {
    let ip = start + ethernet::HEADER_LEN;
    let sender_mac = ethernet::Frame::new_unchecked(&buf[start..]).src();
    let sender_ip = be32(buf, ip + 12);
    let orig_total = usize::from(ipv4::Packet::new_unchecked(&buf[ip..]).total_len());
    let quote = orig_total.min(MAX_QUOTE);
    let new_start = start.checked_sub(HEADROOM).ok_or(wire::Error::Truncated)?;
    let new_ip = new_start + ethernet::HEADER_LEN;
    let icmp_at = new_ip + ipv4::HEADER_LEN;
    // The new headers overwrite the old Ethernet header, which was read above.
    ethernet::Repr {
        src: our_mac,
        dst: sender_mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut buf[new_start..])?;
    ipv4::Repr {
        src: src_ip,
        dst: sender_ip,
        protocol: Protocol::Icmp,
        payload_len: (icmp::HEADER_LEN + quote) as u16,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut buf[new_ip..])?;
    icmp::Repr::Error {
        msg: Message::DstUnreachable,
        code: CODE_FRAG_NEEDED,
        rest: u32::from(mtu),
    }
    .emit(&mut buf[icmp_at..])?;
    let end = icmp_at + icmp::HEADER_LEN + quote;
    let c = checksum::checksum(&buf[icmp_at..end]);
    buf[icmp_at + 2..icmp_at + 4].copy_from_slice(&c.to_be_bytes());
    Ok((new_start, end - new_start))
}
