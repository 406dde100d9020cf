//! The bgp crate's speaker on its own, for interop tests against FRR, BIRD and GoBGP:
//!
//! `bgp_speaker --as 64512 --router-id 192.168.99.23 [--listen 192.168.99.23]
//!  --neighbor 192.168.99.12:64512[:hold] [--import all|PREFIX[:ge:le]]... [--bfd MULT:MS]
//!  [--announce IP]...`
//!
//! Then reads commands on stdin, one per line: `announce IP...` (exactly these),
//! `status` (answers `neighbor ADDR STATE accepted=P,P rejected=N advertised=P,P bfd=STATE`
//! lines and `end`), `reset ADDR`, `quit`. End of input and SIGTERM also quit, with
//! NOTIFICATION cease.

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgp::bfd::BfdConfig;
use bgp::filter::{ImportFilter, PrefixRule};
use bgp::speaker::{NeighborSpec, Speaker, SpeakerConfig, BGP_PORT};
use bgp::wire::Notification;

fn main() {
    if let Err(e) = run() {
        eprintln!("bgp_speaker: {e}");
        std::process::exit(2);
    }
}

fn parse_rule(s: &str) -> Result<PrefixRule, String> {
    let mut parts = s.split(':');
    let prefix = parts.next().unwrap_or_default().parse()?;
    let num = |p: Option<&str>| {
        p.map(|v| v.parse::<u8>().map_err(|e| format!("{s}: {e}")))
            .transpose()
    };
    PrefixRule::new(prefix, num(parts.next())?, num(parts.next())?)
}

fn run() -> Result<(), String> {
    let mut local_as = None;
    let mut router_id = None;
    let mut listen = None;
    let mut neighbors = Vec::new();
    let mut import = ImportFilter::None;
    let mut announce = Vec::new();
    let mut bfd = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--as" => local_as = Some(value.parse::<u32>().map_err(|e| bad(&e))?),
            "--router-id" => router_id = Some(value.parse::<Ipv4Addr>().map_err(|e| bad(&e))?),
            "--listen" => {
                let ip: Ipv4Addr = value.parse().map_err(|e| bad(&e))?;
                listen = Some(SocketAddr::from((ip, BGP_PORT)));
            }
            "--neighbor" => {
                let mut parts = value.split(':');
                let address = parts
                    .next()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| bad(&e))?;
                let peer_as = parts
                    .next()
                    .ok_or_else(|| bad(&"needs :AS"))?
                    .parse()
                    .map_err(|e| bad(&e))?;
                let hold_time = parts
                    .next()
                    .map_or(Ok(9), str::parse)
                    .map_err(|e| bad(&e))?;
                neighbors.push(NeighborSpec {
                    address,
                    port: BGP_PORT,
                    peer_as,
                    local_address: None,
                    hold_time,
                    connect_retry: Duration::from_secs(1),
                    passive: false,
                    import: ImportFilter::None,
                    bfd: None,
                });
            }
            "--import" if value == "all" => import = ImportFilter::All,
            "--import" => {
                let rule = parse_rule(&value)?;
                match &mut import {
                    ImportFilter::Filtered(rules) => rules.push(rule),
                    other => *other = ImportFilter::Filtered(vec![rule]),
                }
            }
            "--bfd" => {
                // MULT:INTERVAL_MS, for every neighbour.
                let (mult, ms) = value.split_once(':').ok_or_else(|| bad(&"MULT:MS"))?;
                let interval = Duration::from_millis(ms.parse().map_err(|e| bad(&e))?);
                bfd = Some(BfdConfig {
                    desired_min_tx: interval,
                    required_min_rx: interval,
                    detect_mult: mult.parse().map_err(|e| bad(&e))?,
                });
            }
            "--announce" => announce.push(value.parse::<Ipv4Addr>().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    for n in &mut neighbors {
        n.import = import.clone();
        n.bfd = bfd;
        n.local_address = listen.map(|l: SocketAddr| match l.ip() {
            std::net::IpAddr::V4(v4) => v4,
            std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        });
    }
    let speaker = Speaker::spawn(SpeakerConfig {
        local_as: local_as.ok_or("--as is required")?,
        router_id: router_id.ok_or("--router-id is required")?,
        listen,
        neighbors,
    })
    .map_err(|e| e.to_string())?;
    speaker.announce_exactly(announce);
    // SIGTERM: NOTIFICATION cease to every peer (dropping the speaker), then exit, as the
    // daemon does.
    let shared = Arc::new(Mutex::new(Some(speaker)));
    let on_term = Arc::clone(&shared);
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM])
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            drop(on_term.lock().unwrap_or_else(|e| e.into_inner()).take());
            std::process::exit(0);
        }
    });
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let guard = shared.lock().unwrap_or_else(|e| e.into_inner());
        let Some(speaker) = guard.as_ref() else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("announce") => {
                let ips: Result<Vec<Ipv4Addr>, _> = words.map(str::parse).collect();
                speaker.announce_exactly(ips.map_err(|e| format!("{line}: {e}"))?);
            }
            Some("reset") => {
                let ip = words
                    .next()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| format!("{line}: {e}"))?;
                speaker.reset(ip, Notification::cease(Notification::CEASE_ADMIN_RESET));
            }
            Some("status") => {
                let mut out = stdout.lock();
                for n in speaker.status().neighbors {
                    let list = |v: Vec<String>| {
                        if v.is_empty() {
                            "-".to_owned()
                        } else {
                            v.join(",")
                        }
                    };
                    let _ = writeln!(
                        out,
                        "neighbor {} {} accepted={} rejected={} advertised={} bfd={}",
                        n.address,
                        n.state.name(),
                        list(
                            n.accepted
                                .iter()
                                .map(|r| format!("{}@{}", r.prefix, r.next_hop))
                                .collect()
                        ),
                        n.rejected,
                        list(n.advertised.iter().map(ToString::to_string).collect()),
                        n.bfd.map_or("-".to_owned(), |(state, _)| state),
                    );
                }
                let _ = writeln!(out, "end");
                let _ = out.flush();
            }
            Some("quit") => break,
            _ => eprintln!("bgp_speaker: unknown command {line:?}"),
        }
    }
    drop(shared.lock().unwrap_or_else(|e| e.into_inner()).take());
    Ok(())
}
