//! The steering program (`gateway/bpf/steer.c`), loaded with aya and attached to one
//! interface (the uplink, where frames arrive): Geneve to the node IP whose inner packet (IPv4
//! or IPv6) is a served pod's egress traffic, and what reaches an egress IP of either family
//! on other than the Service's own ports, go to the AF_XDP socket of the receiving queue;
//! everything else to the node. Each family has its own maps.
//! [`SteeringState`] is what the program decides with; [`Steering::sync`] writes only what
//! changed, so the daemon keeps it current without touching the workers. Detached when this
//! value drops.

use crate::pipeline::Address;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpFlags};
use aya::Ebpf;
use control::proto::{IpNet, ServicePort, SteeringCount};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;

/// The compiled program, embedded at build time (`build.rs`).
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.o"));

/// The program's verdict counters, in the order of `enum verdict` in `steer.c`.
pub const VERDICTS: [&str; 10] = [
    "geneve_redirected",
    "geneve_passed",
    "service_port_passed",
    "reply_redirected",
    "egress_ip_other_redirected",
    "fragment_passed",
    "other_passed",
    "forwarded_redirected",
    "ndp_passed",
    "fragment_redirected",
];

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Addresses as the program compares them: the packet's bytes read as a host integer.
fn wire_order(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// Where the program runs: in the driver (before any socket buffer exists), or generically
/// after the kernel built one (any device; on veth it runs after RPS, on the core that
/// receives, which the line-rate bench relies on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttach {
    /// Driver mode, falling back to generic where the driver has no XDP support.
    #[default]
    Auto,
    Driver,
    Generic,
}

/// Everything the program decides with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringState {
    /// Served egress IPs, each with the port range replies to our SNAT come back to (the
    /// whole range of the IP, not only this node's slice: a reply may reach any member).
    pub egress_ips: BTreeMap<IpAddr, RangeInclusive<u16>>,
    /// The Service's own ports on its egress IP: passed to the node's load balancer.
    pub service_ports: BTreeSet<(IpAddr, ServicePort)>,
    /// Pods with an egress mapping here: only their Geneve can be egress traffic.
    pub served_pods: BTreeSet<IpAddr>,
    /// The cluster's own networks: Geneve to them is east-west, the node's OVS's.
    pub cluster_networks: BTreeSet<IpNet>,
}

/// One run of the program on a crafted frame (`BPF_PROG_TEST_RUN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRun {
    /// The XDP action: `XDP_PASS` (2) or `XDP_REDIRECT` (4).
    pub action: u32,
    /// The kernel's average time per run, over `repeat` runs.
    pub ns_per_run: u32,
}

/// The steering program's map sizes (`max_entries` in `steer.c`): what the state may hold.
pub const MAX_EGRESS_IPS: usize = 4096;
pub const MAX_SERVICE_PORTS: usize = 4096;
pub const MAX_SERVED_PODS: usize = 65536;
pub const MAX_CLUSTER_NETWORKS: usize = 1024;

pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

/// The program attached to an interface, and its maps.
pub struct Steering {
    ebpf: Ebpf,
    ifname: String,
    mode: &'static str,
    /// What the maps hold now.
    current: SteeringState,
    /// The per-CPU verdict counters, shared with whoever reads them (the metrics thread).
    verdicts: Arc<PerCpuArray<MapData, u64>>,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }
}

/// The `service_ports` key: egress IP (wire order), port (wire order), protocol, padding.
fn service_key(ip: Ipv4Addr, p: ServicePort) -> [u8; 8] {
    let [a, b, c, d] = ip.octets();
    let [hi, lo] = p.port.to_be_bytes();
    [a, b, c, d, hi, lo, p.protocol.number(), 0]
}

/// The `service_ports6` key: egress IP, port (wire order), protocol, padding.
fn service_key6(ip: Ipv6Addr, p: ServicePort) -> [u8; 20] {
    let mut k = [0; 20];
    k[..16].copy_from_slice(&ip.octets());
    k[16..18].copy_from_slice(&p.port.to_be_bytes());
    k[18] = p.protocol.number();
    k
}

/// `ip` if it is IPv4 (the other family's maps are written apart).
fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    u32::of(ip).map(Ipv4Addr::from)
}

/// `ip` if it is IPv6.
fn v6(ip: IpAddr) -> Option<Ipv6Addr> {
    u128::of(ip).map(Ipv6Addr::from)
}

impl Steering {
    /// Loads the program, sets the node IP, and attaches it to `ifname` in the given mode.
    pub fn attach(ifname: &str, node_ip: Ipv4Addr, how: XdpAttach) -> io::Result<Steering> {
        let mut ebpf = Ebpf::load(PROGRAM).map_err(|e| err("loading the steering program", e))?;
        {
            let mut node: Array<_, u32> =
                Array::try_from(map(&mut ebpf, "node_ip")?).map_err(|e| err("node_ip map", e))?;
            node.set(0, wire_order(node_ip), 0)
                .map_err(|e| err("node_ip map", e))?;
        }
        let prog: &mut Xdp = ebpf
            .program_mut("steer")
            .ok_or_else(|| err("steering program", "no steer section"))?
            .try_into()
            .map_err(|e| err("steering program", e))?;
        prog.load()
            .map_err(|e| err("verifying the steering program", e))?;
        let attached = |prog: &mut Xdp, flags| {
            prog.attach(ifname, flags)
                .map(|_| ())
                .map_err(|e| err(&format!("attaching to {ifname}"), e))
        };
        let mode = match how {
            XdpAttach::Driver => attached(prog, XdpFlags::DRV_MODE).map(|_| "driver")?,
            XdpAttach::Generic => attached(prog, XdpFlags::SKB_MODE).map(|_| "generic")?,
            XdpAttach::Auto => match attached(prog, XdpFlags::DRV_MODE) {
                Ok(()) => "driver",
                Err(_) => attached(prog, XdpFlags::SKB_MODE).map(|_| "generic")?,
            },
        };
        let verdicts = ebpf
            .take_map("verdicts")
            .ok_or_else(|| err("steering program", "no verdicts map"))?;
        let verdicts = PerCpuArray::try_from(verdicts).map_err(|e| err("verdicts map", e))?;
        Ok(Steering {
            ebpf,
            ifname: ifname.to_owned(),
            mode,
            current: SteeringState::default(),
            verdicts: Arc::new(verdicts),
        })
    }

    /// Sets the node's IPv6 underlay address: Geneve over IPv6 to it is steered as Geneve to
    /// the node IP is.
    pub fn set_node_ip6(&mut self, ip: Ipv6Addr) -> io::Result<()> {
        let mut node: Array<_, [u8; 16]> = Array::try_from(map(&mut self.ebpf, "node_ip6")?)
            .map_err(|e| err("node_ip6 map", e))?;
        node.set(0, ip.octets(), 0)
            .map_err(|e| err("node_ip6 map", e))
    }

    /// "driver" or "generic".
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// Sends what `queue` receives for us to the AF_XDP socket `fd`.
    pub fn bind_queue(&mut self, queue: u32, fd: impl AsRawFd) -> io::Result<()> {
        let mut xsks =
            XskMap::try_from(map(&mut self.ebpf, "xsks")?).map_err(|e| err("xsks map", e))?;
        xsks.set(queue, fd, 0).map_err(|e| err("xsks map", e))
    }

    /// Brings the maps to `want`, writing only the difference: removals first, so a full map
    /// never refuses an entry that replaces one on its way out. On an error the maps hold
    /// what was written until then, and the next call carries on from there.
    pub fn sync(&mut self, want: &SteeringState) -> io::Result<()> {
        let cur = &mut self.current;
        let ebpf = &mut self.ebpf;
        let (ips, want_ips) = (&mut cur.egress_ips, &want.egress_ips);
        sync_ranges(ebpf, "egress_ips", ips, want_ips, |ip| {
            Some(wire_order(v4(ip)?))
        })?;
        sync_ranges(ebpf, "egress_ips6", ips, want_ips, |ip| {
            Some(v6(ip)?.octets())
        })?;
        let port4 = |(ip, p): &(IpAddr, ServicePort)| Some(service_key(v4(*ip)?, *p));
        let port6 = |(ip, p): &(IpAddr, ServicePort)| Some(service_key6(v6(*ip)?, *p));
        sync_hash_set(
            ebpf,
            "service_ports",
            &mut cur.service_ports,
            &want.service_ports,
            port4,
        )?;
        sync_hash_set(
            ebpf,
            "service_ports6",
            &mut cur.service_ports,
            &want.service_ports,
            port6,
        )?;
        let pod4 = |ip: &IpAddr| Some(wire_order(v4(*ip)?));
        let pod6 = |ip: &IpAddr| Some(v6(*ip)?.octets());
        sync_hash_set(
            ebpf,
            "served_pods",
            &mut cur.served_pods,
            &want.served_pods,
            pod4,
        )?;
        sync_hash_set(
            ebpf,
            "served_pods6",
            &mut cur.served_pods,
            &want.served_pods,
            pod6,
        )?;
        let (nets, want_nets) = (&mut cur.cluster_networks, &want.cluster_networks);
        let net4 = |n: &IpNet| {
            let addr = wire_order(v4(n.addr())?);
            Some(Key::new(u32::from(n.prefix_len()), addr))
        };
        let net6 = |n: &IpNet| {
            let addr = v6(n.addr())?.octets();
            Some(Key::new(u32::from(n.prefix_len()), addr))
        };
        sync_lpm(ebpf, "cluster_nets", nets, want_nets, net4)?;
        sync_lpm(ebpf, "cluster_nets6", nets, want_nets, net6)?;
        Ok(())
    }

    /// What the maps hold now.
    pub fn state(&self) -> &SteeringState {
        &self.current
    }

    /// The verdict counters (in the order of [`VERDICTS`]), summed over CPUs.
    pub fn verdicts(&self) -> io::Result<[u64; VERDICTS.len()]> {
        read_verdicts(&self.verdicts)
    }

    /// Runs the attached program once per `repeat` on `frame` as if it arrived on queue
    /// `queue` of interface `ifindex` (the interface must exist in this network namespace).
    pub fn test_run(
        &self,
        frame: &[u8],
        ifindex: u32,
        queue: u32,
        repeat: u32,
    ) -> io::Result<TestRun> {
        let prog: &Xdp = self
            .ebpf
            .program("steer")
            .ok_or_else(|| err("steering program", "no steer section"))?
            .try_into()
            .map_err(|e| err("steering program", e))?;
        let fd = prog.fd().map_err(|e| err("steering program", e))?;
        test_run(fd.as_fd(), frame, ifindex, queue, repeat)
    }
}

fn read_verdicts(counters: &PerCpuArray<MapData, u64>) -> io::Result<[u64; VERDICTS.len()]> {
    let mut out = [0; VERDICTS.len()];
    for (i, n) in out.iter_mut().enumerate() {
        let per_cpu = counters
            .get(&(i as u32), 0)
            .map_err(|e| err("verdicts map", e))?;
        *n = per_cpu.iter().sum();
    }
    Ok(out)
}

/// Reads the verdict counters of every interface's program from any thread.
#[derive(Clone)]
pub struct VerdictReader {
    each: Vec<(String, Arc<PerCpuArray<MapData, u64>>)>,
}

impl std::fmt::Debug for VerdictReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.each.iter().map(|(i, _)| i))
            .finish()
    }
}

impl VerdictReader {
    /// One count per interface and verdict; an interface whose counters cannot be read is
    /// left out.
    pub fn read(&self) -> Vec<SteeringCount> {
        let mut out = Vec::new();
        for (interface, counters) in &self.each {
            let Ok(counts) = read_verdicts(counters) else {
                continue;
            };
            for (verdict, packets) in VERDICTS.iter().zip(counts) {
                out.push(SteeringCount {
                    interface: interface.clone(),
                    verdict: (*verdict).to_owned(),
                    packets,
                });
            }
        }
        out
    }
}

/// For the entries of one family (`key` gives their map key, `None` for the other family's):
/// removes what `cur` has and `want` lacks, adds what `want` has and `cur` lacks, keeping
/// `cur` equal to what was written.
fn sync_family<T: Ord + Clone, K>(
    cur: &mut BTreeSet<T>,
    want: &BTreeSet<T>,
    key: impl Fn(&T) -> Option<K>,
    mut write: impl FnMut(K, bool) -> io::Result<()>,
) -> io::Result<()> {
    let gone: Vec<T> = cur.difference(want).cloned().collect();
    for x in gone {
        if let Some(k) = key(&x) {
            write(k, false)?;
            cur.remove(&x);
        }
    }
    let new: Vec<T> = want.difference(cur).cloned().collect();
    for x in new {
        if let Some(k) = key(&x) {
            write(k, true)?;
            cur.insert(x);
        }
    }
    Ok(())
}

/// One family's egress IPs with their port ranges, in the hash map `name`: removals first, so
/// a full map never refuses an entry that replaces one on its way out.
fn sync_ranges<K: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &str,
    cur: &mut BTreeMap<IpAddr, RangeInclusive<u16>>,
    want: &BTreeMap<IpAddr, RangeInclusive<u16>>,
    key: impl Fn(IpAddr) -> Option<K>,
) -> io::Result<()> {
    let mut m: HashMap<_, K, [u16; 2]> =
        HashMap::try_from(map(ebpf, name)?).map_err(|e| err(name, e))?;
    let gone: Vec<IpAddr> = cur
        .keys()
        .filter(|ip| !want.contains_key(ip))
        .copied()
        .collect();
    for ip in gone {
        if let Some(k) = key(ip) {
            m.remove(&k).map_err(|e| err(name, e))?;
            cur.remove(&ip);
        }
    }
    for (ip, range) in want {
        if let Some(k) = key(*ip).filter(|_| cur.get(ip) != Some(range)) {
            m.insert(k, [*range.start(), *range.end()], 0)
                .map_err(|e| err(name, e))?;
            cur.insert(*ip, range.clone());
        }
    }
    Ok(())
}

/// One family's entries of a set held in the hash map `name` (the value unused).
fn sync_hash_set<T: Ord + Clone, K: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &str,
    cur: &mut BTreeSet<T>,
    want: &BTreeSet<T>,
    key: impl Fn(&T) -> Option<K>,
) -> io::Result<()> {
    let mut m: HashMap<_, K, u8> = HashMap::try_from(map(ebpf, name)?).map_err(|e| err(name, e))?;
    sync_family(cur, want, key, |k, add| {
        if add { m.insert(k, 1, 0) } else { m.remove(&k) }.map_err(|e| err(name, e))
    })
}

/// One family's networks held in the LPM trie `name`.
fn sync_lpm<K: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &str,
    cur: &mut BTreeSet<IpNet>,
    want: &BTreeSet<IpNet>,
    key: impl Fn(&IpNet) -> Option<Key<K>>,
) -> io::Result<()> {
    let mut m: LpmTrie<_, K, u8> = LpmTrie::try_from(map(ebpf, name)?).map_err(|e| err(name, e))?;
    sync_family(cur, want, key, |k, add| {
        if add {
            m.insert(&k, 1, 0)
        } else {
            m.remove(&k)
        }
        .map_err(|e| err(name, e))
    })
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> io::Result<&'a mut Map> {
    ebpf.map_mut(name)
        .ok_or_else(|| err("steering program", format!("no {name} map")))
}

/// `BPF_PROG_TEST_RUN` of an XDP program: `frame` as received on queue `queue` of interface
/// `ifindex`, `repeat` times. aya 0.13 has no call for it, so it is the raw system call.
pub fn test_run(
    prog: BorrowedFd<'_>,
    frame: &[u8],
    ifindex: u32,
    queue: u32,
    repeat: u32,
) -> io::Result<TestRun> {
    /// `struct xdp_md` as the kernel reads it from `ctx_in`.
    #[repr(C)]
    struct XdpMd {
        data: u32,
        data_end: u32,
        data_meta: u32,
        ingress_ifindex: u32,
        rx_queue_index: u32,
        egress_ifindex: u32,
    }
    /// The `test` member of `union bpf_attr`.
    #[repr(C)]
    struct TestAttr {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        _pad: u32,
    }
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    let len = u32::try_from(frame.len()).map_err(|e| err("test frame", e))?;
    let ctx = XdpMd {
        data: 0,
        data_end: len,
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: queue,
        egress_ifindex: 0,
    };
    let mut attr = TestAttr {
        prog_fd: prog.as_raw_fd() as u32,
        retval: 0,
        data_size_in: len,
        data_size_out: 0,
        data_in: frame.as_ptr() as u64,
        data_out: 0,
        repeat: repeat.max(1),
        duration: 0,
        ctx_size_in: core::mem::size_of::<XdpMd>() as u32,
        ctx_size_out: 0,
        ctx_in: &ctx as *const XdpMd as u64,
        ctx_out: 0,
        flags: 0,
        cpu: 0,
        batch_size: 0,
        _pad: 0,
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; the kernel reads
    // `data_in` (`len` bytes, borrowed from `frame`) and `ctx_in` (our `ctx`, alive across
    // the call) and writes only `retval` and `duration` inside `attr`: no output buffers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestAttr,
            core::mem::size_of::<TestAttr>() as u32,
        )
    };
    if rc < 0 {
        return Err(err("BPF_PROG_TEST_RUN", io::Error::last_os_error()));
    }
    Ok(TestRun {
        action: attr.retval,
        ns_per_run: attr.duration,
    })
}

/// The steering program on every interface the dataplane reads: the underlay's uplink, and in
/// two-armed mode the external one's too (each its own program and maps, since each
/// interface's queues have their own sockets). All hold the same state.
#[derive(Debug)]
pub struct SteeringSet {
    each: Vec<Steering>,
}

impl SteeringSet {
    pub fn attach(ifnames: &[&str], node_ip: Ipv4Addr, how: XdpAttach) -> io::Result<Self> {
        let each = ifnames
            .iter()
            .map(|i| Steering::attach(i, node_ip, how))
            .collect::<io::Result<_>>()?;
        Ok(SteeringSet { each })
    }

    /// [`Steering::set_node_ip6`] on every interface.
    pub fn set_node_ip6(&mut self, ip: Ipv6Addr) -> io::Result<()> {
        self.each.iter_mut().try_for_each(|s| s.set_node_ip6(ip))
    }

    /// The program on the `i`th interface given to `attach`.
    pub fn interface(&mut self, i: usize) -> &mut Steering {
        &mut self.each[i]
    }

    /// "driver" or "generic" (the first interface's; all are attached the same way).
    pub fn mode(&self) -> &'static str {
        self.each.first().map_or("none", Steering::mode)
    }

    /// Every interface's program to `want` (see [`Steering::sync`]).
    pub fn sync(&mut self, want: &SteeringState) -> io::Result<()> {
        self.each.iter_mut().try_for_each(|s| s.sync(want))
    }

    /// A reader of every interface's verdict counters.
    pub fn verdict_reader(&self) -> VerdictReader {
        VerdictReader {
            each: self
                .each
                .iter()
                .map(|s| (s.ifname.clone(), Arc::clone(&s.verdicts)))
                .collect(),
        }
    }
}
