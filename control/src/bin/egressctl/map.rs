use std::io::Read;
use std::net::IpAddr;

use clap::Subcommand;
use control::proto::{MapEntry, Request, Response};

use crate::{done, Call, Printed};

#[derive(Subcommand, Debug)]
pub enum MapCommand {
    /// Map a pod to an egress IP of its family, IPv4 or IPv6 (the IP must be served:
    /// egressctl egress add).
    Add {
        pod: IpAddr,
        egress_ip: IpAddr,
        /// Who asked for it, e.g. the EgressService's namespace/name.
        #[arg(long, default_value = "")]
        comment: String,
        /// The node the pod runs on: new flows of the pod are then accepted only through that
        /// node's tunnel.
        #[arg(long)]
        node: Option<IpAddr>,
    },
    /// Remove a pod's mapping.
    Del { pod: IpAddr },
    /// Print the maps as nftables prints the seed's egress-service-snat-v4 and -v6.
    List,
    /// Replace the whole map at once with the JSON array of {pod, egress_ip, comment} in FILE
    /// ("-": standard input).
    Replace { file: String },
}

pub fn request(c: MapCommand) -> Result<Call, String> {
    Ok(match c {
        MapCommand::Add {
            pod,
            egress_ip,
            comment,
            node,
        } => (
            Request::MapSet {
                entry: MapEntry {
                    pod,
                    egress_ip,
                    comment,
                    node,
                },
            },
            done,
        ),
        MapCommand::Del { pod } => (Request::MapDelete { pod }, done),
        MapCommand::List => (Request::MapList, render),
        MapCommand::Replace { file } => {
            let mut text = String::new();
            let read = if file == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(&file).map(|t| text = t)
            };
            read.map_err(|e| format!("{file}: {e}"))?;
            let entries: Vec<MapEntry> =
                serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
            (Request::MapReplace { entries }, done)
        }
    })
}

fn render(r: &Response) -> Printed {
    let Response::Map { entries } = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let mut text = String::new();
    for (family, ipv6) in [("4", false), ("6", true)] {
        let elements: Vec<String> = entries
            .iter()
            .filter(|e| e.pod.is_ipv6() == ipv6)
            .map(|e| {
                if e.comment.is_empty() {
                    format!("{} : {}", e.pod, e.egress_ip)
                } else {
                    format!("{} comment {:?} : {}", e.pod, e.comment, e.egress_ip)
                }
            })
            .collect();
        text.push_str(&format!(
            "map egress-service-snat-v{family} {{\n\ttype ipv{family}_addr : ipv{family}_addr\n"
        ));
        if !elements.is_empty() {
            text.push_str(&format!(
                "\telements = {{ {} }}\n",
                elements.join(",\n\t\t     ")
            ));
        }
        text.push_str("}\n");
    }
    Printed { text, ok: true }
}
