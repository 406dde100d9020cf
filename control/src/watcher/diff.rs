//! The control requests that take the daemon from what it holds to what is desired: only the
//! difference, in an order that never leaves a pod mapped to an IP not served and never
//! steers a new pod's east-west traffic to the dataplane (the cluster's networks first, then
//! serve new IPs, then set and delete mappings in one atomic request, then stop serving old
//! IPs). In a gateway set a drain goes first (the routes leave before anything else changes)
//! and a return to service last (the node holds the map before it is announced).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::desired::Desired;
use crate::proto::{EgressIp, IpNet, MapEntry, Request, ServicePort};

/// What the daemon holds now (from `egress list` and `map list`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub served: BTreeSet<IpAddr>,
    pub map: BTreeMap<IpAddr, (IpAddr, String)>,
    pub nodes: BTreeMap<IpAddr, IpAddr>,
    pub service_ports: BTreeMap<IpAddr, BTreeSet<ServicePort>>,
    /// The networks the daemon learned from the cluster (not its configuration file's).
    pub cluster_networks: BTreeSet<IpNet>,
    /// In a gateway set: whether the daemon is drained (or draining). None when unknown.
    pub draining: Option<bool>,
}

impl Current {
    /// From `egress list`, `map list` and `cluster list` (its learned part).
    pub fn from_lists(
        egress: Vec<EgressIp>,
        entries: Vec<MapEntry>,
        learned: Vec<IpNet>,
    ) -> Current {
        Current {
            served: egress.iter().map(|e| e.ip).collect(),
            service_ports: egress
                .into_iter()
                .filter(|e| !e.service_ports.is_empty())
                .map(|e| (e.ip, e.service_ports.into_iter().collect()))
                .collect(),
            cluster_networks: learned.into_iter().collect(),
            nodes: entries
                .iter()
                .filter_map(|e| Some((e.pod, e.node?)))
                .collect(),
            map: entries
                .into_iter()
                .map(|e| (e.pod, (e.egress_ip, e.comment)))
                .collect(),
            draining: None,
        }
    }
}

/// New egress IPs first, then every mapping change in one atomic `map_update`, then the IPs
/// no longer served.
pub fn requests(current: &Current, desired: &Desired) -> Vec<Request> {
    let mut out = Vec::new();
    let drain = desired.member.map(|m| !m);
    if drain == Some(true) && current.draining != Some(true) {
        out.push(Request::HaDrain { drain: true });
    }
    if current.cluster_networks != desired.cluster_networks {
        out.push(Request::ClusterSet {
            networks: desired.cluster_networks.iter().copied().collect(),
        });
    }
    let none = BTreeSet::new();
    for ip in &desired.served {
        let want = desired.service_ports.get(ip).unwrap_or(&none);
        if !current.served.contains(ip) || current.service_ports.get(ip).unwrap_or(&none) != want {
            out.push(Request::EgressAdd {
                ip: *ip,
                service_ports: want.iter().copied().collect(),
            });
        }
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
    let delete: Vec<IpAddr> = current
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
    if drain == Some(false) && current.draining != Some(false) {
        out.push(Request::HaDrain { drain: false });
    }
    out
}
