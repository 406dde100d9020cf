//! The pod -> egress-IP map (both families: the seed's `egress-service-snat-v4` and `-v6`),
//! the served egress IPs with their Service ports, and the cluster's own networks, as
//! operators and the watcher see them (with comments), edited by
//! control requests and config reloads. Pure: each edit is checked whole before anything
//! changes, so a refused request leaves the state as it was, and the daemon publishes the
//! result to the workers (`egress_map`, `egress_map6`) and the steering program
//! (`steering_state`) in one
//! step each (old state or new, never a mix).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;

use control::proto::{ControlError, EgressIp, ErrorKind, IpNet, MapEntry, ServicePort};

use crate::daemon::config::Config;
use crate::pipeline::{Address, EgressMap, EgressMap6, EgressMapOf};
use crate::xdp::steer::{
    SteeringState, MAX_CLUSTER_NETWORKS, MAX_EGRESS_IPS, MAX_SERVED_PODS, MAX_SERVICE_PORTS,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapState {
    /// pod -> (egress IP of the same family, comment).
    pods: BTreeMap<IpAddr, (IpAddr, String)>,
    /// pod -> the node its tunnel must come from, where known.
    nodes: BTreeMap<IpAddr, IpAddr>,
    /// Whether the underlay may be IPv6 (`node.ip6`): only then may a node be IPv6.
    ipv6_underlay: bool,
    served: BTreeSet<IpAddr>,
    /// Served egress IP -> its Service's own ports (the node's, never SNAT's).
    service_ports: BTreeMap<IpAddr, BTreeSet<ServicePort>>,
    /// The cluster's networks from the configuration file, and from the cluster (watcher).
    configured_networks: BTreeSet<IpNet>,
    learned_networks: BTreeSet<IpNet>,
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
            ipv6_underlay: config.node.ip6.is_some(),
            served: config.egress_ips.iter().copied().collect(),
            service_ports: config.service_ports(),
            configured_networks: config.cluster_networks(),
            learned_networks: BTreeSet::new(),
        }
    }

    /// The networks learned from the cluster, kept across a reload of the file.
    pub fn keep_learned(&mut self, from: &MapState) {
        self.learned_networks = from.learned_networks.clone();
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

    pub fn served(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.served.iter().copied()
    }

    /// The served egress IPs with their Service ports.
    pub fn egress_ips(&self) -> Vec<EgressIp> {
        self.served
            .iter()
            .map(|ip| EgressIp {
                ip: *ip,
                service_ports: self
                    .service_ports
                    .get(ip)
                    .map(|p| p.iter().copied().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The cluster's networks: (from the file, from the cluster).
    pub fn cluster_networks(&self) -> (Vec<IpNet>, Vec<IpNet>) {
        (
            self.configured_networks.iter().copied().collect(),
            self.learned_networks.iter().copied().collect(),
        )
    }

    /// Replaces the networks learned from the cluster. A network holding every address, or
    /// one holding a served egress IP, would stop all egress: refused.
    pub fn set_learned_networks(&mut self, networks: Vec<IpNet>) -> Result<(), ControlError> {
        for (i, n) in networks.iter().enumerate() {
            if n.prefix_len() == 0 {
                return Err(rejected(format!(
                    "networks[{i}]: {n} would make every destination east-west"
                )));
            }
            if let Some(ip) = self.served.iter().find(|ip| n.contains(**ip)) {
                return Err(rejected(format!(
                    "networks[{i}]: {n} holds the egress IP {ip}"
                )));
            }
        }
        let all: BTreeSet<IpNet> = networks.into_iter().collect();
        room(
            "cluster networks",
            all.union(&self.configured_networks).count(),
            MAX_CLUSTER_NETWORKS,
        )?;
        self.learned_networks = all;
        Ok(())
    }

    /// A pod mapped to an IP this node does not serve would have its traffic dropped; that
    /// is never what the caller meant, so it is refused (as the config file refuses it).
    fn check(&self, entry: &MapEntry) -> Result<(), ControlError> {
        if entry.pod.is_ipv6() != entry.egress_ip.is_ipv6() {
            return Err(rejected(format!(
                "{} and {} are of different families (a pod leaves with an egress IP of its own)",
                entry.pod, entry.egress_ip
            )));
        }
        if !self.served.contains(&entry.egress_ip) {
            return Err(rejected(format!(
                "{} is not served by this node (egressctl egress add {} first)",
                entry.egress_ip, entry.egress_ip
            )));
        }
        if !usable_pod(entry.pod) {
            return Err(rejected(format!("{} cannot be a pod address", entry.pod)));
        }
        match entry.node {
            Some(IpAddr::V6(node)) if !self.ipv6_underlay => Err(rejected(format!(
                "node {node}: the underlay is IPv4 (node.ip6 is not set), a tunnel comes from \
                 the node's IPv4 address"
            ))),
            Some(IpAddr::V6(node)) if entry.pod.is_ipv4() => Err(rejected(format!(
                "node {node}: an IPv4 pod's tunnel comes over the IPv4 underlay (the gateway \
                 drops IPv4 in Geneve over IPv6 as ipv4_over_ipv6_underlay)"
            ))),
            _ => Ok(()),
        }
    }

    pub fn set(&mut self, entry: MapEntry) -> Result<(), ControlError> {
        self.check(&entry)?;
        if !self.pods.contains_key(&entry.pod) {
            room("pods", self.pods.len() + 1, MAX_SERVED_PODS)?;
        }
        set_node(&mut self.nodes, &entry);
        self.pods
            .insert(entry.pod, (entry.egress_ip, entry.comment));
        Ok(())
    }

    pub fn delete(&mut self, pod: IpAddr) -> Result<(), ControlError> {
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
        room("pods", pods.len(), MAX_SERVED_PODS)?;
        self.pods = pods;
        self.nodes = nodes;
        Ok(())
    }

    /// Sets and deletes together, all or nothing; a pod both set and deleted is refused.
    pub fn update(&mut self, set: Vec<MapEntry>, delete: Vec<IpAddr>) -> Result<(), ControlError> {
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
        room("pods", next.len(), MAX_SERVED_PODS)?;
        self.pods = next;
        self.nodes = nodes;
        Ok(())
    }

    /// Serves `ip` with these Service ports (replacing those it had). `true` when anything
    /// changed.
    pub fn serve(&mut self, ip: IpAddr, ports: Vec<ServicePort>) -> Result<bool, ControlError> {
        if !crate::daemon::config::usable_source(ip) {
            return Err(rejected(format!("{ip} cannot be a source address")));
        }
        if let Some(n) = self
            .configured_networks
            .iter()
            .chain(&self.learned_networks)
            .find(|n| n.contains(ip))
        {
            return Err(rejected(format!(
                "{ip} lies in the cluster network {n}; an egress IP is outside the cluster"
            )));
        }
        let ports: BTreeSet<ServicePort> = ports.into_iter().collect();
        let before = self.service_ports.get(&ip).cloned().unwrap_or_default();
        if !self.served.contains(&ip) {
            room("egress IPs", self.served.len() + 1, MAX_EGRESS_IPS)?;
        }
        let others: usize = self
            .service_ports
            .iter()
            .filter(|(other, _)| **other != ip)
            .map(|(_, p)| p.len())
            .sum();
        room("service ports", others + ports.len(), MAX_SERVICE_PORTS)?;
        if ports.is_empty() {
            self.service_ports.remove(&ip);
        } else {
            self.service_ports.insert(ip, ports.clone());
        }
        Ok(self.served.insert(ip) || before != ports)
    }

    /// Refused while pods still map to it: they would lose their way out silently.
    pub fn unserve(&mut self, ip: IpAddr) -> Result<(), ControlError> {
        let users = self.pods.values().filter(|(e, _)| *e == ip).count();
        if users > 0 {
            return Err(rejected(format!(
                "{ip} still has {users} pod(s) mapped to it"
            )));
        }
        if !self.served.remove(&ip) {
            return Err(rejected(format!("{ip} is not served by this node")));
        }
        self.service_ports.remove(&ip);
        Ok(())
    }

    /// What the workers read: the IPv4 map.
    pub fn egress_map(&self) -> EgressMap {
        self.map_of()
    }

    /// The IPv6 map the workers read.
    pub fn egress_map6(&self) -> EgressMap6 {
        self.map_of()
    }

    /// The map of one address family: that family's served IPs, pods, nodes and ports.
    fn map_of<A: Address>(&self) -> EgressMapOf<A> {
        let mut m = EgressMapOf::<A>::default();
        for ip in self.served.iter().filter_map(|ip| A::of(*ip)) {
            m.serve(ip);
        }
        for (pod, (egress, _)) in &self.pods {
            if let (Some(pod), Some(egress)) = (A::of(*pod), A::of(*egress)) {
                m.set(pod, egress);
            }
        }
        for (pod, node) in &self.nodes {
            if let Some(pod) = A::of(*pod) {
                m.set_node(pod, *node);
            }
        }
        for (ip, ports) in &self.service_ports {
            if let Some(ip) = A::of(*ip) {
                for p in ports {
                    m.reserve(ip, p.protocol.number(), p.port);
                }
            }
        }
        m
    }

    /// What the steering program decides with. `ports` is the SNAT range replies come back
    /// to.
    pub fn steering_state(&self, ports: RangeInclusive<u16>) -> SteeringState {
        SteeringState {
            egress_ips: self.served.iter().map(|ip| (*ip, ports.clone())).collect(),
            service_ports: self
                .service_ports
                .iter()
                .flat_map(|(ip, ports)| ports.iter().map(move |p| (*ip, *p)))
                .collect(),
            // A pod mapped to an IP not served here is unmapped (fail closed): its Geneve
            // is the node's.
            served_pods: self
                .pods
                .iter()
                .filter(|(_, (egress, _))| self.served.contains(egress))
                .map(|(pod, _)| *pod)
                .collect(),
            cluster_networks: self
                .configured_networks
                .union(&self.learned_networks)
                .copied()
                .collect(),
        }
    }
}

/// Refuses state the steering program's maps cannot hold (its map sizes).
fn room(what: &str, want: usize, max: usize) -> Result<(), ControlError> {
    if want > max {
        return Err(rejected(format!(
            "{want} {what} would not fit the steering program's map ({max} at most)"
        )));
    }
    Ok(())
}

/// Checked first (`check`): the node is of an underlay's family.
fn set_node(nodes: &mut BTreeMap<IpAddr, IpAddr>, e: &MapEntry) {
    match e.node {
        Some(n) => nodes.insert(e.pod, n),
        None => nodes.remove(&e.pod),
    };
}

/// Whether `ip` can be a pod's address (a unicast one).
fn usable_pod(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast() || v6.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An IPv4 address as the workers' map keys it.
    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn an_ipv6_node_only_on_the_ipv6_underlay_and_for_ipv6_pods() {
        let mut s = state();
        s.serve(ip("2001:db8:66::100"), Vec::new()).unwrap();
        let e6 = MapEntry {
            node: Some(ip("fd00:99::25")),
            ..entry("fd00:10:133::4", "2001:db8:66::100")
        };
        let err = s.set(e6.clone()).unwrap_err();
        assert!(err.message.contains("node.ip6 is not set"), "{err:?}");
        s.ipv6_underlay = true;
        s.set(e6.clone()).unwrap();
        assert!(s.entries().contains(&e6));
        let pod6 = u128::from("fd00:10:133::4".parse::<std::net::Ipv6Addr>().unwrap());
        assert!(s.egress_map6().admits(pod6, ip("fd00:99::25")));
        assert!(!s.egress_map6().admits(pod6, ip("192.168.99.25")));
        let e4 = MapEntry {
            node: Some(ip("fd00:99::25")),
            ..entry("10.133.0.4", "192.168.66.100")
        };
        let err = s.set(e4).unwrap_err();
        assert!(err.message.contains("ipv4_over_ipv6_underlay"), "{err:?}");
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
        s.serve(ip("192.168.66.100"), Vec::new()).unwrap();
        s.set(entry("10.133.0.3", "192.168.66.100")).unwrap();
        s
    }

    #[test]
    fn ipv6_pods_go_to_the_ipv6_map_with_their_nodes() {
        let mut s = state();
        s.serve(ip("2001:db8:66::100"), vec!["8080/tcp".parse().unwrap()])
            .unwrap();
        let mut e = entry("fd00:10:133::3", "2001:db8:66::100");
        e.node = Some(ip("192.168.99.25"));
        s.set(e.clone()).unwrap();
        // A node given with `set` is kept (for either family) and listed back.
        let mut e4 = entry("10.133.0.3", "192.168.66.100");
        e4.node = Some(ip("192.168.99.24"));
        s.set(e4.clone()).unwrap();
        assert!(s.entries().contains(&e) && s.entries().contains(&e4));
        let pod6 = u128::from("fd00:10:133::3".parse::<std::net::Ipv6Addr>().unwrap());
        let egress6 = u128::from("2001:db8:66::100".parse::<std::net::Ipv6Addr>().unwrap());
        let m6 = s.egress_map6();
        assert_eq!(m6.egress_for(pod6), Some(egress6));
        assert!(m6.admits(pod6, ip("192.168.99.25")));
        assert!(!m6.admits(pod6, ip("192.168.99.24")));
        assert_eq!(m6.reserved_ports(egress6, 6), &[8080]);
        assert!(s.egress_map().admits(v4("10.133.0.3"), ip("192.168.99.24")));
        // The IPv4 map holds no IPv6 entry and the other way round.
        assert_eq!(s.egress_map().pods().count(), 1);
        assert_eq!(m6.pods().count(), 1);
        assert!(!s.egress_map6().serves(0));
        // Families never mix; an IPv6 node (tunnel endpoint) is refused: the underlay is IPv4.
        let before = s.clone();
        for bad in [
            entry("fd00:10:133::4", "192.168.66.100"),
            entry("10.133.0.4", "2001:db8:66::100"),
            MapEntry {
                node: Some(ip("fd00:99::25")),
                ..entry("fd00:10:133::4", "2001:db8:66::100")
            },
            entry("ff02::1", "2001:db8:66::100"),
        ] {
            assert!(s.set(bad.clone()).is_err(), "{bad:?}");
        }
        for bad in ["fe80::1", "::1", "ff02::2", "::", "::ffff:192.168.66.7"] {
            assert!(s.serve(ip(bad), Vec::new()).is_err(), "{bad}");
        }
        assert_eq!(s, before, "refused requests change nothing");
        // The steering program gets both families.
        let st = s.steering_state(1024..=65535);
        assert!(st.served_pods.contains(&ip("fd00:10:133::3")));
        assert!(st.egress_ips.contains_key(&ip("2001:db8:66::100")));
        assert!(st
            .service_ports
            .contains(&(ip("2001:db8:66::100"), "8080/tcp".parse().unwrap())));
        s.delete(ip("fd00:10:133::3")).unwrap();
        assert_eq!(s.egress_map6().egress_for(pod6), None);
        s.unserve(ip("2001:db8:66::100")).unwrap();
    }

    #[test]
    fn set_delete_and_the_map_the_workers_read() {
        let mut s = state();
        s.set(entry("10.132.0.13", "192.168.66.100")).unwrap();
        let m = s.egress_map();
        assert_eq!(m.egress_for(v4("10.132.0.13")), Some(v4("192.168.66.100")));
        s.delete(ip("10.132.0.13")).unwrap();
        assert_eq!(s.egress_map().egress_for(v4("10.132.0.13")), None);
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
        assert!(!s.egress_map().serves(v4("192.168.66.100")));
        assert!(s.serve(ip("127.0.0.1"), Vec::new()).is_err());
        assert_eq!(s.serve(ip("192.168.66.101"), Vec::new()), Ok(true));
        assert_eq!(s.serve(ip("192.168.66.101"), Vec::new()), Ok(false));
    }

    #[test]
    fn service_ports_and_networks_reach_the_nat_and_the_steering_program() {
        let mut s = state();
        let tcp8080: ServicePort = "8080/tcp".parse().unwrap();
        assert_eq!(s.serve(ip("192.168.66.100"), vec![tcp8080]), Ok(true));
        assert_eq!(s.serve(ip("192.168.66.100"), vec![tcp8080]), Ok(false));
        let m = s.egress_map();
        assert_eq!(m.reserved_ports(v4("192.168.66.100"), 6), &[8080]);
        assert!(m.reserved_ports(v4("192.168.66.100"), 17).is_empty());
        s.set_learned_networks(vec!["10.128.0.0/14".parse().unwrap()])
            .unwrap();
        // An unserved pod's Geneve is the node's: only pods mapped to a served IP count.
        s.set(entry("10.132.0.13", "192.168.66.100")).unwrap();
        let st = s.steering_state(1024..=65535);
        assert_eq!(
            st.served_pods
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["10.132.0.13", "10.133.0.3"]
        );
        assert_eq!(st.egress_ips[&ip("192.168.66.100")], 1024..=65535);
        assert!(st.service_ports.contains(&(ip("192.168.66.100"), tcp8080)));
        assert!(st
            .cluster_networks
            .contains(&"10.128.0.0/14".parse().unwrap()));
        // Networks that would swallow every destination or an egress IP are refused, and the
        // learned ones survive a reload of the file.
        assert!(s
            .set_learned_networks(vec!["0.0.0.0/0".parse().unwrap()])
            .is_err());
        let e = s
            .set_learned_networks(vec!["192.168.66.0/24".parse().unwrap()])
            .unwrap_err();
        assert!(
            e.message.contains("holds the egress IP 192.168.66.100"),
            "{e}"
        );
        let mut reloaded = MapState::default();
        reloaded.keep_learned(&s);
        assert_eq!(reloaded.cluster_networks().1, s.cluster_networks().1);
        // An egress IP inside the cluster's networks is refused; unserving drops its ports.
        assert!(s.serve(ip("10.130.0.1"), Vec::new()).is_err());
        s.delete(ip("10.133.0.3")).unwrap();
        s.delete(ip("10.132.0.13")).unwrap();
        s.unserve(ip("192.168.66.100")).unwrap();
        assert!(s.egress_ips().is_empty());
        assert!(s.steering_state(1024..=65535).service_ports.is_empty());
    }

    #[test]
    fn state_the_steering_maps_cannot_hold_is_refused() {
        let mut s = state();
        let too_many: Vec<IpNet> = (0..=MAX_CLUSTER_NETWORKS as u32)
            .map(|i| IpNet::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
            .collect();
        let e = s.set_learned_networks(too_many).unwrap_err();
        assert!(e.message.contains("would not fit"), "{e}");
        let ports: Vec<ServicePort> = (1..=MAX_SERVICE_PORTS as u16 + 1)
            .map(|p| ServicePort {
                protocol: control::proto::L4Protocol::Tcp,
                port: p,
            })
            .collect();
        assert!(s.serve(ip("192.168.66.100"), ports).is_err());
        let entries: Vec<MapEntry> = (0..=MAX_SERVED_PODS as u32)
            .map(|i| MapEntry {
                pod: Ipv4Addr::from(0x0a80_0000 + i).into(),
                egress_ip: ip("192.168.66.100"),
                comment: String::new(),
                node: None,
            })
            .collect();
        let e = s.replace(entries).unwrap_err();
        assert!(e.message.contains("65537 pods would not fit"), "{e}");
        // Nothing changed.
        assert_eq!(s.entries().len(), 1);
    }
}
