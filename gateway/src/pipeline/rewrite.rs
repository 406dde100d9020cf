//! In-place rewrites with incremental checksum updates (RFC 1624): the translated packet's own
//! L4 port, and the header embedded in an ICMP error (RFC 5508 section 4.2).

use super::parsed::Kind;
use crate::nat::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::wire::checksum::{update16, update32, Delta};
use crate::wire::{be16, be32, put16};

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

/// The `N` bytes at `at` of a chunk.
#[inline(always)]
fn bytes<const N: usize, const M: usize>(h: &[u8; M], at: usize) -> [u8; N] {
    h[at..at + N].try_into().expect("N bytes")
}

/// Decrements TTL and rewrites `end`'s address of the IPv4 header at `ip`, with one checksum
/// update for both. Returns the address change, which the L4 checksum (over the
/// pseudo-header) needs too.
#[inline(always)]
pub fn ip_header(buf: &mut [u8], ip: usize, end: End, new_addr: u32) -> Delta {
    let h = chunk::<20>(buf, ip);
    let addr_at = end.addr_at();
    let new_addr = new_addr.to_be_bytes();
    let addr = Delta::default().addr(bytes(h, addr_at), new_addr);
    let ttl_proto: [u8; 2] = bytes(h, 8);
    let new_ttl_proto = [ttl_proto[0].wrapping_sub(1), ttl_proto[1]];
    let c = addr.word(ttl_proto, new_ttl_proto).apply(bytes(h, 10));
    h[8] = new_ttl_proto[0];
    h[10..12].copy_from_slice(&c);
    h[addr_at..addr_at + 4].copy_from_slice(&new_addr);
    addr
}

/// Rewrites the L4 part of the translated packet after its address changed by `addr`: the
/// port (or echo identifier) and the L4 checksum.
#[inline(always)]
pub fn l4(buf: &mut [u8], l4: usize, kind: Kind, end: End, addr: Delta, new_port: u16) {
    let port_at = end.port_at();
    let new_port = new_port.to_be_bytes();
    match kind {
        Kind::Tcp { .. } => {
            let t = chunk::<20>(buf, l4);
            let c = addr.word(bytes(t, port_at), new_port).apply(bytes(t, 16));
            t[16..18].copy_from_slice(&c);
            t[port_at..port_at + 2].copy_from_slice(&new_port);
        }
        Kind::Udp => {
            let u = chunk::<8>(buf, l4);
            let old: [u8; 2] = bytes(u, 6);
            // Zero means the sender computed no checksum (RFC 768): leave it so.
            if old != [0, 0] {
                let c = addr.word(bytes(u, port_at), new_port).apply(old);
                u[6..8].copy_from_slice(if c == [0, 0] { &[0xff, 0xff] } else { &c });
            }
            u[port_at..port_at + 2].copy_from_slice(&new_port);
        }
        Kind::Echo => {
            let e = chunk::<8>(buf, l4);
            let c = Delta::default()
                .word(bytes(e, 4), new_port)
                .apply(bytes(e, 2));
            e[2..4].copy_from_slice(&c);
            e[4..6].copy_from_slice(&new_port);
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
