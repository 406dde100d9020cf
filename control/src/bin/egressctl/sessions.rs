use std::net::{IpAddr, SocketAddr};

use clap::{Args, ValueEnum};
use control::proto::{Protocol, Request, Response, SessionFilter};

use crate::{table, Call, Printed};

#[derive(Args, Debug)]
pub struct SessionsArgs {
    /// Only this pod's sessions.
    #[arg(long)]
    pod: Option<IpAddr>,
    /// Only sessions translated to this egress IP.
    #[arg(long)]
    egress_ip: Option<IpAddr>,
    #[arg(long, value_enum)]
    protocol: Option<Proto>,
    /// Print at most this many (the count of all matching ones is printed too).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Free the matching sessions instead of listing them (their flows start over).
    #[arg(long)]
    flush: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

pub fn request(a: SessionsArgs) -> Call {
    let protocol = a.protocol.map(|p| match p {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
        Proto::Icmp => Protocol::Icmp,
    });
    let filter = SessionFilter {
        pod: a.pod,
        egress_ip: a.egress_ip,
        protocol,
    };
    if a.flush {
        return (Request::SessionFlush { filter }, flushed);
    }
    (
        Request::Sessions {
            filter,
            limit: Some(a.limit),
        },
        render,
    )
}

fn flushed(r: &Response) -> Printed {
    let Response::Flushed {
        sessions,
        workers_pending,
    } = r
    else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let mut text = format!("flushed {sessions} sessions\n");
    if *workers_pending > 0 {
        text.push_str(&format!(
            "{workers_pending} worker(s) did not answer in time (stalled?)\n"
        ));
    }
    Printed {
        text,
        ok: *workers_pending == 0,
    }
}

fn render(r: &Response) -> Printed {
    let Response::Sessions { sessions, matched } = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.protocol.clone(),
                SocketAddr::new(s.pod, s.pod_port).to_string(),
                SocketAddr::new(s.egress_ip, s.egress_port).to_string(),
                SocketAddr::new(s.remote, s.remote_port).to_string(),
                s.state.clone(),
                format!("{}s", s.idle_secs),
                s.node.to_string(),
            ]
        })
        .collect();
    let header = [
        "proto",
        "pod",
        "translated to",
        "remote",
        "state",
        "idle",
        "pod node",
    ];
    let mut text = table(&header, &rows);
    text.push_str(&format!(
        "{} of {matched} matching sessions shown\n",
        sessions.len()
    ));
    Printed { text, ok: true }
}
