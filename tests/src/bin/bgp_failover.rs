//! How fast the router stops sending traffic to a node that stops serving: the time from an
//! event at the announcing speaker to the route's removal from the router's kernel table, with
//! FRR 8.4 as the router and three announcers side by side in the same run: egressgw's speaker,
//! GoBGP 3 and BIRD 2 (the table of LAB.md).
//!
//! `cargo run --release -p tests --bin bgp_failover -- [--runs 5] [--quick] [--only EVENT]`
//! (`--quick` skips the 9 s hold-time row; `--only` runs one row). Prints a markdown table of medians (and min-max).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::bgp_peer::{Lan, SpeakerProcess};
use tests::netns::{self, Netns};
use tests::routers::{gobgp_config, wait_until, Bird, Frr, Gobgp};

const ROUTER_CONF: &str = "frr defaults traditional
router bgp 64512
 bgp router-id 192.168.99.12
 neighbor 192.168.99.23 remote-as 64512
 neighbor 192.168.99.23 timers 3 9
 neighbor 192.168.99.23 bfd
 neighbor 192.168.99.24 remote-as 64512
 neighbor 192.168.99.24 timers 3 9
 neighbor 192.168.99.25 remote-as 64512
 neighbor 192.168.99.25 timers 3 9
 neighbor 192.168.99.25 bfd
 address-family ipv4 unicast
  maximum-paths ibgp 4
 exit-address-family
!
";

const BIRD_CONF: &str = r#"
router id 192.168.99.25;
protocol device {}
protocol static s1 { ipv4; route 192.168.66.103/32 blackhole; }
protocol bfd { interface "eth0" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }; }
protocol bgp r {
  local 192.168.99.25 as 64512;
  neighbor 192.168.99.12 as 64512;
  direct;
  bfd on;
  hold time 9;
  keepalive time 3;
  connect retry time 1;
  ipv4 { import none; export where proto = "s1"; next hop self; };
}
"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Event {
    Withdraw,
    Sigterm,
    Kill9,
    SilentHold,
    SilentBfd,
}

impl Event {
    fn short(self) -> &'static str {
        match self {
            Event::Withdraw => "withdraw",
            Event::Sigterm => "sigterm",
            Event::Kill9 => "kill9",
            Event::SilentHold => "hold",
            Event::SilentBfd => "bfd",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Event::Withdraw => "withdraw UPDATE",
            Event::Sigterm => "SIGTERM (NOTIFICATION cease)",
            Event::Kill9 => "kill -9 (TCP closes)",
            Event::SilentHold => "silent link loss, hold 9 s / keepalive 3 s",
            Event::SilentBfd => "silent link loss, BFD 300 ms x 3",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Egressgw,
    Gobgp,
    Bird,
}

impl Who {
    fn prefix(self) -> &'static str {
        match self {
            Who::Egressgw => "192.168.66.100",
            Who::Gobgp => "192.168.66.102",
            Who::Bird => "192.168.66.103",
        }
    }
    fn port(self) -> &'static str {
        match self {
            Who::Egressgw => "p1",
            Who::Gobgp => "p2",
            Who::Bird => "p3",
        }
    }
}

enum Running {
    Ours(SpeakerProcess),
    Gobgp(Gobgp),
    Bird(Bird),
}

struct Lab {
    router: Netns,
    nodes: [Netns; 3],
    lan: Lan,
    frr: Frr,
    deleted: mpsc::Receiver<(Instant, String)>,
    _monitor: Child,
}

impl Lab {
    fn new() -> Lab {
        let router = Netns::new("router").unwrap();
        let nodes = [
            Netns::new("m01").unwrap(),
            Netns::new("m02").unwrap(),
            Netns::new("m03").unwrap(),
        ];
        let lan = Lan::new(&[
            (&router, "192.168.99.12/24"),
            (&nodes[0], "192.168.99.23/24"),
            (&nodes[1], "192.168.99.24/24"),
            (&nodes[2], "192.168.99.25/24"),
        ])
        .unwrap();
        let frr = Frr::start(&router, ROUTER_CONF, true).unwrap();
        let mut monitor = router
            .command("ip")
            .args(["monitor", "route"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(monitor.stdout.take().unwrap());
        let (tx, deleted) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line.starts_with("Deleted") && tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Lab {
            router,
            nodes,
            lan,
            frr,
            deleted,
            _monitor: monitor,
        }
    }

    fn has_route(&self, prefix: &str) -> bool {
        self.router
            .run("ip", &["route", "show", prefix, "proto", "bgp"])
            .is_ok_and(|o| !o.stdout.is_empty())
    }

    /// Starts an announcer; without `bfd` the router's BFD session never comes up, and FRR
    /// then keeps BGP on its hold timer alone.
    fn start(&self, who: Who, bfd: bool) -> Running {
        match who {
            Who::Egressgw => {
                let mut args = vec![
                    "--as",
                    "64512",
                    "--router-id",
                    "192.168.99.23",
                    "--listen",
                    "192.168.99.23",
                    "--neighbor",
                    "192.168.99.12:64512:9",
                    "--announce",
                    who.prefix(),
                ];
                if bfd {
                    args.extend(["--bfd", "3:300"]);
                }
                Running::Ours(SpeakerProcess::start(&self.nodes[0], &args).unwrap())
            }
            Who::Gobgp => {
                let g = Gobgp::start(
                    &self.nodes[1],
                    &gobgp_config("192.168.99.24", "192.168.99.12", 64512, Some(1)),
                )
                .unwrap();
                g.cli(&["global", "rib", "add", &format!("{}/32", who.prefix())])
                    .unwrap();
                Running::Gobgp(g)
            }
            Who::Bird => {
                let conf = if bfd {
                    BIRD_CONF.to_owned()
                } else {
                    BIRD_CONF.replace("bfd on;", "bfd off;")
                };
                Running::Bird(Bird::start(&self.nodes[2], &conf).unwrap())
            }
        }
    }

    fn node(&self, who: Who) -> &Netns {
        match who {
            Who::Egressgw => &self.nodes[0],
            Who::Gobgp => &self.nodes[1],
            Who::Bird => &self.nodes[2],
        }
    }

    /// One measurement: start the announcer, wait for the route, cause `event`, time until
    /// the router's kernel deletes the route. `None` when the event does not apply.
    fn measure(&self, who: Who, event: Event, run: u32) -> Option<Duration> {
        if who == Who::Gobgp && event == Event::SilentBfd {
            return None; // GoBGP 3.10 has no BFD
        }
        let node = self.node(who);
        node.kill_all();
        let mut running = self.start(who, event == Event::SilentBfd);
        let prefix = who.prefix();
        assert!(
            wait_until(Duration::from_secs(60), || self.has_route(prefix)),
            "{who:?}: no route to {prefix}\n{}",
            self.frr.vtysh(&["show bgp summary"]).unwrap_or_default()
        );
        if event == Event::SilentBfd {
            let up = wait_until(Duration::from_secs(30), || {
                self.frr.vtysh(&["show bfd peers brief"]).is_ok_and(|o| {
                    o.lines()
                        .any(|l| l.contains(&node_ip(who)) && l.contains(" up "))
                })
            });
            assert!(
                up,
                "{who:?}: BFD not up\n{}",
                self.frr.vtysh(&["show bfd peers"]).unwrap()
            );
        }
        if matches!(event, Event::SilentHold | Event::SilentBfd) {
            // A link fails at a random moment, not just after the last keepalive: run `run`
            // waits 0.1 + (run * 0.7 mod 3) s, the same sequence for every announcer.
            let offset_ms = 100 + (u64::from(run) * 700) % 3000;
            std::thread::sleep(Duration::from_millis(offset_ms));
        }
        while self.deleted.try_recv().is_ok() {}
        let t0 = Instant::now();
        match (event, &mut running) {
            (Event::Withdraw, Running::Ours(s)) => s.command("announce").unwrap(),
            (Event::Withdraw, Running::Gobgp(g)) => {
                g.cli(&["global", "rib", "del", &format!("{prefix}/32")])
                    .unwrap();
            }
            (Event::Withdraw, Running::Bird(b)) => {
                b.birdc("disable s1").unwrap();
            }
            (Event::Sigterm | Event::Kill9, _) => {
                let signal = if event == Event::Sigterm {
                    "-TERM"
                } else {
                    "-KILL"
                };
                let pids = pids_named(node, daemon_name(who));
                assert!(!pids.is_empty(), "{who:?}: no {} process", daemon_name(who));
                Command::new("kill")
                    .arg(signal)
                    .args(&pids)
                    .status()
                    .unwrap();
            }
            (Event::SilentHold | Event::SilentBfd, _) => {
                self.lan
                    .switch
                    .ip(&["link", "set", who.port(), "down"])
                    .unwrap();
            }
        }
        let limit = Instant::now() + Duration::from_secs(30);
        let took = loop {
            let left = limit.saturating_duration_since(Instant::now());
            match self.deleted.recv_timeout(left) {
                Ok((at, line)) if line.contains(prefix) => break Some(at - t0),
                Ok(_) => {}
                Err(_) => break None,
            }
        };
        self.lan
            .switch
            .ip(&["link", "set", who.port(), "up"])
            .unwrap();
        node.kill_all();
        drop(running);
        // Let the router notice the old session is gone before the next run.
        wait_until(Duration::from_secs(20), || !self.has_route(prefix));
        took
    }
}

fn node_ip(who: Who) -> String {
    match who {
        Who::Egressgw => "192.168.99.23",
        Who::Gobgp => "192.168.99.24",
        Who::Bird => "192.168.99.25",
    }
    .to_owned()
}

/// Processes in namespace `ns` whose command name is `name` (pgrep would search every
/// namespace).
fn pids_named(ns: &Netns, name: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns.name()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(str::to_owned)
        .collect()
}

fn daemon_name(who: Who) -> &'static str {
    match who {
        Who::Egressgw => "bgp_speaker",
        Who::Gobgp => "gobgpd",
        Who::Bird => "bird",
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut runs = 5;
    let mut quick = false;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--quick" => quick = true,
            "--only" => only = args.next(),
            _ => panic!(
                "usage: bgp_failover [--runs N] [--quick] [--only withdraw|sigterm|kill9|hold|bfd]"
            ),
        }
    }
    netns::sweep_stale();
    netns::available().expect("needs root and iproute2");
    let lab = Lab::new();
    let events = [
        Event::Withdraw,
        Event::Sigterm,
        Event::Kill9,
        Event::SilentHold,
        Event::SilentBfd,
    ];
    let who = [Who::Egressgw, Who::Gobgp, Who::Bird];
    println!("| event at the announcing speaker | egressgw | GoBGP 3 | BIRD 2 |");
    println!("|---|---|---|---|");
    for event in events {
        if quick && event == Event::SilentHold || only.as_ref().is_some_and(|o| o != event.short())
        {
            continue;
        }
        let mut cells = Vec::new();
        for w in who {
            let mut times = Vec::new();
            let mut failed = 0;
            for run in 0..runs {
                match lab.measure(w, event, run) {
                    Some(t) => times.push(t),
                    None if w == Who::Gobgp && event == Event::SilentBfd => break,
                    None => failed += 1,
                }
            }
            cells.push(if times.is_empty() {
                if failed > 0 {
                    "route never removed".to_owned()
                } else {
                    "n/a (no BFD)".to_owned()
                }
            } else {
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                let lo = *times.iter().min().unwrap();
                let hi = *times.iter().max().unwrap();
                let m = median(&mut times);
                let extra = if failed > 0 {
                    format!(", {failed} lost")
                } else {
                    String::new()
                };
                format!(
                    "{:.0} ms ({:.0}-{:.0}, n={}{extra})",
                    ms(m),
                    ms(lo),
                    ms(hi),
                    times.len()
                )
            });
        }
        println!("| {} | {} |", event.label(), cells.join(" | "));
    }
}
