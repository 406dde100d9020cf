//! The control protocol: every request and response, defined once and used by the daemon, the
//! CLI and the watcher. On the socket each message is a frame: a 4-byte big-endian length, then
//! that many bytes of JSON. Every request carries the protocol version; a daemon refuses a
//! version it does not speak with an error naming both. Addresses are of either family
//! (version 3): a pod and its egress IP are of the same one, as the seed's
//! `egress-service-snat-v4` and `egress-service-snat-v6` maps are.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

pub const VERSION: u16 = 3;
/// The largest frame either side accepts: a replace-all of 100,000 pods fits.
pub const MAX_FRAME: usize = 16 << 20;
pub const DEFAULT_SOCKET: &str = "/run/egressgw/egressgw.sock";

/// One pod -> egress-IP mapping (a line of the seed's `egress-service-snat-v4` or
/// `egress-service-snat-v6` map; both addresses of one family).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapEntry {
    pub pod: IpAddr,
    pub egress_ip: IpAddr,
    /// Who asked for it, `namespace/name` of the EgressService.
    #[serde(default)]
    pub comment: String,
    /// The node the pod runs on (its tunnel endpoint): when set, new flows of the pod are
    /// accepted only through that node's tunnel (`pod_wrong_node` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Adds or changes one mapping.
    MapSet {
        entry: MapEntry,
    },
    MapDelete {
        pod: IpAddr,
    },
    MapList,
    /// Replaces the whole map at once: the dataplane sees the old map or the new one.
    MapReplace {
        entries: Vec<MapEntry>,
    },
    /// Sets and deletes several mappings at once, all or nothing (the watcher's difference).
    MapUpdate {
        #[serde(default)]
        set: Vec<MapEntry>,
        #[serde(default)]
        delete: Vec<IpAddr>,
    },
    /// Serve an egress IP on this node (steer its replies here, announce it over BGP), or change the Service ports of one served already. The Service's
    /// own ports on its LoadBalancer IP stay the node's (its load balancer answers them): the
    /// steering program passes them to the node and the NAT never hands them out.
    EgressAdd {
        ip: IpAddr,
        #[serde(default)]
        service_ports: Vec<ServicePort>,
    },
    /// Stop serving it; its mappings must be gone first.
    EgressRemove {
        ip: IpAddr,
    },
    EgressList,
    /// Replaces the cluster networks learned from the cluster (the watcher's); those of the
    /// configuration file always stay. Geneve to a destination in any of them is east-west
    /// traffic and goes to the node's own OVS, not to the dataplane.
    ClusterSet {
        networks: Vec<IpNet>,
    },
    ClusterList,
    Stats,
    /// Live sessions matching the filter, at most `limit` of them (all when absent).
    Sessions {
        #[serde(default)]
        filter: SessionFilter,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Frees the live sessions matching the filter (their flows start over as new ones).
    SessionFlush {
        #[serde(default)]
        filter: SessionFilter,
    },
    BgpNeighbors,
    BgpRoutes,
    Health,
    /// The gateway set: members, port blocks, sync lag and counters.
    Ha,
    /// Takes this member of a gateway set out of service (true: routes withdrawn, then, once
    /// the pods have moved, its port blocks handed to the serving members) or back into it
    /// (false). Answered with the set's state (`Ha`).
    HaDrain {
        drain: bool,
    },
    /// The pods with the most live sessions and the most new flows refused by the per-pod
    /// limits, `top` of each (10 when absent), and the limits.
    Pods {
        #[serde(default)]
        top: Option<u32>,
    },
    /// Record the next `count` packets the dataplane handles (0: stop), dropping older records.
    CaptureStart {
        count: u32,
    },
    /// The packets recorded since the last fetch.
    CaptureFetch,
}

/// Which sessions a request is about; absent fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    pub pod: Option<IpAddr>,
    pub egress_ip: Option<IpAddr>,
    pub protocol: Option<Protocol>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    /// ICMP, and ICMPv6 for IPv6 sessions.
    Icmp,
}

impl Protocol {
    /// The IPv4 protocol number (ICMP's 1 stands for ICMPv6's 58 too).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
        }
    }
}

/// One translated flow, both ends and the binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    pub protocol: String,
    pub pod: IpAddr,
    pub pod_port: u16,
    pub egress_ip: IpAddr,
    pub egress_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// TCP: syn_sent, established, half_closed, closing, reset; otherwise active.
    pub state: String,
    pub idle_secs: u32,
    /// The tunnel endpoint replies go back to (the pod's node).
    pub node: IpAddr,
}

impl Request {
    /// Whether the request changes state (and so needs the write permission).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Request::MapSet { .. }
                | Request::MapDelete { .. }
                | Request::MapReplace { .. }
                | Request::MapUpdate { .. }
                | Request::SessionFlush { .. }
                | Request::EgressAdd { .. }
                | Request::EgressRemove { .. }
                | Request::ClusterSet { .. }
                | Request::HaDrain { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    pub version: u16,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Done,
    Map {
        entries: Vec<MapEntry>,
    },
    EgressIps {
        egress: Vec<EgressIp>,
    },
    Cluster {
        /// From the configuration file.
        configured: Vec<IpNet>,
        /// From the cluster (`ClusterSet`).
        learned: Vec<IpNet>,
    },
    Stats(Stats),
    Sessions {
        sessions: Vec<SessionInfo>,
        matched: u64,
    },
    /// Sessions freed, and workers that did not answer in time (stalled).
    Flushed {
        sessions: u64,
        workers_pending: u32,
    },
    BgpNeighbors {
        neighbors: Vec<BgpNeighbor>,
    },
    BgpRoutes {
        routes: Vec<BgpRoute>,
    },
    Health(Health),
    Ha(HaStatus),
    Captured {
        packets: Vec<CapturedPacket>,
        remaining: u32,
    },
    Pods(PodsStatus),
}

/// The per-pod limits and the pods nearest them (as of the workers' last reports, at most a
/// second old).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodsStatus {
    /// Each limit's configuration name -> its value (0: off; the share in percent).
    pub limits: Vec<(String, u64)>,
    pub by_sessions: Vec<PodUsage>,
    pub by_drops: Vec<PodUsage>,
}

/// One pod's live sessions on this node and its new flows refused, by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodUsage {
    pub pod: IpAddr,
    /// Its map entry's egress IP, if it has one.
    pub egress_ip: Option<IpAddr>,
    pub sessions: u64,
    /// Drop reason name -> count; only non-zero ones.
    pub drops: Vec<(String, u64)>,
}

/// One packet as the dataplane saw it, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturedPacket {
    pub queue: u32,
    /// Nanoseconds since the capture started.
    pub at_ns: u64,
    /// The frame as received (hex; cut at 512 bytes), and its full length.
    pub input_hex: String,
    pub input_len: u32,
    /// The frame as sent (hex), and where: "external" or "underlay".
    pub output_hex: Option<String>,
    pub output_iface: Option<String>,
    /// The drop reason when it was dropped.
    pub drop: Option<String>,
    /// Its path through the pipeline, one step a line.
    pub path: Vec<String>,
}

/// A served egress IP and the Service ports on it that belong to the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressIp {
    pub ip: IpAddr,
    pub service_ports: Vec<ServicePort>,
}

/// A Service's port: `8080/tcp`, `53/udp` (as a string on the wire and in the TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServicePort {
    pub protocol: L4Protocol,
    pub port: u16,
}

/// The protocols a Service port can have here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4Protocol {
    Tcp,
    Udp,
}

impl L4Protocol {
    pub fn number(self) -> u8 {
        match self {
            L4Protocol::Tcp => 6,
            L4Protocol::Udp => 17,
        }
    }
}

impl std::fmt::Display for ServicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            L4Protocol::Tcp => "tcp",
            L4Protocol::Udp => "udp",
        };
        write!(f, "{}/{proto}", self.port)
    }
}

impl std::str::FromStr for ServicePort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (port, proto) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not PORT/tcp or PORT/udp"))?;
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => L4Protocol::Tcp,
            "udp" => L4Protocol::Udp,
            _ => return Err(format!("{s:?}: the protocol must be tcp or udp")),
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: {port:?} is not a port (1-65535)"))?;
        Ok(ServicePort { protocol, port })
    }
}

impl TryFrom<String> for ServicePort {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ServicePort> for String {
    fn from(p: ServicePort) -> String {
        p.to_string()
    }
}

/// A network of either family, `10.128.0.0/14` or `fd00:10:128::/48`; host bits must be zero
/// (a typo is refused, not masked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

/// The address's bits as a 128-bit number, left-aligned (IPv4 in the top 32), and the
/// family's length in bits.
fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

/// The mask of a prefix length over the left-aligned bits.
fn prefix_mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// `addr` with every bit past `len` cleared.
fn masked(addr: IpAddr, len: u8) -> IpAddr {
    let (b, _) = bits(addr);
    let m = b & prefix_mask(len);
    match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((m >> 96) as u32)),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(m)),
    }
}

impl IpNet {
    /// `None` when `len` exceeds the family's length or `addr` has bits set past it.
    pub fn new(addr: impl Into<IpAddr>, len: u8) -> Option<IpNet> {
        let addr = addr.into();
        (len <= bits(addr).1 && masked(addr, len) == addr).then_some(IpNet { addr, len })
    }

    /// The network `addr/len` lies in (`100.88.0.4/16` -> `100.88.0.0/16`); `None` when
    /// `len` exceeds the family's length.
    pub fn containing(addr: impl Into<IpAddr>, len: u8) -> Option<IpNet> {
        let addr = addr.into();
        (len <= bits(addr).1).then(|| IpNet {
            addr: masked(addr, len),
            len,
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether `ip` lies in the network (never across families).
    pub fn contains(&self, ip: impl Into<IpAddr>) -> bool {
        let ip = ip.into();
        ip.is_ipv6() == self.addr.is_ipv6() && masked(ip, self.len) == self.addr
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/LENGTH"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
        let max = bits(addr).1;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?}: {len:?} is not a prefix length (0-{max})"))?;
        IpNet::new(addr, len).ok_or_else(|| {
            let meant = IpNet::containing(addr, len).expect("len checked");
            format!("{s:?} has host bits set (did you mean {meant}?)")
        })
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<IpNet> for String {
    fn from(n: IpNet) -> String {
        n.to_string()
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `None` for an odd length or a non-hex digit.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFrame {
    pub version: u16,
    pub result: Result<Response, ControlError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request could not be read (bad JSON, unknown op, bad field).
    BadRequest,
    /// Another protocol version.
    Version,
    /// The request is valid but would break an invariant (a pod mapped to an IP not served).
    Rejected,
    /// The caller may read but not change.
    PermissionDenied,
    /// Too many requests too fast.
    RateLimited,
    /// The daemon could not carry it out (a steering map update failed).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ControlError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ControlError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ControlError {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub workers: Vec<WorkerStats>,
    /// Live sessions of both families.
    pub sessions: u64,
    pub max_sessions: u64,
    /// The IPv6 ones among `sessions`, and their own bound.
    #[serde(default)]
    pub sessions_v6: u64,
    #[serde(default)]
    pub max_sessions_v6: u64,
    /// The steering program's verdicts on each interface it is attached to.
    #[serde(default)]
    pub steering: Vec<SteeringCount>,
    /// The receive drops of the interfaces the dataplane reads.
    #[serde(default)]
    pub interfaces: Vec<InterfaceDrops>,
    /// Entries of the session table's pod-side and reply-side indexes: each equals
    /// `sessions` unless something leaked.
    #[serde(default)]
    pub indexed: [u64; 2],
}

/// Frames the steering program gave one verdict (`geneve_redirected`, `geneve_passed`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteeringCount {
    pub interface: String,
    pub verdict: String,
    pub packets: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerStats {
    pub queue: u32,
    pub core: usize,
    /// "zero-copy" or "copy".
    pub af_xdp_mode: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Sessions this worker created (replies may be handled by any worker).
    pub sessions_created: u64,
    /// Time spent on non-empty batches (the busy part of a busy-polling core).
    pub busy_ns: u64,
    /// Drop reason name (as in docs/drop-reasons.md) -> count; only non-zero ones.
    pub drops: Vec<(String, u64)>,
    /// This worker's session slots in use; the rest are free.
    #[serde(default)]
    pub slots_in_use: u64,
    /// The kernel's counters of this worker's AF_XDP sockets: what was lost before the
    /// pipeline saw it (a full RX ring, an empty fill ring, bad descriptors).
    #[serde(default)]
    pub sockets: Vec<SocketCount>,
}

/// One AF_XDP socket's kernel-side counters (`XDP_STATISTICS`): name -> count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketCount {
    pub interface: String,
    pub counters: Vec<(String, u64)>,
}

/// Frames an interface dropped on receive before any program or socket had them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceDrops {
    pub interface: String,
    pub rx_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpNeighbor {
    pub address: IpAddr,
    pub asn: u32,
    pub state: String,
    /// The address families the established session carries (`ipv4-unicast`,
    /// `ipv6-unicast`).
    #[serde(default)]
    pub families: Vec<String>,
    pub established_secs: Option<u64>,
    pub last_down: Option<String>,
    pub flaps: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub advertised: Vec<String>,
    pub bfd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpRoute {
    pub prefix: String,
    pub next_hop: IpAddr,
    pub from: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub dataplane_ok: bool,
    pub stalled_workers: Vec<u32>,
    pub announced: Vec<IpAddr>,
    pub bgp_established: u32,
    pub bgp_configured: u32,
}

/// The gateway set as this node sees it (`[ha]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaStatus {
    pub node_id: u32,
    /// This life's epoch (a restart takes a new one).
    pub epoch: u32,
    /// Every live peer's sessions are here (the announcement waits for it).
    pub in_sync: bool,
    /// Port blocks this node owns, and the version of the ownership.
    pub blocks: u32,
    pub blocks_epoch: u32,
    /// Whether this member serves, and where a drain stands.
    #[serde(default)]
    pub drain: HaDrainStatus,
    pub peers: Vec<HaPeer>,
    /// (group, name, count): messages, records, replicas, drops by reason, queue losses.
    pub counters: Vec<(String, String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaPeer {
    pub id: u32,
    pub address: std::net::SocketAddr,
    pub alive: bool,
    /// It said this node holds its whole table.
    pub synced_from: bool,
    /// This node's bulk resend to it is under way.
    pub bulk_to: bool,
    /// Sync messages to it not yet acknowledged, and how long the oldest has waited.
    pub outstanding: u32,
    pub oldest_unacked_us: Option<u64>,
    pub heard_ms_ago: Option<u64>,
    pub blocks: u32,
    /// It says it is drained (its blocks are the serving members').
    #[serde(default)]
    pub draining: bool,
}

/// A member's service: `serving`; `withdrawn` (a drain under way: routes gone, blocks kept
/// while the pods move); `drained` (blocks handed over; only the flows it carries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaDrainStatus {
    pub phase: String,
    /// Since the drain was asked for.
    #[serde(default)]
    pub since_ms: Option<u64>,
    /// Since a pod last sent an egress packet through this node (while draining).
    #[serde(default)]
    pub last_egress_ms_ago: Option<u64>,
    /// How the drain ended: "the pods moved", or "timed out with pods still sending here".
    #[serde(default)]
    pub ended: Option<String>,
}

/// Frames a message: 4-byte big-endian length, then JSON.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let json = serde_json::to_vec(message).expect("protocol types always serialize");
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    TooLarge(usize),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME}"),
        }
    }
}

/// Takes one whole frame off the front of `buf`: `Ok(None)` until it is all there.
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let frame = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some(frame))
}

/// Reads a request frame's JSON; errors are what the daemon replies.
pub fn parse_request(json: &[u8]) -> Result<Request, ControlError> {
    // Read the version first, so a newer client gets "version", not a confusing field error.
    #[derive(Deserialize)]
    struct Versioned {
        version: u16,
    }
    let v: Versioned = serde_json::from_slice(json)
        .map_err(|e| ControlError::new(ErrorKind::BadRequest, format!("not a request: {e}")))?;
    if v.version != VERSION {
        return Err(ControlError::new(
            ErrorKind::Version,
            format!(
                "protocol version {} requested; this daemon speaks {VERSION}",
                v.version
            ),
        ));
    }
    let frame: RequestFrame = serde_json::from_slice(json)
        .map_err(|e| ControlError::new(ErrorKind::BadRequest, format!("bad request: {e}")))?;
    Ok(frame.request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> MapEntry {
        MapEntry {
            pod: Ipv4Addr::new(10, 133, 0, 3).into(),
            egress_ip: Ipv4Addr::new(192, 168, 66, 100).into(),
            comment: "demo-egress/egress-identity".into(),
            node: None,
        }
    }

    fn entry6() -> MapEntry {
        MapEntry {
            pod: "fd00:10:133::3".parse().unwrap(),
            egress_ip: "2001:db8:66::100".parse().unwrap(),
            comment: "demo-egress/egress-identity".into(),
            node: Some(Ipv4Addr::new(192, 168, 111, 21).into()),
        }
    }

    #[test]
    fn golden_json() {
        let req = RequestFrame {
            version: 3,
            request: Request::MapSet { entry: entry() },
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"version":3,"request":{"op":"map_set","entry":{"pod":"10.133.0.3","egress_ip":"192.168.66.100","comment":"demo-egress/egress-identity"}}}"#
        );
        assert_eq!(parse_request(json.as_bytes()), Ok(req.request));
        // IPv6 addresses are written as text too, the node (tunnel endpoint) of either family.
        let json = serde_json::to_string(&Request::MapSet { entry: entry6() }).unwrap();
        assert_eq!(
            json,
            r#"{"op":"map_set","entry":{"pod":"fd00:10:133::3","egress_ip":"2001:db8:66::100","comment":"demo-egress/egress-identity","node":"192.168.111.21"}}"#
        );
        let resp = ResponseFrame {
            version: 3,
            result: Ok(Response::Done),
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"version":3,"result":{"Ok":{"kind":"done"}}}"#
        );
    }

    #[test]
    fn bad_requests_are_named_errors() {
        let e = parse_request(b"{nope").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        // Version 2 (IPv4 only) is refused by name: its clients cannot read IPv6 answers.
        let e = parse_request(br#"{"version":2,"request":{"op":"map_list"}}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Version);
        assert!(e.message.contains("speaks 3"), "{e}");
        let e = parse_request(br#"{"version":3,"request":{"op":"map_explode"}}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        for bad in ["10.1.2", "fd00::1::2", "fd00:10:133::3/128"] {
            let json = format!(r#"{{"version":3,"request":{{"op":"map_delete","pod":"{bad}"}}}}"#);
            let e = parse_request(json.as_bytes()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest, "{bad}");
        }
        let e =
            parse_request(br#"{"version":3,"request":{"op":"map_delete","pod":"10.1.2.3","x":1}}"#)
                .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest, "unknown fields are refused");
    }

    #[test]
    fn framing() {
        let mut buf = encode(&RequestFrame {
            version: 3,
            request: Request::MapList,
        });
        let whole = buf.clone();
        buf.extend_from_slice(&whole[..3]);
        let first = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!(parse_request(&first), Ok(Request::MapList));
        assert_eq!(take_frame(&mut buf), Ok(None));
        buf.extend_from_slice(&whole[3..]);
        assert!(take_frame(&mut buf).unwrap().is_some());
        let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        assert_eq!(
            take_frame(&mut huge),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
    }

    #[test]
    fn every_request_round_trips() {
        let all = vec![
            Request::MapSet { entry: entry() },
            Request::MapDelete { pod: entry().pod },
            Request::MapList,
            Request::MapReplace {
                entries: vec![entry()],
            },
            Request::MapUpdate {
                set: vec![entry(), entry6()],
                delete: vec![entry().pod, entry6().pod],
            },
            Request::MapSet { entry: entry6() },
            Request::EgressAdd {
                ip: entry().egress_ip,
                service_ports: vec!["8080/tcp".parse().unwrap(), "53/udp".parse().unwrap()],
            },
            Request::EgressRemove {
                ip: entry().egress_ip,
            },
            Request::EgressAdd {
                ip: entry6().egress_ip,
                service_ports: vec![],
            },
            Request::EgressList,
            Request::ClusterSet {
                networks: vec!["10.128.0.0/14".parse().unwrap()],
            },
            Request::ClusterList,
            Request::Stats,
            Request::Sessions {
                filter: SessionFilter::default(),
                limit: Some(10),
            },
            Request::Sessions {
                filter: SessionFilter {
                    pod: Some(entry6().pod),
                    egress_ip: Some(entry6().egress_ip),
                    protocol: Some(Protocol::Icmp),
                },
                limit: None,
            },
            Request::BgpNeighbors,
            Request::BgpRoutes,
            Request::Health,
            Request::Ha,
            Request::HaDrain { drain: true },
            Request::SessionFlush {
                filter: SessionFilter::default(),
            },
            Request::CaptureStart { count: 5 },
            Request::CaptureFetch,
        ];
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xfe, 0xff])),
            Some(vec![0, 1, 0xfe, 0xff])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        for request in all {
            let framed = encode(&RequestFrame {
                version: VERSION,
                request: request.clone(),
            });
            assert_eq!(parse_request(&framed[4..]), Ok(request));
        }
    }

    #[test]
    fn service_ports_and_networks_read_as_written_and_refuse_typos() {
        let p: ServicePort = "8080/TCP".parse().unwrap();
        assert_eq!(
            (p.protocol, p.port, p.to_string()),
            (L4Protocol::Tcp, 8080, "8080/tcp".into())
        );
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""8080/tcp""#);
        for bad in ["8080", "0/tcp", "70000/udp", "80/sctp", "/tcp"] {
            assert!(bad.parse::<ServicePort>().is_err(), "{bad}");
        }
        let n: IpNet = "10.128.0.0/14".parse().unwrap();
        assert!(n.contains(Ipv4Addr::new(10, 131, 255, 1)));
        assert!(!n.contains(Ipv4Addr::new(10, 132, 0, 1)));
        assert!("0.0.0.0/0"
            .parse::<IpNet>()
            .unwrap()
            .contains(Ipv4Addr::BROADCAST));
        assert_eq!(serde_json::to_string(&n).unwrap(), r#""10.128.0.0/14""#);
        let e = "10.128.0.1/14".parse::<IpNet>().unwrap_err();
        assert!(e.contains("did you mean 10.128.0.0/14"), "{e}");
        for bad in ["10.128.0.0", "10.128.0.0/33", "10.128.0/14", "x/8"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<IpNet>(r#""10.0.0.0/40""#).is_err());
        assert_eq!(IpNet::new(Ipv4Addr::UNSPECIFIED, 40), None);
        assert_eq!(
            IpNet::containing(Ipv4Addr::new(100, 88, 0, 4), 16).map(|n| n.to_string()),
            Some("100.88.0.0/16".into())
        );
        // IPv6 networks, by the same rules; a network never holds the other family.
        let n6: IpNet = "fd00:10:128::/45".parse().unwrap();
        assert!(n6.is_ipv6() && !n.is_ipv6());
        assert!(n6.contains("fd00:10:12f:ffff::1".parse::<IpAddr>().unwrap()));
        assert!(!n6.contains("fd00:10:130::1".parse::<IpAddr>().unwrap()));
        assert!(!n.contains("::ffff:10.128.0.1".parse::<IpAddr>().unwrap()));
        assert!(!"::/0"
            .parse::<IpNet>()
            .unwrap()
            .contains(Ipv4Addr::new(10, 0, 0, 1)));
        let e = "fd00:10:128::1/64".parse::<IpNet>().unwrap_err();
        assert!(e.contains("did you mean fd00:10:128::/64"), "{e}");
        for bad in ["fd00::/129", "fd00::", "fd00::g/64"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!(
            IpNet::containing("fd98::4".parse::<IpAddr>().unwrap(), 64).map(|n| n.to_string()),
            Some("fd98::/64".into())
        );
        assert_eq!(
            serde_json::to_string(&IpNet::new("fd00:10:128::".parse::<IpAddr>().unwrap(), 48))
                .unwrap(),
            r#""fd00:10:128::/48""#
        );
    }
}
