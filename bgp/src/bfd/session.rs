//! One BFD session (RFC 5880 6.8), asynchronous mode, sans I/O: packets and time in, packets to
//! send and Up/Down events out. The caller owns the sockets (RFC 5881 single hop).

use std::time::{Duration, Instant};

use super::packet::{ControlPacket, Diag, SessionState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    pub desired_min_tx: Duration,
    pub required_min_rx: Duration,
    pub detect_mult: u8,
}

impl Default for BfdConfig {
    /// FRR's bfdd defaults (and the seed's `fast-bfd` profile with multiplier 3).
    fn default() -> Self {
        BfdConfig {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }
}

/// While a session is not Up, the transmit interval is at least one second (RFC 5880 6.8.3).
const SLOW_TX: Duration = Duration::from_secs(1);

/// This system's local discriminators (RFC 5880 6.3): `base + index`, so each session's is
/// unique by construction, from a random base, so that a restarted speaker's sessions are not
/// mistaken for the old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discriminators {
    base: u32,
}

impl Discriminators {
    /// A random base (std's `RandomState` is seeded from the OS once per process).
    pub fn random() -> Discriminators {
        use std::hash::BuildHasher;
        let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Discriminators::from_base(r as u32)
    }

    /// Bases fall in 1..=2^31 and indices below 2^31 are added, so no discriminator is zero
    /// and none wraps onto another.
    pub fn from_base(base: u32) -> Discriminators {
        Discriminators {
            base: (base & 0x7fff_ffff) + 1,
        }
    }

    /// Session `index`'s discriminator (`index` below 2^31).
    pub fn of(self, index: usize) -> u32 {
        self.base + (index as u32 & 0x7fff_ffff)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BfdEvent {
    Up,
    Down(Diag),
}

#[derive(Debug)]
pub struct BfdSession {
    config: BfdConfig,
    local_discr: u32,
    remote_discr: u32,
    state: SessionState,
    remote_state: SessionState,
    diag: Diag,
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_detect_mult: u8,
    tx_desired: Duration,
    poll_pending: bool,
    final_pending: bool,
    next_tx: Instant,
    detect_at: Option<Instant>,
    rng: u32,
    ups: u64,
    downs: u64,
}

impl BfdSession {
    /// `local_discr` must be non-zero and unique among this system's sessions.
    pub fn new(config: BfdConfig, local_discr: u32, now: Instant) -> BfdSession {
        BfdSession {
            config,
            local_discr,
            remote_discr: 0,
            state: SessionState::Down,
            remote_state: SessionState::Down,
            diag: Diag::NONE,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_detect_mult: 0,
            tx_desired: SLOW_TX,
            poll_pending: false,
            final_pending: false,
            next_tx: now,
            detect_at: None,
            rng: local_discr | 1,
            ups: 0,
            downs: 0,
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn remote_state(&self) -> SessionState {
        self.remote_state
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    pub fn diag(&self) -> Diag {
        self.diag
    }

    /// Transitions to Up and Down since the start.
    pub fn transitions(&self) -> (u64, u64) {
        (self.ups, self.downs)
    }

    /// The detection time this system applies (RFC 5880 6.8.4, asynchronous mode).
    pub fn detection_time(&self) -> Duration {
        self.config.required_min_rx.max(self.remote_desired_tx) * u32::from(self.remote_detect_mult)
    }

    /// A received control packet that the caller matched to this session (by Your
    /// Discriminator, or by address when that is zero).
    pub fn receive(&mut self, p: &ControlPacket, now: Instant) -> Option<BfdEvent> {
        if p.your_discr == 0 && self.state == SessionState::Up {
            return None; // RFC 5880 6.8.6: only Down/AdminDown packets may omit it
        }
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            return None;
        }
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_desired_tx = p.desired_min_tx;
        self.remote_min_rx = p.required_min_rx;
        self.remote_detect_mult = p.detect_mult;
        if p.final_ {
            self.poll_pending = false;
        }
        if p.poll {
            // Answer a Poll at once with Final (RFC 5880 6.5).
            self.final_pending = true;
            self.next_tx = now;
        }
        self.detect_at = Some(now + self.detection_time());
        match (self.state, p.state) {
            (SessionState::Down | SessionState::AdminDown, _)
                if p.state == SessionState::AdminDown =>
            {
                None
            }
            (SessionState::Init | SessionState::Up, SessionState::AdminDown) => {
                self.down(Diag::NEIGHBOR_DOWN)
            }
            (SessionState::Down, SessionState::Down) => {
                self.state = SessionState::Init;
                self.next_tx = now; // tell the peer at once rather than after a second
                None
            }
            (SessionState::Down, SessionState::Init)
            | (SessionState::Init, SessionState::Init | SessionState::Up) => {
                self.state = SessionState::Up;
                self.diag = Diag::NONE;
                self.ups += 1;
                // Speed up from the slow rate with a Poll Sequence (RFC 5880 6.8.3).
                self.tx_desired = self.config.desired_min_tx;
                self.poll_pending = true;
                self.next_tx = now;
                Some(BfdEvent::Up)
            }
            (SessionState::Up, SessionState::Down) => self.down(Diag::NEIGHBOR_DOWN),
            _ => None,
        }
    }

    fn down(&mut self, diag: Diag) -> Option<BfdEvent> {
        let was_up = self.state == SessionState::Up;
        self.state = SessionState::Down;
        self.diag = diag;
        self.tx_desired = SLOW_TX;
        self.poll_pending = false;
        if was_up {
            self.downs += 1;
            Some(BfdEvent::Down(diag))
        } else {
            None
        }
    }

    /// Fires the detection timer and the transmit timer: the packet to send now, if any, and
    /// an event.
    pub fn poll(&mut self, now: Instant) -> (Option<ControlPacket>, Option<BfdEvent>) {
        let mut event = None;
        if self.detect_at.is_some_and(|t| t <= now) {
            self.detect_at = None;
            if matches!(self.state, SessionState::Init | SessionState::Up) {
                event = self.down(Diag::DETECTION_TIME_EXPIRED);
                self.remote_discr = 0;
                self.remote_state = SessionState::Down;
                self.next_tx = now;
            }
        }
        if self.next_tx > now || self.remote_min_rx.is_zero() {
            return (None, event);
        }
        let packet = ControlPacket {
            diag: self.diag,
            state: self.state,
            poll: self.poll_pending,
            final_: std::mem::take(&mut self.final_pending),
            detect_mult: self.config.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.tx_desired,
            required_min_rx: self.config.required_min_rx,
        };
        self.next_tx = now + self.jittered(self.tx_desired.max(self.remote_min_rx));
        (Some(packet), event)
    }

    /// 75 to 100 percent of `interval`, 75 to 90 with a detect multiplier of 1 (RFC 5880 6.8.7).
    fn jittered(&mut self, interval: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let span = if self.config.detect_mult == 1 { 15 } else { 25 };
        interval * (75 + self.rng % (span + 1)) / 100
    }

    pub fn next_deadline(&self) -> Instant {
        match self.detect_at {
            Some(d) => d.min(self.next_tx),
            None => self.next_tx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discriminators once came from the process id, and for one pid in 256 two
    /// neighbours got the same one: a peer's packets then reached the other session, which
    /// came Up toward a router without BFD while this one stayed Down.
    #[test]
    fn discriminators_are_non_zero_and_distinct_for_every_base() {
        for base in [0, 1, 0x100, 0x7fff_ffff, 0x8000_0000, u32::MAX, 0x1234_5600] {
            let d = Discriminators::from_base(base);
            let mut seen: Vec<u32> = (0..1024).map(|i| d.of(i)).collect();
            assert!(seen.iter().all(|&x| x != 0), "base {base:#x}");
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 1024, "base {base:#x}");
        }
        // Across restarts: two random bases are rarely equal (1 in 2^31).
        let a: Vec<_> = (0..8).map(|_| Discriminators::random()).collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]));
    }

    fn peer_packet(state: SessionState, my: u32, your: u32) -> ControlPacket {
        ControlPacket {
            diag: Diag::NONE,
            state,
            poll: false,
            final_: false,
            detect_mult: 3,
            my_discr: my,
            your_discr: your,
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
        }
    }

    /// Two sessions talking to each other through `poll`/`receive` until both are Up.
    #[test]
    fn two_sessions_come_up_and_speed_up() {
        let t0 = Instant::now();
        let mut a = BfdSession::new(BfdConfig::default(), 11, t0);
        let mut b = BfdSession::new(BfdConfig::default(), 22, t0);
        let mut now = t0;
        let mut events = Vec::new();
        for _ in 0..200 {
            let mut step = |x: &mut BfdSession, y: &mut BfdSession| {
                let (pkt, ev) = x.poll(now);
                events.extend(ev);
                if let Some(p) = pkt {
                    events.extend(y.receive(&p, now));
                }
            };
            step(&mut a, &mut b);
            step(&mut b, &mut a);
            now += Duration::from_millis(10);
        }
        assert_eq!(a.state(), SessionState::Up);
        assert_eq!(b.state(), SessionState::Up);
        assert_eq!(events, vec![BfdEvent::Up, BfdEvent::Up]);
        assert_eq!(a.remote_discr(), 22);
        assert_eq!(a.detection_time(), Duration::from_millis(900));
        // After the poll sequence, the interval is the fast one (75-100% of 300 ms).
        let gap = a.next_deadline().saturating_duration_since(now);
        assert!(gap <= Duration::from_millis(900), "{gap:?}");
        assert!(
            !a.poll_pending && !b.poll_pending,
            "poll sequences finished"
        );
    }

    #[test]
    fn silence_for_the_detection_time_takes_it_down() {
        let t0 = Instant::now();
        let mut s = BfdSession::new(BfdConfig::default(), 1, t0);
        assert_eq!(
            s.receive(&peer_packet(SessionState::Init, 7, 0), t0),
            Some(BfdEvent::Up)
        );
        let (_, ev) = s.poll(t0 + Duration::from_millis(899));
        assert_eq!(ev, None);
        let (pkt, ev) = s.poll(t0 + Duration::from_millis(900));
        assert_eq!(ev, Some(BfdEvent::Down(Diag::DETECTION_TIME_EXPIRED)));
        let pkt = pkt.expect("tells the peer at once");
        assert_eq!(
            (pkt.state, pkt.your_discr, pkt.diag),
            (SessionState::Down, 0, Diag(1))
        );
        assert_eq!(s.transitions(), (1, 1));
    }

    #[test]
    fn peer_down_or_admin_down_takes_it_down() {
        for state in [SessionState::Down, SessionState::AdminDown] {
            let t0 = Instant::now();
            let mut s = BfdSession::new(BfdConfig::default(), 1, t0);
            s.receive(&peer_packet(SessionState::Init, 7, 0), t0);
            assert_eq!(
                s.receive(&peer_packet(state, 7, 1), t0),
                Some(BfdEvent::Down(Diag::NEIGHBOR_DOWN))
            );
        }
    }

    #[test]
    fn three_way_handshake_from_down() {
        let t0 = Instant::now();
        let mut s = BfdSession::new(BfdConfig::default(), 1, t0);
        assert_eq!(s.receive(&peer_packet(SessionState::Down, 7, 0), t0), None);
        assert_eq!(s.state(), SessionState::Init);
        let (pkt, _) = s.poll(t0);
        assert_eq!(pkt.unwrap().desired_min_tx, SLOW_TX, "slow until Up");
        assert_eq!(
            s.receive(&peer_packet(SessionState::Up, 7, 1), t0),
            Some(BfdEvent::Up)
        );
        let (pkt, _) = s.poll(t0);
        let pkt = pkt.unwrap();
        assert!(pkt.poll && pkt.desired_min_tx == Duration::from_millis(300));
    }

    #[test]
    fn answers_poll_with_final_and_ignores_foreign_discriminators() {
        let t0 = Instant::now();
        let mut s = BfdSession::new(BfdConfig::default(), 1, t0);
        s.receive(&peer_packet(SessionState::Init, 7, 0), t0);
        s.poll(t0);
        let polling = ControlPacket {
            poll: true,
            ..peer_packet(SessionState::Up, 7, 1)
        };
        s.receive(&polling, t0 + Duration::from_millis(5));
        let (pkt, _) = s.poll(t0 + Duration::from_millis(5));
        assert!(pkt.unwrap().final_);
        assert_eq!(s.receive(&peer_packet(SessionState::Down, 7, 99), t0), None);
        assert_eq!(s.state(), SessionState::Up);
        assert_eq!(
            s.receive(&peer_packet(SessionState::Down, 7, 0), t0),
            None,
            "Up ignores discr 0"
        );
    }

    #[test]
    fn jitter_stays_within_75_to_100_percent() {
        let mut s = BfdSession::new(BfdConfig::default(), 12345, Instant::now());
        for _ in 0..1000 {
            let j = s.jittered(Duration::from_millis(1000));
            assert!(
                j >= Duration::from_millis(750) && j <= Duration::from_millis(1000),
                "{j:?}"
            );
        }
    }
}
