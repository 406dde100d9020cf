//! The throughput search (CSIT's NDR and PDR): the highest offered rate a path forwards with
//! no loss (NDR), and with at most a small loss (PDR), each found by bisection below the
//! tester's ceiling. Sans I/O: a trial is a function from a rate to the loss it saw.
//!
//! A failed trial is repeated before it counts: other tenants of a shared host only ever add
//! loss, so one bad trial must not end a search low (one did, before this). A pass counts at
//! once. Every trial is kept, and a rate already tried is judged from its trials first, so the
//! NDR search, which runs below the PDR, reuses the PDR's trials.

/// Trials of one rate at most: the first, and one more when the first fails.
pub const TRIALS_PER_RATE: usize = 2;

/// One trial: the rate offered and the loss seen (a fraction of what was offered).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    pub rate: f64,
    pub loss: f64,
}

/// What a search found: the highest rate that passed, if any did, and whether that was the
/// ceiling itself (the tester, not the path, was the limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub rate: f64,
    pub at_ceiling: bool,
}

/// The trials of one path at one flow count, shared by its searches.
#[derive(Debug, Default)]
pub struct Searches {
    pub trials: Vec<Trial>,
}

impl Searches {
    /// Whether `rate` passes with at most `limit` loss: judged from the trials it already
    /// had, running more (up to [`TRIALS_PER_RATE`]) while none passed.
    pub fn passes<E>(
        &mut self,
        rate: f64,
        limit: f64,
        trial: &mut impl FnMut(f64) -> Result<f64, E>,
    ) -> Result<bool, E> {
        let mut tried = 0;
        for t in self.trials.iter().filter(|t| t.rate == rate) {
            if t.loss <= limit {
                return Ok(true);
            }
            tried += 1;
        }
        while tried < TRIALS_PER_RATE {
            let loss = trial(rate)?;
            self.trials.push(Trial { rate, loss });
            if loss <= limit {
                return Ok(true);
            }
            tried += 1;
        }
        Ok(false)
    }

    /// The highest rate in `(0, hi]` that passes with at most `limit` loss, to within
    /// `hi / 2^(steps - 1)`: `hi` first (where it passes there is nothing to search), then
    /// bisection. None when nothing tried passed.
    pub fn find<E>(
        &mut self,
        hi: f64,
        steps: usize,
        limit: f64,
        trial: &mut impl FnMut(f64) -> Result<f64, E>,
    ) -> Result<Option<Found>, E> {
        if steps == 0 || hi <= 0.0 {
            return Ok(None);
        }
        if self.passes(hi, limit, trial)? {
            return Ok(Some(Found {
                rate: hi,
                at_ceiling: true,
            }));
        }
        let (mut lo, mut hi) = (0.0, hi);
        for _ in 1..steps {
            let rate = (lo + hi) / 2.0;
            if self.passes(rate, limit, trial)? {
                lo = rate;
            } else {
                hi = rate;
            }
        }
        Ok((lo > 0.0).then_some(Found {
            rate: lo,
            at_ceiling: false,
        }))
    }

    /// The passing trial at `rate` with the least loss (the point a result reports).
    pub fn best_at(&self, rate: f64) -> Option<usize> {
        self.trials
            .iter()
            .enumerate()
            .filter(|(_, t)| t.rate == rate)
            .min_by(|a, b| a.1.loss.total_cmp(&b.1.loss))
            .map(|(i, _)| i)
    }
}

/// The PDR with at most `pdr_loss`, then the NDR below it (no path forwards more without
/// loss than with some): `steps` bisection steps each. Returns (NDR, PDR).
pub fn ndr_pdr<E>(
    searches: &mut Searches,
    ceiling: f64,
    steps: usize,
    pdr_loss: f64,
    trial: &mut impl FnMut(f64) -> Result<f64, E>,
) -> Result<(Option<Found>, Option<Found>), E> {
    let pdr = searches.find(ceiling, steps, pdr_loss, trial)?;
    let ndr = match pdr {
        Some(p) => {
            let found = searches.find(p.rate, steps, 0.0, trial)?;
            // At the PDR's own rate the NDR is the ceiling only if the PDR was.
            found.map(|f| Found {
                at_ceiling: f.at_ceiling && p.at_ceiling,
                ..f
            })
        }
        None => None,
    };
    Ok((ndr, pdr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A path that loses nothing up to `ndr`, a little up to `pdr`, then much; `bad` trials
    /// (by their order) lose everything whatever the rate, as a burst from another tenant.
    fn path(ndr: f64, pdr: f64, bad: &[usize]) -> impl FnMut(f64) -> Result<f64, Infallible> {
        let bad = bad.to_vec();
        let mut n = 0;
        move |rate| {
            n += 1;
            Ok(if bad.contains(&(n - 1)) {
                1.0
            } else if rate <= ndr {
                0.0
            } else if rate <= pdr {
                0.001
            } else {
                0.2
            })
        }
    }

    #[test]
    fn finds_both_bounds_by_bisection() {
        let mut s = Searches::default();
        let mut trial = path(0.30, 0.60, &[]);
        let (ndr, pdr) = ndr_pdr(&mut s, 1.0, 7, 0.005, &mut trial).unwrap();
        let (ndr, pdr) = (ndr.unwrap(), pdr.unwrap());
        // Within 1/64 of the ceiling below each bound.
        assert!((0.60 - 1.0 / 64.0..=0.60).contains(&pdr.rate), "{pdr:?}");
        assert!((0.30 - 1.0 / 64.0..=0.30).contains(&ndr.rate), "{ndr:?}");
        assert!(!pdr.at_ceiling && !ndr.at_ceiling);
        // A rate is tried twice at most, and twice where it failed the PDR.
        for t in &s.trials {
            let n = s.trials.iter().filter(|o| o.rate == t.rate).count();
            assert!(n <= TRIALS_PER_RATE, "{t:?}");
            if t.loss > 0.005 {
                assert_eq!(n, 2, "{t:?}");
            }
        }
    }

    #[test]
    fn one_bad_trial_does_not_end_the_search_low() {
        // The ceiling fails twice; then the first trial of 0.5, which would pass, is hit by a
        // burst: the repeat of 0.5 passes, and the search goes on up.
        let mut s = Searches::default();
        let mut trial = path(0.30, 0.60, &[2]);
        let (_, pdr) = ndr_pdr(&mut s, 1.0, 7, 0.005, &mut trial).unwrap();
        assert!(pdr.unwrap().rate > 0.58, "{pdr:?}");
        // Without the repeat it would have been below 0.5.
        assert_eq!(
            s.trials[2],
            Trial {
                rate: 0.5,
                loss: 1.0
            }
        );
        assert_eq!(
            s.trials[3],
            Trial {
                rate: 0.5,
                loss: 0.001
            }
        );
    }

    #[test]
    fn a_path_faster_than_the_tester_is_at_the_ceiling() {
        let mut s = Searches::default();
        let mut trial = path(2.0, 3.0, &[]);
        let (ndr, pdr) = ndr_pdr(&mut s, 1.0, 7, 0.005, &mut trial).unwrap();
        assert_eq!(
            pdr,
            Some(Found {
                rate: 1.0,
                at_ceiling: true
            })
        );
        assert_eq!(ndr, pdr);
        // One trial served both: the NDR read the PDR's.
        assert_eq!(s.trials.len(), 1);
        assert_eq!(s.best_at(1.0), Some(0));
    }

    #[test]
    fn a_path_that_always_loses_has_no_bounds() {
        let mut s = Searches::default();
        let mut trial = path(-1.0, -1.0, &[]);
        assert_eq!(
            ndr_pdr(&mut s, 1.0, 4, 0.005, &mut trial).unwrap(),
            (None, None)
        );
        // 4 rates, each failed twice.
        assert_eq!(s.trials.len(), 8);
    }
}
