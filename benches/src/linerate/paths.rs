//! The bench's topology and the three paths under test.
//!
//! The tester namespace plays both master-03 (the pod's node, 192.168.99.25) and the router
//! toward the server (192.168.99.12): one veth end, `t0`, driven by AF_XDP. Each path gets a
//! fresh gateway namespace holding the other end as `br-ex` with master-01's node IP, as in
//! the seed (one-armed: tunnel in and traffic out on the same interface). The tester's
//! queue `q` is steered (RPS) to tester core `q`, the gateway's to gateway core `q`, so all
//! of a path's receive work lands on the gateway's cores, whatever the path.

use super::frames::{Encap, Flows, VXLAN_DEV_MAC, VXLAN_PORT};
use super::losses;
use ::tests::netns::Netns;
use gateway::testutil::{self, TRANSIT3_MAC};
use gateway::wire::ethernet::MacAddr;
use gateway::wire::geneve::OVN_TRANSIT_VNI;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TESTER_IF: &str = "t0";
pub const GATEWAY_IF: &str = "br-ex";
/// Room for a 1500-byte inner frame plus the tunnel.
pub const LINK_MTU: u32 = 1600;

/// What forwards the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// The egressgw daemon (AF_XDP, the full pipeline).
    Egressgw,
    /// The seed's kernel path: VXLAN decap, forwarding, conntrack, nftables SNAT map.
    Kernel,
    /// Plain AF_XDP forwarding: MAC rewrite only.
    Floor,
    /// The wire: the gateway's interface sends every frame straight back (XDP_TX), so a trial through it costs the tester's own work (generating,
    /// receiving, answering) and the veth hops, and nothing of a gateway. The all-CPU trials
    /// subtract it from every path.
    Wire,
}

impl PathKind {
    pub const ALL: [PathKind; 4] = [
        PathKind::Egressgw,
        PathKind::Kernel,
        PathKind::Floor,
        PathKind::Wire,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PathKind::Egressgw => "egressgw",
            PathKind::Kernel => "kernel",
            PathKind::Floor => "af_xdp floor",
            PathKind::Wire => "wire",
        }
    }

    pub fn parse(s: &str) -> Option<PathKind> {
        match s {
            "egressgw" => Some(PathKind::Egressgw),
            "kernel" => Some(PathKind::Kernel),
            "floor" => Some(PathKind::Floor),
            "wire" => Some(PathKind::Wire),
            _ => None,
        }
    }

    /// The tunnel the pod's node sends this path, over the IPv6 underlay with `underlay6`.
    pub fn encap(self, underlay6: bool) -> Encap {
        let e = match self {
            PathKind::Kernel => Encap::Vxlan,
            PathKind::Egressgw | PathKind::Floor | PathKind::Wire => Encap::Geneve,
        };
        if underlay6 {
            e.over_ipv6()
        } else {
            e
        }
    }

    /// The source the server side must see: the egress IP of the traffic's family.
    pub fn expect_source(self, ipv6: bool) -> Option<IpAddr> {
        match self {
            PathKind::Floor | PathKind::Wire => None,
            PathKind::Egressgw | PathKind::Kernel if ipv6 => {
                Some(testutil::EGRESS_V6.to_be_bytes().into())
            }
            PathKind::Egressgw | PathKind::Kernel => Some(testutil::EGRESS_IP.to_be_bytes().into()),
        }
    }
}

/// Cores and queues.
#[derive(Debug, Clone)]
pub struct Layout {
    pub queues: u32,
    pub tester_cores: Vec<usize>,
    pub gateway_cores: Vec<usize>,
    /// XDP in the veth driver instead of generic XDP. veth then runs the program on the
    /// sending core (so each side's receive work is charged to the other), but it keeps the
    /// receive queue, which generic XDP on veth loses (every frame looks like queue 0): the
    /// scaling mode needs it for more than one queue.
    pub native: bool,
    /// egressgw's `dataplane.rx_coalesce_us` (0: it looks for frames again at once).
    pub rx_coalesce_us: u32,
}

/// What a path is set up for.
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    /// Pods, each mapped to the egress IP.
    pub pods: u32,
    /// Flows at once: the session table (conntrack's and egressgw's) holds twice as many.
    pub max_flows: u32,
    /// Idle timeout in seconds of UDP sessions and of TCP's opening and closing states, on
    /// both stateful paths alike; `None` keeps each one's defaults. The connection-rate mode
    /// sets it short, so sessions expire while new ones come.
    pub short_timeout: Option<u32>,
    /// The pods' traffic is IPv6 (each pod also mapped to the IPv6 egress IP).
    pub ipv6: bool,
    /// The pod's node tunnels over IPv6 (fd00:99::25 to fd00:99::23), a single-stack IPv6
    /// cluster's underlay: egressgw gets `node.ip6`, the kernel's VXLAN runs over IPv6.
    pub underlay6: bool,
}

/// A path, running in its own gateway namespace; torn down on drop.
#[derive(Debug)]
pub struct RunningPath {
    pub kind: PathKind,
    child: Option<Child>,
    /// Kernel-wide conntrack limits to restore.
    conntrack: Option<ConntrackLimits>,
    // Last: dropped after the child is stopped.
    gateway: Netns,
}

/// The tester namespace, shared by every path of a run.
#[derive(Debug)]
pub struct Lab {
    pub tester: Netns,
    pub layout: Layout,
    pub dir: PathBuf,
}

/// An RPS mask of `cores`: every queue spreads its flows over all of a side's cores.
fn mask(cores: &[usize]) -> String {
    format!("{:x}", cores.iter().fold(0u128, |m, c| m | 1 << c))
}

fn sh(ns: &Netns, script: &str) -> io::Result<()> {
    ns.run("sh", &["-c", script]).map(|_| ())
}

/// `addr` (either family) at `mac` on `dev` in `ns`, for good: no resolution in the way.
fn permanent_neighbour(ns: &Netns, addr: &str, mac: MacAddr, dev: &str) -> io::Result<()> {
    let mac = mac.to_string();
    let args = [
        "neigh",
        "replace",
        addr,
        "lladdr",
        &mac,
        "dev",
        dev,
        "nud",
        "permanent",
    ];
    ns.ip(&args)
}

/// Receive and transmit drops of `dev` in `ns` (a veth end's drops of what it was handed).
fn veth_drops(ns: &Netns, dev: &str) -> io::Result<u64> {
    let out = ns.run(
        "cat",
        &[
            &format!("/sys/class/net/{dev}/statistics/rx_dropped"),
            &format!("/sys/class/net/{dev}/statistics/tx_dropped"),
        ],
    )?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|n| n.parse::<u64>().map_err(io::Error::other))
        .sum()
}

impl Lab {
    /// Frames lost between the tester and `path`'s gateway so far: every core's receive
    /// backlog and both veth ends' drops.
    pub fn link_drops(&self, path: &RunningPath) -> io::Result<u64> {
        Ok(losses::backlog_drops()?
            + veth_drops(&self.tester, TESTER_IF)?
            + veth_drops(&path.gateway, GATEWAY_IF)?)
    }

    pub fn new(layout: Layout, dir: &Path) -> io::Result<Lab> {
        ::tests::netns::sweep_stale();
        let tester = Netns::new("lrt")?;
        std::fs::create_dir_all(dir)?;
        Ok(Lab {
            tester,
            layout,
            // Absolute: the daemon's control socket path must be.
            dir: dir.canonicalize()?,
        })
    }

    /// Brings up `kind` in a fresh gateway namespace, sized by `sizing`.
    pub fn start(&self, kind: PathKind, sizing: Sizing) -> io::Result<RunningPath> {
        let gateway = Netns::new("lrg")?;
        let q = self.layout.queues.to_string();
        let mtu = LINK_MTU.to_string();
        gateway.ip(&[
            "link",
            "add",
            GATEWAY_IF,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "address",
            &testutil::NODE_MAC.to_string(),
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            TESTER_IF,
            "netns",
            self.tester.name(),
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "address",
            &testutil::NODE3_MAC.to_string(),
            "mtu",
            &mtu,
        ])?;
        self.tester.ip(&["link", "set", TESTER_IF, "up"])?;
        gateway.ip(&["addr", "add", "192.168.99.23/24", "dev", GATEWAY_IF])?;
        gateway.ip(&["link", "set", GATEWAY_IF, "up"])?;
        // IPv6 toward the server: fd00:99::23 on the same segment, the router's address
        // (the tester) fixed in the neighbour table as its IPv4 one is.
        gateway.ip(&[
            "-6",
            "addr",
            "add",
            "fd00:99::23/64",
            "dev",
            GATEWAY_IF,
            "nodad",
        ])?;
        let router6 = Ipv6Addr::from(testutil::ROUTER_V6).to_string();
        permanent_neighbour(&gateway, &router6, testutil::NODE3_MAC, GATEWAY_IF)?;
        let node3_v6 = Ipv6Addr::from(testutil::NODE3_V6).to_string();
        permanent_neighbour(&gateway, &node3_v6, testutil::NODE3_MAC, GATEWAY_IF)?;
        gateway.ip(&["-6", "route", "add", "default", "via", &router6])?;
        for peer in [testutil::ROUTER_IP, testutil::NODE3_IP] {
            let peer = Ipv4Addr::from(peer).to_string();
            permanent_neighbour(&gateway, &peer, testutil::NODE3_MAC, GATEWAY_IF)?;
        }
        // The router is the default gateway, as in the seed (egressgw follows the default).
        gateway.ip(&[
            "route",
            "add",
            "default",
            "via",
            &Ipv4Addr::from(testutil::ROUTER_IP).to_string(),
        ])?;
        // Generic XDP and the kernel path see every veth frame as queue 0: RPS spreads the
        // flows over the side's cores.
        for queue in 0..self.layout.queues as usize {
            let (t, g) = (&self.layout.tester_cores, &self.layout.gateway_cores);
            let rps = |dev: &str, cores| {
                format!(
                    "echo {} > /sys/class/net/{dev}/queues/rx-{queue}/rps_cpus",
                    mask(cores)
                )
            };
            sh(&self.tester, &rps(TESTER_IF, t))?;
            sh(&gateway, &rps(GATEWAY_IF, g))?;
        }
        let mut path = RunningPath {
            kind,
            child: None,
            conntrack: None,
            gateway,
        };
        match kind {
            PathKind::Egressgw => path.child = Some(self.start_egressgw(&path.gateway, sizing)?),
            PathKind::Kernel => path.conntrack = Some(self.start_kernel(&path.gateway, sizing)?),
            PathKind::Floor => path.child = Some(self.start_floor(&path.gateway)?),
            PathKind::Wire => {
                // In the layout's XDP mode, as the gateways' programs run: generic, on the
                // gateway's core after RPS, or in the driver. (tc's mirred would do without
                // BPF, but generic XDP on the tester's end skips whatever mirred redirected.)
                let obj = self.dir.join("wire.o");
                std::fs::write(&obj, testutil::WIRE_PROGRAM)?;
                let obj = obj.to_str().unwrap_or_default();
                let mode = if self.layout.native {
                    "xdpdrv"
                } else {
                    "xdpgeneric"
                };
                let attach = [
                    "link", "set", "dev", GATEWAY_IF, mode, "obj", obj, "sec", "xdp",
                ];
                path.gateway.ip(&attach)?;
            }
        }
        Ok(path)
    }

    fn log(&self, name: &str) -> io::Result<Stdio> {
        Ok(std::fs::File::create(self.dir.join(name))?.into())
    }

    fn start_egressgw(&self, gateway: &Netns, sizing: Sizing) -> io::Result<Child> {
        let bin = egressgw_binary()?;
        let config = self.dir.join("egressgw.toml");
        std::fs::write(&config, egressgw_config(&self.layout, sizing, &self.dir))?;
        let socket = self.dir.join("egressgw.sock");
        // A socket left by an earlier run must not pass for this daemon's.
        let _ = std::fs::remove_file(&socket);
        let mut child = gateway
            .command(bin.to_str().unwrap_or_default())
            .args(["--config", config.to_str().unwrap_or_default()])
            .stdout(self.log("egressgw.log")?)
            .stderr(self.log("egressgw.log")?)
            .spawn()?;
        // Up when its control socket answers (the bench reads its counters around each
        // trial); 10 s at most, and not at all once it has exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        while losses::egressgw(&socket).is_err() {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "egressgw exited ({status}); see {}",
                    self.dir.join("egressgw.log").display()
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(
                    "egressgw's control socket did not answer in 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child)
    }

    fn start_floor(&self, gateway: &Netns) -> io::Result<Child> {
        let me = std::env::current_exe()?;
        let join = |v: &[usize]| {
            v.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        gateway
            .command(me.to_str().unwrap_or_default())
            .args([
                "floor",
                "--ifname",
                GATEWAY_IF,
                "--queues",
                &self.layout.queues.to_string(),
                "--cores",
                &join(&self.layout.gateway_cores),
                "--peer-mac",
                &testutil::NODE3_MAC.to_string(),
            ])
            .args(self.layout.native.then_some("--native"))
            .stdout(self.log("floor.log")?)
            .stderr(self.log("floor.log")?)
            .spawn()
    }

    fn start_kernel(&self, gw: &Netns, sizing: Sizing) -> io::Result<ConntrackLimits> {
        for (key, value) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.conf.all.send_redirects", "0"),
            ("net.ipv4.conf.br-ex.rp_filter", "0"),
            ("net.ipv4.conf.br-ex.send_redirects", "0"),
        ] {
            gw.run("sysctl", &["-q", "-w", &format!("{key}={value}")])?;
        }
        let vni = OVN_TRANSIT_VNI.to_string();
        let port = VXLAN_PORT.to_string();
        // Over the IPv6 underlay the tester's tunnel carries no UDP checksum (RFC 6935).
        let (local, remote, extra): (&str, &str, &[&str]) = if sizing.underlay6 {
            ("fd00:99::23", "fd00:99::25", &["udp6zerocsumrx"])
        } else {
            ("192.168.99.23", "192.168.99.25", &[])
        };
        let mac = VXLAN_DEV_MAC.to_string();
        let mut add = vec![
            "link",
            "add",
            "vx0",
            "address",
            &mac,
            "type",
            "vxlan",
            "id",
            &vni,
            "dstport",
            &port,
            "local",
            local,
            "dev",
            GATEWAY_IF,
            "nolearning",
        ];
        add.extend_from_slice(extra);
        gw.ip(&add)?;
        gw.ip(&["link", "set", "vx0", "up"])?;
        gw.run("sysctl", &["-q", "-w", "net.ipv4.conf.vx0.rp_filter=0"])?;
        // Replies to the pods go back through the tunnel to master-03.
        gw.ip(&[
            "route",
            "add",
            "10.133.0.0/16",
            "via",
            "10.128.0.1",
            "dev",
            "vx0",
            "onlink",
        ])?;
        permanent_neighbour(gw, "10.128.0.1", TRANSIT3_MAC, "vx0")?;
        // The IPv6 pods the same way.
        gw.ip(&[
            "-6",
            "route",
            "add",
            "fd00:10:133::/64",
            "via",
            "fd00:10:128::1",
            "dev",
            "vx0",
            "onlink",
        ])?;
        permanent_neighbour(gw, "fd00:10:128::1", TRANSIT3_MAC, "vx0")?;
        gw.run(
            "bridge",
            &[
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vx0",
                "dst",
                remote,
            ],
        )?;
        let rules = self.dir.join("egress.nft");
        std::fs::write(&rules, nft_ruleset(sizing.pods, sizing.ipv6))?;
        gw.run("nft", &["-f", rules.to_str().unwrap_or_default()])?;
        if let Some(t) = sizing.short_timeout {
            // Per namespace (conntrack is loaded now, by the ruleset). UDP: a flow with one
            // exchange has the first, one still going after 2 s the second; TCP: every state
            // but established.
            for key in [
                "udp_timeout",
                "udp_timeout_stream",
                "tcp_timeout_syn_sent",
                "tcp_timeout_syn_recv",
                "tcp_timeout_fin_wait",
                "tcp_timeout_close_wait",
                "tcp_timeout_last_ack",
                "tcp_timeout_time_wait",
                "tcp_timeout_close",
            ] {
                let setting = format!("net.netfilter.nf_conntrack_{key}={t}");
                gw.run("sysctl", &["-q", "-w", &setting])?;
            }
        }
        ConntrackLimits::raise(u64::from(sizing.max_flows) * 2)
    }
}

impl RunningPath {
    /// The path's own loss counters (`losses`): egressgw's from its control socket in `dir`;
    /// the other paths count none of their own.
    pub fn loss_counters(&self, dir: &Path) -> io::Result<losses::Counters> {
        match self.kind {
            PathKind::Egressgw => losses::egressgw(&dir.join("egressgw.sock")),
            _ => Ok(losses::Counters::new()),
        }
    }

    /// Whether the path's process is still running (the kernel path has none).
    pub fn check_alive(&mut self) -> io::Result<()> {
        if let Some(child) = &mut self.child {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited ({status}); see its log",
                    self.kind.name()
                )));
            }
        }
        Ok(())
    }
}

impl Drop for RunningPath {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(limits) = self.conntrack.take() {
            limits.restore();
        }
        // Now, not when the namespace goes (the kernel cleans that up later): the next path's
        // veth pair takes the same names.
        let _ = self.gateway.ip(&["link", "del", GATEWAY_IF]);
    }
}

/// The daemon's configuration: one-armed on br-ex, generic XDP (after RPS, on the gateway's
/// cores) unless the layout says native, every pod mapped to the seed's egress IP.
pub fn egressgw_config(layout: &Layout, sizing: Sizing, dir: &Path) -> String {
    let Sizing {
        pods,
        max_flows,
        short_timeout,
        ipv6,
        underlay6,
    } = sizing;
    let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(", ");
    let egress = Ipv4Addr::from(testutil::EGRESS_IP);
    let egress6 = Ipv6Addr::from(testutil::EGRESS_V6);
    let sessions = (u64::from(max_flows) * 2).max(65536);
    let mut c = format!(
        "egress_ips = [\"{egress}\", \"{egress6}\"]\n\n[node]\nip = \"192.168.99.23\"\n{}underlay_interface = \
         \"{GATEWAY_IF}\"\nexternal_interface = \"{GATEWAY_IF}\"\nunderlay_mtu = {LINK_MTU}\n\n\
         [dataplane]\nqueues = [{}]\ncores = [{}]\nframes_per_queue = 8192\nxdp_attach = \
         \"{}\"\nrx_coalesce_us = {}\n\n[nat]\nmax_sessions = {sessions}\nmax_sessions_v6 = {}\n{}\n[control]\n\
         socket = \"{}\"\n\n[cluster]\npod_networks = [\"10.128.0.0/13\", \"fd00:10::/32\"]\n\
         service_networks = [\"172.22.0.0/16\", \"fd00:172:22::/112\"]\n",
        if underlay6 {
            "ip6 = \"fd00:99::23\"\n"
        } else {
            ""
        },
        list(&mut (0..layout.queues).map(|q| q.to_string())),
        list(
            &mut (0..layout.queues as usize)
                .map(|q| layout.gateway_cores[q % layout.gateway_cores.len()].to_string())
        ),
        if layout.native { "driver" } else { "generic" },
        layout.rx_coalesce_us,
        if ipv6 { sessions } else { 65536 },
        short_timeout.map_or(String::new(), |t| {
            format!("\n[nat.timeouts]\nudp = {t}\ntcp_transitory = {t}\n")
        }),
        dir.join("egressgw.sock").display(),
    );
    for pod in 0..pods {
        let _ = write!(
            c,
            "\n[[pods]]\nip = \"{}\"\negress_ip = \"{egress}\"\n",
            Ipv4Addr::from(Flows::pod_ip(pod))
        );
        if ipv6 {
            let _ = write!(
                c,
                "\n[[pods]]\nip = \"{}\"\negress_ip = \"{egress6}\"\n",
                Ipv6Addr::from(Flows::pod_ip6(pod))
            );
        }
    }
    c
}

/// The seed's nftables SNAT map (OVN-Kubernetes' table on the egress node), with every pod;
/// with `ipv6`, its IPv6 map as OVN-Kubernetes writes it beside (`egress-service-snat-v6`).
pub fn nft_ruleset(pods: u32, ipv6: bool) -> String {
    let table = |family: &str, v: &str, addr: &str, pod: &dyn Fn(u32) -> String, egress: &str| {
        let elements = (0..pods)
            .map(|p| format!("{} : {egress}", pod(p)))
            .collect::<Vec<_>>()
            .join(",\n            ");
        format!(
            "table {family} ovn-kubernetes {{\n    map egress-service-snat-{v} {{\n        type \
             {addr} : {addr}\n        elements = {{\n            {elements}\n        }}\n    \
             }}\n\n    chain egress-services {{\n        type nat hook postrouting priority \
             srcnat; policy accept;\n        snat {family} to {family} saddr map \
             @egress-service-snat-{v}\n    }}\n}}\n"
        )
    };
    let mut rules = table(
        "ip",
        "v4",
        "ipv4_addr",
        &|p| Ipv4Addr::from(Flows::pod_ip(p)).to_string(),
        &Ipv4Addr::from(testutil::EGRESS_IP).to_string(),
    );
    if ipv6 {
        rules += &table(
            "ip6",
            "v6",
            "ipv6_addr",
            &|p| Ipv6Addr::from(Flows::pod_ip6(p)).to_string(),
            &Ipv6Addr::from(testutil::EGRESS_V6).to_string(),
        );
    }
    rules
}

/// The egressgw binary next to this one; when the bench runs through `cargo run`, built (or
/// brought up to date) first with the same profile.
fn egressgw_binary() -> io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| io::Error::other("no executable directory"))?;
    let bin = dir.join("egressgw");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "gateway", "--bin", "egressgw"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        build.arg("--quiet");
        if !build.status()?.success() {
            return Err(io::Error::other("building egressgw failed"));
        }
    }
    if !bin.exists() {
        return Err(io::Error::other(format!(
            "{} missing; build it with `cargo build --release -p gateway --bin egressgw`",
            bin.display()
        )));
    }
    Ok(bin)
}

/// The kernel's conntrack table limits (kernel-wide): raised for a run with many flows, as an
/// operator sizes them for the flows a node carries, and put back afterwards.
#[derive(Debug)]
pub struct ConntrackLimits {
    max: Option<String>,
    buckets: Option<String>,
}

const CT_MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";
const CT_BUCKETS: &str = "/sys/module/nf_conntrack/parameters/hashsize";

impl ConntrackLimits {
    fn raise(entries: u64) -> io::Result<ConntrackLimits> {
        let read = |p| std::fs::read_to_string(p).map(|s| s.trim().to_owned());
        let max = read(CT_MAX)?;
        let buckets = read(CT_BUCKETS)?;
        let mut limits = ConntrackLimits {
            max: None,
            buckets: None,
        };
        if max.parse::<u64>().unwrap_or(0) < entries {
            std::fs::write(CT_MAX, entries.to_string())?;
            limits.max = Some(max);
        }
        // One entry per bucket on average, the kernel's default ratio for big tables.
        let want = entries.next_power_of_two() / 2;
        if buckets.parse::<u64>().unwrap_or(0) < want {
            std::fs::write(CT_BUCKETS, want.to_string())?;
            limits.buckets = Some(buckets);
        }
        Ok(limits)
    }

    fn restore(self) {
        if let Some(b) = self.buckets {
            let _ = std::fs::write(CT_BUCKETS, b);
        }
        if let Some(m) = self.max {
            let _ = std::fs::write(CT_MAX, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_egressgw_config_is_one_the_daemon_accepts() {
        let layout = Layout {
            queues: 2,
            tester_cores: vec![0, 1],
            gateway_cores: vec![2, 3],
            native: false,
            rx_coalesce_us: 100,
        };
        let mut sizing = Sizing {
            pods: 3,
            max_flows: 1000,
            short_timeout: None,
            ipv6: false,
            underlay6: false,
        };
        let text = egressgw_config(&layout, sizing, Path::new("/tmp/x"));
        let config = gateway::daemon::config::Config::parse(&text).expect("valid config");
        assert_eq!(config.dataplane.cores, vec![2, 3]);
        assert_eq!(config.dataplane.rx_coalesce_us, 100);
        assert_eq!(config.pods.len(), 3);
        assert_eq!(
            config.nat.timeouts.udp,
            gateway::nat::Timeouts::default().udp
        );
        sizing.short_timeout = Some(2);
        let text = egressgw_config(&layout, sizing, Path::new("/tmp/x"));
        let config = gateway::daemon::config::Config::parse(&text).expect("valid config");
        assert_eq!(config.nat.timeouts.udp, 2);
        assert_eq!(config.nat.timeouts.tcp_transitory, 2);
        assert_eq!(
            config.dataplane.xdp_attach,
            gateway::xdp::steer::XdpAttach::Generic
        );
        // IPv6: every pod mapped in both families, the IPv6 table sized as the IPv4 one.
        sizing.ipv6 = true;
        let text = egressgw_config(&layout, sizing, Path::new("/tmp/x"));
        let config = gateway::daemon::config::Config::parse(&text).expect("valid config");
        assert_eq!(config.pods.len(), 6);
        assert_eq!(config.nat.sessions_v6(), 65536);
        assert_eq!(config.node.ip6, None);
        // Over the IPv6 underlay: the node's IPv6 address is where Geneve arrives.
        sizing.underlay6 = true;
        let text = egressgw_config(&layout, sizing, Path::new("/tmp/x"));
        let config = gateway::daemon::config::Config::parse(&text).expect("valid config");
        assert_eq!(config.node.ip6, Some("fd00:99::23".parse().unwrap()));
    }

    #[test]
    fn the_nft_ruleset_has_the_seed_map_and_rule() {
        let r = nft_ruleset(2, false);
        assert!(r.contains("map egress-service-snat-v4"));
        assert!(r.contains("10.133.0.2 : 192.168.66.100,\n            10.133.0.3 : 192.168.66.100"));
        assert!(r.contains("snat ip to ip saddr map @egress-service-snat-v4"));
        assert!(!r.contains("ip6"));
        let r = nft_ruleset(2, true);
        assert!(r.contains("table ip6 ovn-kubernetes"));
        assert!(r.contains("type ipv6_addr : ipv6_addr"));
        assert!(r.contains("fd00:10:133::3 : fd00:66::100"));
        assert!(r.contains("snat ip6 to ip6 saddr map @egress-service-snat-v6"));
    }
}
