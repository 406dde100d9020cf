//! Flow keys of both families and their seeded hash.

use core::fmt;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// A directional 5-tuple as it appears in a packet's headers. For ICMP echo both ports hold
/// the echo identifier, so requests and replies key the same way.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub src: u32,
    pub dst: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
}

impl FlowKey {
    /// The key packed into two words: what the hash and the session compare read.
    #[inline(always)]
    pub fn words(&self) -> (u64, u64) {
        (
            (u64::from(self.src) << 32) | u64::from(self.dst),
            (u64::from(self.src_port) << 48)
                | (u64::from(self.dst_port) << 32)
                | u64::from(self.proto),
        )
    }

    /// The tuple replies to this pod flow carry once it leaves as `ext_ip:ext_port`: from the
    /// remote end to the egress IP. For ICMP echo both ports are the external identifier.
    #[inline(always)]
    pub fn reply_at(&self, ext_ip: u32, ext_port: u16) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: ext_ip,
            src_port: if self.proto == PROTO_ICMP {
                ext_port
            } else {
                self.dst_port
            },
            dst_port: ext_port,
            proto: self.proto,
        }
    }

    /// The same flow seen from the other end.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }
}

/// An IPv6 5-tuple as it appears in a packet's headers (addresses as their 16 bytes read
/// big-endian). For ICMPv6 echo both ports hold the echo identifier, as for IPv4.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey6 {
    pub src: u128,
    pub dst: u128,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
}

impl FlowKey6 {
    /// The key packed into five words: the addresses' halves, then ports and protocol laid
    /// out as [`FlowKey::words`]' second word, which a session's first data word shares.
    #[inline(always)]
    pub fn words(&self) -> [u64; 5] {
        [
            (self.src >> 64) as u64,
            self.src as u64,
            (self.dst >> 64) as u64,
            self.dst as u64,
            (u64::from(self.src_port) << 48)
                | (u64::from(self.dst_port) << 32)
                | u64::from(self.proto),
        ]
    }

    /// The tuple replies carry once this pod flow leaves as `ext_ip:ext_port`.
    #[inline(always)]
    pub fn reply_at(&self, ext_ip: u128, ext_port: u16) -> FlowKey6 {
        FlowKey6 {
            src: self.dst,
            dst: ext_ip,
            src_port: if self.proto == PROTO_ICMPV6 {
                ext_port
            } else {
                self.dst_port
            },
            dst_port: ext_port,
            proto: self.proto,
        }
    }

    /// The key with each field changed in turn, the addresses in both halves (for tests
    /// that every field counts).
    #[cfg(test)]
    pub(crate) fn each_field_changed(&self) -> [FlowKey6; 7] {
        let k = *self;
        [
            FlowKey6 {
                src: k.src ^ 1,
                ..k
            },
            FlowKey6 {
                src: k.src ^ 1 << 100,
                ..k
            },
            FlowKey6 {
                dst: k.dst ^ 1,
                ..k
            },
            FlowKey6 {
                dst: k.dst ^ 1 << 127,
                ..k
            },
            FlowKey6 {
                src_port: k.src_port ^ 1,
                ..k
            },
            FlowKey6 {
                dst_port: k.dst_port ^ 1,
                ..k
            },
            FlowKey6 {
                proto: k.proto ^ 0x17,
                ..k
            },
        ]
    }
}

/// A session's pod-side tuple, of either family: the name replication gives a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsideKey {
    V4(FlowKey),
    V6(FlowKey6),
}

impl fmt::Debug for FlowKey6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}]:{} -> [{}]:{} proto {}",
            std::net::Ipv6Addr::from(self.src),
            self.src_port,
            std::net::Ipv6Addr::from(self.dst),
            self.dst_port,
            self.proto
        )
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{} proto {}",
            std::net::Ipv4Addr::from(self.src),
            self.src_port,
            std::net::Ipv4Addr::from(self.dst),
            self.dst_port,
            self.proto
        )
    }
}

/// A keyed hash of flow keys. The key is random per table so that pods (which choose their
/// inside tuples) and remote hosts cannot aim many flows at one bucket chain.
#[derive(Debug, Clone, Copy)]
pub struct FlowHasher {
    k0: u64,
    k1: u64,
}

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl FlowHasher {
    pub fn with_keys(k0: u64, k1: u64) -> Self {
        FlowHasher { k0, k1 }
    }

    /// Keys drawn from the standard library's per-process random source.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let s = std::collections::hash_map::RandomState::new();
        let mut h = s.build_hasher();
        h.write_u64(0x5eed);
        let k0 = h.finish();
        h.write_u64(k0);
        FlowHasher { k0, k1: h.finish() }
    }

    /// Two folded 64x64->128 multiplies (the foldhash construction): a few cycles, good
    /// avalanche in both halves, which the index uses separately (bucket and tag).
    #[inline(always)]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        let (a, b) = key.words();
        let x = fold_mul(a ^ self.k0, b ^ self.k1);
        fold_mul(x ^ self.k1, MULTIPLIER ^ self.k0)
    }
}

impl FlowHasher {
    /// [`Self::hash`] for IPv6 keys: the five words folded pairwise, then finished the same
    /// way.
    #[inline(always)]
    pub fn hash6(&self, key: &FlowKey6) -> u64 {
        let [a, b, c, d, e] = key.words();
        let x = fold_mul(a ^ self.k0, b ^ self.k1);
        let y = fold_mul(c ^ self.k1, d ^ x);
        let z = fold_mul(e ^ y, MULTIPLIER ^ self.k1);
        fold_mul(z ^ self.k1, MULTIPLIER ^ self.k0)
    }
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_separate_every_field() {
        let k = FlowKey {
            src: 1,
            dst: 2,
            src_port: 3,
            dst_port: 4,
            proto: 6,
        };
        let variants = [
            FlowKey { src: 9, ..k },
            FlowKey { dst: 9, ..k },
            FlowKey { src_port: 9, ..k },
            FlowKey { dst_port: 9, ..k },
            FlowKey { proto: 17, ..k },
        ];
        for v in variants {
            assert_ne!(v.words(), k.words());
        }
        assert_eq!(k.reversed().reversed(), k);
    }

    #[test]
    fn ipv6_words_separate_every_field_and_the_hash_spreads() {
        let k = FlowKey6 {
            src: 0xfd00_0133_u128 << 96 | 3,
            dst: 0x2001_0db8_u128 << 96 | 0x55,
            src_port: 40000,
            dst_port: 80,
            proto: PROTO_TCP,
        };
        for v in k.each_field_changed() {
            assert_ne!(v.words(), k.words());
        }
        let echo = FlowKey6 {
            src_port: 7,
            dst_port: 7,
            proto: PROTO_ICMPV6,
            ..k
        };
        assert_eq!(
            (
                echo.reply_at(9, 1500).src_port,
                echo.reply_at(9, 1500).dst_port
            ),
            (1500, 1500)
        );
        // Pods differing only in the low bits of their /64, sequential ports: even buckets.
        let h = FlowHasher::with_keys(1, 2);
        let mut buckets = [0u32; 64];
        for i in 0..64_000u32 {
            let key = FlowKey6 {
                src: k.src + u128::from(i % 16),
                src_port: (i / 16) as u16,
                ..k
            };
            buckets[(h.hash6(&key) >> 58) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn hash_spreads_sequential_ports() {
        let h = FlowHasher::with_keys(1, 2);
        let mut buckets = [0u32; 64];
        for p in 0..64_000u16 {
            let k = FlowKey {
                src: 0x0a85_0003,
                dst: 0xc0a8_370d,
                src_port: p,
                dst_port: 80,
                proto: 6,
            };
            buckets[(h.hash(&k) >> 58) as usize] += 1;
        }
        // 1000 expected per bucket; a poor hash piles them up.
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }
}
