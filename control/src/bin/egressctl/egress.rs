use std::net::IpAddr;

use clap::Subcommand;
use control::proto::{Request, Response, ServicePort};

use crate::{done, table, Call, Printed};

#[derive(Subcommand, Debug)]
pub enum EgressCommand {
    /// Serve an egress IP here: steer its replies to the dataplane, announce it over BGP. Again
    /// on a served IP: set its Service ports.
    Add {
        /// IPv4 or IPv6.
        ip: IpAddr,
        /// The Service's own ports on this IP (`8080/tcp`), left to the node's load balancer
        /// and never used for SNAT; repeat for more.
        #[arg(long = "service-port", value_name = "PORT/PROTO")]
        service_ports: Vec<ServicePort>,
    },
    /// Stop serving it (refused while pods map to it).
    Del { ip: IpAddr },
    /// The egress IPs this node serves, with their Service ports.
    List,
}

pub fn request(c: EgressCommand) -> Call {
    match c {
        EgressCommand::Add { ip, service_ports } => {
            (Request::EgressAdd { ip, service_ports }, done)
        }
        EgressCommand::Del { ip } => (Request::EgressRemove { ip }, done),
        EgressCommand::List => (Request::EgressList, render),
    }
}

fn render(r: &Response) -> Printed {
    let Response::EgressIps { egress } = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let rows: Vec<Vec<String>> = egress
        .iter()
        .map(|e| {
            let ports: Vec<String> = e.service_ports.iter().map(|p| p.to_string()).collect();
            vec![
                e.ip.to_string(),
                if ports.is_empty() {
                    "-".into()
                } else {
                    ports.join(",")
                },
            ]
        })
        .collect();
    Printed {
        text: table(&["egress ip", "service ports (the node's)"], &rows),
        ok: true,
    }
}
