//! The control requests that take the daemon from what it holds to what is desired: only the
//! difference, in an order that never leaves a pod mapped to an IP not served (serve new IPs,
//! then set and delete mappings, then stop serving old IPs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::desired::Desired;
use crate::proto::{MapEntry, Request};

/// What the daemon holds now (from `egress list` and `map list`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub served: BTreeSet<Ipv4Addr>,
    pub map: BTreeMap<Ipv4Addr, (Ipv4Addr, String)>,
}

impl Current {
    pub fn from_lists(served: Vec<Ipv4Addr>, entries: Vec<MapEntry>) -> Current {
        Current {
            served: served.into_iter().collect(),
            map: entries
                .into_iter()
                .map(|e| (e.pod, (e.egress_ip, e.comment)))
                .collect(),
        }
    }
}

pub fn requests(current: &Current, desired: &Desired) -> Vec<Request> {
    let mut out = Vec::new();
    for ip in desired.served.difference(&current.served) {
        out.push(Request::EgressAdd { ip: *ip });
    }
    for (pod, (egress_ip, comment)) in &desired.map {
        if current.map.get(pod) != Some(&(*egress_ip, comment.clone())) {
            out.push(Request::MapSet {
                entry: MapEntry {
                    pod: *pod,
                    egress_ip: *egress_ip,
                    comment: comment.clone(),
                },
            });
        }
    }
    for pod in current.map.keys().filter(|p| !desired.map.contains_key(p)) {
        out.push(Request::MapDelete { pod: *pod });
    }
    for ip in current.served.difference(&desired.served) {
        out.push(Request::EgressRemove { ip: *ip });
    }
    out
}
