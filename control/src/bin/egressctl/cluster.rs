use clap::Subcommand;
use control::proto::{IpNet, Request, Response};

use crate::{done, table, Call, Printed};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// The cluster's own networks: Geneve to them is east-west, left to the node's OVS.
    List,
    /// Replace the networks learned from the cluster (the configuration file's stay).
    Set {
        #[arg(value_name = "NETWORK")]
        networks: Vec<IpNet>,
    },
}

pub fn request(c: ClusterCommand) -> Call {
    match c {
        ClusterCommand::List => (Request::ClusterList, render),
        ClusterCommand::Set { networks } => (Request::ClusterSet { networks }, done),
    }
}

fn render(r: &Response) -> Printed {
    let Response::Cluster {
        configured,
        learned,
    } = r
    else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let rows: Vec<Vec<String>> = configured
        .iter()
        .map(|n| vec![n.to_string(), "configuration".into()])
        .chain(
            learned
                .iter()
                .map(|n| vec![n.to_string(), "cluster".into()]),
        )
        .collect();
    Printed {
        text: table(&["network", "from"], &rows),
        ok: true,
    }
}
