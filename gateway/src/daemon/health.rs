//! Whether this node may announce its egress IPs: only while every dataplane worker makes
//! progress. Workers bump a heartbeat on every loop (they wake at least every
//! `WORKER_WAKE_MS` even when idle); a heartbeat that stands still for `STALL_AFTER` means the
//! worker is stuck, and the routes must go before traffic is black-holed.

use std::time::{Duration, Instant};

/// The longest a worker sleeps in poll(2) when no packet comes.
pub const WORKER_WAKE_MS: i32 = 10;
/// Five missed wake-ups: stalled. With the daemon checking every 10 ms, the withdrawal leaves
/// within about 60 ms of the last sign of life.
pub const STALL_AFTER: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Health {
    seen: Vec<(u64, Instant)>,
}

impl Health {
    pub fn new(workers: usize, now: Instant) -> Health {
        Health {
            seen: vec![(0, now); workers],
        }
    }

    /// Takes the current heartbeat counts; true while none has stood still for `STALL_AFTER`.
    pub fn observe(&mut self, heartbeats: &[u64], now: Instant) -> bool {
        let mut healthy = heartbeats.len() == self.seen.len();
        for (seen, &beat) in self.seen.iter_mut().zip(heartbeats) {
            if beat != seen.0 {
                *seen = (beat, now);
            } else if now.duration_since(seen.1) >= STALL_AFTER {
                healthy = false;
            }
        }
        healthy
    }

    /// Indices of the workers that are stalled now.
    pub fn stalled(&self, now: Instant) -> Vec<usize> {
        let stale =
            |(_, (_, at)): &(usize, &(u64, Instant))| now.duration_since(*at) >= STALL_AFTER;
        self.seen
            .iter()
            .enumerate()
            .filter(stale)
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_stops_beating_is_unhealthy_and_recovers() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = Health::new(2, t0);
        assert!(h.observe(&[1, 1], ms(10)));
        assert!(h.observe(&[2, 2], ms(20)));
        assert!(
            h.observe(&[3, 2], ms(60)),
            "49 ms without a beat is still fine"
        );
        assert!(!h.observe(&[4, 2], ms(70)), "worker 1 stalled");
        assert_eq!(h.stalled(ms(70)), vec![1]);
        assert!(h.observe(&[5, 3], ms(80)), "it beats again");
    }

    #[test]
    fn never_beating_is_unhealthy() {
        let t0 = Instant::now();
        let mut h = Health::new(1, t0);
        assert!(h.observe(&[0], t0 + Duration::from_millis(10)));
        assert!(!h.observe(&[0], t0 + Duration::from_millis(50)));
    }
}
