//! What this node's gateway should hold, computed from the cluster's objects by the rules
//! OVN-Kubernetes applies to EgressServices. Pure: objects in, state out; the watcher's I/O
//! only fetches the objects and sends the difference (`diff.rs`).
//!
//! - `sourceIPBy: LoadBalancerIP` (or unset) with a LoadBalancer IP: every address of the
//!   Service's non-FQDN EndpointSlices (ready or not; host-network addresses, which are node
//!   IPs, excluded) maps to the LB IP of its family: IPv4 endpoints to the last IPv4 ingress
//!   IP, IPv6 endpoints to the last IPv6 one (the seed's `egress-service-snat-v4` and
//!   `-v6` maps). A family without an ingress IP maps nothing.
//! - No LB IP, or no endpoints: nothing. `sourceIPBy: Network`: no SNAT, nothing here.
//! - The service is served by `status.host`; this node holds it only when that is this node.
//! - In a gateway set (`Hosting::GatewaySet`: egressgw nodes that share each egress IP,
//!   `[ha]`), every member holds every service, since any of them may carry its flows, and
//!   this node serves (is announced, owns port blocks) while it is Ready and some
//!   EgressService's `nodeSelector` admits it; otherwise it is drained, keeping its map for
//!   the flows it still carries.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::objects::{EgressService, EndpointSlice, Node, Service};
use crate::proto::{IpNet, L4Protocol, ServicePort};

/// Everything the watcher reads, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub egress_services: Vec<EgressService>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
}

/// The daemon's side of it: served egress IPs and the pod map with comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub served: BTreeSet<IpAddr>,
    /// pod -> (egress IP of the pod's family, "namespace/name" of the EgressService).
    pub map: BTreeMap<IpAddr, (IpAddr, String)>,
    /// pod -> the node it runs on, by where its tunnel comes from (`Node::tunnel_endpoint`:
    /// the IPv4 InternalIP for pods of either family, the IPv6 one on a single-stack IPv6
    /// node).
    pub pod_nodes: BTreeMap<IpAddr, IpAddr>,
    /// The Service's own ports on each served egress IP (its `spec.ports`): they stay the
    /// node's load balancer's.
    pub service_ports: BTreeMap<IpAddr, BTreeSet<ServicePort>>,
    /// The cluster's own networks as the nodes publish them (pod subnets, join, transit and
    /// masquerade subnets, node addresses): Geneve to them is not egress traffic.
    pub cluster_networks: BTreeSet<IpNet>,
    /// In a gateway set: whether this node serves (Ready, admitted by a `nodeSelector`) or
    /// is drained. None outside a gateway set.
    pub member: Option<bool>,
    /// Things the operator should know: a pod claimed by two services, an unusable LB IP.
    pub warnings: Vec<String>,
}

/// Which services a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// The one node in the service's `status.host` (OVN-Kubernetes' election, or ours in
    /// standalone mode).
    StatusHost,
    /// Every member of a gateway set holds every service; admission decides serving.
    GatewaySet,
}

/// The address families, as EndpointSlices name them.
const FAMILIES: [(&str, bool); 2] = [("IPv4", false), ("IPv6", true)];

/// The LB IP an EgressService's traffic of one family leaves with: the last ingress IP of
/// that family.
pub fn lb_ip(service: &Service, ipv6: bool) -> Option<IpAddr> {
    service
        .status
        .load_balancer
        .ingress
        .iter()
        .rev()
        .filter_map(|i| i.ip.as_deref()?.parse::<IpAddr>().ok())
        .find(|ip| ip.is_ipv6() == ipv6)
}

pub fn desired(cluster: &Cluster, this_node: &str) -> Desired {
    desired_with(cluster, this_node, Hosting::StatusHost)
}

pub fn desired_with(cluster: &Cluster, this_node: &str, hosting: Hosting) -> Desired {
    let mut out = Desired::default();
    if hosting == Hosting::GatewaySet {
        let node = cluster.nodes.iter().find(|n| n.metadata.name == this_node);
        out.member = Some(node.is_some_and(|n| {
            n.ready()
                && cluster
                    .egress_services
                    .iter()
                    .any(|es| by_lb_ip(es) && es.spec.node_selector.matches(&n.metadata.labels))
        }));
    }
    // A host-network pod's endpoint address is one of its node's.
    let node_ips: BTreeSet<IpAddr> = cluster
        .nodes
        .iter()
        .flat_map(|n| n.addresses(&["InternalIP", "ExternalIP"]))
        .collect();
    for n in &cluster.nodes {
        out.cluster_networks.extend(n.ovn_networks());
    }
    out.cluster_networks.extend(
        cluster
            .nodes
            .iter()
            .flat_map(|n| n.addresses(&["InternalIP"]))
            .filter_map(|ip| IpNet::new(ip, if ip.is_ipv6() { 128 } else { 32 })),
    );
    let mut services: Vec<&EgressService> = cluster.egress_services.iter().collect();
    // A stable order, so a pod in two services resolves the same way every time.
    services.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for es in services {
        let (ns, name) = (&es.metadata.namespace, &es.metadata.name);
        let comment = format!("{ns}/{name}");
        if !by_lb_ip(es) {
            continue; // "Network": no SNAT by us
        }
        if hosting == Hosting::StatusHost && es.status.host != this_node {
            continue;
        }
        let Some(service) = cluster
            .services
            .iter()
            .find(|s| &s.metadata.namespace == ns && &s.metadata.name == name)
        else {
            continue;
        };
        for (address_type, ipv6) in FAMILIES {
            let Some(egress_ip) = lb_ip(service, ipv6) else {
                continue;
            };
            let mut pods = Vec::new();
            for slice in cluster.endpoint_slices.iter().filter(|s| {
                &s.metadata.namespace == ns
                    && s.service_name() == Some(name)
                    && s.address_type == address_type
            }) {
                for ep in &slice.endpoints {
                    let node_ip = ep
                        .node_name
                        .as_ref()
                        .and_then(|n| cluster.nodes.iter().find(|node| &node.metadata.name == n))
                        .and_then(|n| n.tunnel_endpoint());
                    for a in &ep.addresses {
                        let Ok(pod) = a.parse::<IpAddr>() else {
                            continue;
                        };
                        if pod.is_ipv6() != ipv6 || node_ips.contains(&pod) {
                            continue; // host-network endpoint: its traffic is the node's own
                        }
                        pods.push((pod, node_ip));
                    }
                }
            }
            add_service_pods(&mut out, service, &comment, egress_ip, pods);
        }
    }
    out
}

/// Maps `pods` (with the nodes they run on) to `egress_ip`, which then serves with the
/// Service's ports; nothing when there are no pods.
fn add_service_pods(
    out: &mut Desired,
    service: &Service,
    comment: &str,
    egress_ip: IpAddr,
    pods: Vec<(IpAddr, Option<IpAddr>)>,
) {
    if pods.is_empty() {
        return;
    }
    out.served.insert(egress_ip);
    let mut ports = BTreeSet::new();
    for p in &service.spec.ports {
        let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => L4Protocol::Tcp,
            "UDP" => L4Protocol::Udp,
            other => {
                out.warnings.push(format!(
                    "{comment}: port {}/{other} is not steered to the node (TCP and UDP only)",
                    p.port
                ));
                continue;
            }
        };
        if p.port != 0 {
            ports.insert(ServicePort {
                protocol,
                port: p.port,
            });
        }
    }
    out.service_ports
        .entry(egress_ip)
        .or_default()
        .extend(ports);
    for (pod, node_ip) in pods {
        match out.map.get(&pod) {
            Some((_, other)) if *other != comment => out.warnings.push(format!(
                "pod {pod} is an endpoint of {other} and {comment}; {other} wins"
            )),
            Some(_) => {}
            None => {
                out.map.insert(pod, (egress_ip, comment.to_owned()));
                if let Some(n) = node_ip {
                    out.pod_nodes.insert(pod, n);
                }
            }
        }
    }
}

/// `sourceIPBy: LoadBalancerIP`, or unset: the traffic leaves with the LB IP, by us.
fn by_lb_ip(es: &EgressService) -> bool {
    es.spec
        .source_ip_by
        .as_deref()
        .is_none_or(|s| s == "LoadBalancerIP")
}

/// Standalone mode (no OVN-Kubernetes to set `status.host`): among Ready nodes matching the
/// service's node selector, a node serving no EgressService first, else the one serving the
/// fewest; ties by name. The current host is kept while it is still eligible.
pub fn elect_host(cluster: &Cluster, es: &EgressService) -> Option<String> {
    let eligible: Vec<&Node> = cluster
        .nodes
        .iter()
        .filter(|n| n.ready() && es.spec.node_selector.matches(&n.metadata.labels))
        .collect();
    if eligible.iter().any(|n| n.metadata.name == es.status.host) {
        return Some(es.status.host.clone());
    }
    let load = |node: &str| {
        cluster
            .egress_services
            .iter()
            .filter(|other| other.status.host == node && other.metadata != es.metadata)
            .count()
    };
    eligible
        .iter()
        .min_by_key(|n| (load(&n.metadata.name), n.metadata.name.clone()))
        .map(|n| n.metadata.name.clone())
}

/// The node label OVN-Kubernetes puts on the serving node.
pub fn host_label(es: &EgressService) -> String {
    format!(
        "egress-service.k8s.ovn.org/{}-{}",
        es.metadata.namespace, es.metadata.name
    )
}
