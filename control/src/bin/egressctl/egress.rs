use std::net::Ipv4Addr;

use clap::Subcommand;
use control::proto::{Request, Response};

use crate::{done, Call, Printed};

#[derive(Subcommand, Debug)]
pub enum EgressCommand {
    /// Serve an egress IP here: steer its replies to the dataplane, announce it over BGP.
    Add { ip: Ipv4Addr },
    /// Stop serving it (refused while pods map to it).
    Del { ip: Ipv4Addr },
    /// The egress IPs this node serves.
    List,
}

pub fn request(c: EgressCommand) -> Call {
    match c {
        EgressCommand::Add { ip } => (Request::EgressAdd { ip }, done),
        EgressCommand::Del { ip } => (Request::EgressRemove { ip }, done),
        EgressCommand::List => (Request::EgressList, render),
    }
}

fn render(r: &Response) -> Printed {
    let Response::EgressIps { ips } = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let text = ips.iter().map(|ip| format!("{ip}\n")).collect();
    Printed { text, ok: true }
}
