//! The sending end of one records stream to one peer, FTFW's shape: each message goes out
//! under the next sequence number and waits, as the list of sessions it carried, until the
//! peer's ack frees it. A NACKed or overdue message is not sent again as it was: its
//! sessions go back to the caller, which sends their current state under new numbers (a
//! session that changed again since is already on its way in a newer message, and is
//! skipped). The low-water mark tells the peer which old numbers will never come.
//!
//! `now` is in nanoseconds on the caller's monotonic clock.

use super::after;
use super::receive::WINDOW;
use super::wire::{Nack, Record, HEADER_LEN, MAC_LEN};
use crate::nat::InsideKey;
use hashbrown::HashMap;
use std::collections::VecDeque;

/// Messages held for a peer at most: a peer that far behind would give up the window
/// anyway, so the stream starts again with a bulk resend of the whole table.
pub const MAX_OUTSTANDING: usize = WINDOW as usize;

/// A message not acknowledged this long after it went out is sent again.
pub const RESEND_AFTER_NS: u64 = 200_000_000;

#[derive(Debug)]
struct Sent {
    seq: u32,
    at: u64,
    keys: Vec<InsideKey>,
}

/// What this member has sent one peer and not yet seen acknowledged.
#[derive(Debug)]
pub struct SendStream {
    next: u32,
    /// In sending order, so in sequence order.
    outstanding: VecDeque<Sent>,
    /// The message that last carried each session still outstanding.
    latest: HashMap<InsideKey, u32>,
    resync: bool,
    resent: u64,
    /// The last message of a bulk resend, moved up whenever sessions it covers are resent.
    mark: Option<u32>,
    /// Sessions the mark covers were released for resending: the messages that carry them
    /// again move the mark.
    remark: bool,
}

impl SendStream {
    pub fn new(first_seq: u32) -> SendStream {
        SendStream {
            next: first_seq,
            outstanding: VecDeque::new(),
            latest: HashMap::new(),
            resync: false,
            resent: 0,
            mark: None,
            remark: false,
        }
    }

    /// The number the next records message takes.
    pub fn next_seq(&self) -> u32 {
        self.next
    }

    /// No number below this one will be sent again.
    pub fn low_water(&self) -> u32 {
        self.outstanding.front().map_or(self.next, |m| m.seq)
    }

    /// Messages waiting for their ack.
    /// When the oldest message not yet acknowledged went out.
    pub fn oldest_sent_at(&self) -> Option<u64> {
        self.outstanding.front().map(|s| s.at)
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Sessions sent again so far (after a NACK or a timeout).
    pub fn resent(&self) -> u64 {
        self.resent
    }

    /// Records message `next_seq()`, carrying the sessions `keys`, went out at `now`.
    /// Returns its number.
    pub fn sent(&mut self, keys: Vec<InsideKey>, now: u64) -> u32 {
        if self.outstanding.len() >= MAX_OUTSTANDING {
            // The peer is not acknowledging: stop holding, send everything again later.
            self.forget();
            self.resync = true;
        }
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        if self.remark {
            self.mark = Some(seq);
        }
        for k in &keys {
            self.latest.insert(*k, seq);
        }
        self.outstanding.push_back(Sent { seq, at: now, keys });
        seq
    }

    /// The peer's control message: it holds every number below `ack`, and every number up
    /// to `highest` that no NACK names. Frees those; the sessions of NACKed messages that
    /// no newer message carries go to `resend`.
    pub fn on_ack(&mut self, ack: u32, highest: u32, nacks: &[Nack], resend: &mut Vec<InsideKey>) {
        // A peer cannot have more than was sent.
        let last_sent = self.next.wrapping_sub(1);
        let highest = if after(highest, last_sent) {
            last_sent
        } else {
            highest
        };
        let nacked = |s: u32| {
            !after(ack, s)
                && nacks
                    .iter()
                    .any(|n| !after(n.first, s) && !after(s, n.last))
        };
        while let Some(m) = self.outstanding.front() {
            if after(m.seq, highest) {
                break;
            }
            let again = nacked(m.seq);
            let m = self.outstanding.pop_front().expect("front exists");
            self.release(m, again.then_some(&mut *resend));
        }
    }

    /// Messages sent at least `RESEND_AFTER_NS` before `now` and still not acknowledged:
    /// their sessions go to `resend`.
    pub fn due(&mut self, now: u64, resend: &mut Vec<InsideKey>) {
        while let Some(m) = self.outstanding.front() {
            if now.saturating_sub(m.at) < RESEND_AFTER_NS {
                break;
            }
            let m = self.outstanding.pop_front().expect("front exists");
            self.release(m, Some(&mut *resend));
        }
    }

    /// Lets go of message `m`; its sessions no newer message carries go to `resend` if any.
    fn release(&mut self, m: Sent, mut resend: Option<&mut Vec<InsideKey>>) {
        let marked = self.mark.is_some_and(|x| !after(m.seq, x));
        for k in m.keys {
            if self.latest.get(&k) == Some(&m.seq) {
                self.latest.remove(&k);
                if let Some(out) = resend.as_deref_mut() {
                    out.push(k);
                    self.resent += 1;
                    self.remark |= marked;
                }
            }
        }
    }

    /// Everything sent so far is one whole (a bulk resend of the table): from now on
    /// [`Self::mark_delivered`] says whether the peer holds all of it.
    pub fn set_mark(&mut self) {
        self.mark = Some(self.next.wrapping_sub(1));
        self.remark = false;
    }

    /// The caller has sent every session `on_ack` or `due` handed back.
    pub fn resends_sent(&mut self) {
        self.remark = false;
    }

    /// The peer acknowledged every message up to the mark, and every resend of what those
    /// carried: it holds the whole that [`Self::set_mark`] closed.
    pub fn mark_delivered(&self) -> bool {
        !self.remark && self.mark.is_some_and(|x| after(self.low_water(), x))
    }

    /// The peer restarted, or gave up on the stream: what is outstanding is covered by the
    /// bulk resend that follows.
    pub fn forget(&mut self) {
        self.outstanding.clear();
        self.latest.clear();
        self.mark = None;
        self.remark = false;
    }

    /// True once after the stream overflowed: the caller sends the peer its whole table.
    pub fn take_resync(&mut self) -> bool {
        std::mem::take(&mut self.resync)
    }
}

/// Records gathered for one message, up to what one datagram holds, and since when.
#[derive(Debug)]
pub struct Batch {
    records: Vec<Record>,
    room: usize,
    used: usize,
    opened: Option<u64>,
}

impl Batch {
    /// For datagrams of `payload` bytes (the path MTU less the IP and UDP headers).
    pub fn new(payload: usize) -> Batch {
        Batch {
            records: Vec::new(),
            room: payload.saturating_sub(HEADER_LEN + MAC_LEN),
            used: 0,
            opened: None,
        }
    }

    /// Adds `record`; false (and nothing added) when the batch is full: send it and start
    /// another.
    pub fn push(&mut self, record: Record, now: u64) -> bool {
        let n = record.wire_len();
        if self.used + n > self.room {
            return false;
        }
        self.used += n;
        self.records.push(record);
        self.opened.get_or_insert(now);
        true
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The batch holds records that have waited `flush_after_ns` or longer.
    pub fn is_due(&self, now: u64, flush_after_ns: u64) -> bool {
        self.opened
            .is_some_and(|t| now.saturating_sub(t) >= flush_after_ns)
    }

    /// Empties the batch into `out`.
    pub fn take_into(&mut self, out: &mut Vec<Record>) {
        out.append(&mut self.records);
        self.used = 0;
        self.opened = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::receive::{Arrival, PeerStream};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Session `n`'s key: IPv4 for even `n`, IPv6 for odd (a stream carries both).
    fn key(n: u32) -> InsideKey {
        if n.is_multiple_of(2) {
            InsideKey::V4(crate::nat::FlowKey {
                src: 0x0a80_0000 | n,
                dst: 0xc0a8_4264,
                src_port: 40000,
                dst_port: 80,
                proto: 6,
            })
        } else {
            InsideKey::V6(crate::nat::FlowKey6 {
                src: 0xfd00_0010_0128_0000_0000_0000_0000_0000 | u128::from(n),
                dst: 0xfd00_0066_0000_0000_0000_0000_0000_0100,
                src_port: 40000,
                dst_port: 80,
                proto: 6,
            })
        }
    }

    /// The `n` of `key(n)`.
    fn id_of(k: &InsideKey) -> u32 {
        match k {
            InsideKey::V4(k) => k.src & 0xffff,
            InsideKey::V6(k) => k.src as u32 & 0xffff,
        }
    }

    #[test]
    fn an_ack_frees_and_a_nack_resends_only_what_no_newer_message_carries() {
        let mut s = SendStream::new(10);
        assert_eq!(s.sent(vec![key(1), key(2)], 0), 10);
        assert_eq!(s.sent(vec![key(3)], 0), 11);
        // Session 2 changed again: its state goes out in 12.
        assert_eq!(s.sent(vec![key(2), key(4)], 0), 12);
        assert_eq!(s.low_water(), 10);
        let mut resend = Vec::new();
        // 11 arrived, 10 did not; 12 not yet known.
        s.on_ack(
            10,
            11,
            &[Nack {
                first: 10,
                last: 10,
            }],
            &mut resend,
        );
        assert_eq!(resend, [key(1)]);
        assert_eq!(s.outstanding(), 1);
        assert_eq!(s.low_water(), 12);
        resend.clear();
        s.on_ack(13, 12, &[], &mut resend);
        assert!(resend.is_empty());
        assert_eq!(s.outstanding(), 0);
        assert_eq!(s.low_water(), 13);
    }

    #[test]
    fn an_unanswered_message_is_resent_after_the_timeout() {
        let mut s = SendStream::new(u32::MAX);
        s.sent(vec![key(1)], 0);
        s.sent(vec![key(2)], 150_000_000);
        let mut resend = Vec::new();
        s.due(RESEND_AFTER_NS - 1, &mut resend);
        assert!(resend.is_empty());
        s.due(RESEND_AFTER_NS, &mut resend);
        assert_eq!(resend, [key(1)]);
        assert_eq!(s.low_water(), 0, "the number wrapped");
        assert_eq!(s.resent(), 1);
    }

    #[test]
    fn a_peer_that_never_acks_costs_a_bounded_queue_and_a_resync() {
        let mut s = SendStream::new(0);
        for i in 0..MAX_OUTSTANDING as u32 + 5 {
            s.sent(vec![key(i)], 0);
        }
        assert!(s.outstanding() <= MAX_OUTSTANDING);
        assert!(s.take_resync());
        assert!(!s.take_resync());
    }

    #[test]
    fn an_ack_beyond_what_was_sent_frees_only_what_was_sent() {
        let mut s = SendStream::new(5);
        s.sent(vec![key(1)], 0);
        let mut resend = Vec::new();
        s.on_ack(1000, 999, &[], &mut resend);
        assert_eq!(s.outstanding(), 0);
        s.sent(vec![key(2)], 0);
        assert_eq!(s.outstanding(), 1);
    }

    #[test]
    fn the_mark_is_delivered_only_with_every_resend_of_what_it_covers() {
        let mut s = SendStream::new(0);
        s.sent(vec![key(1)], 0); // 0
        s.sent(vec![key(2)], 0); // 1
        s.set_mark();
        assert!(!s.mark_delivered());
        s.sent(vec![key(3)], 0); // 2: after the mark
        let mut resend = Vec::new();
        // 0 lost, 1 and 2 held: session 1 goes again, under 3.
        s.on_ack(0, 2, &[Nack { first: 0, last: 0 }], &mut resend);
        assert_eq!(resend, [key(1)]);
        assert!(!s.mark_delivered(), "session 1 is not there yet");
        s.sent(resend.clone(), 0); // 3
        s.resends_sent();
        assert!(!s.mark_delivered());
        resend.clear();
        s.on_ack(4, 3, &[], &mut resend);
        assert!(s.mark_delivered());
    }

    #[test]
    fn a_batch_holds_what_one_datagram_can() {
        let mut b = Batch::new(1472);
        let del = |n| Record::Delete { inside: key(2 * n) };
        let per = (1472 - HEADER_LEN - MAC_LEN) / del(0).wire_len();
        for i in 0..per as u32 {
            assert!(b.push(del(i), 7));
        }
        assert!(!b.push(del(0), 8));
        assert!(!b.is_due(7 + 999_999, 1_000_000));
        assert!(b.is_due(7 + 1_000_000, 1_000_000));
        let mut out = Vec::new();
        b.take_into(&mut out);
        assert_eq!(out.len(), per);
        assert!(b.is_empty() && !b.is_due(u64::MAX, 0));
    }

    type InFlight = Vec<(u32, u32, Vec<(u32, u16)>)>;

    /// Sends the current state of sessions `ids` as one message.
    fn send(
        tx: &mut SendStream,
        wire: &mut InFlight,
        table: &BTreeMap<u32, u16>,
        ids: Vec<u32>,
        now: u64,
    ) {
        if ids.is_empty() {
            return;
        }
        let body: Vec<(u32, u16)> = ids.iter().map(|i| (*i, table[i])).collect();
        let low = tx.low_water();
        let seq = tx.sent(ids.iter().map(|i| key(*i)).collect(), now);
        wire.push((seq, low, body));
    }

    proptest! {
        /// Sessions change and the link loses and duplicates; once it heals, the peer holds
        /// every session's last state and the sender holds nothing. (The link keeps order, as
        /// one path between two gateways does: the receiver applies records as they arrive,
        /// so two messages about one session that the network swapped would leave the older
        /// state until the session's next change. Order-free delivery of each message once
        /// is `receive::a_lossy_link_converges`.)
        #[test]
        fn the_peer_ends_with_every_sessions_last_state(
            start in prop_oneof![Just(0u32), Just(u32::MAX - 20), any::<u32>()],
            changes in proptest::collection::vec((0u32..40, any::<u16>()), 1..200),
            fate in proptest::collection::vec(0u8..10, 64),
        ) {
            // The sender's table: session -> current state.
            let mut table: BTreeMap<u32, u16> = BTreeMap::new();
            let mut peer: BTreeMap<u32, u16> = BTreeMap::new();
            let mut tx = SendStream::new(start);
            let mut rx = PeerStream::default();
            // Messages in flight: (seq, low water, [(session, state)]).
            let mut wire: InFlight = Vec::new();
            let mut now = 0u64;
            let mut tick = 0usize;
            // The peer meets the stream at its first message (as after a bulk sync).
            table.insert(100, 0);
            send(&mut tx, &mut wire, &table, vec![100], now);
            let (seq, _, body) = wire.pop().unwrap();
            prop_assert_eq!(rx.on_records(1, seq), Arrival::Restarted);
            peer.extend(body);
            for (round, chunk) in changes.chunks(4).chain(std::iter::repeat_n(&[][..], 60)).enumerate() {
                now += 50_000_000;
                let lossy = round < changes.len() / 4;
                let ids: Vec<u32> = chunk.iter().map(|&(id, st)| { table.insert(id, st); id }).collect();
                send(&mut tx, &mut wire, &table, ids, now);
                for (seq, low, body) in std::mem::take(&mut wire) {
                    let f = fate[tick % fate.len()];
                    tick += 1;
                    let copies = if !lossy { 1 } else if f < 3 { 0 } else if f == 9 { 2 } else { 1 };
                    for _ in 0..copies {
                        rx.give_up_below(low);
                        match rx.on_records(1, seq) {
                            Arrival::New => {
                                for (id, st) in &body { peer.insert(*id, *st); }
                            }
                            Arrival::Duplicate => {}
                            other => prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                }
                // The ack back (lost too while lossy), then resends of current state.
                let mut resend = Vec::new();
                let f = fate[tick % fate.len()];
                if !lossy || f >= 3 {
                    let nacks: Vec<Nack> = rx.nacks().collect();
                    tx.on_ack(rx.ack(), rx.reported_highest(), &nacks, &mut resend);
                }
                tx.due(now, &mut resend);
                let ids: Vec<u32> = resend.iter().map(id_of).collect();
                send(&mut tx, &mut wire, &table, ids, now);
            }
            prop_assert_eq!(&peer, &table);
            prop_assert_eq!(tx.outstanding(), 0);
            prop_assert_eq!(rx.ack(), tx.next_seq());
        }
    }
}
