//! Each worker's per-pod accounts (`nat::fair`), copied out once a second for `egressctl top`
//! and the metrics: a lock a second per worker, none per packet. The control thread adds the
//! workers' copies up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// One pod's account on one worker, or summed over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodReport {
    pub pod: IpAddr,
    pub sessions: u64,
    /// New flows refused, per `nat::fair::LIMIT_REASONS`.
    pub drops: [u64; 3],
}

impl PodReport {
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// One worker's latest copy.
#[derive(Debug, Default)]
pub struct PodBoard {
    reports: Mutex<Vec<PodReport>>,
}

impl PodBoard {
    /// The worker's side: replaces its copy (the vector keeps its memory between reports).
    pub fn publish(&self, pods: impl Iterator<Item = PodReport>) {
        let mut r = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        r.clear();
        r.extend(pods);
    }

    fn read_into(&self, sum: &mut HashMap<IpAddr, PodReport>) {
        let r = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        for p in r.iter() {
            let s = sum.entry(p.pod).or_insert(PodReport {
                pod: p.pod,
                sessions: 0,
                drops: [0; 3],
            });
            s.sessions += p.sessions;
            for (d, n) in s.drops.iter_mut().zip(p.drops) {
                *d += n;
            }
        }
    }
}

/// The pods of every board, summed, with most sessions first and with most drops first
/// (pods that never were refused left out), `top` of each.
pub fn top(boards: &[&PodBoard], top: usize) -> (Vec<PodReport>, Vec<PodReport>) {
    let mut sum = HashMap::new();
    for b in boards {
        b.read_into(&mut sum);
    }
    let all: Vec<PodReport> = sum.into_values().collect();
    let mut by_sessions: Vec<PodReport> = all.iter().filter(|p| p.sessions > 0).copied().collect();
    by_sessions.sort_unstable_by_key(|p| (std::cmp::Reverse(p.sessions), p.pod));
    by_sessions.truncate(top);
    let mut by_drops: Vec<PodReport> = all.into_iter().filter(|p| p.dropped() > 0).collect();
    by_drops.sort_unstable_by_key(|p| (std::cmp::Reverse(p.dropped()), p.pod));
    by_drops.truncate(top);
    (by_sessions, by_drops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pod: u32, sessions: u64, drops: [u64; 3]) -> PodReport {
        PodReport {
            pod: IpAddr::from(pod.to_be_bytes()),
            sessions,
            drops,
        }
    }

    #[test]
    fn the_workers_copies_are_summed_and_ranked() {
        let (a, b) = (PodBoard::default(), PodBoard::default());
        a.publish([report(1, 5, [0; 3]), report(2, 1, [3, 0, 0])].into_iter());
        b.publish([report(1, 4, [0; 3]), report(3, 7, [0, 1, 1])].into_iter());
        let (by_sessions, by_drops) = top(&[&a, &b], 2);
        assert_eq!(by_sessions, [report(1, 9, [0; 3]), report(3, 7, [0, 1, 1])]);
        assert_eq!(by_drops, [report(2, 1, [3, 0, 0]), report(3, 7, [0, 1, 1])]);
        // A new copy replaces the old one.
        a.publish(std::iter::empty());
        assert_eq!(
            top(&[&a, &b], 5).0,
            [report(3, 7, [0, 1, 1]), report(1, 4, [0; 3])]
        );
    }
}
