use std::io::Read;
use std::net::Ipv4Addr;

use clap::Subcommand;
use control::proto::{MapEntry, Request, Response};

use crate::{done, Call, Printed};

#[derive(Subcommand, Debug)]
pub enum MapCommand {
    /// Map a pod to an egress IP (the IP must be served: egressctl egress add).
    Add {
        pod: Ipv4Addr,
        egress_ip: Ipv4Addr,
        /// Who asked for it, e.g. the EgressService's namespace/name.
        #[arg(long, default_value = "")]
        comment: String,
        /// The node the pod runs on: new flows of the pod are then accepted only through that
        /// node's tunnel.
        #[arg(long)]
        node: Option<Ipv4Addr>,
    },
    /// Remove a pod's mapping.
    Del { pod: Ipv4Addr },
    /// Print the map as nftables prints the seed's egress-service-snat-v4.
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
    let elements: Vec<String> = entries
        .iter()
        .map(|e| {
            if e.comment.is_empty() {
                format!("{} : {}", e.pod, e.egress_ip)
            } else {
                format!("{} comment {:?} : {}", e.pod, e.comment, e.egress_ip)
            }
        })
        .collect();
    let mut text = String::from("map egress-service-snat-v4 {\n\ttype ipv4_addr : ipv4_addr\n");
    if !elements.is_empty() {
        text.push_str(&format!(
            "\telements = {{ {} }}\n",
            elements.join(",\n\t\t     ")
        ));
    }
    text.push_str("}\n");
    Printed { text, ok: true }
}
