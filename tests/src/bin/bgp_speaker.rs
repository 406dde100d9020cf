//! The bgp crate's speaker on its own, for interop tests against FRR, BIRD and GoBGP:
//!
//! `bgp_speaker --as 64512 --router-id 192.168.99.23 [--listen IP]...
//!  --neighbor 192.168.99.12:64512[:hold] [--import all|PREFIX[:ge:le]]... [--bfd MULT:MS]
//!  [--mp on] [--next-hop-v4 IP] [--next-hop-v6 IP] [--announce IP]...`
//!
//! An IPv6 neighbour is written in brackets: `--neighbor [fd00:99::12]:64512:9`. Each session
//! offers its own family, both with `--mp on`; it starts from the listen address of its family,
//! which is also the next hop of that family's routes (the other family's: `--next-hop-*`).
//! An IPv6 prefix rule takes `/` for its range: `fd00::/16/48/64` (ge 48, le 64).
//!
//! Then reads commands on stdin, one per line: `announce IP...` (exactly these),
//! `status` (answers `neighbor ADDR STATE accepted=P,P rejected=N advertised=P,P bfd=STATE
//! families=F,F` lines and `end`), `reset ADDR`, `quit`. End of input and SIGTERM also quit,
//! with NOTIFICATION cease.

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgp::bfd::BfdConfig;
use bgp::filter::{ImportFilter, PrefixRule};
use bgp::speaker::{NeighborSpec, Speaker, SpeakerConfig, BGP_PORT};
use bgp::wire::{Family, Notification};

fn main() {
    // The tests ask for the speaker's log (their failure messages quote it).
    if let Some(level) = std::env::var("BGP_SPEAKER_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
    {
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .init();
    }
    if let Err(e) = run() {
        eprintln!("bgp_speaker: {e}");
        std::process::exit(2);
    }
}

fn parse_rule(s: &str) -> Result<PrefixRule, String> {
    // IPv4: PREFIX[:ge:le]; IPv6 (colons are its own): ADDR/LEN[/ge/le].
    let (prefix, rest) = if s.contains("::") || s.matches(':').count() > 2 {
        let mut fields = s.splitn(3, '/');
        let prefix = format!(
            "{}/{}",
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default()
        );
        (prefix, fields.next().unwrap_or_default().replace('/', ":"))
    } else {
        let (p, r) = s.split_once(':').unwrap_or((s, ""));
        (p.to_owned(), r.to_owned())
    };
    let mut parts = rest.split(':').filter(|p| !p.is_empty());
    let prefix = prefix.parse()?;
    let num = |p: Option<&str>| {
        p.map(|v| v.parse::<u8>().map_err(|e| format!("{s}: {e}")))
            .transpose()
    };
    PrefixRule::new(prefix, num(parts.next())?, num(parts.next())?)
}

fn run() -> Result<(), String> {
    let mut local_as = None;
    let mut router_id = None;
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut mp = false;
    let mut next_hop_v4 = None;
    let mut next_hop_v6 = None;
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
                let ip: IpAddr = value.parse().map_err(|e| bad(&e))?;
                listen.push(SocketAddr::new(ip, BGP_PORT));
            }
            "--mp" if value == "on" => mp = true,
            "--next-hop-v4" => next_hop_v4 = Some(value.parse::<Ipv4Addr>().map_err(|e| bad(&e))?),
            "--next-hop-v6" => next_hop_v6 = Some(value.parse::<Ipv6Addr>().map_err(|e| bad(&e))?),
            "--neighbor" => {
                // ADDR:AS[:hold], an IPv6 ADDR in brackets.
                let (address, rest) = match value.strip_prefix('[') {
                    Some(v6) => v6.split_once("]:").ok_or_else(|| bad(&"[ADDR]:AS"))?,
                    None => value.split_once(':').ok_or_else(|| bad(&"needs :AS"))?,
                };
                let address: IpAddr = address.parse().map_err(|e| bad(&e))?;
                let mut parts = rest.split(':');
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
                    families: vec![Family::of(address)],
                    next_hop_v4: None,
                    next_hop_v6: None,
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
            "--announce" => announce.push(value.parse::<IpAddr>().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    for n in &mut neighbors {
        n.import = import.clone();
        n.bfd = bfd;
        n.local_address = listen
            .iter()
            .map(SocketAddr::ip)
            .find(|ip| ip.is_ipv6() == n.address.is_ipv6());
        if mp {
            n.families = Family::ALL.to_vec();
        }
        (n.next_hop_v4, n.next_hop_v6) = (next_hop_v4, next_hop_v6);
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
                let ips: Result<Vec<IpAddr>, _> = words.map(str::parse).collect();
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
                        "neighbor {} {} accepted={} rejected={} advertised={} bfd={} families={}",
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
                        list(n.families.iter().map(ToString::to_string).collect()),
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
