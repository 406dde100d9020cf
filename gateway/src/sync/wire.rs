//! The gateways' sync messages on the wire: a fixed header, a body of session records (or,
//! in a control message, the receiver's acknowledgement and the gaps it asks for), and a
//! truncated HMAC-SHA-256 over both. Decoding checks the MAC before it reads anything else,
//! then checks that the body is exactly the records it claims; what fails is a named drop.
//!
//! Header (36 bytes, big-endian): magic "EG" | version 3 | kind | sender | epoch | seq | ack |
//! highest | low water | count | flags | acked epoch. Records carry a session's age (seconds
//! since last seen), not a timestamp: the members' monotonic clocks have nothing in common.
//! Each record's tag says its kind and its family. Version 2 added the IPv6 tags, version 3
//! the upsert of an IPv6 session whose pod's node is on the IPv6 underlay (its 16-byte
//! address in place of the 4-byte one). A member counts a newer version than its own as
//! `sync_bad_version`, so during a rolling upgrade a member speaks the version it hears a
//! peer speak (holding back, counted, what that version cannot carry), and decodes all.

use crate::nat::{Entry, FlowKey, FlowKey6, InsideKey, SessionData, SessionData6, TunnelEndpoint};
use crate::wire::ethernet::MacAddr;
use bgp::wire::Reader;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MAGIC: u16 = 0x4547;
pub const VERSION: u8 = 3;
/// The oldest version this member still speaks: version 1 has no IPv6 records.
pub const MIN_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 36;
pub const MAC_LEN: usize = 16;
/// The shortest pre-shared key accepted: 128 bits.
pub const MIN_KEY_LEN: usize = 16;

const FLOW_KEY_LEN: usize = 13;
const FLOW_KEY6_LEN: usize = 37;
const TUNNEL_LEN: usize = 4 + 4 + 1 + 4 + 6 + 6 + 2 + 6;
/// Tag, key, egress IP, port, TCP flags, age, tunnel; the key and the egress IP by family.
const fn upsert_len(key: usize, addr: usize) -> usize {
    1 + key + addr + 2 + 1 + 4 + TUNNEL_LEN
}
const UPSERT_LEN: usize = upsert_len(FLOW_KEY_LEN, 4);
const UPSERT6_LEN: usize = upsert_len(FLOW_KEY6_LEN, 16);
/// An IPv6 upsert whose node address is IPv6: 12 bytes longer.
const UPSERT6_NODE6_LEN: usize = UPSERT6_LEN + 12;
const DELETE_LEN: usize = 1 + FLOW_KEY_LEN;
const REFRESH_LEN: usize = 1 + FLOW_KEY_LEN + 4;
const NACK_LEN: usize = 8;
/// Gaps one control message can ask for; more wait for the next one.
pub const MAX_NACKS: usize = 32;

const TAG_UPSERT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_REFRESH: u8 = 3;
/// The IPv6 records: the IPv4 tag plus this.
const TAG_V6: u8 = 3;
/// Version 3: an IPv6 session's upsert with its node on the IPv6 underlay.
const TAG_UPSERT6_NODE6: u8 = 7;

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Session records, under one sequence number.
    Records = 1,
    /// Hello, acknowledgement and NACKs; `seq` is the sender's control counter.
    Control = 2,
}

/// Header flags.
pub mod flags {
    /// The sender lost part of the receiver's stream and asks for its whole table.
    pub const RESYNC_REQUEST: u16 = 1 << 0;
    /// In a control message: the receiver holds the sender's whole table (the sender's bulk
    /// resend to it, and every resend of what that carried, is acknowledged).
    pub const IN_SYNC: u16 = 1 << 1;
    /// The records are part of a bulk resend.
    pub const BULK: u16 = 1 << 2;
    /// In a control message: ack, highest and the NACKs are valid (the sender has received
    /// records of the acked epoch).
    pub const ACKS: u16 = 1 << 3;
    /// In a control message: the sender is leaving the set (a planned stop, its stream
    /// delivered): it is gone now, not after the dead interval.
    pub const LEAVING: u16 = 1 << 4;
    /// In a control message: the sender is drained (out of service, still replicating the
    /// flows it carries): its port blocks go to the members that serve.
    pub const DRAINING: u16 = 1 << 5;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub sender: u32,
    /// The sender's epoch: it takes a new one at every start.
    pub epoch: u32,
    pub seq: u32,
    /// In control messages: every records sequence number below this one was received.
    pub ack: u32,
    /// In control messages: the highest records number received; every number from `ack`
    /// to here that no NACK names was received too (so the sender can free it).
    pub highest: u32,
    /// In records messages: the sender will never resend a number below this one (acked,
    /// or superseded by a resend under a new number), so the receiver stops asking.
    pub low_water: u32,
    pub flags: u16,
    /// In control messages: the epoch of the stream `ack`, `highest` and the NACKs are
    /// about (0: none heard yet). Acks about an earlier life of the receiver are ignored.
    pub acked_epoch: u32,
}

/// One replicated change to a session of either family, keyed by the pod's side of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Upsert(Upsert),
    Delete { inside: InsideKey },
    Refresh { inside: InsideKey, age: u32 },
}

impl Record {
    /// Whether a message of `version` can carry it (IPv6 records came with version 2, the
    /// IPv6 underlay's node addresses with version 3).
    pub fn fits_version(&self, version: u8) -> bool {
        version >= self.min_version()
    }

    /// The oldest protocol version that carries it.
    pub fn min_version(&self) -> u8 {
        match self {
            Record::Upsert(u) if u.node6() => 3,
            _ if matches!(self.inside(), InsideKey::V6(_)) => 2,
            _ => 1,
        }
    }

    /// The pod-side tuple the record is about.
    pub fn inside(&self) -> InsideKey {
        match self {
            Record::Upsert(u) => u.session.inside(),
            Record::Delete { inside } | Record::Refresh { inside, .. } => *inside,
        }
    }

    /// Bytes on the wire.
    pub fn wire_len(&self) -> usize {
        // An IPv6 key is 24 bytes longer than an IPv4 one.
        let key_extra = |k: &InsideKey| match k {
            InsideKey::V4(_) => 0,
            InsideKey::V6(_) => FLOW_KEY6_LEN - FLOW_KEY_LEN,
        };
        match self {
            Record::Upsert(u) => match u.session {
                Entry::V4(_) => UPSERT_LEN,
                Entry::V6(_) if u.node6() => UPSERT6_NODE6_LEN,
                Entry::V6(_) => UPSERT6_LEN,
            },
            Record::Delete { inside } => DELETE_LEN + key_extra(inside),
            Record::Refresh { inside, .. } => REFRESH_LEN + key_extra(inside),
        }
    }
}

/// A session's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upsert {
    /// Its pod tuple, translation and tunnel back.
    pub session: Entry,
    /// The session's TCP state flags, as the session table keeps them.
    pub tcp_flags: u8,
    pub age: u32,
}

impl Upsert {
    /// An IPv6 session whose pod's node is on the IPv6 underlay (an IPv4 session never is).
    fn node6(&self) -> bool {
        matches!(self.session, Entry::V6(d) if d.tunnel.node_ip6 != 0)
    }
}

/// A range of records sequence numbers the receiver asks to have again (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack {
    pub first: u32,
    pub last: u32,
}

/// Why a sync message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncDrop {
    Short,
    BadMac,
    BadMagic,
    BadVersion,
    BadKind,
    /// The body is not exactly `count` well-formed records (or NACKs).
    BadBody,
}

impl SyncDrop {
    pub const ALL: [SyncDrop; 6] = [
        SyncDrop::Short,
        SyncDrop::BadMac,
        SyncDrop::BadMagic,
        SyncDrop::BadVersion,
        SyncDrop::BadKind,
        SyncDrop::BadBody,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncDrop::Short => "sync_short",
            SyncDrop::BadMac => "sync_bad_mac",
            SyncDrop::BadMagic => "sync_bad_magic",
            SyncDrop::BadVersion => "sync_bad_version",
            SyncDrop::BadKind => "sync_bad_kind",
            SyncDrop::BadBody => "sync_bad_body",
        }
    }
}

/// The pre-shared key of a gateway set.
#[derive(Clone)]
pub struct SyncKey(Vec<u8>);

impl SyncKey {
    pub fn new(bytes: &[u8]) -> Result<SyncKey, String> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the sync key holds {} bytes; at least {MIN_KEY_LEN} are needed",
                bytes.len()
            ));
        }
        Ok(SyncKey(bytes.to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new` has checked it is long enough to matter.
        Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// The truncated MAC a message of these bytes carries.
    pub fn tag(&self, bytes: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac();
        mac.update(bytes);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }
}

impl core::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SyncKey({} bytes)", self.0.len())
    }
}

/// Builds one message in a caller's buffer (its length is the MTU's payload).
pub struct Encoder<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
    version: u8,
}

impl<'a> Encoder<'a> {
    /// None when `buf` cannot hold even an empty message.
    pub fn new(buf: &'a mut [u8], header: Header) -> Option<Encoder<'a>> {
        Self::versioned(buf, header, VERSION)
    }

    /// A message of protocol `version` (`MIN_VERSION..=VERSION`), for a peer that speaks
    /// no newer one.
    pub fn versioned(buf: &'a mut [u8], header: Header, version: u8) -> Option<Encoder<'a>> {
        if buf.len() < HEADER_LEN + MAC_LEN || !(MIN_VERSION..=VERSION).contains(&version) {
            return None;
        }
        let h = &mut buf[..HEADER_LEN];
        h[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        h[2] = version;
        h[3] = header.kind as u8;
        h[4..8].copy_from_slice(&header.sender.to_be_bytes());
        h[8..12].copy_from_slice(&header.epoch.to_be_bytes());
        h[12..16].copy_from_slice(&header.seq.to_be_bytes());
        h[16..20].copy_from_slice(&header.ack.to_be_bytes());
        h[20..24].copy_from_slice(&header.highest.to_be_bytes());
        h[24..28].copy_from_slice(&header.low_water.to_be_bytes());
        h[30..32].copy_from_slice(&header.flags.to_be_bytes());
        h[32..36].copy_from_slice(&header.acked_epoch.to_be_bytes());
        Some(Encoder {
            buf,
            len: HEADER_LEN,
            count: 0,
            version,
        })
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    fn room(&self, n: usize) -> Option<usize> {
        let at = self.len;
        (at + n + MAC_LEN <= self.buf.len() && self.count < u16::MAX).then_some(at)
    }

    /// Appends a record; false when it does not fit (send this one, start another). A
    /// record the message's version cannot carry is not appended (its sender filters those
    /// out first, [`Record::fits_version`]).
    pub fn push(&mut self, record: &Record) -> bool {
        if !record.fits_version(self.version) {
            debug_assert!(false, "a record newer than the message's version");
            return true;
        }
        let n = record.wire_len();
        let Some(at) = self.room(n) else {
            return false;
        };
        let mut w = Writer {
            buf: &mut self.buf[at..at + n],
            at: 0,
        };
        match record {
            Record::Upsert(u) => {
                let (ext_port, t) = match &u.session {
                    Entry::V4(d) => {
                        w.u8(TAG_UPSERT);
                        w.flow(&d.inside);
                        w.u32(d.ext_ip);
                        (d.ext_port, &d.tunnel)
                    }
                    Entry::V6(d) => {
                        w.u8(if u.node6() {
                            TAG_UPSERT6_NODE6
                        } else {
                            TAG_UPSERT + TAG_V6
                        });
                        w.flow6(&d.inside);
                        w.put(&d.ext_ip.to_be_bytes());
                        (d.ext_port, &d.tunnel)
                    }
                };
                w.u16(ext_port);
                w.u8(u.tcp_flags);
                w.u32(u.age);
                if u.node6() {
                    w.put(&t.node_ip6.to_be_bytes());
                } else {
                    w.u32(t.node_ip);
                }
                w.u32(t.vni);
                let (ovn_in, ovn_out) = t.ovn_ports.unwrap_or((0, 0));
                w.u8(u8::from(t.ovn_ports.is_some()));
                w.u16(ovn_in);
                w.u16(ovn_out);
                w.mac(t.inner_src_mac);
                w.mac(t.inner_dst_mac);
                w.u16(t.entropy_port);
                w.mac(t.src_mac);
            }
            Record::Delete { inside } => {
                w.tagged_key(TAG_DELETE, inside);
            }
            Record::Refresh { inside, age } => {
                w.tagged_key(TAG_REFRESH, inside);
                w.u32(*age);
            }
        }
        self.len += n;
        self.count += 1;
        true
    }

    /// Appends a NACK (control messages); false when it does not fit or the message holds
    /// `MAX_NACKS` already.
    pub fn push_nack(&mut self, nack: Nack) -> bool {
        if usize::from(self.count) >= MAX_NACKS {
            return false;
        }
        let Some(at) = self.room(NACK_LEN) else {
            return false;
        };
        self.buf[at..at + 4].copy_from_slice(&nack.first.to_be_bytes());
        self.buf[at + 4..at + 8].copy_from_slice(&nack.last.to_be_bytes());
        self.len += NACK_LEN;
        self.count += 1;
        true
    }

    /// Writes the count and the MAC; returns the message.
    pub fn finish(self, key: &SyncKey) -> &'a [u8] {
        self.buf[28..30].copy_from_slice(&self.count.to_be_bytes());
        let tag = key.tag(&self.buf[..self.len]);
        self.buf[self.len..self.len + MAC_LEN].copy_from_slice(&tag);
        &self.buf[..self.len + MAC_LEN]
    }
}

impl core::fmt::Debug for Encoder<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encoder")
            .field("len", &self.len)
            .field("count", &self.count)
            .finish()
    }
}

struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    fn mac(&mut self, m: MacAddr) {
        self.put(&m.0);
    }
    fn flow(&mut self, k: &FlowKey) {
        self.u32(k.src);
        self.u32(k.dst);
        self.u16(k.src_port);
        self.u16(k.dst_port);
        self.u8(k.proto);
    }
    fn flow6(&mut self, k: &FlowKey6) {
        self.put(&k.src.to_be_bytes());
        self.put(&k.dst.to_be_bytes());
        self.u16(k.src_port);
        self.u16(k.dst_port);
        self.u8(k.proto);
    }
    /// The IPv4 record's tag and key, or the IPv6 one's.
    fn tagged_key(&mut self, tag: u8, k: &InsideKey) {
        match k {
            InsideKey::V4(k) => {
                self.u8(tag);
                self.flow(k);
            }
            InsideKey::V6(k) => {
                self.u8(tag + TAG_V6);
                self.flow6(k);
            }
        }
    }
}

// Record-level reads over the workspace's checked big-endian reader (bgp::wire::Reader).

fn read_mac(r: &mut Reader<'_>) -> Option<MacAddr> {
    Some(MacAddr(r.take(6)?.try_into().ok()?))
}

fn read_flow(r: &mut Reader<'_>) -> Option<FlowKey> {
    Some(FlowKey {
        src: r.u32()?,
        dst: r.u32()?,
        src_port: r.u16()?,
        dst_port: r.u16()?,
        proto: r.u8()?,
    })
}

fn read_u128(r: &mut Reader<'_>) -> Option<u128> {
    Some(u128::from_be_bytes(r.take(16)?.try_into().ok()?))
}

fn read_flow6(r: &mut Reader<'_>) -> Option<FlowKey6> {
    Some(FlowKey6 {
        src: read_u128(r)?,
        dst: read_u128(r)?,
        src_port: r.u16()?,
        dst_port: r.u16()?,
        proto: r.u8()?,
    })
}

/// The key of an IPv4 record (`v6` false) or an IPv6 one.
fn read_key(r: &mut Reader<'_>, v6: bool) -> Option<InsideKey> {
    Some(if v6 {
        InsideKey::V6(read_flow6(r)?)
    } else {
        InsideKey::V4(read_flow(r)?)
    })
}

/// The tunnel back, as an upsert carries it: its node by IPv4 address, or by IPv6 address
/// (`node6`, version 3's IPv6-underlay upsert).
fn read_tunnel(r: &mut Reader<'_>, node6: bool) -> Option<TunnelEndpoint> {
    let (node_ip, node_ip6) = if node6 {
        // Zero would read back as the IPv4 underlay.
        (0, Some(read_u128(r)?).filter(|&a| a != 0)?)
    } else {
        (r.u32()?, 0)
    };
    let vni = r.u32()?;
    let has_ovn = r.u8()?;
    let ovn = (r.u16()?, r.u16()?);
    let ovn_ports = match has_ovn {
        0 if ovn == (0, 0) => None,
        1 => Some(ovn),
        _ => return None,
    };
    Some(TunnelEndpoint {
        node_ip,
        vni,
        ovn_ports,
        inner_src_mac: read_mac(r)?,
        inner_dst_mac: read_mac(r)?,
        entropy_port: r.u16()?,
        src_mac: read_mac(r)?,
        node_ip6,
    })
}

fn read_record(r: &mut Reader<'_>, version: u8) -> Option<Record> {
    let tag = r.u8()?;
    let node6 = tag == TAG_UPSERT6_NODE6;
    let (base, v6) = match tag {
        TAG_UPSERT6_NODE6 => (TAG_UPSERT, true),
        _ if tag > TAG_V6 => (tag - TAG_V6, true),
        _ => (tag, false),
    };
    if (v6 && version < 2) || (node6 && version < 3) {
        return None;
    }
    match base {
        TAG_UPSERT => {
            // Key and egress IP by family; the rest as for IPv4.
            let (inside, ext_ip) = match read_key(r, v6)? {
                InsideKey::V4(k) => (InsideKey::V4(k), u128::from(r.u32()?)),
                InsideKey::V6(k) => (InsideKey::V6(k), read_u128(r)?),
            };
            let ext_port = r.u16()?;
            let tcp_flags = r.u8()?;
            let age = r.u32()?;
            let tunnel = read_tunnel(r, node6)?;
            let session = match inside {
                InsideKey::V4(inside) => Entry::V4(SessionData {
                    inside,
                    ext_ip: ext_ip as u32,
                    ext_port,
                    tunnel,
                }),
                InsideKey::V6(inside) => Entry::V6(SessionData6 {
                    inside,
                    ext_ip,
                    ext_port,
                    tunnel,
                }),
            };
            Some(Record::Upsert(Upsert {
                session,
                tcp_flags,
                age,
            }))
        }
        TAG_DELETE => Some(Record::Delete {
            inside: read_key(r, v6)?,
        }),
        TAG_REFRESH => Some(Record::Refresh {
            inside: read_key(r, v6)?,
            age: r.u32()?,
        }),
        _ => None,
    }
}

fn read_nack(r: &mut Reader<'_>) -> Option<Nack> {
    let (first, last) = (r.u32()?, r.u32()?);
    (first <= last).then_some(Nack { first, last })
}

/// A message whose MAC and shape have been checked.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub header: Header,
    /// The protocol version it was sent in.
    pub version: u8,
    count: u16,
    body: &'a [u8],
}

impl<'a> Message<'a> {
    /// The body's items, read with `item`, when the message is of `kind` (else none).
    fn items<T: 'a>(
        &self,
        kind: Kind,
        item: fn(&mut Reader<'a>, u8) -> Option<T>,
    ) -> impl Iterator<Item = T> + 'a {
        let n = if self.header.kind == kind {
            self.count
        } else {
            0
        };
        let (mut r, version) = (Reader::new(self.body), self.version);
        (0..n).map_while(move |_| item(&mut r, version))
    }

    /// The records of a `Records` message (none for a control message).
    pub fn records(&self) -> impl Iterator<Item = Record> + 'a {
        self.items(Kind::Records, read_record)
    }

    /// The NACKs of a `Control` message (none for a records message).
    pub fn nacks(&self) -> impl Iterator<Item = Nack> + 'a {
        self.items(Kind::Control, |r, _| read_nack(r))
    }
}

/// Checks and opens one datagram of any version this member speaks.
pub fn decode<'a>(bytes: &'a [u8], key: &SyncKey) -> Result<Message<'a>, SyncDrop> {
    decode_up_to(bytes, key, VERSION)
}

/// [`decode`] for a member that speaks versions up to `newest` (a test's stand-in for a
/// member not yet upgraded).
pub fn decode_up_to<'a>(
    bytes: &'a [u8],
    key: &SyncKey,
    newest: u8,
) -> Result<Message<'a>, SyncDrop> {
    if bytes.len() < HEADER_LEN + MAC_LEN {
        return Err(SyncDrop::Short);
    }
    let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut mac = key.mac();
    mac.update(signed);
    // Constant-time comparison of the leftmost 16 bytes.
    mac.verify_truncated_left(tag)
        .map_err(|_| SyncDrop::BadMac)?;
    let mut h = Reader::new(signed);
    let field = |v: Option<u32>| v.ok_or(SyncDrop::Short);
    let magic = h.u16().ok_or(SyncDrop::Short)?;
    if magic != MAGIC {
        return Err(SyncDrop::BadMagic);
    }
    let version = h.u8().ok_or(SyncDrop::Short)?;
    if !(MIN_VERSION..=newest.min(VERSION)).contains(&version) {
        return Err(SyncDrop::BadVersion);
    }
    let kind = match h.u8() {
        Some(1) => Kind::Records,
        Some(2) => Kind::Control,
        _ => return Err(SyncDrop::BadKind),
    };
    let sender = field(h.u32())?;
    let epoch = field(h.u32())?;
    let seq = field(h.u32())?;
    let ack = field(h.u32())?;
    let highest = field(h.u32())?;
    let low_water = field(h.u32())?;
    let count = h.u16().ok_or(SyncDrop::Short)?;
    let flags = h.u16().ok_or(SyncDrop::Short)?;
    let acked_epoch = field(h.u32())?;
    let body = &signed[HEADER_LEN..];
    // The body must be exactly `count` items: nothing missing, nothing after.
    let mut r = Reader::new(body);
    let whole = match kind {
        Kind::Records => (0..count).all(|_| read_record(&mut r, version).is_some()),
        Kind::Control => {
            usize::from(count) <= MAX_NACKS && (0..count).all(|_| read_nack(&mut r).is_some())
        }
    };
    if !whole || !r.is_empty() {
        return Err(SyncDrop::BadBody);
    }
    Ok(Message {
        header: Header {
            kind,
            sender,
            epoch,
            seq,
            ack,
            highest,
            low_water,
            flags,
            acked_epoch,
        },
        version,
        count,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SyncKey {
        SyncKey::new(b"0123456789abcdef-gateway-set-key").unwrap()
    }

    fn header(kind: Kind) -> Header {
        Header {
            kind,
            sender: 2,
            epoch: 7,
            seq: 41,
            ack: 9,
            highest: 12,
            low_water: 3,
            acked_epoch: 9,
            flags: flags::IN_SYNC,
        }
    }

    fn flow() -> impl Strategy<Value = FlowKey> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
        )
            .prop_map(|(src, dst, src_port, dst_port, proto)| FlowKey {
                src,
                dst,
                src_port,
                dst_port,
                proto,
            })
    }

    fn flow6() -> impl Strategy<Value = FlowKey6> {
        (
            any::<u128>(),
            any::<u128>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
        )
            .prop_map(|(src, dst, src_port, dst_port, proto)| FlowKey6 {
                src,
                dst,
                src_port,
                dst_port,
                proto,
            })
    }

    fn inside() -> impl Strategy<Value = InsideKey> {
        prop_oneof![
            flow().prop_map(InsideKey::V4),
            flow6().prop_map(InsideKey::V6)
        ]
    }

    fn mac() -> impl Strategy<Value = MacAddr> {
        any::<[u8; 6]>().prop_map(MacAddr)
    }

    fn record() -> impl Strategy<Value = Record> {
        let tunnel = (
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<(u16, u16)>()),
            mac(),
            mac(),
            any::<u16>(),
            mac(),
        )
            .prop_map(
                |(node_ip, vni, ovn_ports, a, b, entropy_port, c)| TunnelEndpoint {
                    node_ip,
                    vni,
                    ovn_ports,
                    inner_src_mac: a,
                    inner_dst_mac: b,
                    entropy_port,
                    src_mac: c,
                    node_ip6: 0,
                },
            );
        // An IPv6 session's node on either underlay (an IPv4 session's on IPv4's).
        let node6 = prop_oneof![Just(0u128), 1..=u128::MAX];
        let session = (inside(), any::<u128>(), any::<u16>(), tunnel, node6).prop_map(
            |(inside, ext_ip, ext_port, tunnel, node_ip6)| match inside {
                InsideKey::V4(inside) => Entry::V4(SessionData {
                    inside,
                    ext_ip: ext_ip as u32,
                    ext_port,
                    tunnel,
                }),
                InsideKey::V6(inside) => Entry::V6(SessionData6 {
                    inside,
                    ext_ip,
                    ext_port,
                    tunnel: TunnelEndpoint {
                        node_ip6,
                        node_ip: if node_ip6 != 0 { 0 } else { tunnel.node_ip },
                        ..tunnel
                    },
                }),
            },
        );
        prop_oneof![
            (session, any::<u8>(), any::<u32>()).prop_map(|(session, tcp_flags, age)| {
                Record::Upsert(Upsert {
                    session,
                    tcp_flags,
                    age,
                })
            }),
            inside().prop_map(|inside| Record::Delete { inside }),
            (inside(), any::<u32>()).prop_map(|(inside, age)| Record::Refresh { inside, age }),
        ]
    }

    fn encode(records: &[Record], buf: &mut [u8]) -> (usize, Vec<u8>) {
        let mut e = Encoder::new(buf, header(Kind::Records)).unwrap();
        let mut n = 0;
        for r in records {
            if !e.push(r) {
                break;
            }
            n += 1;
        }
        (n, e.finish(&key()).to_vec())
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(SyncKey::new(b"short").is_err());
    }

    #[test]
    fn ipv6_records_are_tagged_apart_and_sized_by_family() {
        let v4 = Record::Delete {
            inside: InsideKey::V4(FlowKey::default()),
        };
        let v6 = Record::Delete {
            inside: InsideKey::V6(FlowKey6::default()),
        };
        let mut buf = [0u8; 256];
        let (n, bytes) = encode(&[v4, v6], &mut buf);
        assert_eq!(n, 2);
        assert_eq!(bytes[HEADER_LEN], TAG_DELETE);
        assert_eq!(bytes[HEADER_LEN + DELETE_LEN], TAG_DELETE + TAG_V6);
        assert_eq!(bytes.len(), HEADER_LEN + 2 * DELETE_LEN + 24 + MAC_LEN);
        assert_eq!(v6.wire_len(), 1 + FLOW_KEY6_LEN);
        let back: Vec<Record> = decode(&bytes, &key()).unwrap().records().collect();
        assert_eq!(back, [v4, v6]);
        // An IPv6 upsert: 94 bytes, so 14 fit a 1400-byte message.
        assert_eq!(UPSERT6_LEN, 94);
    }

    /// A rolling upgrade: a version-1 message (IPv4 records) is read; one with an IPv6 tag is
    /// not well-formed; a member of version 1 refuses version 2.
    #[test]
    fn version_1_is_still_spoken_without_ipv6_records() {
        let v4 = Record::Delete {
            inside: InsideKey::V4(FlowKey::default()),
        };
        let v6 = Record::Delete {
            inside: InsideKey::V6(FlowKey6::default()),
        };
        assert!(v4.fits_version(1) && !v6.fits_version(1) && v6.fits_version(2));
        let mut buf = [0u8; 256];
        let mut e = Encoder::versioned(&mut buf, header(Kind::Records), 1).unwrap();
        assert!(e.push(&v4));
        let bytes = e.finish(&key()).to_vec();
        assert_eq!(bytes[2], 1);
        let m = decode(&bytes, &key()).unwrap();
        assert_eq!(m.version, 1);
        assert_eq!(m.records().collect::<Vec<_>>(), [v4]);
        // An IPv6 tag in a version-1 message.
        let mut e = Encoder::versioned(&mut buf, header(Kind::Records), 2).unwrap();
        assert!(e.push(&v6));
        let v2 = e.finish(&key()).to_vec();
        let mut signed = v2[..v2.len() - MAC_LEN].to_vec();
        signed[2] = 1;
        let t = key().tag(&signed);
        signed.extend_from_slice(&t);
        assert_eq!(decode(&signed, &key()).unwrap_err(), SyncDrop::BadBody);
        // Version 2 at a member of version 1; versions outside the range at anyone.
        assert_eq!(
            decode_up_to(&v2, &key(), 1).unwrap_err(),
            SyncDrop::BadVersion
        );
        assert!(decode_up_to(&v2, &key(), 2).is_ok());
        assert!(Encoder::versioned(&mut buf, header(Kind::Records), VERSION + 1).is_none());
        assert!(Encoder::versioned(&mut buf, header(Kind::Records), 0).is_none());
    }

    fn upsert6(node_ip: u32, node_ip6: u128) -> Record {
        Record::Upsert(Upsert {
            session: Entry::V6(SessionData6 {
                inside: FlowKey6 {
                    src: 0xfd00_0133 << 96 | 3,
                    dst: 0xfd00_0064 << 96 | 1,
                    src_port: 40000,
                    dst_port: 80,
                    proto: 6,
                },
                ext_ip: 0xfd00_0066 << 96 | 0x100,
                ext_port: 1024,
                tunnel: TunnelEndpoint {
                    node_ip,
                    vni: 4,
                    ovn_ports: Some((2, 3)),
                    inner_src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                    inner_dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                    entropy_port: 50000,
                    src_mac: MacAddr([2, 0, 0, 0, 0, 3]),
                    node_ip6,
                },
            }),
            tcp_flags: 3,
            age: 5,
        })
    }

    /// Version 3: an IPv6 session from a node on the IPv6 underlay carries the node's 16
    /// bytes under its own tag; versions 1 and 2 cannot carry it, and a member of version 2
    /// refuses version 3.
    #[test]
    fn version_3_carries_the_ipv6_underlays_node_address() {
        let node6 = upsert6(0, 0xfd00_0099 << 96 | 0x25);
        let node4 = upsert6(0xc0a8_6319, 0);
        assert_eq!((node6.min_version(), node4.min_version()), (3, 2));
        assert!(!node6.fits_version(2) && node6.fits_version(3));
        assert_eq!(node6.wire_len(), node4.wire_len() + 12);
        let mut buf = [0u8; 512];
        let (n, bytes) = encode(&[node6, node4], &mut buf);
        assert_eq!((n, bytes[2]), (2, 3));
        assert_eq!(bytes[HEADER_LEN], TAG_UPSERT6_NODE6);
        assert_eq!(bytes[HEADER_LEN + UPSERT6_NODE6_LEN], TAG_UPSERT + TAG_V6);
        let back: Vec<Record> = decode(&bytes, &key()).unwrap().records().collect();
        assert_eq!(back, [node6, node4]);
        assert_eq!(
            decode_up_to(&bytes, &key(), 2).unwrap_err(),
            SyncDrop::BadVersion
        );
        // The version-3 tag in a version-2 message is not well-formed; nor is a zero address.
        let resigned = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut signed = bytes[..bytes.len() - MAC_LEN].to_vec();
            f(&mut signed);
            let t = key().tag(&signed);
            signed.extend_from_slice(&t);
            decode(&signed, &key()).unwrap_err()
        };
        assert_eq!(resigned(&|b| b[2] = 2), SyncDrop::BadBody);
        let node_at = HEADER_LEN + 1 + FLOW_KEY6_LEN + 16 + 2 + 1 + 4;
        assert_eq!(
            resigned(&|b| b[node_at..node_at + 16].fill(0)),
            SyncDrop::BadBody
        );
    }

    #[test]
    fn an_unknown_tag_is_a_bad_body() {
        let mut buf = [0u8; 256];
        let (_, bytes) = encode(
            &[Record::Delete {
                inside: InsideKey::V4(FlowKey::default()),
            }],
            &mut buf,
        );
        for tag in [0, 8, 255] {
            let mut signed = bytes[..bytes.len() - MAC_LEN].to_vec();
            signed[HEADER_LEN] = tag;
            let t = key().tag(&signed);
            signed.extend_from_slice(&t);
            assert_eq!(decode(&signed, &key()).unwrap_err(), SyncDrop::BadBody);
        }
    }

    #[test]
    fn a_message_stops_at_the_mtu() {
        let u = Record::Delete {
            inside: InsideKey::V4(FlowKey::default()),
        };
        let mut buf = [0u8; 1400];
        let (n, bytes) = encode(&vec![u; 200], &mut buf);
        assert_eq!(n, (1400 - HEADER_LEN - MAC_LEN) / DELETE_LEN);
        assert!(bytes.len() <= 1400);
        assert_eq!(decode(&bytes, &key()).unwrap().records().count(), n);
    }

    #[test]
    fn another_key_is_refused() {
        let mut buf = [0u8; 256];
        let (_, bytes) = encode(&[], &mut buf);
        let other = SyncKey::new(b"fedcba9876543210-another-sets-key").unwrap();
        assert_eq!(decode(&bytes, &other).unwrap_err(), SyncDrop::BadMac);
        assert!(decode(&bytes, &key()).is_ok());
    }

    #[test]
    fn nacks_round_trip_and_are_bounded() {
        let mut buf = [0u8; 1400];
        let mut e = Encoder::new(&mut buf, header(Kind::Control)).unwrap();
        let mut pushed = 0;
        for i in 0..40u32 {
            if e.push_nack(Nack {
                first: i * 10,
                last: i * 10 + 3,
            }) {
                pushed += 1;
            }
        }
        assert_eq!(pushed, MAX_NACKS);
        let bytes = e.finish(&key()).to_vec();
        let m = decode(&bytes, &key()).unwrap();
        assert_eq!(m.header, header(Kind::Control));
        let nacks: Vec<Nack> = m.nacks().collect();
        assert_eq!(nacks.len(), MAX_NACKS);
        assert_eq!(
            nacks[3],
            Nack {
                first: 30,
                last: 33
            }
        );
        assert_eq!(m.records().count(), 0);
    }

    proptest! {
        #[test]
        fn records_round_trip(records in proptest::collection::vec(record(), 0..40)) {
            let mut buf = [0u8; 1472];
            let (n, bytes) = encode(&records, &mut buf);
            let m = decode(&bytes, &key()).unwrap();
            prop_assert_eq!(m.header, header(Kind::Records));
            let back: Vec<Record> = m.records().collect();
            prop_assert_eq!(&back[..], &records[..n]);
        }

        /// Any flipped bit, anywhere, or any truncation makes the message a counted drop.
        #[test]
        fn any_change_is_refused(
            records in proptest::collection::vec(record(), 1..8),
            bit in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = [0u8; 1472];
            let (_, bytes) = encode(&records, &mut buf);
            let mut flipped = bytes.clone();
            let b = bit.index(bytes.len() * 8);
            flipped[b / 8] ^= 1 << (b % 8);
            prop_assert!(decode(&flipped, &key()).is_err());
            let short = &bytes[..cut.index(bytes.len())];
            prop_assert!(decode(short, &key()).is_err());
        }

        /// Arbitrary bytes never panic the decoder, signed or not; a correctly signed body
        /// that is not well-formed is BadBody, not a partial read.
        #[test]
        fn arbitrary_bytes_are_a_drop_not_a_panic(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            count in any::<u16>(),
            kind in 0u8..4,
        ) {
            let _ = decode(&body, &key());
            let mut signed = vec![0u8; HEADER_LEN];
            signed[0..2].copy_from_slice(&MAGIC.to_be_bytes());
            signed[2] = VERSION;
            signed[3] = kind;
            signed[28..30].copy_from_slice(&count.to_be_bytes());
            signed.extend_from_slice(&body);
            let mut mac = key().mac();
            mac.update(&signed);
            let tag = mac.finalize().into_bytes();
            signed.extend_from_slice(&tag[..MAC_LEN]);
            match decode(&signed, &key()) {
                Ok(m) => {
                    let n = match m.header.kind {
                        Kind::Records => m.records().count(),
                        Kind::Control => m.nacks().count(),
                    };
                    prop_assert_eq!(n, usize::from(count));
                }
                Err(e) => prop_assert!(matches!(e, SyncDrop::BadKind | SyncDrop::BadBody)),
            }
        }
    }
}
