//! What stage one hands the later stages: a frame that passed every check, its flow key and
//! where its headers lie. Both parsers (`fast`, the general one in `parse`) produce it.

use crate::nat::{Destination, Direction, FlowKey, FlowKey6};

/// What is at the translated layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcp {
        flags: u8,
    },
    Udp,
    /// ICMP echo request (outbound) or reply (inbound).
    Echo,
    /// An ICMP error about a tracked flow: offsets of the embedded IPv4 header and its L4 header.
    IcmpError {
        emb_ip: u16,
        emb_l4: u16,
    },
}

/// A frame that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub dir: Direction,
    /// Offset of the IPv4 header to translate (the inner one for Geneve), from the frame start.
    pub ip: u16,
    /// Offset of its L4 header.
    pub l4: u16,
    /// Offset of the Geneve header: for `Out`, the tunnel read back for new flows; for `In`,
    /// nonzero only for a reply another member forwarded.
    pub geneve: u16,
    pub kind: Kind,
    /// The key to look up: in the inside index for `Out`, the outside index for `In`.
    pub key: FlowKey,
    pub hash: u64,
    /// The slot the batch's prefetch stage found in the key's bucket, if any: the lookup
    /// tries it before scanning the bucket again. Parsing leaves it None.
    pub hint: Option<u32>,
    /// A likely new flow's destination, computed where the prefetch stage fetched its
    /// counts (with the destination share on); None from parsing.
    pub dest: Option<Destination>,
}

impl Parsed {
    /// A reply another member of the gateway set forwarded here (never forwarded again).
    #[inline(always)]
    pub fn forwarded(&self) -> bool {
        self.dir == Direction::In && self.geneve != 0
    }
}

/// A checked IPv6 frame: where its headers lie and its flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed6 {
    pub dir: Direction,
    /// Offset of the IPv6 header to translate (the inner one for Geneve).
    pub ip: usize,
    /// Offset of its upper-layer header (after any extension headers).
    pub l4: usize,
    /// For `Out`: the outer UDP header's offset (the tunnel is read back for new flows); for
    /// `In`, nonzero only for a reply another member forwarded.
    pub udp: usize,
    pub kind: Kind,
    pub key: FlowKey6,
    pub hash: u64,
    /// The slot the batch's prefetch stage found in the key's bucket, if any.
    pub hint: Option<u32>,
}

impl Parsed6 {
    /// A reply another member of the gateway set forwarded here (never forwarded again).
    #[inline(always)]
    pub fn forwarded(&self) -> bool {
        self.dir == Direction::In && self.udp != 0
    }
}
