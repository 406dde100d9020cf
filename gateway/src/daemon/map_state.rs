//! The pod -> egress-IP map and the served egress IPs as operators and the watcher see them
//! (with comments), edited by control requests and config reloads. Pure: each edit is checked
//! whole before anything changes, so a refused request leaves the state as it was, and the
//! daemon publishes the result to the workers in one step (old map or new, never a mix).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use control::proto::{ControlError, ErrorKind, MapEntry};

use crate::daemon::config::Config;
use crate::pipeline::EgressMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapState {
    pods: BTreeMap<Ipv4Addr, (Ipv4Addr, String)>,
    /// pod -> the node its tunnel must come from, where known.
    nodes: BTreeMap<Ipv4Addr, Ipv4Addr>,
    served: BTreeSet<Ipv4Addr>,
}

fn rejected(message: String) -> ControlError {
    ControlError::new(ErrorKind::Rejected, message)
}

impl MapState {
    pub fn from_config(config: &Config) -> MapState {
        MapState {
            pods: config
                .pods
                .iter()
                .map(|p| (p.ip, (p.egress_ip, p.comment.clone())))
                .collect(),
            nodes: BTreeMap::new(),
            served: config.egress_ips.iter().copied().collect(),
        }
    }

    pub fn entries(&self) -> Vec<MapEntry> {
        self.pods
            .iter()
            .map(|(pod, (egress_ip, comment))| MapEntry {
                pod: *pod,
                egress_ip: *egress_ip,
                comment: comment.clone(),
                node: self.nodes.get(pod).copied(),
            })
            .collect()
    }

    pub fn served(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.served.iter().copied()
    }

    /// A pod mapped to an IP this node does not serve would have its traffic dropped; that
    /// is never what the caller meant, so it is refused (as the config file refuses it).
    fn check(&self, entry: &MapEntry) -> Result<(), ControlError> {
        if !self.served.contains(&entry.egress_ip) {
            return Err(rejected(format!(
                "{} is not served by this node (egressctl egress add {} first)",
                entry.egress_ip, entry.egress_ip
            )));
        }
        if entry.pod.is_unspecified() || entry.pod.is_broadcast() || entry.pod.is_multicast() {
            return Err(rejected(format!("{} cannot be a pod address", entry.pod)));
        }
        Ok(())
    }

    pub fn set(&mut self, entry: MapEntry) -> Result<(), ControlError> {
        self.check(&entry)?;
        self.pods
            .insert(entry.pod, (entry.egress_ip, entry.comment));
        Ok(())
    }

    pub fn delete(&mut self, pod: Ipv4Addr) -> Result<(), ControlError> {
        self.nodes.remove(&pod);
        self.pods
            .remove(&pod)
            .map(|_| ())
            .ok_or_else(|| rejected(format!("{pod} is not mapped")))
    }

    /// All or nothing: one bad entry refuses the whole replacement.
    pub fn replace(&mut self, entries: Vec<MapEntry>) -> Result<(), ControlError> {
        let mut pods = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        for (i, e) in entries.into_iter().enumerate() {
            self.check(&e)
                .map_err(|err| rejected(format!("entries[{i}]: {}", err.message)))?;
            set_node(&mut nodes, &e);
            if pods.insert(e.pod, (e.egress_ip, e.comment)).is_some() {
                return Err(rejected(format!("entries[{i}]: {} is mapped twice", e.pod)));
            }
        }
        self.pods = pods;
        self.nodes = nodes;
        Ok(())
    }

    /// Sets and deletes together, all or nothing; a pod both set and deleted is refused.
    pub fn update(
        &mut self,
        set: Vec<MapEntry>,
        delete: Vec<Ipv4Addr>,
    ) -> Result<(), ControlError> {
        let mut next = self.pods.clone();
        let mut nodes = self.nodes.clone();
        for (i, pod) in delete.iter().enumerate() {
            if next.remove(pod).is_none() {
                return Err(rejected(format!("delete[{i}]: {pod} is not mapped")));
            }
            nodes.remove(pod);
        }
        for (i, e) in set.into_iter().enumerate() {
            self.check(&e)
                .map_err(|err| rejected(format!("set[{i}]: {}", err.message)))?;
            if delete.contains(&e.pod) {
                return Err(rejected(format!("set[{i}]: {} is also deleted", e.pod)));
            }
            set_node(&mut nodes, &e);
            next.insert(e.pod, (e.egress_ip, e.comment));
        }
        self.pods = next;
        self.nodes = nodes;
        Ok(())
    }

    /// `true` when the IP was not served before.
    pub fn serve(&mut self, ip: Ipv4Addr) -> Result<bool, ControlError> {
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            return Err(rejected(format!("{ip} cannot be a source address")));
        }
        Ok(self.served.insert(ip))
    }

    /// Refused while pods still map to it: they would lose their way out silently.
    pub fn unserve(&mut self, ip: Ipv4Addr) -> Result<(), ControlError> {
        let users = self.pods.values().filter(|(e, _)| *e == ip).count();
        if users > 0 {
            return Err(rejected(format!(
                "{ip} still has {users} pod(s) mapped to it"
            )));
        }
        if !self.served.remove(&ip) {
            return Err(rejected(format!("{ip} is not served by this node")));
        }
        Ok(())
    }

    /// What the workers read.
    pub fn egress_map(&self) -> EgressMap {
        let mut m = EgressMap::default();
        for ip in &self.served {
            m.serve(u32::from(*ip));
        }
        for (pod, (egress, _)) in &self.pods {
            m.set(u32::from(*pod), u32::from(*egress));
        }
        for (pod, node) in &self.nodes {
            m.set_node(u32::from(*pod), u32::from(*node));
        }
        m
    }
}

fn set_node(nodes: &mut BTreeMap<Ipv4Addr, Ipv4Addr>, e: &MapEntry) {
    match e.node {
        Some(n) => nodes.insert(e.pod, n),
        None => nodes.remove(&e.pod),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn entry(pod: &str, egress: &str) -> MapEntry {
        MapEntry {
            pod: ip(pod),
            egress_ip: ip(egress),
            comment: "demo-egress/egress-identity".into(),
            node: None,
        }
    }

    fn state() -> MapState {
        let mut s = MapState::default();
        s.serve(ip("192.168.66.100")).unwrap();
        s.set(entry("10.133.0.3", "192.168.66.100")).unwrap();
        s
    }

    #[test]
    fn set_delete_and_the_map_the_workers_read() {
        let mut s = state();
        s.set(entry("10.132.0.13", "192.168.66.100")).unwrap();
        let m = s.egress_map();
        assert_eq!(
            m.egress_for(u32::from(ip("10.132.0.13"))),
            Some(u32::from(ip("192.168.66.100")))
        );
        s.delete(ip("10.132.0.13")).unwrap();
        assert_eq!(
            s.egress_map().egress_for(u32::from(ip("10.132.0.13"))),
            None
        );
        assert_eq!(
            s.delete(ip("10.132.0.13")).unwrap_err().kind,
            ErrorKind::Rejected
        );
        assert_eq!(s.entries(), vec![entry("10.133.0.3", "192.168.66.100")]);
    }

    #[test]
    fn unserved_targets_are_refused_and_nothing_changes() {
        let mut s = state();
        let before = s.clone();
        let e = s.set(entry("10.132.0.13", "192.168.66.101")).unwrap_err();
        assert!(e.message.contains("not served"), "{e}");
        let e = s
            .replace(vec![
                entry("10.132.0.13", "192.168.66.100"),
                entry("10.1.1.1", "192.168.66.101"),
            ])
            .unwrap_err();
        assert!(e.message.starts_with("entries[1]"), "{e}");
        let e = s
            .replace(vec![
                entry("10.1.1.1", "192.168.66.100"),
                entry("10.1.1.1", "192.168.66.100"),
            ])
            .unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        assert_eq!(s, before, "a refused request changes nothing");
    }

    #[test]
    fn update_is_all_or_nothing() {
        let mut s = state();
        s.update(
            vec![entry("10.132.0.13", "192.168.66.100")],
            vec![ip("10.133.0.3")],
        )
        .unwrap();
        assert_eq!(s.entries(), vec![entry("10.132.0.13", "192.168.66.100")]);
        let before = s.clone();
        let e = s
            .update(
                vec![entry("10.1.1.1", "192.168.66.100")],
                vec![ip("10.9.9.9")],
            )
            .unwrap_err();
        assert!(e.message.starts_with("delete[0]"), "{e}");
        let e = s
            .update(vec![entry("10.1.1.1", "192.168.66.199")], vec![])
            .unwrap_err();
        assert!(e.message.starts_with("set[0]"), "{e}");
        assert_eq!(s, before, "a refused update changes nothing");
    }

    #[test]
    fn replace_swaps_the_whole_map() {
        let mut s = state();
        s.replace(vec![entry("10.132.0.13", "192.168.66.100")])
            .unwrap();
        assert_eq!(s.entries(), vec![entry("10.132.0.13", "192.168.66.100")]);
    }

    #[test]
    fn egress_ips_in_use_cannot_be_removed() {
        let mut s = state();
        let e = s.unserve(ip("192.168.66.100")).unwrap_err();
        assert!(e.message.contains("1 pod(s)"), "{e}");
        s.delete(ip("10.133.0.3")).unwrap();
        s.unserve(ip("192.168.66.100")).unwrap();
        assert!(!s.egress_map().serves(u32::from(ip("192.168.66.100"))));
        assert!(s.serve(ip("127.0.0.1")).is_err());
        assert_eq!(s.serve(ip("192.168.66.101")), Ok(true));
        assert_eq!(s.serve(ip("192.168.66.101")), Ok(false));
    }
}
