//! `egressctl`: the operator's CLI for a running egressgw, over its control socket. One file
//! per noun; each prints a human table by default and the daemon's JSON with `-o json`.
//!
//! Exit codes: 0 done; 1 the daemon refused (or, for `health`, is unhealthy; for `ha`, not
//! in sync; for `drain`, not drained within its timeout); 2 usage;
//! 3 the daemon cannot be reached.

mod bgp;
mod capture;
mod cluster;
mod egress;
mod ha;
mod health;
mod map;
mod pods;
mod sessions;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use control::client::{Client, ClientError};
use control::proto::{Request, Response, DEFAULT_SOCKET};

#[derive(Parser, Debug)]
#[command(name = "egressctl", version, about = "Control a running egressgw")]
struct Cli {
    /// The daemon's control socket.
    #[arg(short, long, global = true, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The pod -> egress-IP map (the seed's egress-service-snat-v4).
    #[command(subcommand)]
    Map(map::MapCommand),
    /// Egress IPs this node serves.
    #[command(subcommand)]
    Egress(egress::EgressCommand),
    /// The cluster's own networks (east-west destinations, never SNATed).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Packet, drop and session counters, per worker.
    Stats,
    /// The pods with the most live sessions and the most new flows refused by the per-pod
    /// limits (nat.fair_share), and the limits.
    Top {
        /// How many pods of each.
        #[arg(short = 'n', long, default_value_t = 10)]
        count: u32,
    },
    /// Live NAT sessions (filters: --pod, --egress-ip, --protocol).
    Sessions(sessions::SessionsArgs),
    /// BGP neighbours and received routes.
    #[command(subcommand)]
    Bgp(bgp::BgpCommand),
    /// Dataplane and BGP health; exits 1 when the dataplane is not healthy.
    Health,
    /// The gateway set: members, port blocks, sync lag, counters; exits 1 while not in sync.
    Ha,
    /// Takes this member of its gateway set out of service, losing no flow; waits until drained
    ///
    /// Its routes are withdrawn at once (the peers translate its replies from their replicas);
    /// its port blocks go to the serving members once the pods have moved (no egress packet for
    /// ha.drain_quiet_ms) or after ha.drain_timeout_ms. It still carries the flows it has.
    Drain(ha::DrainArgs),
    /// Puts a drained member back into service: its share of the blocks, its routes announced
    Undrain,
    /// The path of the next packets through the pipeline (decap, map, session, rewrite, out or
    /// drop reason).
    Trace(capture::TraceArgs),
    /// The next packets, before and after translation, as a pcap file.
    Capture(capture::CaptureArgs),
}

/// A request and how to print its response.
pub type Call = (Request, fn(&Response) -> Printed);

/// What a command prints, and whether it counts as success.
#[derive(Debug)]
pub struct Printed {
    pub text: String,
    pub ok: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Trace, capture and drain talk to the daemon several times; the rest is one request.
    if let Command::Trace(_) | Command::Capture(_) | Command::Drain(_) = &cli.command {
        let result = Client::connect(&cli.socket).and_then(|mut c| match &cli.command {
            Command::Trace(a) => capture::trace(&mut c, a).map(|text| Printed { text, ok: true }),
            Command::Capture(a) => {
                capture::capture(&mut c, a).map(|text| Printed { text, ok: true })
            }
            Command::Drain(a) => ha::drain(&mut c, a),
            _ => unreachable!("matched above"),
        });
        return match result {
            Ok(printed) => emit(&printed.text, printed.ok),
            Err(e) => failed(e),
        };
    }
    let (request, render): Call = match cli.command {
        Command::Map(c) => match map::request(c) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("egressctl: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Egress(c) => egress::request(c),
        Command::Cluster(c) => cluster::request(c),
        Command::Stats => (Request::Stats, stats::render),
        Command::Sessions(a) => sessions::request(a),
        Command::Top { count } => (Request::Pods { top: Some(count) }, pods::render),
        Command::Bgp(c) => bgp::request(c),
        Command::Health => (Request::Health, health::render),
        Command::Ha => (Request::Ha, ha::render),
        Command::Undrain => (Request::HaDrain { drain: false }, ha::render),
        Command::Trace(_) | Command::Capture(_) | Command::Drain(_) => {
            unreachable!("handled above")
        }
    };
    let result = Client::connect(&cli.socket).and_then(|mut c| c.request(request));
    match result {
        Ok(response) => {
            let printed = render(&response);
            let text = match cli.output {
                Format::Json => {
                    serde_json::to_string_pretty(&response).expect("responses serialize") + "\n"
                }
                Format::Table => printed.text,
            };
            emit(&text, printed.ok)
        }
        Err(e) => failed(e),
    }
}

/// Prints a command's output and gives its exit code. A reader that left early (`| grep -q`,
/// `| head`) took what it wanted: that changes nothing about the command's result, so it is
/// neither a panic nor a failure (under `set -o pipefail` either would fail the pipeline).
fn emit(text: &str, ok: bool) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("egressctl: cannot print: {e}");
            ExitCode::from(1)
        }
        _ if ok => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn failed(e: ClientError) -> ExitCode {
    match e {
        ClientError::Connect(_) => {
            eprintln!("egressctl: {e} (is egressgw running? -s sets the socket)");
            ExitCode::from(3)
        }
        _ => {
            eprintln!("egressctl: {e}");
            ExitCode::from(1)
        }
    }
}

/// Left-aligned columns with two spaces between them.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn done(_: &Response) -> Printed {
    Printed {
        text: String::new(),
        ok: true,
    }
}
