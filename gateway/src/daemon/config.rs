//! The daemon's TOML configuration: parsed strictly (unknown keys are errors) and validated as
//! a whole, every error naming the field it is about, so a typo can never be silently ignored.
//!
//! ```toml
//! egress_ips = ["192.168.66.100"]
//!
//! [service_ports]                   # the Service's own ports on its LoadBalancer IP:
//! "192.168.66.100" = ["8080/tcp"]   # the node's load balancer answers them, not the NAT
//!
//! [node]
//! ip = "192.168.99.23"
//! underlay_interface = "br-ex"      # carries the node IP, its routes and neighbours
//! external_interface = "br-ex"      # the same interface: one-armed mode
//! underlay_uplink = "enp1s0"        # the NIC under br-ex, where XDP attaches (default: br-ex)
//!
//! [cluster]                         # the cluster's own networks: Geneve to them is east-west
//! pod_networks = ["10.128.0.0/13"]
//! service_networks = ["172.22.0.0/16"]
//! node_networks = ["192.168.99.0/24"]
//!
//! [dataplane]
//! queues = [0, 1]                   # one worker per RX queue ...
//! cores = [0, 1]                    # ... pinned to these cores
//!
//! [[pods]]
//! ip = "10.133.0.3"
//! egress_ip = "192.168.66.100"
//! comment = "demo-egress/egress-identity"
//! ```
//!
//! Egress IPs, pods, their service ports and the cluster's networks may be IPv6 as well
//! (dual stack). The underlay is IPv4; with `node.ip6` set, IPv6 pods' Geneve may also come
//! over IPv6 (a single-stack IPv6 cluster's overlay).

pub use crate::daemon::bgp_config::Bgp;
use crate::daemon::config_error::bad;
pub use crate::daemon::config_error::ConfigError;
pub use crate::daemon::ha_config::Ha;
use crate::nat::{FairLimits, NatConfig, Timeouts};
use crate::xdp::steer::XdpAttach;
use control::proto::{IpNet, ServicePort};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: Node,
    #[serde(default)]
    pub dataplane: Dataplane,
    #[serde(default)]
    pub nat: Nat,
    /// Egress IPs this node serves, of either family (replies to them are translated here).
    #[serde(default)]
    pub egress_ips: Vec<IpAddr>,
    /// Egress IP -> the Service's own ports on it (`"8080/tcp"`): passed to the node, never
    /// handed out by the NAT.
    #[serde(default)]
    pub service_ports: BTreeMap<String, Vec<String>>,
    /// The cluster's own networks; required, so that east-west traffic is never SNATed.
    pub cluster: Option<Cluster>,
    /// The initial pod -> egress-IP map (the control socket changes it at run time).
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub control: Control,
    /// The BGP speaker; absent: announce nothing (routes to the egress IPs come from elsewhere).
    pub bgp: Option<Bgp>,
    #[serde(default)]
    pub metrics: Metrics,
    /// The other gateways of this node's set and the sync channel (absent: no failover).
    pub ha: Option<Ha>,
}

/// The Prometheus endpoint: off unless `listen` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Address and port for `GET /metrics`, e.g. "127.0.0.1:9469".
    pub listen: Option<std::net::SocketAddr>,
}

/// The cluster's own networks, as OVN-Kubernetes lays them out. Geneve whose inner packet is
/// addressed to any of them is east-west traffic and goes to the node's OVS; the watcher adds
/// what the nodes publish (their pod subnets, node addresses) at run time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The cluster network (`clusterNetwork` CIDRs).
    pub pod_networks: Vec<String>,
    /// The service network (ClusterIPs).
    pub service_networks: Vec<String>,
    /// The nodes' own subnets (InternalIPs).
    #[serde(default)]
    pub node_networks: Vec<String>,
    /// OVN-Kubernetes' join subnet (gateway routers), its default.
    #[serde(default = "default_join")]
    pub join_subnet: String,
    /// The transit switch's subnet (interconnect mode), its default.
    #[serde(default = "default_transit")]
    pub transit_subnet: String,
    /// The masquerade subnet (host-to-service traffic), its default.
    #[serde(default = "default_masquerade")]
    pub masquerade_subnet: String,
}

fn default_join() -> String {
    "100.64.0.0/16".into()
}

fn default_transit() -> String {
    "100.88.0.0/16".into()
}

fn default_masquerade() -> String {
    "169.254.0.0/17".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The underlay address Geneve arrives at.
    pub ip: Ipv4Addr,
    /// The node's IPv6 underlay address, where the cluster's overlay runs over IPv6
    /// (single-stack IPv6): Geneve over IPv6 arrives there, and replies go back over IPv6.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// The interface that carries the node IP, its routes and neighbours (br-ex).
    pub underlay_interface: String,
    /// Toward the outside world; the same as `underlay_interface` for one-armed mode.
    pub external_interface: String,
    /// Where frames for `underlay_interface` arrive and the steering program and AF_XDP
    /// sockets attach: the NIC under an OVS bridge. Absent: the interface itself.
    #[serde(default)]
    pub underlay_uplink: Option<String>,
    /// The same for `external_interface`.
    #[serde(default)]
    pub external_uplink: Option<String>,
    /// The underlay path's MTU (replies larger than it less the tunnel draw ICMP); the
    /// daemon never uses more than `underlay_interface`'s own MTU.
    #[serde(default = "default_mtu")]
    pub underlay_mtu: u16,
    /// The pods' interface MTU (OVN-Kubernetes's `mtu`): a reply larger draws ICMP or is cut
    /// to it, as one too big for the underlay. Absent: the underlay's less 100, which is what
    /// OVN-Kubernetes sets for Geneve.
    #[serde(default)]
    pub pod_mtu: Option<u16>,
}

fn default_mtu() -> u16 {
    1500
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dataplane {
    /// RX queues served, one worker each.
    pub queues: Vec<u32>,
    /// The core each worker is pinned to, in the order of `queues`.
    pub cores: Vec<usize>,
    /// UMEM frames per socket.
    pub frames_per_queue: u32,
    /// How the steering program attaches: "auto" (driver mode where the driver supports
    /// it), "driver" or "generic".
    pub xdp_attach: XdpAttach,
    /// Receive coalescing, in microseconds (a NIC's `rx-usecs`): after a batch of 4 to 63
    /// frames the worker waits this long before it looks again, so that frames gather into
    /// bigger batches and it wakes less often. 0 (the default) looks again at once, for the
    /// lowest latency on a core of its own; where the worker shares its core, 100 gives much
    /// of it back for about 100 us of latency (docs/operating.md).
    pub rx_coalesce_us: u32,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            queues: vec![0],
            cores: vec![0],
            frames_per_queue: 4096,
            xdp_attach: XdpAttach::Auto,
            rx_coalesce_us: 0,
        }
    }
}

/// The longest receive coalescing: 1 ms, half of what the default ring's 2048 receive frames
/// hold at 1 Mpps.
pub const MAX_RX_COALESCE_US: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nat {
    pub max_sessions: u32,
    /// IPv6 sessions (128 bytes a slot, twice an IPv4 one); 0 turns IPv6 translation off.
    /// Unset: as many as `max_sessions`, at most 262144.
    pub max_sessions_v6: Option<u32>,
    /// This node's slice of every egress IP's ports, `"LOW-HIGH"` inclusive.
    pub port_range: String,
    pub max_port_tries: usize,
    pub timeouts: TimeoutsConfig,
    pub fair_share: FairShareConfig,
}

impl Default for Nat {
    fn default() -> Self {
        let d = NatConfig::default();
        Nat {
            max_sessions: d.max_sessions,
            max_sessions_v6: None,
            port_range: format!("{}-{}", d.port_range.start(), d.port_range.end()),
            max_port_tries: d.max_port_tries,
            timeouts: TimeoutsConfig::default(),
            fair_share: FairShareConfig::default(),
        }
    }
}

impl Nat {
    /// The IPv6 session bound: as set, else as many as IPv4's up to 262144.
    pub fn sessions_v6(&self) -> u32 {
        self.max_sessions_v6
            .unwrap_or(self.max_sessions.min(1 << 18))
    }
}

/// Per-pod limits (`nat::fair`); 0 turns a count limit off, 100 the share.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FairShareConfig {
    pub pod_max_sessions: u32,
    pub pod_new_flows_per_second: u32,
    /// New flows one pod may open at once above its rate; at least the rate.
    pub pod_new_flow_burst: u32,
    /// Percent of this node's ports to one destination one pod may hold, 1-100.
    pub pod_destination_share: u8,
}

impl Default for FairShareConfig {
    fn default() -> Self {
        let d = FairLimits::default();
        FairShareConfig {
            pod_max_sessions: d.pod_sessions,
            pod_new_flows_per_second: d.pod_new_flows_per_s,
            pod_new_flow_burst: d.pod_new_flow_burst,
            pod_destination_share: d.pod_destination_share,
        }
    }
}

impl FairShareConfig {
    pub fn limits(&self) -> FairLimits {
        FairLimits {
            pod_sessions: self.pod_max_sessions,
            pod_new_flows_per_s: self.pod_new_flows_per_second,
            pod_new_flow_burst: self.pod_new_flow_burst,
            pod_destination_share: self.pod_destination_share,
        }
    }
}

/// Idle timeouts in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    pub tcp_established: u32,
    pub tcp_transitory: u32,
    pub udp: u32,
    pub icmp: u32,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        let t = Timeouts::default();
        TimeoutsConfig {
            tcp_established: t.tcp_established,
            tcp_transitory: t.tcp_transitory,
            udp: t.udp,
            icmp: t.icmp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    /// IPv4 or IPv6; its egress IP is of the same family.
    pub ip: IpAddr,
    pub egress_ip: IpAddr,
    /// Who asked for it (`namespace/name` of the EgressService), shown by `egressctl map list`.
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    pub socket: String,
    /// Members of this group may use the socket (mode 0660); otherwise only root.
    pub group: Option<String>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: "/run/egressgw/egressgw.sock".into(),
            group: None,
        }
    }
}

/// Linux interface names: 1 to 15 bytes, no '/', whitespace or NUL.
fn check_ifname(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = (1..=15).contains(&name.len())
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
        && name != "."
        && name != "..";
    ok.then_some(()).ok_or_else(|| {
        bad(
            field,
            format!("{name:?} is not an interface name (1-15 bytes, no '/' or spaces)"),
        )
    })
}

fn parse_port_range(s: &str) -> Result<core::ops::RangeInclusive<u16>, ConfigError> {
    let field = "nat.port_range";
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| bad(field, format!("{s:?} is not LOW-HIGH")))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| bad(field, format!("{lo:?} is not a port")))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| bad(field, format!("{hi:?} is not a port")))?;
    if lo == 0 || lo > hi {
        return Err(bad(field, format!("{s:?} must satisfy 1 <= LOW <= HIGH")));
    }
    Ok(lo..=hi)
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(path.display().to_string(), e.to_string()))?;
        Config::parse(&text)
    }

    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| bad("toml", e.message().to_owned() + &span(text, e.span())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.node.ip.is_unspecified()
            || self.node.ip.is_broadcast()
            || self.node.ip.is_multicast()
        {
            return Err(bad(
                "node.ip",
                format!("{} cannot be a node's address", self.node.ip),
            ));
        }
        if let Some(ip6) = self.node.ip6 {
            if ip6.is_unspecified()
                || ip6.is_multicast()
                || ip6.is_loopback()
                || ip6.is_unicast_link_local()
            {
                return Err(bad(
                    "node.ip6",
                    format!("{ip6} cannot be a node's underlay address"),
                ));
            }
            if self.node.underlay_mtu < 1280 {
                return Err(bad(
                    "node.underlay_mtu",
                    format!(
                        "{} is below IPv6's minimum of 1280 (node.ip6 is set)",
                        self.node.underlay_mtu
                    ),
                ));
            }
        }
        check_ifname("node.underlay_interface", &self.node.underlay_interface)?;
        check_ifname("node.external_interface", &self.node.external_interface)?;
        if let Some(u) = &self.node.underlay_uplink {
            check_ifname("node.underlay_uplink", u)?;
        }
        if let Some(u) = &self.node.external_uplink {
            check_ifname("node.external_uplink", u)?;
            if self.one_armed() && self.node.external_uplink != self.node.underlay_uplink {
                return Err(bad(
                    "node.external_uplink",
                    "one-armed (the same interface both ways) takes one uplink: set underlay_uplink only",
                ));
            }
        }
        if !(576..=9216).contains(&self.node.underlay_mtu) {
            return Err(bad(
                "node.underlay_mtu",
                format!("{} is outside 576-9216", self.node.underlay_mtu),
            ));
        }
        if let Some(pod_mtu) = self.node.pod_mtu {
            if !(576..=self.node.underlay_mtu).contains(&pod_mtu) {
                return Err(bad(
                    "node.pod_mtu",
                    format!(
                        "{pod_mtu} is outside 576-{} (node.underlay_mtu: a pod's packets cross \
                         the underlay in a tunnel)",
                        self.node.underlay_mtu
                    ),
                ));
            }
        }
        let d = &self.dataplane;
        if d.queues.is_empty() {
            return Err(bad("dataplane.queues", "at least one queue"));
        }
        if d.queues.len() != d.cores.len() {
            return Err(bad(
                "dataplane.cores",
                format!(
                    "{} cores for {} queues: one core per queue",
                    d.cores.len(),
                    d.queues.len()
                ),
            ));
        }
        if let Some(q) = first_duplicate(&d.queues) {
            return Err(bad("dataplane.queues", format!("queue {q} listed twice")));
        }
        if let Some(c) = first_duplicate(&d.cores) {
            return Err(bad(
                "dataplane.cores",
                format!("core {c} listed twice: workers busy-poll and must not share"),
            ));
        }
        if !(64..=1 << 20).contains(&d.frames_per_queue) {
            return Err(bad(
                "dataplane.frames_per_queue",
                format!("{} is outside 64-1048576", d.frames_per_queue),
            ));
        }
        if d.rx_coalesce_us > MAX_RX_COALESCE_US {
            return Err(bad(
                "dataplane.rx_coalesce_us",
                format!(
                    "{} is above {MAX_RX_COALESCE_US}: at 1 Mpps a wait that long fills half a ring",
                    d.rx_coalesce_us
                ),
            ));
        }
        let n = &self.nat;
        let workers = d.queues.len() as u32;
        if n.max_sessions < workers || n.max_sessions > 1 << 28 {
            return Err(bad(
                "nat.max_sessions",
                format!(
                    "{} must be between the worker count ({workers}) and 2^28",
                    n.max_sessions
                ),
            ));
        }
        if n.max_sessions_v6.is_some_and(|v6| v6 > 1 << 28) {
            return Err(bad("nat.max_sessions_v6", "must be at most 2^28"));
        }
        let ports = parse_port_range(&n.port_range)?;
        if ports.len() < d.queues.len() {
            return Err(bad(
                "nat.port_range",
                format!(
                    "{} ports cannot be split among {} workers",
                    ports.len(),
                    d.queues.len()
                ),
            ));
        }
        if n.max_port_tries == 0 {
            return Err(bad("nat.max_port_tries", "must be at least 1"));
        }
        let f = &n.fair_share;
        if !(1..=100).contains(&f.pod_destination_share) {
            return Err(bad(
                "nat.fair_share.pod_destination_share",
                format!("{} is not a percentage of 1-100", f.pod_destination_share),
            ));
        }
        if f.pod_new_flows_per_second != 0 && f.pod_new_flow_burst < f.pod_new_flows_per_second {
            return Err(bad(
                "nat.fair_share.pod_new_flow_burst",
                format!(
                    "{} is below pod_new_flows_per_second ({})",
                    f.pod_new_flow_burst, f.pod_new_flows_per_second
                ),
            ));
        }
        let t = &n.timeouts;
        for (name, v) in [
            ("tcp_established", t.tcp_established),
            ("tcp_transitory", t.tcp_transitory),
            ("udp", t.udp),
            ("icmp", t.icmp),
        ] {
            if v == 0 {
                return Err(bad(
                    format!("nat.timeouts.{name}"),
                    "must be at least 1 second",
                ));
            }
        }
        for (i, ip) in self.egress_ips.iter().enumerate() {
            if !usable_source(*ip) {
                return Err(bad(
                    format!("egress_ips[{i}]"),
                    format!("{ip} cannot be a source address"),
                ));
            }
            if *ip == IpAddr::V4(self.node.ip) {
                return Err(bad(
                    format!("egress_ips[{i}]"),
                    format!("{ip} is the node IP"),
                ));
            }
        }
        if let Some(ip) = first_duplicate(&self.egress_ips) {
            return Err(bad("egress_ips", format!("{ip} listed twice")));
        }
        let served: HashSet<_> = self.egress_ips.iter().collect();
        let mut pods = HashSet::new();
        for (i, p) in self.pods.iter().enumerate() {
            if !pods.insert(p.ip) {
                return Err(bad(
                    format!("pods[{i}].ip"),
                    format!("{} is mapped twice", p.ip),
                ));
            }
            if p.ip.is_ipv6() != p.egress_ip.is_ipv6() {
                return Err(bad(
                    format!("pods[{i}].egress_ip"),
                    format!("{} is not of the pod's family ({})", p.egress_ip, p.ip),
                ));
            }
            // Fail closed, and say so: a pod mapped to an IP this node does not serve would
            // have its traffic dropped, which is never what the file meant.
            if !served.contains(&p.egress_ip) {
                return Err(bad(
                    format!("pods[{i}].egress_ip"),
                    format!("{} is not in egress_ips", p.egress_ip),
                ));
            }
        }
        let networks = self.validate_cluster()?;
        for (i, p) in self.pods.iter().enumerate() {
            if !networks.pods.iter().any(|n| n.contains(p.ip)) {
                return Err(bad(
                    format!("pods[{i}].ip"),
                    format!("{} is outside cluster.pod_networks", p.ip),
                ));
            }
        }
        for (i, ip) in self.egress_ips.iter().enumerate() {
            if let Some(n) = networks.all.iter().find(|n| n.contains(*ip)) {
                return Err(bad(
                    format!("egress_ips[{i}]"),
                    format!(
                        "{ip} lies in the cluster network {n}; an egress IP is outside the cluster"
                    ),
                ));
            }
        }
        self.validate_service_ports()?;
        if let Some(b) = &self.bgp {
            b.validate(self.node.ip)?;
        }
        if let Some(h) = &self.ha {
            h.validate(
                self.node.ip,
                self.node.ip6,
                parse_port_range(&self.nat.port_range)?,
            )?;
            let v6 = self.nat.sessions_v6();
            let total = u64::from(self.nat.max_sessions)
                + u64::from(h.replica_slots(self.nat.max_sessions))
                + u64::from(v6)
                + u64::from(h.replica_slots_v6(v6));
            if total > 1 << 29 {
                return Err(bad(
                    "ha.replica_sessions",
                    format!("{total} sessions with nat.max_sessions is more than one table holds"),
                ));
            }
        }
        if self.control.socket.is_empty() || !self.control.socket.starts_with('/') {
            return Err(bad(
                "control.socket",
                format!("{:?} must be an absolute path", self.control.socket),
            ));
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<ClusterNetworks, ConfigError> {
        let c = self.cluster.as_ref().ok_or_else(|| {
            bad(
                "cluster",
                "missing: the cluster's own networks (pod_networks, service_networks, \
                 node_networks) tell egress traffic from east-west traffic",
            )
        })?;
        let list = |field: &str, items: &[String]| -> Result<Vec<IpNet>, ConfigError> {
            items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse()
                        .map_err(|e| bad(format!("cluster.{field}[{i}]"), e))
                })
                .collect()
        };
        let one = |field: &str, s: &str| -> Result<IpNet, ConfigError> {
            s.parse().map_err(|e| bad(format!("cluster.{field}"), e))
        };
        let pods = list("pod_networks", &c.pod_networks)?;
        let services = list("service_networks", &c.service_networks)?;
        if pods.is_empty() {
            return Err(bad("cluster.pod_networks", "at least one network"));
        }
        if services.is_empty() {
            return Err(bad("cluster.service_networks", "at least one network"));
        }
        let mut all: BTreeSet<IpNet> = pods.iter().chain(&services).copied().collect();
        all.extend(list("node_networks", &c.node_networks)?);
        all.insert(one("join_subnet", &c.join_subnet)?);
        all.insert(one("transit_subnet", &c.transit_subnet)?);
        all.insert(one("masquerade_subnet", &c.masquerade_subnet)?);
        if let Some(n) = all.iter().find(|n| n.prefix_len() == 0) {
            return Err(bad(
                "cluster",
                format!("{n} would make every destination east-west: nothing would egress"),
            ));
        }
        Ok(ClusterNetworks { pods, all })
    }

    fn validate_service_ports(&self) -> Result<(), ConfigError> {
        for (ip, ports) in &self.service_ports {
            let field = format!("service_ports.\"{ip}\"");
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| bad(&field, format!("{ip:?} is not an IP address")))?;
            if !self.egress_ips.contains(&addr) {
                return Err(bad(&field, format!("{ip} is not in egress_ips")));
            }
            let mut seen = HashSet::new();
            for (i, p) in ports.iter().enumerate() {
                let port: ServicePort = p.parse().map_err(|e| bad(format!("{field}[{i}]"), e))?;
                if !seen.insert(port) {
                    return Err(bad(format!("{field}[{i}]"), format!("{port} listed twice")));
                }
            }
        }
        Ok(())
    }

    /// The cluster's own networks of the file (validated: the list is whole).
    pub fn cluster_networks(&self) -> BTreeSet<IpNet> {
        self.validate_cluster().map(|c| c.all).unwrap_or_default()
    }

    /// Egress IP -> the Service ports on it (validated).
    pub fn service_ports(&self) -> BTreeMap<IpAddr, BTreeSet<ServicePort>> {
        self.service_ports
            .iter()
            .filter_map(|(ip, ports)| {
                let ports: BTreeSet<ServicePort> =
                    ports.iter().filter_map(|p| p.parse().ok()).collect();
                Some((ip.parse().ok()?, ports))
            })
            .collect()
    }

    /// Where the steering program and AF_XDP attach for the underlay: its uplink, else itself.
    pub fn underlay_uplink(&self) -> &str {
        self.node
            .underlay_uplink
            .as_deref()
            .unwrap_or(&self.node.underlay_interface)
    }

    /// The same for the external interface (one-armed: the underlay's).
    pub fn external_uplink(&self) -> &str {
        if self.one_armed() {
            return self.underlay_uplink();
        }
        self.node
            .external_uplink
            .as_deref()
            .unwrap_or(&self.node.external_interface)
    }

    /// The session table's settings.
    pub fn nat_config(&self) -> NatConfig {
        let t = &self.nat.timeouts;
        let v6 = self.nat.sessions_v6();
        let (replica_slots, replica_slots_v6) = self.ha.as_ref().map_or((0, 0), |h| {
            (
                h.replica_slots(self.nat.max_sessions),
                h.replica_slots_v6(v6),
            )
        });
        NatConfig {
            max_sessions: self.nat.max_sessions + replica_slots,
            max_sessions_v6: v6 + replica_slots_v6,
            workers: self.dataplane.queues.len() as u16,
            port_range: parse_port_range(&self.nat.port_range).expect("validated"),
            timeouts: Timeouts {
                tcp_established: t.tcp_established,
                tcp_transitory: t.tcp_transitory,
                udp: t.udp,
                icmp: t.icmp,
            },
            max_port_tries: self.nat.max_port_tries,
            replica_slots,
            replica_slots_v6,
            fair: self.nat.fair_share.limits(),
        }
    }

    /// One-armed: Geneve in and traffic out on the same interface (the seed's br-ex).
    pub fn one_armed(&self) -> bool {
        self.node.underlay_interface == self.node.external_interface
    }
}

/// The cluster's networks of the file, parsed.
struct ClusterNetworks {
    pods: Vec<IpNet>,
    all: BTreeSet<IpNet>,
}

/// Whether `ip` can be an egress IP: a unicast address routable beyond the node (IPv6
/// link-local addresses are not).
pub fn usable_source(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || v4.is_loopback())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.to_ipv4_mapped().is_some())
        }
    }
}

fn first_duplicate<T: Eq + std::hash::Hash + Copy>(items: &[T]) -> Option<T> {
    let mut seen = HashSet::new();
    items.iter().copied().find(|x| !seen.insert(*x))
}

/// " (line L, column C)" for a byte span of `text`.
fn span(text: &str, span: Option<core::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(" (line {line}, column {col})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_is_valid() {
        let c = Config::parse(include_str!("../../../deploy/egressgw.toml"))
            .expect("deploy/egressgw.toml");
        assert_eq!(c.control.socket, "/run/egressgw/egressgw.sock");
        assert!(c.bgp.is_some() && c.metrics.listen.is_some());
    }

    const SEED: &str = r#"
egress_ips = ["192.168.66.100"]

[service_ports]
"192.168.66.100" = ["8080/tcp"]

[node]
ip = "192.168.99.23"
underlay_interface = "br-ex"
external_interface = "br-ex"

[cluster]
pod_networks = ["10.128.0.0/13"]
service_networks = ["172.22.0.0/16"]
node_networks = ["192.168.99.0/24"]

[dataplane]
queues = [0, 1]
cores = [0, 1]
frames_per_queue = 4096

[nat]
max_sessions = 1000000
port_range = "1024-65535"

[nat.timeouts]
udp = 120

[[pods]]
ip = "10.133.0.3"
egress_ip = "192.168.66.100"
comment = "demo-egress/egress-identity"

[[pods]]
ip = "10.132.0.13"
egress_ip = "192.168.66.100"
comment = "demo-egress/egress-identity"
"#;

    #[test]
    fn the_seed_configuration() {
        let c = Config::parse(SEED).unwrap();
        assert!(c.one_armed());
        let nat = c.nat_config();
        assert_eq!(
            (nat.workers, nat.max_sessions, nat.port_range),
            (2, 1_000_000, 1024..=65535)
        );
        assert_eq!(
            nat.timeouts,
            Timeouts {
                udp: 120,
                ..Timeouts::default()
            }
        );
        // Fair share is on unless the file turns it off.
        assert_eq!(nat.fair, FairLimits::default());
        let tuned = SEED.replace(
            "[nat.timeouts]",
            "[nat.fair_share]\npod_max_sessions = 0\npod_destination_share = 100\n[nat.timeouts]",
        );
        assert_eq!(
            Config::parse(&tuned).unwrap().nat_config().fair,
            FairLimits {
                pod_sessions: 0,
                pod_destination_share: 100,
                ..FairLimits::default()
            }
        );
        let map = crate::daemon::map_state::MapState::from_config(&c).egress_map();
        assert_eq!(
            map.egress_for(u32::from(Ipv4Addr::new(10, 133, 0, 3))),
            Some(u32::from(Ipv4Addr::new(192, 168, 66, 100)))
        );
        assert_eq!(c.control.socket, "/run/egressgw/egressgw.sock");
        // The cluster's networks with OVN-Kubernetes' default join, transit and masquerade
        // subnets; the Service's port; XDP on br-ex itself.
        let nets: Vec<String> = c.cluster_networks().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            nets,
            [
                "10.128.0.0/13",
                "100.64.0.0/16",
                "100.88.0.0/16",
                "169.254.0.0/17",
                "172.22.0.0/16",
                "192.168.99.0/24"
            ]
        );
        let ports = c.service_ports();
        assert_eq!(
            ports[&IpAddr::V4(Ipv4Addr::new(192, 168, 66, 100))]
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["8080/tcp"]
        );
        assert_eq!(
            (c.underlay_uplink(), c.external_uplink()),
            ("br-ex", "br-ex")
        );
        let bridged = Config::parse(&SEED.replacen(
            "external_interface = \"br-ex\"",
            "external_interface = \"br-ex\"\nunderlay_uplink = \"enp1s0\"",
            1,
        ))
        .unwrap();
        assert_eq!(
            (bridged.underlay_uplink(), bridged.external_uplink()),
            ("enp1s0", "enp1s0")
        );
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = Config::parse("[node]\nip = \"10.0.0.1\"\nunderlay_interface = \"eth0\"\nexternal_interface = \"eth1\"\n[cluster]\npod_networks = [\"10.128.0.0/13\"]\nservice_networks = [\"172.22.0.0/16\"]\n").unwrap();
        assert!(!c.one_armed());
        assert_eq!(c.nat_config().port_range, NatConfig::default().port_range);
        assert_eq!(c.nat_config().timeouts, Timeouts::default());
    }

    #[test]
    fn the_pods_mtu_is_optional_and_no_more_than_the_underlays() {
        assert_eq!(Config::parse(SEED).unwrap().node.pod_mtu, None);
        let with = |mtus: &str| SEED.replacen("[node]", &format!("[node]\n{mtus}"), 1);
        let c = Config::parse(&with("pod_mtu = 1300")).unwrap();
        assert_eq!(c.node.pod_mtu, Some(1300));
        for bad in [
            "pod_mtu = 1501",
            "pod_mtu = 500",
            "underlay_mtu = 1400\npod_mtu = 1450",
        ] {
            let e = Config::parse(&with(bad)).unwrap_err();
            assert_eq!(e.field, "node.pod_mtu", "{bad}: {e}");
        }
    }

    #[test]
    fn the_ipv6_underlay_address_is_checked_and_carries_a_gateway_set() {
        let with = |ip6: &str| {
            SEED.replacen(
                "ip = \"192.168.99.23\"",
                &format!("ip = \"192.168.99.23\"\nip6 = \"{ip6}\""),
                1,
            )
        };
        let c = Config::parse(&with("fd00:99::23")).unwrap();
        assert_eq!(c.node.ip6, Some("fd00:99::23".parse().unwrap()));
        for bad in ["::", "fe80::23", "ff02::1", "::1"] {
            let e = Config::parse(&with(bad)).unwrap_err();
            assert_eq!(e.field, "node.ip6", "{bad}: {e}");
        }
        let small = with("fd00:99::23").replacen("[node]", "[node]\nunderlay_mtu = 1200", 1);
        assert_eq!(
            Config::parse(&small).unwrap_err().field,
            "node.underlay_mtu"
        );
        // A gateway set over either family with node.ip6; over IPv6 only with it.
        let set = |node: &str, peer: &str| {
            format!(
                "{node}\n[ha]\nnode_id = 1\nkey_file = \"/etc/egressgw/sync.key\"\n[[ha.peers]]\nid = 2\naddress = \"{peer}\"\n"
            )
        };
        for peer in ["192.168.99.24:4790", "[fd00:99::24]:4790"] {
            let c = Config::parse(&set(&with("fd00:99::23"), peer)).unwrap();
            assert!(c.ha.is_some(), "{peer}");
        }
        let e = Config::parse(&set(SEED, "[fd00:99::24]:4790")).unwrap_err();
        assert_eq!(e.field, "ha.peers[0].address", "{e}");
        assert!(e.to_string().contains("node.ip6"), "{e}");
    }

    /// Each bad file is refused with an error naming the field at fault.
    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("ip = \"192.168.99.23\"", "ip = \"192.168.99.300\"", "toml"),
            ("udp = 120", "udp = 120\ntcp_establihed = 5", "toml"),
            ("ip = \"192.168.99.23\"", "ip = \"0.0.0.0\"", "node.ip"),
            (
                "underlay_interface = \"br-ex\"",
                "underlay_interface = \"a-very-long-interface\"",
                "node.underlay_interface",
            ),
            (
                "external_interface = \"br-ex\"",
                "external_interface = \"br ex\"",
                "node.external_interface",
            ),
            ("cores = [0, 1]", "cores = [0]", "dataplane.cores"),
            ("cores = [0, 1]", "cores = [1, 1]", "dataplane.cores"),
            ("queues = [0, 1]", "queues = [1, 1]", "dataplane.queues"),
            (
                "frames_per_queue = 4096",
                "frames_per_queue = 8",
                "dataplane.frames_per_queue",
            ),
            (
                "frames_per_queue = 4096",
                "frames_per_queue = 4096\nrx_coalesce_us = 1001",
                "dataplane.rx_coalesce_us",
            ),
            (
                "max_sessions = 1000000",
                "max_sessions = 1",
                "nat.max_sessions",
            ),
            (
                "port_range = \"1024-65535\"",
                "port_range = \"2000-1000\"",
                "nat.port_range",
            ),
            (
                "port_range = \"1024-65535\"",
                "port_range = \"0-100\"",
                "nat.port_range",
            ),
            (
                "port_range = \"1024-65535\"",
                "port_range = \"1024\"",
                "nat.port_range",
            ),
            ("udp = 120", "udp = 0", "nat.timeouts.udp"),
            (
                "[nat.timeouts]",
                "[nat.fair_share]\npod_destination_share = 0\n[nat.timeouts]",
                "nat.fair_share.pod_destination_share",
            ),
            (
                "[nat.timeouts]",
                "[nat.fair_share]\npod_new_flows_per_second = 100\npod_new_flow_burst = 10\n[nat.timeouts]",
                "nat.fair_share.pod_new_flow_burst",
            ),
            (
                "egress_ips = [\"192.168.66.100\"]",
                "egress_ips = [\"192.168.66.100\", \"192.168.66.100\"]",
                "egress_ips",
            ),
            (
                "egress_ips = [\"192.168.66.100\"]",
                "egress_ips = [\"192.168.66.100\", \"192.168.99.23\"]",
                "egress_ips[1]",
            ),
            ("ip = \"10.132.0.13\"", "ip = \"10.133.0.3\"", "pods[1].ip"),
            ("ip = \"10.132.0.13\"", "ip = \"10.200.0.13\"", "pods[1].ip"),
            (
                "external_interface = \"br-ex\"",
                "external_interface = \"br-ex\"\nunderlay_uplink = \"enp 1\"",
                "node.underlay_uplink",
            ),
            (
                "external_interface = \"br-ex\"",
                "external_interface = \"br-ex\"\nunderlay_uplink = \"enp1s0\"\nexternal_uplink = \"enp2s0\"",
                "node.external_uplink",
            ),
            (
                "pod_networks = [\"10.128.0.0/13\"]",
                "pod_networks = [\"10.128.0.1/13\"]",
                "cluster.pod_networks[0]",
            ),
            (
                "pod_networks = [\"10.128.0.0/13\"]",
                "pod_networks = []",
                "cluster.pod_networks",
            ),
            (
                "service_networks = [\"172.22.0.0/16\"]",
                "service_networks = [\"172.22.0.0\"]",
                "cluster.service_networks[0]",
            ),
            (
                "node_networks = [\"192.168.99.0/24\"]",
                "node_networks = [\"192.168.99.0/24\", \"0.0.0.0/0\"]",
                "cluster",
            ),
            (
                "node_networks = [\"192.168.99.0/24\"]",
                "node_networks = [\"192.168.99.0/24\"]\nmasquerade_subnet = \"169.254.0.0/33\"",
                "cluster.masquerade_subnet",
            ),
            (
                "node_networks = [\"192.168.99.0/24\"]",
                "node_networks = [\"192.168.0.0/16\"]",
                "egress_ips[0]",
            ),
            (
                "\"192.168.66.100\" = [\"8080/tcp\"]",
                "\"192.168.66.100\" = [\"8080/sctp\"]",
                "service_ports.\"192.168.66.100\"[0]",
            ),
            (
                "\"192.168.66.100\" = [\"8080/tcp\"]",
                "\"192.168.66.100\" = [\"8080/tcp\", \"8080/TCP\"]",
                "service_ports.\"192.168.66.100\"[1]",
            ),
            (
                "\"192.168.66.100\" = [\"8080/tcp\"]",
                "\"192.168.66.101\" = [\"8080/tcp\"]",
                "service_ports.\"192.168.66.101\"",
            ),
        ];
        for (from, to, field) in cases {
            assert!(SEED.contains(from), "{from}");
            let text = SEED.replacen(from, to, 1);
            let e = Config::parse(&text).unwrap_err();
            assert_eq!(&e.field, field, "{to}: {e}");
        }
        // A pod mapped to an egress IP this node does not serve.
        let text = SEED.replacen(
            "egress_ip = \"192.168.66.100\"\ncomment = \"demo-egress/egress-identity\"\n\n[[pods]]",
            "egress_ip = \"192.168.66.101\"\ncomment = \"x\"\n\n[[pods]]",
            1,
        );
        let e = Config::parse(&text).unwrap_err();
        assert_eq!(e.field, "pods[0].egress_ip");
        assert_eq!(
            e.to_string(),
            "pods[0].egress_ip: 192.168.66.101 is not in egress_ips"
        );
        // No [cluster] at all: refused, saying why.
        let start = SEED.find("[cluster]").unwrap();
        let end = SEED.find("[dataplane]").unwrap();
        let e = Config::parse(&(SEED[..start].to_owned() + &SEED[end..])).unwrap_err();
        assert_eq!(e.field, "cluster");
        assert!(e.problem.contains("east-west"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Config::load(std::path::Path::new("/nonexistent/egressgw.toml")).unwrap_err();
        assert_eq!(e.field, "/nonexistent/egressgw.toml");
    }

    #[test]
    fn syntax_errors_say_where() {
        let e =
            Config::parse("[node]\nip = \"10.0.0.1\"\nunderlay_interface = br-ex\n").unwrap_err();
        assert_eq!(e.field, "toml");
        assert!(e.problem.contains("line 3"), "{e}");
    }
}
