//! Standalone mode (no OVN-Kubernetes controller setting `status.host`): what the watcher on
//! one node writes back to the cluster. Pure: objects in, writes out; `egressgw-watch
//! --standalone` sends them as merge patches.
//!
//! Every watcher computes the same election (`desired::elect_host`, deterministic), but each
//! writes only what concerns its own node, so watchers never race each other's writes: the
//! elected node claims the service (`status.host`), a host that lost the election hands it to
//! the winner (or to nobody, when no node is eligible, so a dead winner cannot leave it
//! pointing at us), and each node keeps its own `egress-service.k8s.ovn.org/<ns>-<name>`
//! label in step with the services it hosts.

use super::desired::{elect_host, host_label, Cluster};

/// The label prefix OVN-Kubernetes uses for hosted EgressServices.
pub const LABEL_PREFIX: &str = "egress-service.k8s.ovn.org/";

/// One write to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteBack {
    /// Set an EgressService's `status.host` ("" for none).
    Host {
        namespace: String,
        name: String,
        host: String,
    },
    /// Add (with the value "") or remove a label of this node.
    Label {
        node: String,
        label: String,
        present: bool,
    },
}

/// The writes the watcher on `this_node` owes the cluster as it stands.
pub fn write_backs(cluster: &Cluster, this_node: &str) -> Vec<WriteBack> {
    let mut out = Vec::new();
    let mut hosted_here = Vec::new();
    for es in &cluster.egress_services {
        let current = es.status.host.as_str();
        let elected = elect_host(cluster, es).unwrap_or_default();
        let claim = elected == this_node && current != this_node;
        let hand_over = current == this_node && elected != this_node;
        let host = if claim || hand_over {
            out.push(WriteBack::Host {
                namespace: es.metadata.namespace.clone(),
                name: es.metadata.name.clone(),
                host: elected.clone(),
            });
            elected
        } else {
            current.to_owned()
        };
        if host == this_node {
            hosted_here.push(host_label(es));
        }
    }
    let Some(node) = cluster.nodes.iter().find(|n| n.metadata.name == this_node) else {
        return out;
    };
    let has = |label: &str| node.metadata.labels.contains_key(label);
    for label in &hosted_here {
        if !has(label) {
            out.push(WriteBack::Label {
                node: this_node.to_owned(),
                label: label.clone(),
                present: true,
            });
        }
    }
    for label in node.metadata.labels.keys() {
        if label.starts_with(LABEL_PREFIX) && !hosted_here.contains(label) {
            out.push(WriteBack::Label {
                node: this_node.to_owned(),
                label: label.clone(),
                present: false,
            });
        }
    }
    out
}
