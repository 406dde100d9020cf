//! CPU use of the gateway's cores, measured by what is left over (cyclesoak's method): a
//! thread per core at the lowest priority (SCHED_IDLE) counts loop turns; it runs only when
//! nothing else wants the core, softirq work included. Busy fraction = 1 - turns per second
//! now / turns per second on an idle core. This works below saturation, where tick-based
//! accounting (/proc/stat) does not, and charges every path the same way: a busy-polling
//! AF_XDP worker, softirq processing of the kernel path, or the XDP program.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Turn counters of soak threads pinned to some cores.
#[derive(Debug)]
pub struct Soak {
    turns: Vec<Arc<AtomicU64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Turns per second of each core while idle (measured again before trials that need it:
    /// the host's other tenants move it).
    idle_rate: Mutex<Vec<f64>>,
}

/// A reading of every soak counter, to difference later.
#[derive(Debug, Clone)]
pub struct Reading {
    pub at: Instant,
    turns: Vec<u64>,
}

impl Soak {
    /// Starts one soak thread per core and measures the idle rate for `calibrate`.
    pub fn start(cores: &[usize], calibrate: Duration) -> Soak {
        let stop = Arc::new(AtomicBool::new(false));
        let mut turns = Vec::new();
        let mut threads = Vec::new();
        for &core in cores {
            let counter = Arc::new(AtomicU64::new(0));
            let (c, s) = (counter.clone(), stop.clone());
            // Named: `sampled` tells its samples from work by the name.
            let thread = std::thread::Builder::new()
                .name("soak".into())
                .spawn(move || soak(core, &c, &s))
                .expect("spawning a soak thread");
            threads.push(thread);
            turns.push(counter);
        }
        let soak = Soak {
            turns,
            stop,
            threads,
            idle_rate: Mutex::new(Vec::new()),
        };
        soak.calibrate(calibrate);
        soak
    }

    /// Measures the idle rate again (call while nothing runs on the cores).
    pub fn calibrate(&self, window: Duration) {
        // Let the threads get going (scheduling policy set, caches warm).
        std::thread::sleep(Duration::from_millis(20));
        let before = self.read();
        std::thread::sleep(window);
        let after = self.read();
        let secs = after.at.duration_since(before.at).as_secs_f64();
        *self.idle_rate.lock().expect("soak lock") = before
            .turns
            .iter()
            .zip(&after.turns)
            .map(|(b, a)| (a - b) as f64 / secs)
            .collect();
    }

    pub fn read(&self) -> Reading {
        Reading {
            at: Instant::now(),
            turns: self
                .turns
                .iter()
                .map(|t| t.load(Ordering::Relaxed))
                .collect(),
        }
    }

    /// Busy core-seconds between two readings, summed over the cores.
    pub fn busy_seconds(&self, before: &Reading, after: &Reading) -> f64 {
        self.busy_by_core(before, after).iter().sum()
    }

    /// Busy core-seconds between two readings, one figure per core in the order `start` took
    /// them.
    pub fn busy_by_core(&self, before: &Reading, after: &Reading) -> Vec<f64> {
        let secs = after.at.duration_since(before.at).as_secs_f64();
        let idle_rate = self.idle_rate.lock().expect("soak lock");
        before
            .turns
            .iter()
            .zip(&after.turns)
            .zip(idle_rate.iter())
            .map(|((b, a), idle)| {
                let free = if *idle > 0.0 {
                    (a - b) as f64 / idle / secs
                } else {
                    0.0
                };
                (1.0 - free).clamp(0.0, 1.0) * secs
            })
            .collect()
    }
}

impl Drop for Soak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn soak(core: usize, turns: &AtomicU64, stop: &AtomicBool) {
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
    idle_priority();
    let mut local = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1024 {
            local = std::hint::black_box(local + 1);
        }
        turns.store(local, Ordering::Relaxed);
    }
}

/// Moves the calling thread to SCHED_IDLE with util-linux `chrt` (no unsafe code for a
/// syscall std does not wrap). Without it the soak would compete as an equal and read low.
fn idle_priority() {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let ok = tid.is_some_and(|tid| {
        std::process::Command::new("chrt")
            .args(["--idle", "-p", "0", &tid])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        eprintln!("linerate: chrt --idle failed; CPU figures will read low");
    }
}
