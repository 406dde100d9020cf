//! Keeps the daemon's own threads off the workers' cores. A worker pins itself to its core,
//! but the other threads (control socket, metrics, BGP, sync, the control loop) could run
//! anywhere, the workers' cores included, where each of their runs holds a worker up: a
//! metrics scrape walks the whole session table (about 5 ms with the default sizes), and a
//! worker away 5 ms at 200k frames a second leaves 1,000 frames waiting in its ring.

use std::io;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The cores in `allowed` that run no worker.
pub fn housekeeping(allowed: &[usize], worker_cores: &[usize]) -> Vec<usize> {
    allowed
        .iter()
        .copied()
        .filter(|c| !worker_cores.contains(c))
        .collect()
}

/// Restricts the calling thread, and so every thread it starts afterwards, to the cores it
/// may use less `worker_cores` (workers then pin themselves where they belong). Returns the
/// cores kept, or `None`, changing nothing, when every core it may use runs a worker.
pub fn keep_off_worker_cores(worker_cores: &[usize]) -> io::Result<Option<Vec<usize>>> {
    let current = Pid::from_raw(0);
    let set = sched_getaffinity(current).map_err(io::Error::from)?;
    let allowed: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    let kept = housekeeping(&allowed, worker_cores);
    if kept.is_empty() {
        return Ok(None);
    }
    let mut restricted = CpuSet::new();
    for &c in &kept {
        restricted.set(c).map_err(io::Error::from)?;
    }
    sched_setaffinity(current, &restricted).map_err(io::Error::from)?;
    Ok(Some(kept))
}

#[cfg(test)]
mod tests {
    use super::housekeeping;

    #[test]
    fn the_other_threads_get_every_allowed_core_no_worker_runs_on() {
        assert_eq!(housekeeping(&[0, 1, 2, 3], &[2, 3]), [0, 1]);
        // A worker core the process may not use anyway changes nothing.
        assert_eq!(housekeeping(&[1, 3], &[0, 1]), [3]);
        assert!(housekeeping(&[0, 1], &[0, 1]).is_empty());
    }
}
