//! The receiving end of one peer's records stream, FTFW's shape: every records message has a
//! sequence number; the receiver acknowledges the prefix it holds (a cumulative ack) and asks
//! for the gaps above it (NACK ranges), which the sender answers with the sessions' current
//! state under new numbers. A sliding window of bits (as in IPsec's anti-replay) tells new
//! from duplicate in O(1), with serial-number arithmetic so the numbers may wrap.

use super::after;
use super::wire::{Nack, MAX_NACKS};

/// How far above the acknowledged prefix the receiver tracks arrivals.
pub const WINDOW: u32 = 1024;

/// What one arrival means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Apply it.
    New,
    /// Already applied (a resend that crossed its ack, or a replay): ignore.
    Duplicate,
    /// From an epoch older than the peer's current one: ignore.
    Stale,
    /// The first message of a new epoch: the peer restarted. The stream starts again here;
    /// apply it, and send the peer this member's table (the peer asks with RESYNC_REQUEST).
    Restarted,
    /// So far ahead that the messages between are given up: apply it, and ask the peer for
    /// its whole table again.
    Jumped,
}

/// What this member knows of one peer's stream.
#[derive(Debug, Clone)]
pub struct PeerStream {
    epoch: Option<u32>,
    /// Every sequence number before this one is held: the cumulative ack.
    next: u32,
    /// The highest sequence number held (`next - 1` when there is no gap).
    highest: u32,
    /// Bit `seq % WINDOW`: `seq` (in `next..next + WINDOW`) is held.
    window: [u64; (WINDOW / 64) as usize],
    /// The peer's last control (epoch, counter), so a replayed hello or ack is ignored.
    control: Option<(u32, u32)>,
    /// A records message of `epoch` has arrived: `next` and the window mean something.
    anchored: bool,
}

/// What one control message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlArrival {
    Accepted,
    /// The first from this peer, or the first of its new epoch (it restarted).
    NewEpoch,
    /// Not after the last one of its epoch, or from an older epoch: ignore.
    Replay,
}

impl Default for PeerStream {
    fn default() -> Self {
        PeerStream {
            epoch: None,
            next: 0,
            highest: u32::MAX,
            window: [0; (WINDOW / 64) as usize],
            control: None,
            anchored: false,
        }
    }
}

impl PeerStream {
    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }

    /// A records message of the current epoch has arrived, so the acks say something.
    pub fn anchored(&self) -> bool {
        self.anchored
    }

    /// The cumulative ack: every records message before this number is held.
    pub fn ack(&self) -> u32 {
        self.next
    }

    /// The `highest` a control message reports: the highest number held, or, when there are
    /// more gaps than one message can NACK, the number just before the first gap left out
    /// (the sender frees what lies between `ack` and here and no NACK names).
    pub fn reported_highest(&self) -> u32 {
        self.gaps()
            .nth(MAX_NACKS)
            .map_or(self.highest, |gap| gap.first.wrapping_sub(1))
    }

    fn held(&self, seq: u32) -> bool {
        let i = seq % WINDOW;
        self.window[(i / 64) as usize] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, seq: u32, on: bool) {
        let i = seq % WINDOW;
        let word = &mut self.window[(i / 64) as usize];
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    fn restart_at(&mut self, epoch: u32, seq: u32) {
        *self = PeerStream {
            epoch: Some(epoch),
            next: seq.wrapping_add(1),
            highest: seq,
            control: self.control,
            anchored: true,
            ..PeerStream::default()
        };
    }

    /// Slides the prefix over everything held just above it.
    fn advance(&mut self) {
        while self.held(self.next) && !after(self.next, self.highest) {
            self.set(self.next, false);
            self.next = self.next.wrapping_add(1);
        }
    }

    /// A records message `seq` of `epoch` arrived (its MAC already checked).
    pub fn on_records(&mut self, epoch: u32, seq: u32) -> Arrival {
        match self.epoch {
            None => {
                // The first word from this peer: the bulk resync covers what came before.
                self.restart_at(epoch, seq);
                return Arrival::Restarted;
            }
            Some(e) if e == epoch && !self.anchored => {
                // The first records of an epoch its control messages announced.
                self.restart_at(epoch, seq);
                return Arrival::Restarted;
            }
            Some(e) if after(epoch, e) => {
                self.restart_at(epoch, seq);
                return Arrival::Restarted;
            }
            Some(e) if e != epoch => return Arrival::Stale,
            Some(_) => {}
        }
        if !after(seq, self.next.wrapping_sub(1)) {
            return Arrival::Duplicate;
        }
        if seq.wrapping_sub(self.next) >= WINDOW {
            self.restart_at(epoch, seq);
            return Arrival::Jumped;
        }
        if self.held(seq) {
            return Arrival::Duplicate;
        }
        self.set(seq, true);
        if after(seq, self.highest) {
            self.highest = seq;
        }
        self.advance();
        Arrival::New
    }

    /// A control message with counter `counter` of `epoch` arrived (its MAC checked).
    pub fn on_control(&mut self, epoch: u32, counter: u32) -> ControlArrival {
        match self.control {
            Some((e, _)) if after(e, epoch) => ControlArrival::Replay,
            Some((e, c)) if e == epoch && !after(counter, c) => ControlArrival::Replay,
            Some((e, _)) if e == epoch => {
                self.control = Some((epoch, counter));
                ControlArrival::Accepted
            }
            _ => {
                self.control = Some((epoch, counter));
                ControlArrival::NewEpoch
            }
        }
    }

    /// The peer's control messages say it runs epoch `epoch`: from here on this stream is
    /// that epoch's (its first records message anchors it), and acks name it, so the peer
    /// never takes acks meant for an earlier life of its own.
    pub fn expect_epoch(&mut self, epoch: u32) {
        if self.epoch.is_some_and(|e| !after(epoch, e)) {
            return;
        }
        *self = PeerStream {
            epoch: Some(epoch),
            control: self.control,
            ..PeerStream::default()
        };
    }

    /// The sender will never resend anything before `low_water` (it has given those up or
    /// they are acked): stop asking for them.
    pub fn give_up_below(&mut self, low_water: u32) {
        if !after(low_water, self.next) {
            return;
        }
        if low_water.wrapping_sub(self.next) >= WINDOW {
            self.window = [0; (WINDOW / 64) as usize];
            self.next = low_water;
            self.highest = low_water.wrapping_sub(1);
            return;
        }
        while after(low_water, self.next) {
            self.set(self.next, false);
            self.next = self.next.wrapping_add(1);
        }
        if after(self.next, self.highest.wrapping_add(1)) {
            self.highest = self.next.wrapping_sub(1);
        }
        self.advance();
    }

    /// The gaps between the prefix and the highest number held, lowest first, at most
    /// `MAX_NACKS` of them.
    pub fn nacks(&self) -> impl Iterator<Item = Nack> + '_ {
        self.gaps().take(MAX_NACKS)
    }

    fn gaps(&self) -> impl Iterator<Item = Nack> + '_ {
        let mut seq = self.next;
        core::iter::from_fn(move || {
            while !after(seq, self.highest) && self.held(seq) {
                seq = seq.wrapping_add(1);
            }
            if after(seq, self.highest) {
                return None;
            }
            let first = seq;
            while !after(seq, self.highest) && !self.held(seq) {
                seq = seq.wrapping_add(1);
            }
            Some(Nack {
                first,
                last: seq.wrapping_sub(1),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn in_order_arrivals_move_the_ack() {
        let mut p = PeerStream::default();
        assert_eq!(p.on_records(3, 10), Arrival::Restarted);
        assert_eq!(p.on_records(3, 11), Arrival::New);
        assert_eq!(p.ack(), 12);
        assert_eq!(p.on_records(3, 11), Arrival::Duplicate);
        assert_eq!(p.on_records(2, 12), Arrival::Stale);
        assert_eq!(p.nacks().count(), 0);
    }

    #[test]
    fn gaps_are_nacked_as_ranges_and_filled() {
        let mut p = PeerStream::default();
        p.on_records(1, 0);
        for seq in [3, 4, 7] {
            assert_eq!(p.on_records(1, seq), Arrival::New);
        }
        let nacks: Vec<Nack> = p.nacks().collect();
        assert_eq!(
            nacks,
            [Nack { first: 1, last: 2 }, Nack { first: 5, last: 6 }]
        );
        assert_eq!(p.ack(), 1);
        p.on_records(1, 1);
        p.on_records(1, 2);
        assert_eq!(p.ack(), 5);
        p.give_up_below(7);
        assert_eq!(p.ack(), 8);
        assert_eq!(p.nacks().count(), 0);
    }

    #[test]
    fn more_gaps_than_one_message_holds_are_not_reported_as_received() {
        let mut p = PeerStream::default();
        p.on_records(1, 0);
        // Gaps at every odd number from 1 to 79: 40 of them.
        for seq in (2..=80).step_by(2) {
            p.on_records(1, seq);
        }
        let nacks: Vec<Nack> = p.nacks().collect();
        assert_eq!(nacks.len(), MAX_NACKS);
        let left_out = 2 * MAX_NACKS as u32 + 1;
        assert_eq!(nacks.last().unwrap().first, left_out - 2);
        assert_eq!(p.reported_highest(), left_out - 1);
    }

    #[test]
    fn a_new_epoch_restarts_the_stream_and_a_far_jump_asks_for_resync() {
        let mut p = PeerStream::default();
        p.on_records(1, 100);
        p.on_records(1, 105);
        assert_eq!(p.on_records(2, 0), Arrival::Restarted);
        assert_eq!(p.ack(), 1);
        assert_eq!(p.nacks().count(), 0);
        assert_eq!(p.on_records(2, 1 + WINDOW), Arrival::Jumped);
        assert_eq!(p.ack(), 2 + WINDOW);
    }

    #[test]
    fn an_epoch_announced_by_control_is_anchored_by_its_first_records() {
        let mut p = PeerStream::default();
        p.on_records(1, 500);
        assert!(p.anchored());
        p.expect_epoch(2);
        assert_eq!(p.epoch(), Some(2));
        assert!(!p.anchored());
        // Its first records anchor the stream wherever its numbers stand.
        assert_eq!(p.on_records(2, 7000), Arrival::Restarted);
        assert_eq!(p.on_records(2, 7002), Arrival::New);
        assert_eq!(
            p.nacks().collect::<Vec<_>>(),
            [Nack {
                first: 7001,
                last: 7001
            }]
        );
        p.expect_epoch(2);
        p.expect_epoch(1);
        assert_eq!(
            p.nacks().count(),
            1,
            "the same or an older epoch changes nothing"
        );
    }

    #[test]
    fn control_replays_and_old_epochs_are_refused() {
        let mut p = PeerStream::default();
        assert_eq!(p.on_control(5, 1), ControlArrival::NewEpoch);
        assert_eq!(p.on_control(5, 2), ControlArrival::Accepted);
        assert_eq!(p.on_control(5, 2), ControlArrival::Replay);
        assert_eq!(p.on_control(5, 1), ControlArrival::Replay);
        assert_eq!(p.on_control(4, 9), ControlArrival::Replay);
        assert_eq!(p.on_control(6, 0), ControlArrival::NewEpoch);
        assert_eq!(p.on_control(5, 3), ControlArrival::Replay);
    }

    /// A sender as FTFW's: what is not yet acked waits under its number; a NACKed number is
    /// resent under a new one (in the gateway, with the session's current state), so the
    /// old number is given up, which the low-water mark says.
    struct Sender {
        next: u32,
        outstanding: BTreeMap<u32, u32>,
    }

    impl Sender {
        fn send(&mut self, payload: u32) -> u32 {
            let seq = self.next;
            self.next = self.next.wrapping_add(1);
            self.outstanding.insert(seq, payload);
            seq
        }
        fn low_water(&self) -> u32 {
            // Numbers are near each other: the serial-order minimum relative to `next`.
            self.outstanding
                .keys()
                .copied()
                .min_by_key(|&s| self.next.wrapping_sub(s).wrapping_neg())
                .unwrap_or(self.next)
        }
    }

    proptest! {
        /// Over a link that loses, duplicates and reorders, with sequence numbers that may
        /// wrap, every payload arrives, none is applied twice under one number, and once the
        /// link heals the ack reaches the sender's next number with no gap left.
        #[test]
        fn a_lossy_link_converges(
            start in prop_oneof![Just(0u32), Just(u32::MAX - 40), any::<u32>()],
            n in 1u32..300,
            fate in proptest::collection::vec(0u8..10, 64),
            order in proptest::collection::vec(any::<u16>(), 64),
        ) {
            let mut tx = Sender { next: start, outstanding: BTreeMap::new() };
            let mut rx = PeerStream::default();
            let mut applied: BTreeSet<u32> = BTreeSet::new();
            let mut applied_seqs: BTreeSet<u32> = BTreeSet::new();
            // The receiver meets the stream at its first message (as after a bulk sync).
            let first = tx.send(0);
            prop_assert_eq!(rx.on_records(1, first), Arrival::Restarted);
            applied.insert(0);
            let mut wire: Vec<(u32, u32)> = (1..n).map(|p| (tx.send(p), p)).collect();
            let mut tick = 0usize;
            for round in 0..40 {
                let lossy = round < 20;
                // Reorder by the drawn keys; lose 30% and duplicate 10% while lossy.
                wire.sort_by_key(|(s, _)| order[(*s as usize) % order.len()]);
                for (seq, payload) in wire.drain(..) {
                    let f = fate[tick % fate.len()];
                    tick += 1;
                    let copies = if !lossy { 1 } else if f < 3 { 0 } else if f == 9 { 2 } else { 1 };
                    for _ in 0..copies {
                        rx.give_up_below(tx.low_water());
                        match rx.on_records(1, seq) {
                            Arrival::New => {
                                prop_assert!(applied_seqs.insert(seq), "seq {} applied twice", seq);
                                applied.insert(payload);
                            }
                            Arrival::Duplicate => {}
                            other => prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                }
                // The control message back: the ack, the highest held and the NACKs free
                // what was received; the NACKed numbers are resent under new ones.
                let (ack, highest) = (rx.ack(), rx.reported_highest());
                let nacks: Vec<Nack> = rx.nacks().collect();
                let nacked = |s: u32| nacks.iter().any(|k| !after(k.first, s) && !after(s, k.last));
                tx.outstanding.retain(|&s, _| {
                    after(s, highest) || (!after(ack, s) && nacked(s)) && after(s, ack.wrapping_sub(1))
                });
                let resend: Vec<u32> = tx.outstanding.keys().copied().filter(|&s| !after(s, highest)).collect();
                for s in resend {
                    let p = tx.outstanding.remove(&s).unwrap();
                    wire.push((tx.send(p), p));
                }
                // What was lost above the highest held is resent on a timer.
                if wire.is_empty() {
                    let tail: Vec<(u32, u32)> = tx.outstanding.iter().map(|(&s, &p)| (s, p)).collect();
                    for (s, p) in tail {
                        tx.outstanding.remove(&s);
                        wire.push((tx.send(p), p));
                    }
                }
            }
            prop_assert_eq!(applied.len() as u32, n, "missing {:?} ack {} next {} outstanding {:?} wire {}", (0..n).filter(|p| !applied.contains(p)).collect::<Vec<_>>(), rx.ack(), tx.next, tx.outstanding, wire.len());
            prop_assert_eq!(rx.ack(), tx.next);
            prop_assert_eq!(rx.nacks().count(), 0);
        }
    }
}
