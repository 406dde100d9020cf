//! The `[bgp]` section of the daemon's configuration, with the field names of FRR-K8s's
//! FRRConfiguration (in TOML's snake_case), so the seed's objects translate line by line:
//!
//! ```toml
//! [bgp]
//! asn = 64512
//!
//! [[bgp.bfd_profiles]]
//! name = "fast-bfd"
//! detect_multiplier = 3
//!
//! [[bgp.neighbors]]
//! address = "192.168.99.12"
//! asn = 64512
//! bfd_profile = "fast-bfd"
//! [bgp.neighbors.to_receive.allowed]
//! mode = "filtered"
//! prefixes = [{ prefix = "192.168.55.0/24" }]
//! ```
//!
//! IPv6: `ipv6_address` is the node's IPv6 address on the routers' link (the source of
//! IPv6 sessions and the next hop of the /128s it announces); a neighbour may be an IPv6
//! address. Each session carries both families (multiprotocol BGP) where the node has a next
//! hop of both, unless `disable_mp = true` (FRR-K8s's `disableMP`, as in the seed) keeps it to
//! its own family, one session per family.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bgp::bfd::BfdConfig;
use bgp::filter::{ImportFilter, PrefixRule};
use bgp::speaker::{NeighborSpec, SpeakerConfig, BGP_PORT};
use bgp::wire::Family;
use serde::Deserialize;

use crate::daemon::config_error::{bad, ConfigError};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bgp {
    pub asn: u32,
    /// Defaults to the node IP.
    pub router_id: Option<Ipv4Addr>,
    /// The node's IPv6 address towards the routers: IPv6 sessions start there, and IPv6
    /// routes are announced with it as their next hop.
    pub ipv6_address: Option<Ipv6Addr>,
    /// Accept connections from neighbours on the node IP (and `ipv6_address`), port 179.
    #[serde(default = "yes")]
    pub listen: bool,
    #[serde(default)]
    pub bfd_profiles: Vec<BfdProfile>,
    #[serde(default)]
    pub neighbors: Vec<Neighbor>,
}

fn yes() -> bool {
    true
}

/// FRR-K8s `bfdProfiles[]` (intervals in milliseconds; FRR's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfdProfile {
    pub name: String,
    #[serde(default = "default_bfd_interval")]
    pub receive_interval: u32,
    #[serde(default = "default_bfd_interval")]
    pub transmit_interval: u32,
    #[serde(default = "default_detect_multiplier")]
    pub detect_multiplier: u8,
}

fn default_bfd_interval() -> u32 {
    300
}

fn default_detect_multiplier() -> u8 {
    3
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbor {
    pub address: IpAddr,
    pub asn: u32,
    /// The session carries its own address family alone (FRR-K8s `disableMP`).
    #[serde(default)]
    pub disable_mp: bool,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Seconds; 0 (no keepalives) or at least 3. FRR-K8s's default is 90.
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// Seconds between connection attempts.
    #[serde(default = "default_connect_time")]
    pub connect_time: u16,
    #[serde(default)]
    pub passive: bool,
    pub bfd_profile: Option<String>,
    #[serde(default)]
    pub to_receive: ToReceive,
}

fn default_port() -> u16 {
    BGP_PORT
}

fn default_hold_time() -> u16 {
    90
}

fn default_connect_time() -> u16 {
    5
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToReceive {
    #[serde(default)]
    pub allowed: Allowed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// "all" or "filtered"; absent: receive nothing (FRR-K8s's default).
    pub mode: Option<String>,
    #[serde(default)]
    pub prefixes: Vec<AllowedPrefix>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedPrefix {
    pub prefix: String,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl Bgp {
    pub fn validate(&self, node_ip: Ipv4Addr) -> Result<(), ConfigError> {
        if self.asn == 0 {
            return Err(bad("bgp.asn", "must not be 0"));
        }
        let router_id = self.router_id.unwrap_or(node_ip);
        if router_id.is_unspecified() {
            return Err(bad("bgp.router_id", "must not be 0.0.0.0"));
        }
        let mut names = HashSet::new();
        for (i, p) in self.bfd_profiles.iter().enumerate() {
            let at = |f: &str| format!("bgp.bfd_profiles[{i}].{f}");
            if !names.insert(p.name.as_str()) {
                return Err(bad(at("name"), format!("{:?} defined twice", p.name)));
            }
            for (f, v) in [
                ("receive_interval", p.receive_interval),
                ("transmit_interval", p.transmit_interval),
            ] {
                if !(10..=60_000).contains(&v) {
                    return Err(bad(at(f), format!("{v} ms is outside 10-60000")));
                }
            }
            if p.detect_multiplier == 0 {
                return Err(bad(at("detect_multiplier"), "must be at least 1"));
            }
        }
        let mut addresses = HashSet::new();
        for (i, n) in self.neighbors.iter().enumerate() {
            let at = |f: &str| format!("bgp.neighbors[{i}].{f}");
            if !addresses.insert(n.address) {
                return Err(bad(at("address"), format!("{} listed twice", n.address)));
            }
            let own = [Some(IpAddr::V4(node_ip)), self.ipv6_address.map(IpAddr::V6)];
            if own.contains(&Some(n.address)) || n.address.is_unspecified() {
                return Err(bad(
                    at("address"),
                    format!("{} cannot be a neighbour", n.address),
                ));
            }
            if n.address.is_ipv6() && self.ipv6_address.is_none() {
                return Err(bad(
                    at("address"),
                    format!(
                        "{}: an IPv6 neighbour needs bgp.ipv6_address (the node's address \
                         towards it)",
                        n.address
                    ),
                ));
            }
            if n.asn == 0 {
                return Err(bad(at("asn"), "must not be 0"));
            }
            if n.hold_time == 1 || n.hold_time == 2 {
                return Err(bad(
                    at("hold_time"),
                    "must be 0 or at least 3 seconds (RFC 4271 4.2)",
                ));
            }
            if n.connect_time == 0 {
                return Err(bad(at("connect_time"), "must be at least 1 second"));
            }
            if let Some(p) = &n.bfd_profile {
                if !names.contains(p.as_str()) {
                    return Err(bad(
                        at("bfd_profile"),
                        format!("no bfd_profiles entry named {p:?}"),
                    ));
                }
            }
            self.import_filter(i)?;
        }
        Ok(())
    }

    fn import_filter(&self, i: usize) -> Result<ImportFilter, ConfigError> {
        let allowed = &self.neighbors[i].to_receive.allowed;
        let at = |f: &str| format!("bgp.neighbors[{i}].to_receive.allowed.{f}");
        match allowed.mode.as_deref() {
            None if allowed.prefixes.is_empty() => Ok(ImportFilter::None),
            None => Err(bad(at("mode"), "prefixes need mode = \"filtered\"")),
            Some("all") if allowed.prefixes.is_empty() => Ok(ImportFilter::All),
            Some("all") => Err(bad(at("prefixes"), "mode \"all\" takes no prefixes")),
            Some("filtered") => {
                let mut rules = Vec::new();
                for (j, p) in allowed.prefixes.iter().enumerate() {
                    let field = at(&format!("prefixes[{j}]"));
                    let prefix = p
                        .prefix
                        .parse()
                        .map_err(|e: String| bad(field.clone(), e))?;
                    rules.push(PrefixRule::new(prefix, p.ge, p.le).map_err(|e| bad(field, e))?);
                }
                Ok(ImportFilter::Filtered(rules))
            }
            Some(other) => Err(bad(
                at("mode"),
                format!("{other:?}: expected \"all\" or \"filtered\""),
            )),
        }
    }

    /// What a session with `n` offers: its own family, and the other where MP is allowed and
    /// the node has a next hop of that family.
    fn families(&self, n: &Neighbor) -> Vec<Family> {
        let own = Family::of(n.address);
        let other_next_hop = match own {
            Family::Ipv4 => self.ipv6_address.is_some(),
            Family::Ipv6 => true, // the node IP
        };
        Family::ALL
            .into_iter()
            .filter(|f| *f == own || (!n.disable_mp && other_next_hop))
            .collect()
    }

    /// The speaker's configuration (call after `validate`).
    pub fn speaker_config(&self, node_ip: Ipv4Addr) -> SpeakerConfig {
        let profile = |name: &Option<String>| {
            let p = self
                .bfd_profiles
                .iter()
                .find(|p| Some(&p.name) == name.as_ref())?;
            Some(BfdConfig {
                desired_min_tx: Duration::from_millis(u64::from(p.transmit_interval)),
                required_min_rx: Duration::from_millis(u64::from(p.receive_interval)),
                detect_mult: p.detect_multiplier,
            })
        };
        SpeakerConfig {
            local_as: self.asn,
            router_id: self.router_id.unwrap_or(node_ip),
            listen: if self.listen {
                [Some(IpAddr::V4(node_ip)), self.ipv6_address.map(IpAddr::V6)]
                    .into_iter()
                    .flatten()
                    .map(|ip| SocketAddr::new(ip, BGP_PORT))
                    .collect()
            } else {
                Vec::new()
            },
            neighbors: self
                .neighbors
                .iter()
                .enumerate()
                .map(|(i, n)| NeighborSpec {
                    address: n.address,
                    port: n.port,
                    peer_as: n.asn,
                    local_address: match n.address {
                        IpAddr::V4(_) => Some(IpAddr::V4(node_ip)),
                        IpAddr::V6(_) => self.ipv6_address.map(IpAddr::V6),
                    },
                    families: self.families(n),
                    next_hop_v4: Some(node_ip),
                    next_hop_v6: self.ipv6_address,
                    hold_time: n.hold_time,
                    connect_retry: Duration::from_secs(u64::from(n.connect_time)),
                    passive: n.passive,
                    import: self.import_filter(i).expect("validated"),
                    bfd: profile(&n.bfd_profile),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::config::Config;
    use bgp::wire::Family;

    const BASE: &str = r#"
egress_ips = ["192.168.66.100"]
[node]
ip = "192.168.99.23"
underlay_interface = "br-ex"
external_interface = "br-ex"
[cluster]
pod_networks = ["10.128.0.0/13"]
service_networks = ["172.22.0.0/16"]
"#;

    /// The seed's FRRConfiguration `bgp-advertise-egress-identity-bgp`, in our TOML.
    const SEED_BGP: &str = r#"
[bgp]
asn = 64512
[[bgp.bfd_profiles]]
name = "fast-bfd"
detect_multiplier = 3
[[bgp.neighbors]]
address = "192.168.99.12"
asn = 64512
bfd_profile = "fast-bfd"
[bgp.neighbors.to_receive.allowed]
mode = "filtered"
prefixes = [{ prefix = "192.168.55.0/24" }]
"#;

    #[test]
    fn seed_frr_configuration_translates() {
        let config = Config::parse(&format!("{BASE}{SEED_BGP}")).unwrap();
        let s = config.bgp.unwrap().speaker_config(config.node.ip);
        assert_eq!(s.local_as, 64512);
        assert_eq!(s.router_id, config.node.ip);
        assert_eq!(s.listen, ["192.168.99.23:179".parse().unwrap()]);
        let n = &s.neighbors[0];
        assert_eq!(
            (n.peer_as, n.hold_time, n.local_address),
            (64512, 90, Some(config.node.ip.into()))
        );
        // No IPv6 address: the session offers IPv4 alone, as before IPv6 existed.
        assert_eq!(n.families, [Family::Ipv4]);
        let bfd = n.bfd.unwrap();
        assert_eq!((bfd.detect_mult, bfd.desired_min_tx.as_millis()), (3, 300));
        assert!(n.import.accepts(&"192.168.55.0/24".parse().unwrap()));
        assert!(!n.import.accepts(&"10.0.0.0/8".parse().unwrap()));
    }

    /// The seed's dual-stack shape: `disableMP: true`, one session per family, the IPv6 one
    /// from the node's IPv6 address; and a multiprotocol session carrying both.
    #[test]
    fn ipv6_neighbours_one_session_per_family_or_both_over_one() {
        let dual = SEED_BGP.replace(
            "asn = 64512\n[[bgp.bfd",
            "asn = 64512\nipv6_address = \"fd00:99::23\"\n[[bgp.bfd",
        ) + r#"
[[bgp.neighbors]]
address = "fd00:99::12"
asn = 64512
disable_mp = true
bfd_profile = "fast-bfd"
[bgp.neighbors.to_receive.allowed]
mode = "filtered"
prefixes = [{ prefix = "fd00:55::/64" }]
"#;
        let dual = dual.replacen(
            "asn = 64512\nbfd_profile",
            "asn = 64512\ndisable_mp = true\nbfd_profile",
            1,
        );
        let config = Config::parse(&format!("{BASE}{dual}")).unwrap();
        let s = config.bgp.as_ref().unwrap().speaker_config(config.node.ip);
        assert_eq!(
            s.listen,
            [
                "192.168.99.23:179".parse().unwrap(),
                "[fd00:99::23]:179".parse().unwrap()
            ]
        );
        let (v4, v6) = (&s.neighbors[0], &s.neighbors[1]);
        assert_eq!(v4.families, [Family::Ipv4]);
        assert_eq!(v6.families, [Family::Ipv6]);
        assert_eq!(v6.local_address, Some("fd00:99::23".parse().unwrap()));
        assert_eq!(v6.next_hop_v6, Some("fd00:99::23".parse().unwrap()));
        assert!(v6.import.accepts(&"fd00:55::/64".parse().unwrap()));
        assert!(v6.bfd.is_some());
        // Without disable_mp the IPv4 session carries IPv6 too (next hop: ipv6_address).
        let mp = dual.replacen("disable_mp = true\n", "", 1);
        let config = Config::parse(&format!("{BASE}{mp}")).unwrap();
        let s = config.bgp.as_ref().unwrap().speaker_config(config.node.ip);
        assert_eq!(s.neighbors[0].families, [Family::Ipv4, Family::Ipv6]);
        // An IPv6 neighbour needs the node's IPv6 address.
        let e = Config::parse(&format!(
            "{BASE}{}",
            dual.replace("ipv6_address = \"fd00:99::23\"\n", "")
        ))
        .unwrap_err();
        assert_eq!(e.field, "bgp.neighbors[1].address", "{e}");
        assert!(e.problem.contains("ipv6_address"), "{e}");
        // Neither of the node's own addresses can be a neighbour.
        let e = Config::parse(&format!(
            "{BASE}{}",
            dual.replace("address = \"fd00:99::12\"", "address = \"fd00:99::23\"")
        ))
        .unwrap_err();
        assert_eq!(e.field, "bgp.neighbors[1].address", "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("asn = 64512", "asn = 0", "bgp.asn"),
            (
                "bfd_profile = \"fast-bfd\"",
                "bfd_profile = \"slow\"",
                "bgp.neighbors[0].bfd_profile",
            ),
            (
                "mode = \"filtered\"",
                "mode = \"some\"",
                "bgp.neighbors[0].to_receive.allowed.mode",
            ),
            (
                "{ prefix = \"192.168.55.0/24\" }",
                "{ prefix = \"192.168.55.1/24\" }",
                "bgp.neighbors[0].to_receive.allowed.prefixes[0]",
            ),
            (
                "{ prefix = \"192.168.55.0/24\" }",
                "{ prefix = \"192.168.55.0/24\", ge = 8 }",
                "bgp.neighbors[0].to_receive.allowed.prefixes[0]",
            ),
            (
                "address = \"192.168.99.12\"",
                "address = \"192.168.99.23\"",
                "bgp.neighbors[0].address",
            ),
            (
                "detect_multiplier = 3",
                "detect_multiplier = 0",
                "bgp.bfd_profiles[0].detect_multiplier",
            ),
            (
                "asn = 64512\nbfd_profile",
                "asn = 64512\nhold_time = 2\nbfd_profile",
                "bgp.neighbors[0].hold_time",
            ),
        ];
        for (from, to, field) in cases {
            let text = format!("{BASE}{}", SEED_BGP.replacen(from, to, 1));
            assert_ne!(text, format!("{BASE}{SEED_BGP}"), "{from} not found");
            let e = Config::parse(&text).unwrap_err();
            assert_eq!(e.field, field, "{to}: {e}");
        }
        let e = Config::parse(&format!("{BASE}{SEED_BGP}\nkeepalive = 3")).unwrap_err();
        assert!(
            e.problem.contains("keepalive"),
            "unknown keys are errors: {e}"
        );
    }
}
