//! `egressgw --config PATH`: the egress gateway daemon. SIGTERM or SIGINT stop it (the
//! steering program is detached on the way out); SIGHUP reloads the pod map and egress IPs.

use gateway::daemon::config::Config;
use gateway::daemon::{self, Signals};
use std::path::PathBuf;
use std::sync::Arc;

fn main() {
    // Colours only for a terminal: logs in files and journals stay plain text.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args: Vec<String> = std::env::args().collect();
    let path = match args.as_slice() {
        [_, flag, path] if flag == "--config" || flag == "-c" => PathBuf::from(path),
        _ => {
            eprintln!("usage: egressgw --config PATH");
            std::process::exit(2);
        }
    };
    let config = Config::load(&path).unwrap_or_else(|e| {
        eprintln!("egressgw: {e}");
        std::process::exit(2);
    });
    let signals = Signals::default();
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for (sig, flag) in [
        (SIGTERM, &signals.stop),
        (SIGINT, &signals.stop),
        (SIGHUP, &signals.reload),
    ] {
        signal_hook::flag::register(sig, Arc::clone(flag)).expect("installing a signal handler");
    }
    if let Err(e) = daemon::run(&path, config, &signals) {
        eprintln!("egressgw: {e}");
        std::process::exit(1);
    }
}
