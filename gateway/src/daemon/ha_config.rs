//! The `[ha]` section: the other gateways of this node's set, and the sync channel to them
//! (issue 16, docs/failover.md).
//!
//! ```toml
//! [ha]
//! node_id = 1
//! port = 4790                        # UDP, on node.ip
//! key_file = "/etc/egressgw/sync.key"  # the set's pre-shared key, 16 bytes at least
//! replica_sessions = 1000000         # slots for the peers' sessions (beside nat.max_sessions)
//! replica_sessions_v6 = 262144       # the same for IPv6 (beside nat.max_sessions_v6)
//! block_size = 64                    # ports per block; nat.port_range must be a multiple
//! drain_ms = 500                     # on SIGTERM (and at least, on a drain): translating on
//!                                    # after the withdrawal
//! drain_quiet_ms = 1000              # a drain: no pod traffic this long, the pods have moved
//! drain_timeout_ms = 60000           # a drain ends after this long whatever the pods do
//!
//! [[ha.peers]]
//! id = 2
//! address = "192.168.99.24:4790"    # its node.ip and ha.port
//! ```
//!
//! The set syncs and forwards replies over one underlay family, its peers': IPv4 peers
//! reach `node.ip`, IPv6 peers (a single-stack IPv6 cluster) `node.ip6`.

use crate::daemon::config_error::{bad, ConfigError};
use crate::daemon::sync_thread::{PeerConfig, SyncConfig};
use crate::nat::blocks::{BlockPlan, Ownership, PortBlocks};
use crate::sync::wire::SyncKey;
use core::ops::RangeInclusive;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const DEFAULT_PORT: u16 = 4790;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ha {
    pub node_id: u32,
    #[serde(default = "default_port")]
    pub port: u16,
    pub key_file: String,
    /// Defaults to `nat.max_sessions` (one peer's worth).
    pub replica_sessions: Option<u32>,
    /// Defaults to the IPv6 session bound (none when IPv6 is off).
    pub replica_sessions_v6: Option<u32>,
    /// Ports per block of `nat.port_range` (the same on every member).
    #[serde(default = "default_block_size")]
    pub block_size: u16,
    /// On a planned stop, how long the workers go on translating after the routes are
    /// withdrawn: the routers move the replies meanwhile, and the last sessions replicate.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u32,
    /// A drain (`egressctl drain`, or the watcher): once no pod has sent an egress packet
    /// for this long, the pods have moved and the blocks go to the serving members.
    #[serde(default = "default_drain_quiet_ms")]
    pub drain_quiet_ms: u32,
    /// A drain ends after this long even if pods still send here.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u32,
    pub peers: Vec<HaPeer>,
}

fn default_block_size() -> u16 {
    64
}

fn default_drain_ms() -> u32 {
    500
}

fn default_drain_quiet_ms() -> u32 {
    1000
}

fn default_drain_timeout_ms() -> u32 {
    60_000
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaPeer {
    pub id: u32,
    pub address: SocketAddr,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

impl Ha {
    pub(crate) fn validate(
        &self,
        node_ip: Ipv4Addr,
        node_ip6: Option<Ipv6Addr>,
        port_range: RangeInclusive<u16>,
    ) -> Result<(), ConfigError> {
        BlockPlan::new(port_range, self.block_size)
            .map_err(|e| bad("ha.block_size", e.to_string()))?;
        if self.port == 0 {
            return Err(bad("ha.port", "0 is not a port"));
        }
        if self.peers.is_empty() {
            return Err(bad("ha.peers", "at least one peer (else leave [ha] out)"));
        }
        if !self.key_file.starts_with('/') {
            return Err(bad(
                "ha.key_file",
                format!("{:?} must be an absolute path", self.key_file),
            ));
        }
        let mut ids = HashSet::from([self.node_id]);
        let mut addresses = HashSet::from([SocketAddr::from((node_ip, self.port))]);
        addresses.extend(node_ip6.map(|ip| SocketAddr::from((ip, self.port))));
        let ipv6 = self.over_ipv6();
        for (i, p) in self.peers.iter().enumerate() {
            if !ids.insert(p.id) {
                return Err(bad(
                    format!("ha.peers[{i}].id"),
                    format!("{} is this node's id or another peer's", p.id),
                ));
            }
            if !addresses.insert(p.address) {
                return Err(bad(
                    format!("ha.peers[{i}].address"),
                    format!("{} is this node's or another peer's", p.address),
                ));
            }
            let ip = p.address.ip();
            if p.address.port() == 0
                || ip.is_unspecified()
                || ip.is_multicast()
                || ip.is_loopback()
                || matches!(ip, IpAddr::V6(a) if a.is_unicast_link_local())
                || ip == IpAddr::V4(Ipv4Addr::BROADCAST)
            {
                return Err(bad(
                    format!("ha.peers[{i}].address"),
                    format!("{} is not a peer's node address and port", p.address),
                ));
            }
            if p.address.is_ipv6() != ipv6 {
                return Err(bad(
                    format!("ha.peers[{i}].address"),
                    format!(
                        "{}: a set syncs over one family, and ha.peers[0] is {}",
                        p.address,
                        if ipv6 { "IPv6" } else { "IPv4" }
                    ),
                ));
            }
            if ipv6 && node_ip6.is_none() {
                return Err(bad(
                    format!("ha.peers[{i}].address"),
                    format!(
                        "{} is IPv6: a set on the IPv6 underlay needs node.ip6 (its sync \
                         channel and forwarded replies run there)",
                        p.address
                    ),
                ));
            }
        }
        if self.drain_ms > 60_000 {
            return Err(bad(
                "ha.drain_ms",
                format!(
                    "{} ms is longer than a planned stop should take (60 s at most)",
                    self.drain_ms
                ),
            ));
        }
        if self.drain_quiet_ms == 0 || self.drain_quiet_ms > self.drain_timeout_ms {
            return Err(bad(
                "ha.drain_quiet_ms",
                format!(
                    "{} ms: must be above 0 and at most ha.drain_timeout_ms ({} ms)",
                    self.drain_quiet_ms, self.drain_timeout_ms
                ),
            ));
        }
        if self.drain_timeout_ms > 3_600_000 {
            return Err(bad(
                "ha.drain_timeout_ms",
                format!("{} ms is more than an hour", self.drain_timeout_ms),
            ));
        }
        if self.replica_sessions == Some(0) {
            return Err(bad(
                "ha.replica_sessions",
                "0 leaves no room for the peers' sessions",
            ));
        }
        if self.replica_sessions_v6 == Some(0) {
            return Err(bad(
                "ha.replica_sessions_v6",
                "0 leaves no room for the peers' IPv6 sessions (nat.max_sessions_v6 = 0 turns \
                 IPv6 off)",
            ));
        }
        Ok(())
    }

    /// A drain's times: at least `drain_ms` withdrawn, then `drain_quiet_ms` without pod
    /// traffic, at most `drain_timeout_ms`.
    pub fn drain_times(&self) -> crate::daemon::drain::DrainTimes {
        let ms = |v: u32| std::time::Duration::from_millis(u64::from(v));
        crate::daemon::drain::DrainTimes {
            min: ms(self.drain_ms),
            quiet: ms(self.drain_quiet_ms),
            timeout: ms(self.drain_timeout_ms),
        }
    }

    /// The replica slots for a table of `max_sessions` local ones.
    pub fn replica_slots(&self, max_sessions: u32) -> u32 {
        self.replica_sessions.unwrap_or(max_sessions)
    }

    /// The IPv6 replica slots for `max_sessions_v6` local ones: none with IPv6 off.
    pub fn replica_slots_v6(&self, max_sessions_v6: u32) -> u32 {
        if max_sessions_v6 == 0 {
            return 0;
        }
        self.replica_sessions_v6.unwrap_or(max_sessions_v6)
    }

    /// This node's address on the set's underlay (the peers' family): where its sync channel
    /// listens and forwarded replies arrive. Validation made sure `node_ip6` is there for
    /// IPv6 peers.
    pub fn sync_ip(&self, node_ip: Ipv4Addr, node_ip6: Option<Ipv6Addr>) -> IpAddr {
        match node_ip6 {
            Some(ip6) if self.over_ipv6() => IpAddr::V6(ip6),
            _ => IpAddr::V4(node_ip),
        }
    }

    /// The set runs over the IPv6 underlay: its peers are IPv6 (validation holds them to
    /// one family).
    fn over_ipv6(&self) -> bool {
        self.peers.first().is_some_and(|p| p.address.is_ipv6())
    }

    /// The port blocks as this node starts: alone, it owns them all until it hears a peer.
    /// A member's node address is that of its sync channel (`sync_ip`: where its dataplane
    /// takes Geneve).
    pub fn port_blocks(
        &self,
        sync_ip: IpAddr,
        port_range: RangeInclusive<u16>,
    ) -> Result<PortBlocks, ConfigError> {
        let plan = BlockPlan::new(port_range, self.block_size)
            .map_err(|e| bad("ha.block_size", e.to_string()))?;
        let mut addresses = vec![(self.node_id, sync_ip)];
        addresses.extend(self.peers.iter().map(|p| (p.id, p.address.ip())));
        Ok(PortBlocks {
            ownership: Ownership::compute(plan, &[self.node_id], 0),
            me: self.node_id,
            addresses,
        })
    }

    /// The sync thread's settings; reads the key file.
    pub fn sync_config(&self, underlay_mtu: u16) -> Result<SyncConfig, ConfigError> {
        let bytes = std::fs::read(&self.key_file)
            .map_err(|e| bad("ha.key_file", format!("{}: {e}", self.key_file)))?;
        let key = SyncKey::new(trim_newline(&bytes)).map_err(|e| bad("ha.key_file", e))?;
        Ok(SyncConfig {
            node_id: self.node_id,
            peers: self
                .peers
                .iter()
                .map(|p| PeerConfig {
                    id: p.id,
                    address: p.address,
                })
                .collect(),
            key,
            // The IP and UDP headers.
            payload: usize::from(underlay_mtu) - if self.over_ipv6() { 48 } else { 28 },
            blocks: None,
            version: crate::sync::wire::VERSION,
        })
    }
}

/// A key written with `echo` ends in a newline that is not part of it.
fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ha(toml_text: &str) -> Result<Ha, String> {
        let h: Ha = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        h.validate(Ipv4Addr::new(192, 168, 99, 23), Some(NODE6), 1024..=65535)
            .map_err(|e| e.to_string())?;
        Ok(h)
    }

    const NODE6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x23);

    const GOOD: &str = r#"
node_id = 1
key_file = "/etc/egressgw/sync.key"
[[peers]]
id = 2
address = "192.168.99.24:4790"
"#;

    #[test]
    fn a_set_of_two_is_accepted_with_defaults() {
        let h = ha(GOOD).unwrap();
        assert_eq!(h.port, DEFAULT_PORT);
        assert_eq!(h.replica_slots(1000), 1000);
        assert_eq!(h.replica_slots_v6(500), 500);
        assert_eq!(h.replica_slots_v6(0), 0, "IPv6 off: no IPv6 replicas");
        let ip = h.sync_ip(Ipv4Addr::new(192, 168, 99, 23), Some(NODE6));
        assert_eq!(ip, Ipv4Addr::new(192, 168, 99, 23));
        let blocks = h.port_blocks(ip, 1024..=65535).unwrap();
        assert_eq!(blocks.ownership.blocks_of(1).count(), 1008);
        let v4 = |d: u8| IpAddr::from([192, 168, 99, d]);
        assert_eq!(blocks.addresses, [(1, v4(23)), (2, v4(24))]);
    }

    /// A set on the IPv6 underlay: IPv6 peers, the channel on node.ip6, the blocks' owners
    /// by their IPv6 addresses, room for the longer headers.
    #[test]
    fn a_set_on_the_ipv6_underlay_syncs_over_node_ip6() {
        let h = ha(&GOOD.replace("192.168.99.24:4790", "[fd00:99::24]:4790")).unwrap();
        let ip = h.sync_ip(Ipv4Addr::new(192, 168, 99, 23), Some(NODE6));
        assert_eq!(ip, NODE6);
        let blocks = h.port_blocks(ip, 1024..=65535).unwrap();
        let peer: IpAddr = "fd00:99::24".parse().unwrap();
        assert_eq!(blocks.addresses, [(1, IpAddr::V6(NODE6)), (2, peer)]);
        let dir = std::env::temp_dir().join(format!("egressgw-ha6-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = h;
        h.key_file = dir.join("sync.key").display().to_string();
        std::fs::write(&h.key_file, "0123456789abcdef0123").unwrap();
        assert_eq!(h.sync_config(1500).unwrap().payload, 1452);
        std::fs::remove_dir_all(&dir).unwrap();
        // Without node.ip6 an IPv6 peer has nowhere to reach this node.
        let t: Ha =
            toml::from_str(&GOOD.replace("192.168.99.24:4790", "[fd00:99::24]:4790")).unwrap();
        let e = t
            .validate(Ipv4Addr::new(192, 168, 99, 23), None, 1024..=65535)
            .unwrap_err();
        assert_eq!(e.field, "ha.peers[0].address", "{e}");
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (GOOD.replace("id = 2", "id = 1"), "ha.peers[0].id"),
            (
                GOOD.replace("192.168.99.24:4790", "192.168.99.23:4790"),
                "ha.peers[0].address",
            ),
            (
                GOOD.replace("/etc/egressgw/sync.key", "sync.key"),
                "ha.key_file",
            ),
            (
                GOOD.replace("192.168.99.24:4790", "[fd00:99::23]:4790"),
                "ha.peers[0].address",
            ),
            (
                GOOD.replace("192.168.99.24:4790", "[fe80::24]:4790"),
                "ha.peers[0].address",
            ),
            (
                GOOD.replace("192.168.99.24:4790", "0.0.0.0:4790"),
                "ha.peers[0].address",
            ),
            (
                GOOD.to_owned() + "[[peers]]\nid = 3\naddress = \"[fd00:99::25]:4790\"\n",
                "ha.peers[1].address",
            ),
            (
                GOOD.replace("node_id = 1", "node_id = 1\nreplica_sessions = 0"),
                "ha.replica_sessions",
            ),
            (
                GOOD.replace("node_id = 1", "node_id = 1\nreplica_sessions_v6 = 0"),
                "ha.replica_sessions_v6",
            ),
            (
                GOOD.split("[[peers]]").next().unwrap().to_owned() + "peers = []",
                "ha.peers",
            ),
            (
                GOOD.replace("node_id = 1", "node_id = 1\nblock_size = 100"),
                "ha.block_size",
            ),
            (
                GOOD.replace("node_id = 1", "node_id = 1\ndrain_ms = 600000"),
                "ha.drain_ms",
            ),
            (
                GOOD.replace("node_id = 1", "node_id = 1\ndrain_quiet_ms = 0"),
                "ha.drain_quiet_ms",
            ),
            (
                GOOD.replace(
                    "node_id = 1",
                    "node_id = 1\ndrain_quiet_ms = 5000\ndrain_timeout_ms = 4000",
                ),
                "ha.drain_quiet_ms",
            ),
            (
                GOOD.replace("node_id = 1", "node_id = 1\ndrain_timeout_ms = 7200000"),
                "ha.drain_timeout_ms",
            ),
        ];
        for (text, field) in cases {
            let e = ha(&text).unwrap_err();
            assert!(e.starts_with(field), "{field}: {e}");
        }
        assert!(
            ha(&GOOD.replace("node_id", "nodeid")).is_err(),
            "unknown field"
        );
    }

    #[test]
    fn the_key_file_is_read_and_a_short_key_refused() {
        let dir = std::env::temp_dir().join(format!("egressgw-ha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sync.key");
        let mut h = ha(GOOD).unwrap();
        h.key_file = path.display().to_string();
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        assert_eq!(h.sync_config(1500).unwrap().payload, 1472);
        std::fs::write(&path, "short\n").unwrap();
        let e = h.sync_config(1500).unwrap_err();
        assert_eq!(e.field, "ha.key_file");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(h.sync_config(1500).is_err(), "a missing file is an error");
    }
}
