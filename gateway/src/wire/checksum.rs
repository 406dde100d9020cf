//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept in a `u32` accumulator and folded once at the end; the hot path uses the
//! incremental forms so a rewrite never touches the payload.

/// Adds `data` as big-endian 16-bit words to `acc` (an odd trailing byte is padded with zero).
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early so even jumbo payloads cannot overflow the accumulator.
        if acc & 0x8000_0000 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds the accumulator to 16 bits with end-around carry.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data` (the ones' complement of the folded sum).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// The IPv4 pseudo-header sum used by TCP and UDP (RFC 793, RFC 768).
pub fn pseudo_header(src: u32, dst: u32, protocol: u8, length: u16) -> u32 {
    (src >> 16)
        + (src & 0xffff)
        + (dst >> 16)
        + (dst & 0xffff)
        + u32::from(protocol)
        + u32::from(length)
}

/// The IPv6 pseudo-header sum of TCP, UDP and ICMPv6 (RFC 8200 section 8.1): both addresses,
/// the upper-layer length as 32 bits, and the next header.
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, length: u32) -> u32 {
    let acc = sum(sum(0, src), dst);
    acc + (length >> 16) + (length & 0xffff) + u32::from(next_header)
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')` for one 16-bit word changed from `old` to `new`
/// (values as read big-endian; [`Delta`] on their wire bytes).
#[inline(always)]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let d = Delta::default().word(old.to_be_bytes(), new.to_be_bytes());
    u16::from_be_bytes(d.apply(check.to_be_bytes()))
}

/// [`update16`] for a 32-bit field (an IPv4 address) changed from `old` to `new`.
#[inline(always)]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let d = Delta::default().addr(old.to_be_bytes(), new.to_be_bytes());
    u16::from_be_bytes(d.apply(check.to_be_bytes()))
}

/// Whether `data` (with its checksum field in place) sums to all ones.
pub fn verifies(acc: u32, data: &[u8]) -> bool {
    fold(sum(acc, data)) == 0xffff
}

/// The folded sum of a 20-byte IPv4 header in the machine's byte order: five 32-bit loads
/// and three folds, no byte swaps. The ones' complement sum commutes with swapping the bytes of
/// every word (RFC 1071 section 2B), so this is the network-order sum, byte-swapped on a
/// little-endian machine.
#[inline(always)]
fn sum_header20_native(h: &[u8; 20]) -> u16 {
    let mut acc = 0u64;
    for w in h.chunks_exact(4) {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    fold64(acc)
}

/// Folds a 64-bit ones' complement sum to 16 bits: 64 -> 32 -> 16, each step one rotate and
/// one add (Linux's `csum_fold`): the high half of `x + x.rotate_right(n)` is the two halves'
/// sum with its end-around carry, because the low half's carry lands right there.
#[inline(always)]
pub fn fold64(acc: u64) -> u16 {
    fold32((acc.wrapping_add(acc.rotate_right(32)) >> 32) as u32)
}

/// [`fold64`] from 32 bits.
#[inline(always)]
pub fn fold32(acc: u32) -> u16 {
    (acc.wrapping_add(acc.rotate_right(16)) >> 16) as u16
}

/// The change rewriting some header bytes makes to a checksum (RFC 1624 eqn. 3, with the
/// terms of several fields summed before one fold). One address change feeds both the IPv4
/// and the L4 checksum. Kept in native byte order: fields are taken as they lie in the header
/// and the checksum is stored back the same way, so nothing is byte-swapped (RFC 1071 2B).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// A 16-bit field changing from `old` to `new` (its bytes as in the header).
    #[inline(always)]
    pub fn word(self, old: [u8; 2], new: [u8; 2]) -> Delta {
        Delta(self.0 + u64::from(!u16::from_ne_bytes(old)) + u64::from(u16::from_ne_bytes(new)))
    }

    /// A 32-bit field (an address) changing: one 32-bit term sums as its two halves would.
    #[inline(always)]
    pub fn addr(self, old: [u8; 4], new: [u8; 4]) -> Delta {
        Delta(self.0 + u64::from(!u32::from_ne_bytes(old)) + u64::from(u32::from_ne_bytes(new)))
    }

    /// The checksum field after the changes, from its bytes before them.
    #[inline(always)]
    pub fn apply(self, check: [u8; 2]) -> [u8; 2] {
        (!fold64(self.0 + u64::from(!u16::from_ne_bytes(check)))).to_ne_bytes()
    }
}

/// The ones' complement sum of `data` in native byte order, 32 bits at a time into 64 (fold
/// with [`fold64`]; the folded sum's bytes in memory are the network-order sum's, RFC 1071 2B).
/// For headers: a short slice, summed without a fold per word. An odd last byte is padded with
/// zero, as [`sum`] pads it.
#[inline(always)]
pub fn sum_native(data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    let mut acc: u64 = (&mut words)
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .sum();
    match *words.remainder() {
        [a, b, c] => {
            acc += u64::from(u16::from_ne_bytes([a, b])) + u64::from(u16::from_ne_bytes([c, 0]))
        }
        [a, b] => acc += u64::from(u16::from_ne_bytes([a, b])),
        [a] => acc += u64::from(u16::from_ne_bytes([a, 0])),
        _ => {}
    }
    acc
}

/// [`verifies`] for a 20-byte IPv4 header.
#[inline(always)]
pub fn verifies_header20(h: &[u8; 20]) -> bool {
    // All ones reads the same in either byte order.
    sum_header20_native(h) == 0xffff
}

/// [`checksum`] for a 20-byte IPv4 header whose checksum field is zero.
#[inline(always)]
pub fn header20(h: &[u8; 20]) -> u16 {
    // The native-order sum's bytes in memory are the network-order sum's.
    !u16::from_be_bytes(sum_header20_native(h).to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_sum_folds_to_the_network_order_sum() {
        let data: Vec<u8> = (0..=255u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
        for len in 0..data.len() {
            let d = &data[..len];
            assert_eq!(
                fold64(sum_native(d)).to_ne_bytes(),
                fold(sum(0, d)).to_be_bytes(),
                "{len} bytes"
            );
        }
    }

    // RFC 1071 section 3's example words.
    const RFC1071: [u8; 8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];

    #[test]
    fn rfc1071_example() {
        assert_eq!(fold(sum(0, &RFC1071)), 0xddf2);
        assert_eq!(checksum(&RFC1071), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        // A real IPv4 header (from a capture of 10.133.0.3 -> 192.168.55.13, ICMP).
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 0x0a, 0x85,
            0x00, 0x03, 0xc0, 0xa8, 0x37, 0x0d,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verifies(0, &hdr));
        let old = u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
        let new = u32::from_be_bytes([192, 168, 66, 100]);
        let inc = update32(c, old, new);
        hdr[12..16].copy_from_slice(&new.to_be_bytes());
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&hdr));
        let mut h20 = hdr;
        h20[10..12].copy_from_slice(&inc.to_be_bytes());
        assert!(verifies_header20(&h20) && verifies(0, &h20));
        let mut zeroed = h20;
        zeroed[10..12].fill(0);
        assert_eq!(header20(&zeroed), checksum(&zeroed));
        h20[3] ^= 1;
        assert!(!verifies_header20(&h20) && !verifies(0, &h20));
        // TTL 64 -> 63 as one 16-bit word (TTL, protocol).
        hdr[10..12].copy_from_slice(&inc.to_be_bytes());
        let inc2 = update16(inc, 0x4001, 0x3f01);
        hdr[8] = 0x3f;
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc2, checksum(&hdr));
        // The same two changes as one delta.
        let mut h = hdr;
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let d = Delta::default()
            .addr(old.to_be_bytes(), 0xc0a8_4264u32.to_be_bytes())
            .word([0x40, 0x01], [0x3f, 0x01]);
        assert_eq!(d.apply(c.to_be_bytes()), inc2.to_be_bytes());
    }

    /// The rotate folds give what folding carry by carry gives, for any 64-bit sum (zero
    /// and all-ones halves, and carries out of the low half, included).
    #[test]
    fn rotate_folds_agree_with_carry_by_carry() {
        fn by_carries(mut acc: u64) -> u16 {
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let edges = [
            0,
            1,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
            u64::MAX - 1,
        ];
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let acc = if i < edges.len() as u64 {
                edges[i as usize]
            } else {
                // Mix in halves that are all ones or zero, where end-around carries bite.
                match i % 4 {
                    0 => x | 0xffff_ffff,
                    1 => x & 0xffff_ffff_0000_ffff,
                    _ => x,
                }
            };
            assert_eq!(fold64(acc), by_carries(acc), "{acc:#x}");
            assert_eq!(
                fold32(acc as u32),
                by_carries(acc & 0xffff_ffff),
                "{acc:#x}"
            );
        }
    }

    /// The byte-order-free 20-byte forms agree with the plain RFC 1071 sum on many headers,
    /// carries and all-ones words included.
    #[test]
    fn header20_forms_agree_with_the_general_sum() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2000 {
            let mut h = [0u8; 20];
            for b in &mut h {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if round % 7 == 0 {
                h[..8].fill(0xff);
            }
            h[10..12].fill(0);
            let c = header20(&h);
            assert_eq!(c, checksum(&h), "{h:02x?}");
            h[10..12].copy_from_slice(&c.to_be_bytes());
            assert!(verifies_header20(&h), "{h:02x?}");
            h[(round % 20) as usize] ^= 0x10;
            assert_eq!(verifies_header20(&h), verifies(0, &h), "{h:02x?}");
        }
    }
}
