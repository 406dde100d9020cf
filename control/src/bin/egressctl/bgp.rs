use clap::Subcommand;
use control::proto::{Request, Response};

use crate::{table, Call, Printed};

#[derive(Subcommand, Debug)]
pub enum BgpCommand {
    /// Sessions: state, uptime, routes accepted and rejected, what we announce, BFD.
    Neighbors,
    /// Routes received from neighbours that passed the import filter.
    Routes,
}

pub fn request(c: BgpCommand) -> Call {
    match c {
        BgpCommand::Neighbors => (Request::BgpNeighbors, neighbors),
        BgpCommand::Routes => (Request::BgpRoutes, routes),
    }
}

fn neighbors(r: &Response) -> Printed {
    let Response::BgpNeighbors { neighbors } = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let rows: Vec<Vec<String>> = neighbors
        .iter()
        .map(|n| {
            vec![
                n.address.to_string(),
                n.asn.to_string(),
                n.state.clone(),
                if n.families.is_empty() {
                    "-".into()
                } else {
                    n.families.join(",")
                },
                n.established_secs.map_or("-".into(), |s| format!("{s}s")),
                format!("{}/{}", n.accepted, n.rejected),
                if n.advertised.is_empty() {
                    "-".into()
                } else {
                    n.advertised.join(",")
                },
                n.bfd.clone().unwrap_or_else(|| "-".into()),
                n.last_down.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = [
        "neighbor",
        "as",
        "state",
        "families",
        "up",
        "accepted/rejected",
        "announced",
        "bfd",
        "last down",
    ];
    Printed {
        text: table(&header, &rows),
        ok: true,
    }
}

fn routes(r: &Response) -> Printed {
    let Response::BgpRoutes { routes } = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| vec![r.prefix.clone(), r.next_hop.to_string(), r.from.to_string()])
        .collect();
    Printed {
        text: table(&["prefix", "next hop", "from"], &rows),
        ok: true,
    }
}
