//! In-place rewrites with incremental checksum updates (RFC 1624): the translated packet's own
//! L4 port, and the header embedded in an ICMP error (RFC 5508 section 4.2).

use super::parse::Kind;
use crate::nat::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::wire::checksum::{update16, update32, Delta};
use crate::wire::{be16, be32, put16, put32};

/// Which end of a packet's tuple changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Src,
    Dst,
}

impl End {
    fn addr_at(self) -> usize {
        match self {
            End::Src => 12,
            End::Dst => 16,
        }
    }

    fn port_at(self) -> usize {
        match self {
            End::Src => 0,
            End::Dst => 2,
        }
    }
}

/// The `N` bytes at `at`, as an array: one bounds check, then fixed offsets check nothing.
#[inline(always)]
fn chunk<const N: usize>(buf: &mut [u8], at: usize) -> &mut [u8; N] {
    (&mut buf[at..at + N])
        .try_into()
        .expect("a slice of N bytes is an array of N")
}

/// Decrements TTL and rewrites `end`'s address of the IPv4 header at `ip`, with one checksum
/// update for both. Returns the address change, which the L4 checksum (over the
/// pseudo-header) needs too.
#[inline(always)]
pub fn ip_header(buf: &mut [u8], ip: usize, end: End, new_addr: u32) -> Delta {
    let h = chunk::<20>(buf, ip);
    let addr_at = end.addr_at();
    let old_addr = be32(h, addr_at);
    let addr = Delta::default().addr(old_addr, new_addr);
    let ttl_proto = be16(h, 8);
    let new_ttl_proto = ttl_proto.wrapping_sub(0x100);
    let c = addr.word(ttl_proto, new_ttl_proto).apply(be16(h, 10));
    put16(h, 8, new_ttl_proto);
    put16(h, 10, c);
    put32(h, addr_at, new_addr);
    addr
}

/// Rewrites the L4 part of the translated packet after its address changed by `addr`: the
/// port (or echo identifier) and the L4 checksum.
#[inline(always)]
pub fn l4(buf: &mut [u8], l4: usize, kind: Kind, end: End, addr: Delta, new_port: u16) {
    let port_at = end.port_at();
    match kind {
        Kind::Tcp { .. } => {
            let t = chunk::<20>(buf, l4);
            let c = addr.word(be16(t, port_at), new_port).apply(be16(t, 16));
            put16(t, 16, c);
            put16(t, port_at, new_port);
        }
        Kind::Udp => {
            let u = chunk::<8>(buf, l4);
            let old = be16(u, 6);
            // Zero means the sender computed no checksum (RFC 768): leave it so.
            if old != 0 {
                let c = addr.word(be16(u, port_at), new_port).apply(old);
                put16(u, 6, if c == 0 { 0xffff } else { c });
            }
            put16(u, port_at, new_port);
        }
        Kind::Echo => {
            let e = chunk::<8>(buf, l4);
            let c = update16(be16(e, 2), be16(e, 4), new_port);
            put16(e, 2, c);
            put16(e, 4, new_port);
        }
        Kind::IcmpError { .. } => {}
    }
}

/// Writes a 16-bit word inside an ICMP message and folds the change into its checksum.
fn put16_icmp(buf: &mut [u8], at: usize, new: u16, icmp_csum: &mut u16) {
    *icmp_csum = update16(*icmp_csum, be16(buf, at), new);
    put16(buf, at, new);
}

/// Rewrites `end` of the packet embedded in an ICMP error (address, port or echo id), keeping
/// the embedded IP checksum, the embedded L4 checksum where it was included, and the ICMP
/// checksum right. `icmp` is the offset of the ICMP header; `ip_end` the end of the outer packet.
#[allow(clippy::too_many_arguments)]
pub fn embedded(
    buf: &mut [u8],
    icmp: usize,
    emb_ip: usize,
    emb_l4: usize,
    ip_end: usize,
    end: End,
    new_addr: u32,
    new_port: u16,
) {
    let mut csum = be16(buf, icmp + 2);
    let addr_at = emb_ip + end.addr_at();
    let old_addr = be32(buf, addr_at);
    let ip_csum = update32(be16(buf, emb_ip + 10), old_addr, new_addr);
    put16_icmp(buf, emb_ip + 10, ip_csum, &mut csum);
    put16_icmp(buf, addr_at, (new_addr >> 16) as u16, &mut csum);
    put16_icmp(buf, addr_at + 2, new_addr as u16, &mut csum);
    match buf[emb_ip + 9] {
        PROTO_TCP | PROTO_UDP => {
            let port_at = emb_l4 + end.port_at();
            let old_port = be16(buf, port_at);
            let csum_at = emb_l4 + if buf[emb_ip + 9] == PROTO_TCP { 16 } else { 6 };
            if csum_at + 2 <= ip_end && be16(buf, csum_at) != 0 {
                let c = update16(
                    update32(be16(buf, csum_at), old_addr, new_addr),
                    old_port,
                    new_port,
                );
                put16_icmp(buf, csum_at, c, &mut csum);
            }
            put16_icmp(buf, port_at, new_port, &mut csum);
        }
        PROTO_ICMP => {
            let c = update16(be16(buf, emb_l4 + 2), be16(buf, emb_l4 + 4), new_port);
            put16_icmp(buf, emb_l4 + 2, c, &mut csum);
            put16_icmp(buf, emb_l4 + 4, new_port, &mut csum);
        }
        _ => {}
    }
    put16(buf, icmp + 2, csum);
}
