//! The control requests that take the daemon from what it holds to what is desired: only the
//! difference, in an order that never leaves a pod mapped to an IP not served (serve new IPs,
//! then set and delete mappings in one atomic request, then stop serving old IPs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::desired::Desired;
use crate::proto::{MapEntry, Request};

/// What the daemon holds now (from `egress list` and `map list`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub served: BTreeSet<Ipv4Addr>,
    pub map: BTreeMap<Ipv4Addr, (Ipv4Addr, String)>,
    pub nodes: BTreeMap<Ipv4Addr, Ipv4Addr>,
}

impl Current {
    pub fn from_lists(served: Vec<Ipv4Addr>, entries: Vec<MapEntry>) -> Current {
        Current {
            served: served.into_iter().collect(),
            nodes: entries
                .iter()
                .filter_map(|e| Some((e.pod, e.node?)))
                .collect(),
            map: entries
                .into_iter()
                .map(|e| (e.pod, (e.egress_ip, e.comment)))
                .collect(),
        }
    }
}

/// New egress IPs first, then every mapping change in one atomic `map_update`, then the IPs
/// no longer served.
pub fn requests(current: &Current, desired: &Desired) -> Vec<Request> {
    let mut out = Vec::new();
    for ip in desired.served.difference(&current.served) {
        out.push(Request::EgressAdd { ip: *ip });
    }
    let set: Vec<MapEntry> = desired
        .map
        .iter()
        .filter(|(pod, want)| {
            current.map.get(*pod) != Some(*want)
                || current.nodes.get(*pod) != desired.pod_nodes.get(*pod)
        })
        .map(|(pod, (egress_ip, comment))| MapEntry {
            pod: *pod,
            egress_ip: *egress_ip,
            comment: comment.clone(),
            node: desired.pod_nodes.get(pod).copied(),
        })
        .collect();
    let delete: Vec<Ipv4Addr> = current
        .map
        .keys()
        .filter(|p| !desired.map.contains_key(p))
        .copied()
        .collect();
    if !set.is_empty() || !delete.is_empty() {
        out.push(Request::MapUpdate { set, delete });
    }
    for ip in current.served.difference(&desired.served) {
        out.push(Request::EgressRemove { ip: *ip });
    }
    out
}
