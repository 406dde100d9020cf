//! Taking a member of a gateway set out of service without losing a flow (issue 16): first
//! the routes go (the routers send the replies to the peers, which hold every session as a
//! replica and forward a reply they lack to its port's owner), while this node keeps its port
//! blocks and translates what the pods still send it; once the cluster has moved the pods
//! (no egress packet for `quiet`), or after `timeout`, the node is drained: its blocks go to
//! the members that serve, and it makes no new session. It still translates the flows it
//! carries and replicates their changes, so a straggler's keepalive is not lost either.
//!
//! Why routes before blocks: a node without blocks cannot give a new flow a port, and the
//! pods keep sending it new flows until the cluster has moved them; a withdrawn node that
//! still owns its blocks loses nothing, since its peers translate its replies from their
//! replicas and forward the rest to it.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Announced (when healthy and in sync), owning its share of the blocks.
    Serving,
    /// Routes withdrawn; still owning its blocks while the pods move.
    Withdrawn,
    /// Blocks handed to the serving members; only the flows it carries are translated.
    Drained,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Serving => "serving",
            Phase::Withdrawn => "withdrawn",
            Phase::Drained => "drained",
        }
    }
}

/// Why a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No egress packet for the quiet interval: the pods have moved.
    Quiet,
    /// The timeout passed with pods still sending here.
    Timeout,
}

impl Ended {
    pub fn name(self) -> &'static str {
        match self {
            Ended::Quiet => "the pods moved",
            Ended::Timeout => "timed out with pods still sending here",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainTimes {
    /// At least this long withdrawn before the blocks move (the routers' reaction).
    pub min: Duration,
    /// No egress packet for this long: the pods have moved.
    pub quiet: Duration,
    /// Drained after this long whatever the pods do.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Drain {
    times: DrainTimes,
    phase: Phase,
    /// When the drain was asked for.
    since: Option<Instant>,
    /// The egress packet count last seen, and when it last changed.
    egress: u64,
    egress_changed: Option<Instant>,
    ended: Option<Ended>,
}

impl Drain {
    pub fn new(times: DrainTimes) -> Drain {
        Drain {
            times,
            phase: Phase::Serving,
            since: None,
            egress: 0,
            egress_changed: None,
            ended: None,
        }
    }

    /// Asks for a drain (true) or for service again (false). Asking again for what is under
    /// way changes nothing.
    pub fn request(&mut self, drain: bool, now: Instant) {
        match (drain, self.phase) {
            (true, Phase::Serving) => {
                self.phase = Phase::Withdrawn;
                self.since = Some(now);
                self.egress_changed = Some(now);
                self.ended = None;
            }
            (false, Phase::Withdrawn | Phase::Drained) => {
                self.phase = Phase::Serving;
                self.since = None;
                self.egress_changed = None;
                self.ended = None;
            }
            _ => {}
        }
    }

    /// Takes the workers' egress packet count (pods to the world) and moves on from
    /// `Withdrawn` when the pods have gone quiet or the timeout has passed.
    pub fn step(&mut self, egress_packets: u64, now: Instant) -> Phase {
        if egress_packets != self.egress {
            self.egress = egress_packets;
            self.egress_changed = Some(now);
        }
        if let (Phase::Withdrawn, Some(since)) = (self.phase, self.since) {
            let waited = now.saturating_duration_since(since);
            let quiet = self
                .egress_changed
                .is_some_and(|t| now.saturating_duration_since(t) >= self.times.quiet);
            let ended = if waited >= self.times.timeout {
                Some(Ended::Timeout)
            } else if waited >= self.times.min && quiet {
                Some(Ended::Quiet)
            } else {
                None
            };
            if ended.is_some() {
                self.phase = Phase::Drained;
                self.ended = ended;
            }
        }
        self.phase
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// May the egress IPs be announced (health and sync permitting)?
    pub fn announces(&self) -> bool {
        self.phase == Phase::Serving
    }

    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// When the pods last sent an egress packet through this node, while draining.
    pub fn last_egress(&self) -> Option<Instant> {
        self.egress_changed.filter(|_| self.since.is_some())
    }

    pub fn ended(&self) -> Option<Ended> {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: DrainTimes = DrainTimes {
        min: Duration::from_millis(500),
        quiet: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
    };

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn routes_go_first_and_the_blocks_only_once_the_pods_are_quiet() {
        let t0 = Instant::now();
        let mut d = Drain::new(TIMES);
        assert_eq!(d.step(10, t0), Phase::Serving);
        assert!(d.announces());
        d.request(true, t0);
        assert!(!d.announces());
        // The pods still send for 2 s.
        for t in (0..=2000).step_by(100) {
            assert_eq!(d.step(10 + t, ms(t0, t)), Phase::Withdrawn, "at {t} ms");
        }
        // Quiet since 2000 ms: drained one second later, not before.
        assert_eq!(d.step(2010, ms(t0, 2999)), Phase::Withdrawn);
        assert_eq!(d.step(2010, ms(t0, 3000)), Phase::Drained);
        assert_eq!(d.ended(), Some(Ended::Quiet));
        assert_eq!(d.since(), Some(t0));
        assert_eq!(d.last_egress(), Some(ms(t0, 2000)));
        // Stragglers on a drained node change nothing.
        assert_eq!(d.step(2020, ms(t0, 3100)), Phase::Drained);
    }

    #[test]
    fn quiet_pods_still_wait_the_minimum() {
        let t0 = Instant::now();
        let mut d = Drain::new(DrainTimes {
            quiet: Duration::from_millis(100),
            ..TIMES
        });
        d.step(5, t0);
        d.request(true, ms(t0, 1000));
        // Quiet long before the request: the quiet interval counts from the request.
        assert_eq!(d.step(5, ms(t0, 1200)), Phase::Withdrawn);
        assert_eq!(d.step(5, ms(t0, 1499)), Phase::Withdrawn);
        assert_eq!(d.step(5, ms(t0, 1500)), Phase::Drained);
    }

    #[test]
    fn pods_that_never_move_end_it_at_the_timeout() {
        let t0 = Instant::now();
        let mut d = Drain::new(TIMES);
        d.request(true, t0);
        let mut n = 0;
        for t in (0..30_000).step_by(50) {
            n += 1;
            assert_eq!(d.step(n, ms(t0, t)), Phase::Withdrawn);
        }
        assert_eq!(d.step(n + 1, ms(t0, 30_000)), Phase::Drained);
        assert_eq!(d.ended(), Some(Ended::Timeout));
    }

    #[test]
    fn undrain_serves_again_and_a_repeated_request_changes_nothing() {
        let t0 = Instant::now();
        let mut d = Drain::new(TIMES);
        d.request(true, t0);
        d.request(true, ms(t0, 400));
        assert_eq!(d.since(), Some(t0));
        d.step(0, ms(t0, 1000));
        assert_eq!(d.phase(), Phase::Drained);
        d.request(true, ms(t0, 1100));
        assert_eq!(d.phase(), Phase::Drained);
        d.request(false, ms(t0, 1200));
        assert_eq!(d.phase(), Phase::Serving);
        assert!(d.announces());
        assert_eq!((d.since(), d.last_egress(), d.ended()), (None, None, None));
        // Undrained while withdrawn, too.
        d.request(true, ms(t0, 2000));
        d.request(false, ms(t0, 2100));
        assert_eq!(d.step(0, ms(t0, 9000)), Phase::Serving);
    }
}
