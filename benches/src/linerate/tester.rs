//! The tester: one thread per queue of the tester's interface, each one AF_XDP socket that
//! generates requests, counts what comes back (frames on the server side and replies
//! tunnelled back), answers as the server would, and times every frame it sent.
//!
//! Phases: readiness (a probe every 10 ms until one comes through, 5 s at most), priming
//! (every flow once, so the measured window sees established flows), then the measured
//! window at the offered rate, then a short drain. Only frames sent in the measured window
//! (`FLAG_MEASURED`) are counted.

use super::frames::{
    classify, reflect, Arrival, Encap, Flows, Generator, Trailer, FLAG_MEASURED, FLAG_REPLY, IMIX,
    IMIX_ORDER,
};
use super::tcp_cycle;
use gateway::wire::ethernet::MacAddr;
use gateway::xdp::port::XskPort;
use gateway::xdp::socket_stats::{SocketStats, StatsHandle};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const BATCH: usize = 64;
/// The paced tester's round: at 0.1 M frames a second 100 frames wait in a 2048-slot ring.
const PACE_TICK: Duration = Duration::from_millis(1);
/// Answers one receive batch may send: a TCP SYN-ACK draws two.
const ANSWERS: usize = 2 * BATCH;
const READY_WITHIN: Duration = Duration::from_secs(5);
const DRAIN: Duration = Duration::from_millis(200);
const PRIME_WITHIN: Duration = Duration::from_secs(60);
/// Latency histogram: 1 us buckets up to this, then one overflow bucket.
const LATENCY_BUCKETS: usize = 50_000;

/// What a tester run does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TesterConfig {
    pub ifname: String,
    pub mac: MacAddrText,
    pub queues: Vec<u32>,
    pub cores: Vec<usize>,
    pub encap: Encap,
    pub flows: Flows,
    pub size: usize,
    /// IMIX frames ([`IMIX`]) instead of `size`.
    #[serde(default)]
    pub imix: bool,
    /// TCP connection cycles (`tcp_cycle`) instead of UDP requests: `sent` counts the SYNs,
    /// `arrived` the connections completed (the pod's last ACK at the server side), and the
    /// latency is a whole cycle's.
    #[serde(default)]
    pub tcp: bool,
    /// Offered frames per second over all queues; `None` for as fast as the socket takes.
    pub rate: Option<f64>,
    pub seconds: f64,
    /// Send every flow once before the measured window.
    pub prime: bool,
    /// Answer every frame that reaches the server side.
    pub replies: bool,
    /// The source the server side must see (the egress IP); others are counted as wrong.
    pub expect_source: Option<IpAddr>,
    /// UDP over IPv6 inside (pods fd00:10:133::2 onwards) instead of IPv4.
    #[serde(default)]
    pub ipv6: bool,
    pub frames: u32,
    /// Driver-mode XDP on the tester's interface (see `paths::Layout::native`).
    pub native: bool,
    /// Sleeps a fixed tick ([`PACE_TICK`]) between rounds of sending what is due and taking
    /// what arrived, instead of spinning, so the tester's core is busy only with work (the
    /// all-CPU trials, which measure that core too).
    #[serde(default)]
    pub pace: bool,
    /// The measured window starts at this flow (over all threads), so a connection-rate
    /// trial opens flows no earlier trial used.
    #[serde(default)]
    pub first_flow: u32,
}

/// A MAC address that serialises as text.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MacAddrText(pub [u8; 6]);

/// What a tester run measured (summed over its threads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TesterResult {
    /// Frames handed to the kernel in the measured window.
    pub sent: u64,
    /// Length of the measured window (seconds).
    pub seconds: f64,
    /// Measured frames that reached the server side.
    pub arrived: u64,
    /// Measured replies that came back tunnelled to the pod's node.
    pub replies: u64,
    /// Arrivals with a sequence number below one already seen from the same sender.
    pub reordered: u64,
    /// Server-side arrivals whose source was not the expected egress IP.
    pub wrong_source: u64,
    /// Frames the tester could not hand to the kernel (its TX ring was full).
    pub tx_full: u64,
    /// Of those, answers the tester could not send: replies lost at the sink, not the path.
    #[serde(default)]
    pub answers_unsent: u64,
    /// Frames the tester's own sockets lost on receive (`XDP_STATISTICS` rx_dropped and
    /// rx_ring_full, from the window's start to the drain's end): loss at the sink, not on
    /// the path.
    #[serde(default)]
    pub rx_lost: u64,
    /// One-way latency (send to server-side arrival) percentiles, microseconds.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    #[serde(default)]
    pub p999_us: Option<f64>,
}

/// Per-thread tallies.
struct Tally {
    result: TesterResult,
    latency: Vec<u64>,
}

impl Tally {
    /// Counts a measured arrival at the server side (a request, or a TCP connection's last
    /// ACK), `took_ns` after it was sent.
    fn arrived(&mut self, arrival: Arrival, expect: Option<IpAddr>, took_ns: u64) {
        let r = &mut self.result;
        r.arrived += 1;
        if let (Arrival::Plain { source }, Some(want)) = (arrival, expect) {
            if source != want {
                r.wrong_source += 1;
            }
        }
        self.latency[((took_ns / 1000) as usize).min(LATENCY_BUCKETS)] += 1;
    }

    fn new() -> Tally {
        Tally {
            result: TesterResult::default(),
            latency: vec![0; LATENCY_BUCKETS + 1],
        }
    }
}

/// Runs the tester; prints `measure-start` and `measure-end` on stdout around the measured
/// window (the harness reads CPU use between them), then returns the result.
pub fn run(config: &TesterConfig) -> io::Result<TesterResult> {
    config.flows.check().map_err(io::Error::other)?;
    let epoch = Instant::now();
    let threads = config.queues.len();
    let start = Arc::new(Barrier::new(threads + 1));
    let end = Arc::new(Barrier::new(threads + 1));
    let tallies = Arc::new(Mutex::new(Vec::new()));
    let ours = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for (t, &queue) in config.queues.iter().enumerate() {
        let port = if config.native {
            XskPort::open(&config.ifname, queue, config.frames)?
        } else {
            XskPort::open_generic(&config.ifname, queue, config.frames)?
        };
        let stats = StatsHandle::new(port.fd())?;
        let config = config.clone();
        let core = config.cores[t % config.cores.len()];
        let (start, end, tallies) = (start.clone(), end.clone(), tallies.clone());
        let ours = ours.clone();
        handles.push(std::thread::spawn(move || -> io::Result<()> {
            core_affinity::set_for_current(core_affinity::CoreId { id: core });
            let mut thread = Thread::new(&config, t, threads, port, epoch, ours);
            let outcome = thread.warm_up();
            start.wait();
            let before = stats.read();
            // Even a thread that failed takes part in the barriers, so none waits forever.
            if outcome.is_ok() {
                thread.measure()?;
            }
            end.wait();
            if outcome.is_ok() {
                thread.drain()?;
            }
            let lost = |s: &SocketStats| s.rx_dropped + s.rx_ring_full;
            if let (Ok(b), Ok(a)) = (before, stats.read()) {
                thread.tally.result.rx_lost = lost(&a).saturating_sub(lost(&b));
            }
            tallies.lock().expect("tally lock").push(thread.tally);
            outcome
        }));
    }
    start.wait();
    println!("measure-start");
    io::stdout().flush()?;
    end.wait();
    println!("measure-end");
    io::stdout().flush()?;
    for h in handles {
        h.join()
            .map_err(|_| io::Error::other("a tester thread panicked"))??;
    }
    let tallies = std::mem::take(&mut *tallies.lock().expect("tally lock"));
    Ok(combine(tallies))
}

fn combine(tallies: Vec<Tally>) -> TesterResult {
    let mut r = TesterResult::default();
    let mut latency = vec![0u64; LATENCY_BUCKETS + 1];
    for t in &tallies {
        r.sent += t.result.sent;
        r.arrived += t.result.arrived;
        r.replies += t.result.replies;
        r.reordered += t.result.reordered;
        r.wrong_source += t.result.wrong_source;
        r.tx_full += t.result.tx_full;
        r.answers_unsent += t.result.answers_unsent;
        r.rx_lost += t.result.rx_lost;
        r.seconds = r.seconds.max(t.result.seconds);
        for (sum, n) in latency.iter_mut().zip(&t.latency) {
            *sum += n;
        }
    }
    r.p50_us = percentile(&latency, 0.50);
    r.p99_us = percentile(&latency, 0.99);
    r.p999_us = percentile(&latency, 0.999);
    r
}

/// The `q` quantile of a 1 us histogram (the bucket's upper edge; none when empty).
fn percentile(histogram: &[u64], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (us, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some((us + 1) as f64);
        }
    }
    Some(histogram.len() as f64)
}

/// One queue's socket and state.
struct Thread {
    port: XskPort,
    /// One generator per frame size, and which one each frame of a cycle uses.
    generators: Vec<Generator>,
    order: &'static [u8],
    epoch: Instant,
    sender: u8,
    /// This thread's flows are `sender + k * threads`.
    threads: u32,
    flows: u32,
    next_flow: u32,
    /// Where `next_flow` starts in the measured window.
    first_flow: u32,
    rate: Option<f64>,
    seconds: f64,
    prime: bool,
    replies: bool,
    tcp: bool,
    pace: bool,
    expect_source: Option<IpAddr>,
    scratch: Vec<u8>,
    /// Replies waiting to be sent (copies of server-side arrivals).
    answers: Vec<u8>,
    answer_lens: Vec<usize>,
    /// Highest sequence seen per sender.
    highest: [Option<u32>; 256],
    /// Our frames received by any thread (replies may come back on another queue).
    ours: Arc<AtomicU64>,
    tally: Tally,
}

impl Thread {
    fn new(
        config: &TesterConfig,
        t: usize,
        threads: usize,
        port: XskPort,
        epoch: Instant,
        ours: Arc<AtomicU64>,
    ) -> Thread {
        let sizes: &[usize] = if config.imix {
            &IMIX
        } else {
            std::slice::from_ref(&config.size)
        };
        let mac = MacAddr(config.mac.0);
        let generators = sizes
            .iter()
            .map(|&size| match (config.tcp, config.ipv6) {
                (true, _) => Generator::tcp(config.encap, config.flows, size, mac),
                (false, true) => Generator::udp6(config.encap, config.flows, size, mac),
                (false, false) => Generator::new(config.encap, config.flows, size, mac),
            })
            .collect();
        let order: &'static [u8] = if config.imix { &IMIX_ORDER } else { &[0] };
        let threads = threads as u32;
        let flows = config.flows.flows.div_ceil(threads);
        Thread {
            port,
            generators,
            order,
            epoch,
            sender: t as u8,
            threads,
            flows,
            next_flow: 0,
            first_flow: (config.first_flow / threads) % flows,
            rate: config.rate.map(|r| r / f64::from(threads)),
            seconds: config.seconds,
            prime: config.prime,
            replies: config.replies,
            tcp: config.tcp,
            pace: config.pace,
            expect_source: config.expect_source,
            scratch: vec![0; 4096],
            answers: vec![0; ANSWERS * 2048],
            answer_lens: Vec::with_capacity(ANSWERS),
            highest: [None; 256],
            ours,
            tally: Tally::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Queues up to `n` requests for the next flows and hands them to the kernel; returns how
    /// many it took.
    fn send(&mut self, n: usize, flags: u8, seq: &mut u32) -> io::Result<usize> {
        let stamp_ns = self.now_ns();
        for queued in 0..n {
            let flow = self.sender as u32 + self.next_flow * self.threads;
            self.next_flow = (self.next_flow + 1) % self.flows;
            let trailer = Trailer {
                flags,
                sender: self.sender,
                seq: *seq,
                stamp_ns,
            };
            let size = self.order[*seq as usize % self.order.len()];
            let len = self.generators[usize::from(size)].write(&mut self.scratch, flow, &trailer);
            if !self.port.queue(&self.scratch[..len]) {
                self.tally.result.tx_full += (n - queued) as u64;
                break;
            }
            *seq = seq.wrapping_add(1);
        }
        let sent = self.port.flush()?;
        Ok(sent)
    }

    /// Receives what is waiting, counts it, and sends the answers. Returns how many of the
    /// frames were ours (generated frames or replies, not ICMP errors or ARP).
    fn receive(&mut self) -> io::Result<usize> {
        let now = self.now_ns();
        let (tally, highest) = (&mut self.tally, &mut self.highest);
        let (answers, lens) = (&mut self.answers, &mut self.answer_lens);
        let (replies, expect, tcp) = (self.replies, self.expect_source, self.tcp);
        let mut ours = 0;
        let counted = &mut ours;
        self.port.receive(0, |frame| {
            let ours = &mut *counted;
            let Some(trailer) = Trailer::read(frame) else {
                return;
            };
            // An ICMP error quoting one of our frames ends with its trailer too.
            let arrival = classify(frame);
            if arrival == Arrival::Other {
                return;
            }
            *ours += 1;
            let measured = trailer.flags & FLAG_MEASURED != 0;
            if tcp {
                if measured && tcp_cycle::completes(frame) {
                    tally.arrived(arrival, expect, now.saturating_sub(trailer.stamp_ns));
                }
                if lens.len() + 2 > ANSWERS || frame.len() > 2048 {
                    return;
                }
                let at = lens.len() * 2048;
                let (a, rest) = answers[at..].split_at_mut(2048);
                if trailer.flags & FLAG_REPLY != 0 {
                    let n = tcp_cycle::answer_as_pod(frame, [a, &mut rest[..2048]]);
                    lens.extend(std::iter::repeat_n(frame.len(), n));
                } else {
                    let copy = &mut a[..frame.len()];
                    copy.copy_from_slice(frame);
                    reflect(copy);
                    if tcp_cycle::answer_as_server(copy) == tcp_cycle::AtServer::Answered {
                        lens.push(frame.len());
                    }
                }
                return;
            }
            if trailer.flags & FLAG_REPLY != 0 {
                if measured {
                    tally.result.replies += 1;
                }
                return;
            }
            if measured {
                tally.arrived(arrival, expect, now.saturating_sub(trailer.stamp_ns));
                let seen = &mut highest[trailer.sender as usize];
                match *seen {
                    Some(h) if trailer.seq < h => tally.result.reordered += 1,
                    _ => *seen = Some(trailer.seq),
                }
            }
            if replies && lens.len() < BATCH && frame.len() <= 2048 {
                let at = lens.len() * 2048;
                let copy = &mut answers[at..at + frame.len()];
                copy.copy_from_slice(frame);
                reflect(copy);
                lens.push(frame.len());
            }
        })?;
        for (i, &len) in self.answer_lens.iter().enumerate() {
            let at = i * 2048;
            if !self.port.queue(&self.answers[at..at + len]) {
                self.tally.result.tx_full += 1;
                self.tally.result.answers_unsent += 1;
            }
        }
        if !self.answer_lens.is_empty() {
            self.answer_lens.clear();
            self.port.flush()?;
        }
        Ok(ours)
    }

    /// Readiness, then priming.
    fn warm_up(&mut self) -> io::Result<()> {
        let since = Instant::now();
        let mut seq = 0;
        let mut last_probe = None::<Instant>;
        loop {
            let n = self.receive()?;
            if self.ours.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > 0 {
                break;
            }
            if since.elapsed() > READY_WITHIN {
                return Err(io::Error::other(format!(
                    "nothing came back through the gateway within {READY_WITHIN:?}"
                )));
            }
            if !matches!(last_probe, Some(t) if t.elapsed() <= Duration::from_millis(10)) {
                self.next_flow = 0;
                self.send(1, 0, &mut seq)?;
                last_probe = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.prime {
            self.next_flow = 0;
            let mut primed = 0;
            let deadline = Instant::now() + PRIME_WITHIN;
            while primed < self.flows as usize && Instant::now() < deadline {
                let n = BATCH.min(self.flows as usize - primed);
                primed += self.send(n, 0, &mut seq)?;
                self.receive()?;
            }
        }
        let drained = Instant::now();
        while drained.elapsed() < DRAIN {
            self.receive()?;
        }
        Ok(())
    }

    /// The measured window: offered load, counting as it goes.
    fn measure(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let window = Duration::from_secs_f64(self.seconds);
        let mut seq = 0u32;
        let mut sent = 0u64;
        self.next_flow = self.first_flow;
        loop {
            let elapsed = started.elapsed();
            if elapsed >= window {
                break;
            }
            let due = match self.rate {
                Some(rate) => ((elapsed.as_secs_f64() * rate) as u64).saturating_sub(sent),
                None => BATCH as u64,
            };
            if due > 0 {
                sent += self.send(due.min(BATCH as u64) as usize, FLAG_MEASURED, &mut seq)? as u64;
            }
            if !self.pace {
                self.receive()?;
            } else if due <= BATCH as u64 {
                // Whatever arrived, then a fixed tick: the tester wakes as often whichever
                // path it drives, so its own cost per frame is the same for each.
                while self.receive()? > 0 {}
                std::thread::sleep(PACE_TICK);
            }
        }
        self.tally.result.sent = sent;
        self.tally.result.seconds = started.elapsed().as_secs_f64();
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        let since = Instant::now();
        while since.elapsed() < DRAIN {
            self.receive()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = vec![0u64; 10];
        h[2] = 50;
        h[7] = 49;
        h[9] = 1;
        assert_eq!(percentile(&h, 0.5), Some(3.0));
        assert_eq!(percentile(&h, 0.99), Some(8.0));
        assert_eq!(percentile(&h, 1.0), Some(10.0));
        assert_eq!(percentile(&[0; 4], 0.5), None);
    }
}
