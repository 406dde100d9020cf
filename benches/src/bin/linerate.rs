//! The line-rate bench: the same generated traffic through egressgw, the seed's kernel path
//! and plain AF_XDP forwarding, side by side in one run, on this machine's network
//! namespaces. Prints a markdown table and writes it, the raw points (JSON) and a plot (SVG).
//!
//! `cargo run --release -p benches --bin linerate -- --smoke` is the few-second version;
//! without `--smoke` the full run (rate sweep and flow sweep, a few minutes). Needs root.

use benches::linerate::frames::{Flows, MAX_SIZE, MIN_SIZE};
use benches::linerate::losses;
use benches::linerate::paths::{Lab, Layout, PathKind, RunningPath, Sizing, TESTER_IF};
use benches::linerate::report::{self, Point};
use benches::linerate::sampled;
use benches::linerate::search::{self, Searches};
use benches::linerate::soak::Soak;
use benches::linerate::tester::{self, MacAddrText, TesterConfig, TesterResult};
use clap::{Parser, Subcommand};
use gateway::testutil;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "egressgw line-rate bench: egressgw vs the kernel path vs the AF_XDP floor")]
struct Args {
    /// A few seconds: every path at a light load (0.05 Mpps), 1000 flows, half a second each.
    #[arg(long)]
    smoke: bool,
    /// Length of each measured window of the rate sweep.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Length of each trial of the NDR/PDR search.
    #[arg(long, default_value_t = 1.0)]
    trial_seconds: f64,
    /// Bytes of each frame on the server side (64-1500; the tunnel adds 50-58).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// IMIX frames instead of --size: 64, 570 and 1500 bytes on the server side, 7:4:1.
    #[arg(long)]
    imix: bool,
    /// IPv6 inside the tunnel: the pods' UDP over IPv6 (each frame with its UDP checksum,
    /// 78 bytes at least), SNATed to the IPv6 egress IP (the kernel path by the seed's
    /// `egress-service-snat-v6` map). With --cps, the UDP connection rate alone (the TCP
    /// cycles are IPv4's).
    #[arg(long)]
    ipv6: bool,
    /// With --ipv6: the pod's node tunnels over the IPv6 underlay (a single-stack IPv6
    /// cluster's; fd00:99::25 to fd00:99::23, Geneve or VXLAN over IPv6), egressgw with
    /// `node.ip6`.
    #[arg(long)]
    underlay6: bool,
    /// Pods the flows come from (each mapped to the egress IP).
    #[arg(long, default_value_t = 256)]
    pods: u32,
    /// Flow counts of the flow sweep (at the largest rate).
    #[arg(long, value_delimiter = ',', default_value = "1000,65536,1000000")]
    flows: Vec<u32>,
    /// Offered rates of the rate sweep, Mpps over all queues (the largest rate is always
    /// measured too).
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.1,0.2,0.3,0.4")]
    rates: Vec<f64>,
    /// Skip the rate sweep (the scaling mode: only the largest rate and the throughput).
    #[arg(long)]
    no_sweep: bool,
    /// Flows in the rate sweep.
    #[arg(long, default_value_t = 1000)]
    rate_flows: u32,
    /// Queues (and tester and gateway cores: tester 0..N, gateway N..2N).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Loss allowed at the partial-drop rate (PDR), a fraction; the NDR allows none.
    #[arg(long, default_value_t = 0.005)]
    loss: f64,
    /// Driver-mode XDP on both veth ends instead of generic (needed for --queues above 1:
    /// generic XDP on veth sees every frame as queue 0).
    #[arg(long)]
    native: bool,
    /// egressgw's receive coalescing (`dataplane.rx_coalesce_us`): after a short batch its
    /// worker waits this long before looking again.
    #[arg(long, default_value_t = 0)]
    rx_coalesce_us: u32,
    /// The load of the all-CPU trials (Mpps), one every path carries without loss.
    #[arg(long, default_value_t = 0.05)]
    all_cpu_rate: f64,
    /// Only the all-CPU trials (about a minute).
    #[arg(long)]
    all_cpu_only: bool,
    /// Fractions of each path's NDR at which latency is measured (windows of --seconds).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.5,0.9")]
    latency_loads: Vec<f64>,
    /// The connection rate instead (CSIT's cps): every UDP request opens a new flow, answered
    /// once, then every TCP SYN a new connection, opened and closed (`tcp_cycle`); sessions
    /// expire after --cps-timeout on both stateful paths; NDR and PDR in new connections a
    /// second, the session tables sized for the largest of --flows.
    #[arg(long)]
    cps: bool,
    /// The connection-rate mode's idle timeout of UDP sessions and of TCP's opening and
    /// closing states (seconds).
    #[arg(long, default_value_t = 2)]
    cps_timeout: u32,
    /// Only send; do not answer from the server side.
    #[arg(long)]
    no_replies: bool,
    /// Paths to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "egressgw,kernel,floor,wire"
    )]
    paths: Vec<String>,
    /// Where the table, the points and the plot go.
    #[arg(long, default_value = "target/linerate")]
    out: PathBuf,
    #[command(subcommand)]
    internal: Option<Internal>,
}

/// Parts of the bench that run inside a namespace (started by the bench itself).
#[derive(Debug, Subcommand)]
enum Internal {
    /// The generator and sink (JSON configuration).
    #[command(hide = true)]
    Tester { config: String },
    /// Writes the table and the plot again from a run's points (`linerate.json`).
    Report {
        json: PathBuf,
        #[arg(long, default_value_t = 1000)]
        rate_flows: u32,
        #[arg(long, default_value_t = 0.005)]
        loss: f64,
    },
    /// Checks the CPU measurement: a thread busy for a known share of `core`, read by the soak.
    #[command(hide = true)]
    SoakCheck {
        #[arg(long, default_value_t = 1)]
        core: usize,
    },
    /// The AF_XDP floor forwarder.
    #[command(hide = true)]
    Floor {
        #[arg(long)]
        ifname: String,
        #[arg(long)]
        queues: u32,
        #[arg(long, value_delimiter = ',')]
        cores: Vec<usize>,
        #[arg(long)]
        peer_mac: String,
        #[arg(long)]
        native: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match &args.internal {
        Some(Internal::Tester { config }) => run_tester(config),
        Some(Internal::Floor {
            ifname,
            queues,
            cores,
            peer_mac,
            native,
        }) => match peer_mac.parse() {
            Ok(mac) => benches::linerate::floor::run(ifname, *queues, cores, mac, *native),
            Err(e) => Err(io::Error::other(format!("--peer-mac: {e:?}"))),
        },
        Some(Internal::Report {
            json,
            rate_flows,
            loss,
        }) => rewrite_report(json, *rate_flows, *loss),
        Some(Internal::SoakCheck { core }) => {
            soak_check(*core);
            Ok(())
        }
        None => bench(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linerate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_tester(config: &str) -> io::Result<()> {
    let config: TesterConfig = serde_json::from_str(config).map_err(io::Error::other)?;
    let result = tester::run(&config)?;
    println!(
        "result {}",
        serde_json::to_string(&result).map_err(io::Error::other)?
    );
    Ok(())
}

/// The smoke's load (Mpps): light enough for every path on a 2-core machine, where even the
/// slowest forwards it without loss; the smoke fails above `SMOKE_LOSS`.
const SMOKE_RATE: f64 = 0.05;
const SMOKE_LOSS: f64 = 0.2;

/// Bisection steps of each search: the last within 1/128 of the tester's ceiling (0.78 Mpps
/// here: 6 kpps, 4% of these paths' rates; with 6 steps it was 16%).
const SEARCH_STEPS: usize = 8;

/// All-CPU trials per flow count and path; the median counts.
const ALL_CPU_REPEATS: usize = 3;

/// The flows a connection-rate trial draws from: none is used twice in a run of a path (at
/// the tester's ceiling a path's trials open about 20M).
const CPS_FLOWS: u32 = 200_000_000;

/// What the tester sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// UDP requests on flows opened before (primed).
    Established,
    /// Every UDP request a new flow.
    NewUdp,
    /// Every SYN a new TCP connection, opened and closed.
    NewTcp,
}

impl Traffic {
    fn name(self) -> &'static str {
        match self {
            Traffic::Established => "",
            Traffic::NewUdp => "udp",
            Traffic::NewTcp => "tcp",
        }
    }
}

/// What one tester run offers.
#[derive(Debug, Clone, Copy)]
struct Trial {
    flows: u32,
    rate: Option<f64>,
    prime: bool,
    seconds: f64,
    /// The measured window's first flow.
    first_flow: u32,
    /// TCP connection cycles instead of UDP requests.
    tcp: bool,
    /// The tester waits instead of spinning (all-CPU trials).
    pace: bool,
}

/// One measurement: the tester runs in its namespace; the soak is read around its window.
struct Measure<'a> {
    lab: &'a Lab,
    soak: &'a Soak,
    args: &'a Args,
}

impl Measure<'_> {
    fn point(&self, path: &RunningPath, trial: Trial) -> io::Result<Point> {
        let kind = path.kind;
        let Trial {
            flows,
            rate,
            prime,
            seconds,
            first_flow,
            tcp,
            pace,
        } = trial;
        let config = TesterConfig {
            ifname: TESTER_IF.into(),
            mac: MacAddrText(testutil::NODE3_MAC.0),
            queues: (0..self.lab.layout.queues).collect(),
            cores: self.lab.layout.tester_cores.clone(),
            encap: kind.encap(self.args.underlay6),
            flows: Flows {
                pods: self.args.pods,
                flows,
            },
            size: self.args.size,
            imix: self.args.imix,
            rate,
            seconds,
            prime,
            replies: !self.args.no_replies,
            expect_source: kind.expect_source(self.args.ipv6),
            ipv6: self.args.ipv6,
            frames: 16384,
            native: self.lab.layout.native,
            first_flow,
            tcp,
            pace,
        };
        let me = std::env::current_exe()?;
        let mut child = self
            .lab
            .tester
            .command(me.to_str().unwrap_or_default())
            .args([
                "tester",
                &serde_json::to_string(&config).map_err(io::Error::other)?,
            ])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("tester stdout"))?;
        let (mut before, mut busy, mut tester_busy, mut result) = (None, 0.0, 0.0, None);
        // The all-CPU trials read every core from perf's samples (`sampled`).
        let mut recording = None;
        // Where the loss happened: counters around the window (`losses`).
        let counted = || -> io::Result<(u64, losses::Counters)> {
            Ok((
                self.lab.link_drops(path)?,
                path.loss_counters(&self.lab.dir)?,
            ))
        };
        let (mut counted_before, mut link_drops, mut gateway_drops) = (None, 0, Vec::new());
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            match line.as_str() {
                "measure-start" => {
                    before = Some(self.soak.read());
                    counted_before = Some(counted()?);
                    if pace {
                        recording = Some(sampled::Recording::start(&self.lab.dir)?);
                    }
                }
                "measure-end" => {
                    if let Some((links, gateway)) = &counted_before {
                        let (links_now, gateway_now) = counted()?;
                        link_drops = links_now.saturating_sub(*links);
                        gateway_drops = losses::grown(gateway, &gateway_now);
                    }
                    if let (Some(r), Some(b)) = (recording.take(), &before) {
                        let secs = b.at.elapsed().as_secs_f64();
                        let shares = r.busy_by_core()?;
                        let sum = |cores: &[usize]| -> f64 {
                            cores.iter().filter_map(|c| shares.get(c)).sum::<f64>() * secs
                        };
                        tester_busy = sum(&self.lab.layout.tester_cores);
                        busy = sum(&self.lab.layout.gateway_cores);
                    } else if let Some(b) = &before {
                        // The soak's cores: the tester's, then the gateway's.
                        let by_core = self.soak.busy_by_core(b, &self.soak.read());
                        let (tester, gateway) =
                            by_core.split_at(self.lab.layout.tester_cores.len());
                        (tester_busy, busy) = (tester.iter().sum(), gateway.iter().sum());
                    }
                }
                l => {
                    if let Some(json) = l.strip_prefix("result ") {
                        result = Some(
                            serde_json::from_str::<TesterResult>(json).map_err(io::Error::other)?,
                        );
                    }
                }
            }
        }
        let status = child.wait()?;
        let tester = result.ok_or_else(|| {
            io::Error::other(format!(
                "the tester failed ({status}) on the {} path",
                kind.name()
            ))
        })?;
        Ok(Point {
            path: kind.name().into(),
            flows,
            asked: rate,
            tester,
            busy_core_seconds: busy,
            tester_busy_core_seconds: tester_busy,
            all_cpu: false,
            link_drops,
            gateway_drops,
            search: false,
            throughput: false,
            ndr: false,
            load: None,
            cps: false,
            tcp: false,
        })
    }
}

fn bench(args: &Args) -> io::Result<()> {
    if !(MIN_SIZE..=MAX_SIZE).contains(&args.size) {
        return Err(io::Error::other(format!(
            "--size must be {MIN_SIZE}-{MAX_SIZE}"
        )));
    }
    if args.underlay6 && !args.ipv6 {
        return Err(io::Error::other(
            "--underlay6 carries IPv6 pods alone (an IPv4 pod over the IPv6 underlay is a counted drop): add --ipv6",
        ));
    }
    let kinds = args
        .paths
        .iter()
        .map(|p| {
            PathKind::parse(p).ok_or_else(|| {
                io::Error::other(format!(
                    "unknown path {p:?} (egressgw, kernel, floor, wire)"
                ))
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
    let q = args.queues as usize;
    if q == 0 || 2 * q > cores {
        return Err(io::Error::other(format!(
            "--queues {q} needs {} cores (a tester and a gateway core per queue); this machine has {cores}",
            2 * q
        )));
    }
    let layout = Layout {
        queues: args.queues,
        tester_cores: (0..q).collect(),
        gateway_cores: (q..2 * q).collect(),
        native: args.native,
        rx_coalesce_us: args.rx_coalesce_us,
    };
    let (seconds, flow_sweep, rates) = if args.smoke {
        (0.5, vec![args.rate_flows], vec![SMOKE_RATE])
    } else {
        let mut f = args.flows.clone();
        f.sort_unstable();
        f.dedup();
        let rates = if args.no_sweep {
            vec![]
        } else {
            args.rates.clone()
        };
        (args.seconds, f, rates)
    };
    let cps_flows = args.cps.then_some(CPS_FLOWS);
    for f in flow_sweep
        .iter()
        .chain([&args.rate_flows])
        .chain(&cps_flows)
    {
        Flows {
            pods: args.pods,
            flows: *f,
        }
        .check()
        .map_err(io::Error::other)?;
    }
    let max_flows = flow_sweep
        .iter()
        .copied()
        .chain([args.rate_flows])
        .max()
        .unwrap_or(1);
    let lab = Lab::new(layout.clone(), &args.out)?;
    let soak_cores: Vec<usize> = layout
        .tester_cores
        .iter()
        .chain(&layout.gateway_cores)
        .copied()
        .collect();
    let soak = Soak::start(&soak_cores, Duration::from_millis(300));
    let measure = Measure {
        lab: &lab,
        soak: &soak,
        args,
    };
    let mut points = Vec::new();
    let traffics: &[Traffic] = if args.cps && args.ipv6 {
        &[Traffic::NewUdp]
    } else if args.cps {
        &[Traffic::NewUdp, Traffic::NewTcp]
    } else {
        &[Traffic::Established]
    };
    let mut ceilings = [0f64; 3];
    for kind in kinds {
        eprintln!("linerate: {} ...", kind.name());
        let sizing = Sizing {
            pods: args.pods,
            max_flows,
            short_timeout: args.cps.then_some(args.cps_timeout),
            ipv6: args.ipv6,
            underlay6: args.underlay6,
        };
        let mut path = lab.start(kind, sizing)?;
        let mut primed = 0;
        // Frames sent so far (past flow 0, the readiness probe's): each trial starts where the
        // last one stopped, so a connection-rate trial opens flows none used before, and an
        // established one walks the whole flow set in turn (at 1M flows every session stays
        // in use, not the first 100k).
        let mut walked: u64 = 1;
        for &traffic in traffics {
            let cps = traffic != Traffic::Established;
            let tcp = traffic == Traffic::NewTcp;
            let mut run = |flows: u32, rate: Option<f64>, window: f64, pace: bool| {
                let (flows, prime) = if cps {
                    (CPS_FLOWS, false)
                } else {
                    let prime = flows > primed;
                    primed = primed.max(flows);
                    (flows, prime)
                };
                let trial = Trial {
                    flows,
                    rate,
                    prime,
                    seconds: window,
                    first_flow: (walked % u64::from(flows.max(1))) as u32,
                    tcp,
                    pace,
                };
                let mut p = measure.point(&path, trial)?;
                (p.cps, p.tcp) = (cps, tcp);
                // A partly queued last batch on each queue may have used a few flows more.
                walked += p.tester.sent + u64::from(args.queues) * 64;
                path.check_alive()?;
                eprintln!(
                    "  {:>4} {:>9} flows, asked {:>5}: delivered {:.3} Mpps, replies {:.3}, loss {:.2}%, {:.2} us CPU per frame",
                    traffic.name(),
                    p.flows,
                    rate.map_or("max".into(), |r| format!("{:.3}", r / 1e6)),
                    p.delivered_mpps(),
                    p.replies_mpps(),
                    p.loss() * 100.0,
                    p.cpu_per_mpkt()
                );
                io::Result::Ok(p)
            };
            // Every core counted, at one load every path carries: the tester waits instead of
            // spinning, so its core's soak reads its work. The wire runs only these.
            if !cps && !args.smoke {
                for &flows in &flow_sweep {
                    // The median of three by all-core cost: a tick or a host's hiccup on the
                    // tester's core moves one trial by a microsecond a frame.
                    let mut three = (0..ALL_CPU_REPEATS)
                        .map(|_| run(flows, Some(args.all_cpu_rate * 1e6), seconds, true))
                        .collect::<io::Result<Vec<Point>>>()?;
                    three.sort_by(|a, b| a.all_cpu_per_frame().total_cmp(&b.all_cpu_per_frame()));
                    let mut p = three.swap_remove(ALL_CPU_REPEATS / 2);
                    p.all_cpu = true;
                    points.push(p);
                }
            }
            if kind == PathKind::Wire || args.all_cpu_only {
                continue;
            }
            if !cps {
                for &r in &rates {
                    points.push(run(args.rate_flows, Some(r * 1e6), seconds, false)?);
                }
            }
            if args.smoke {
                if cps {
                    // A TCP cycle is 6 frames through the gateway.
                    let rate = SMOKE_RATE * 1e6 / if tcp { 5.0 } else { 1.0 };
                    points.push(run(0, Some(rate), seconds, false)?);
                }
                continue;
            }
            let top = run(args.rate_flows, None, seconds, false)?;
            // The search starts below what the tester reached with any path so far: a path
            // whose own work slows the tester (the kernel's replies land on the tester's core)
            // must not cap its own search (it capped the kernel's connection rate at its
            // 0.078 Mpps).
            let ceiling = &mut ceilings[traffic as usize];
            *ceiling = ceiling.max(top.tester.sent as f64 / top.tester.seconds.max(1e-9));
            let ceiling = *ceiling;
            points.push(top);
            // The zero-loss rate (NDR) and the partial-drop rate (PDR, at most --loss), CSIT's
            // pair, by bisection below what the tester reaches; a failed trial is repeated
            // before it counts (search.rs). A connection rate has one search: its flows are
            // all new.
            let searched = if cps {
                &flow_sweep[..1]
            } else {
                &flow_sweep[..]
            };
            for &flows in searched {
                let mut trials: Vec<Point> = Vec::new();
                let mut searches = Searches::default();
                let mut trial = |rate: f64| -> io::Result<f64> {
                    let mut p = run(flows, Some(rate), args.trial_seconds, false)?;
                    p.search = true;
                    let loss = p.loss();
                    trials.push(p);
                    Ok(loss)
                };
                let (ndr, pdr) =
                    search::ndr_pdr(&mut searches, ceiling, SEARCH_STEPS, args.loss, &mut trial)?;
                // One point per trial, pushed in step with the search's log: the log's index
                // of a trial is its point's.
                assert_eq!(trials.len(), searches.trials.len());
                for (found, is_ndr) in [(pdr, false), (ndr, true)] {
                    let Some(at) = found.and_then(|f| searches.best_at(f.rate)) else {
                        eprintln!(
                            "  {flows:>9} flows: no {} found",
                            if is_ndr { "NDR" } else { "PDR" }
                        );
                        continue;
                    };
                    let mut p = trials[at].clone();
                    p.throughput = !is_ndr;
                    p.ndr = is_ndr;
                    points.push(p);
                }
                points.extend(trials);
                // Latency at fixed fractions of the NDR (p50 / p99 / p99.9 at 10%, 50% and
                // 90%), in windows as long as the sweep's, for more samples in the tail.
                let Some(ndr) = ndr.filter(|_| !cps) else {
                    continue;
                };
                for &load in &args.latency_loads {
                    let mut p = run(flows, Some(ndr.rate * load), seconds, false)?;
                    p.load = Some(load);
                    points.push(p);
                }
            }
        }
    }
    std::fs::create_dir_all(&args.out)?;
    let name = match (args.cps, args.ipv6) {
        (true, true) => "linerate-cps-ipv6",
        (true, false) => "linerate-cps",
        (false, true) if args.underlay6 => "linerate-ipv6-underlay6",
        (false, true) => "linerate-ipv6",
        (false, false) => "linerate",
    };
    std::fs::write(
        args.out.join(format!("{name}.json")),
        serde_json::to_string_pretty(&points).map_err(io::Error::other)?,
    )?;
    write_report(&args.out, name, &points, args.rate_flows, args.loss)?;
    eprintln!("linerate: table, points and plot in {}", args.out.display());
    // A path that delivered nothing, or let a packet out with the wrong source, fails the
    // run; so does the smoke's light load not getting through.
    for p in &points {
        let lossy = args.smoke && p.loss() > SMOKE_LOSS;
        if p.tester.arrived == 0 || p.tester.wrong_source > 0 || lossy {
            return Err(io::Error::other(format!(
                "{}: {} delivered, {} with a wrong source, {:.1}% lost",
                p.path,
                p.tester.arrived,
                p.tester.wrong_source,
                p.loss() * 100.0
            )));
        }
    }
    Ok(())
}

/// Loads `core` with a normal-priority thread busy 0%, 25%, 50%, 75% of each millisecond and
/// prints what the soak reads.
fn soak_check(core: usize) {
    let soak = Soak::start(&[core], Duration::from_millis(500));
    for share in [0.0, 0.25, 0.5, 0.75] {
        let before = soak.read();
        let load = std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: core });
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                let tick = std::time::Instant::now();
                while tick.elapsed().as_secs_f64() < share * 1e-3 {}
                std::thread::sleep(Duration::from_secs_f64((1.0 - share) * 1e-3));
            }
        });
        let _ = load.join();
        let busy = soak.busy_seconds(&before, &soak.read());
        println!(
            "load {:>3.0}% of 1 s: soak reads {:.3} busy core-seconds",
            share * 100.0,
            busy
        );
    }
}

fn rewrite_report(json: &std::path::Path, rate_flows: u32, loss: f64) -> io::Result<()> {
    let points: Vec<Point> =
        serde_json::from_str(&std::fs::read_to_string(json)?).map_err(io::Error::other)?;
    let name = json
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("linerate");
    write_report(
        json.parent().unwrap_or(std::path::Path::new(".")),
        name,
        &points,
        rate_flows,
        loss,
    )
}

/// Prints the tables and writes them (`name.md`) and the plot (`name.svg`, established
/// traffic only) into `dir`.
fn write_report(
    dir: &std::path::Path,
    name: &str,
    points: &[Point],
    rate_flows: u32,
    loss: f64,
) -> io::Result<()> {
    let table = report::tables(points, loss);
    println!("{table}");
    std::fs::write(dir.join(format!("{name}.md")), &table)?;
    if points.iter().all(|p| p.cps) {
        return Ok(());
    }
    std::fs::write(
        dir.join(format!("{name}.svg")),
        report::svg(points, rate_flows),
    )
}
