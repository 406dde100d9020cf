//! The parts of the Kubernetes objects the watcher reads, as serde types with the API's JSON
//! field names: what the API server sends deserializes straight into them, and tests build
//! them as plain values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub resource_version: String,
}

/// k8s.ovn.org/v1 EgressService.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressService {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: EgressServiceSpec,
    #[serde(default)]
    pub status: EgressServiceStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressServiceSpec {
    /// "LoadBalancerIP" (the default when absent) or "Network".
    pub source_ip_by: Option<String>,
    #[serde(default)]
    pub node_selector: LabelSelector,
    pub network: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressServiceStatus {
    /// The node serving the service; OVN-Kubernetes sets it, or the watcher in standalone mode.
    #[serde(default)]
    pub host: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default)]
    pub status: ServiceStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    #[serde(default)]
    pub ports: Vec<ServicePortSpec>,
}

/// One of a Service's ports: on its LoadBalancer IP, `port` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePortSpec {
    /// "TCP" (the default when absent), "UDP" or "SCTP".
    pub protocol: Option<String>,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default)]
    pub load_balancer: LoadBalancerStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerStatus {
    #[serde(default)]
    pub ingress: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerIngress {
    pub ip: Option<String>,
    pub hostname: Option<String>,
}

/// discovery.k8s.io/v1 EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    pub metadata: ObjectMeta,
    /// "IPv4", "IPv6" or "FQDN".
    pub address_type: String,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

impl EndpointSlice {
    /// The service this slice belongs to (label kubernetes.io/service-name).
    pub fn service_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .get("kubernetes.io/service-name")
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub addresses: Vec<String>,
    pub node_name: Option<String>,
    #[serde(default)]
    pub conditions: EndpointConditions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointConditions {
    pub ready: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
    #[serde(default)]
    pub conditions: Vec<NodeCondition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

impl Node {
    pub fn ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// The networks of both families OVN-Kubernetes publishes on the node (annotations): its
    /// pod subnets (`k8s.ovn.org/node-subnets`), and the join, transit and masquerade subnets
    /// its router ports lie in. Unreadable annotations are skipped (the configuration file's
    /// networks still hold).
    pub fn ovn_networks(&self) -> Vec<crate::proto::IpNet> {
        let a = &self.metadata.annotations;
        let mut out = Vec::new();
        if let Some(v) = a.get("k8s.ovn.org/node-subnets") {
            // {"default":["10.128.0.0/23"]} or, from older releases, {"default":"10.128.0.0/23"}
            if let Ok(m) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(v) {
                for v in m.values() {
                    let each: Vec<&str> = match v {
                        serde_json::Value::String(s) => vec![s.as_str()],
                        serde_json::Value::Array(a) => {
                            a.iter().filter_map(|x| x.as_str()).collect()
                        }
                        _ => Vec::new(),
                    };
                    out.extend(each.into_iter().filter_map(network_of));
                }
            }
        }
        for key in [
            "k8s.ovn.org/node-gateway-router-lrp-ifaddr",
            "k8s.ovn.org/node-transit-switch-port-ifaddr",
            "k8s.ovn.org/node-masquerade-subnet",
        ] {
            // {"ipv4":"100.88.0.4/16","ipv6":"fd97::4/64"}: the networks the addresses lie in.
            if let Some(v) = a.get(key) {
                if let Ok(m) = serde_json::from_str::<BTreeMap<String, String>>(v) {
                    for family in ["ipv4", "ipv6"] {
                        out.extend(m.get(family).and_then(|s| network_of(s)));
                    }
                }
            }
        }
        out
    }

    /// Where pods' tunnels start on this node, as OVN-Kubernetes picks its encapsulation IP:
    /// the first IPv4 InternalIP (a dual-stack cluster's overlay runs over IPv4), else the
    /// first IPv6 one (a single-stack IPv6 cluster's).
    pub fn tunnel_endpoint(&self) -> Option<std::net::IpAddr> {
        let internal = || {
            self.status
                .addresses
                .iter()
                .filter(|a| a.kind == "InternalIP")
                .filter_map(|a| a.address.parse::<std::net::IpAddr>().ok())
        };
        internal()
            .find(|ip| ip.is_ipv4())
            .or_else(|| internal().next())
    }

    /// The node's addresses of either family of the given kinds (`InternalIP`,
    /// `ExternalIP`).
    pub fn addresses<'a>(
        &'a self,
        kinds: &'a [&str],
    ) -> impl Iterator<Item = std::net::IpAddr> + 'a {
        self.status
            .addresses
            .iter()
            .filter(|a| kinds.contains(&a.kind.as_str()))
            .filter_map(|a| a.address.parse().ok())
    }
}

/// The network an `address/length` lies in (`100.88.0.4/16` -> `100.88.0.0/16`).
fn network_of(s: &str) -> Option<crate::proto::IpNet> {
    let (addr, len) = s.split_once('/')?;
    crate::proto::IpNet::containing(addr.parse::<std::net::IpAddr>().ok()?, len.parse().ok()?)
}
