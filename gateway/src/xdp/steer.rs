//! The steering program (`gateway/bpf/steer.c`), loaded with aya and attached to one
//! interface: Geneve to the node IP and traffic to the egress IPs go to the AF_XDP socket of the
//! receiving queue, everything else to the kernel. Detached when this value drops.

use aya::maps::{Array, HashMap, XskMap};
use aya::programs::{Xdp, XdpFlags};
use aya::Ebpf;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

/// The compiled program, embedded at build time (`build.rs`).
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.o"));

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

/// The program attached to an interface, and its maps.
pub struct Steering {
    ebpf: Ebpf,
    ifname: String,
    mode: &'static str,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Steering {
    /// Loads the program, sets the node IP, and attaches it to `ifname` in the given mode.
    pub fn attach(ifname: &str, node_ip: Ipv4Addr, how: XdpAttach) -> io::Result<Steering> {
        let mut ebpf = Ebpf::load(PROGRAM).map_err(|e| err("loading the steering program", e))?;
        {
            let map = ebpf
                .map_mut("node_ip")
                .ok_or_else(|| err("steering program", "no node_ip map"))?;
            let mut node: Array<_, u32> =
                Array::try_from(map).map_err(|e| err("node_ip map", e))?;
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
        Ok(Steering {
            ebpf,
            ifname: ifname.to_owned(),
            mode,
        })
    }

    /// "driver" or "generic".
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// Sends what `queue` receives for us to the AF_XDP socket `fd`.
    pub fn bind_queue(&mut self, queue: u32, fd: impl AsRawFd) -> io::Result<()> {
        let map = self
            .ebpf
            .map_mut("xsks")
            .ok_or_else(|| err("steering program", "no xsks map"))?;
        let mut xsks = XskMap::try_from(map).map_err(|e| err("xsks map", e))?;
        xsks.set(queue, fd, 0).map_err(|e| err("xsks map", e))
    }

    /// Starts steering traffic addressed to `ip` to the dataplane.
    pub fn serve(&mut self, ip: Ipv4Addr) -> io::Result<()> {
        self.egress_ips()?
            .insert(wire_order(ip), 1, 0)
            .map_err(|e| err("egress_ips map", e))
    }

    /// Stops steering traffic addressed to `ip`.
    pub fn unserve(&mut self, ip: Ipv4Addr) -> io::Result<()> {
        self.egress_ips()?
            .remove(&wire_order(ip))
            .map_err(|e| err("egress_ips map", e))
    }

    fn egress_ips(&mut self) -> io::Result<HashMap<&mut aya::maps::MapData, u32, u8>> {
        let map = self
            .ebpf
            .map_mut("egress_ips")
            .ok_or_else(|| err("steering program", "no egress_ips map"))?;
        HashMap::try_from(map).map_err(|e| err("egress_ips map", e))
    }
}

/// The steering program on every interface the dataplane reads: the underlay's, and in
/// two-armed mode the external one's too (each its own program and maps, since each
/// interface's queues have their own sockets). Egress IPs are served on all of them.
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

    /// The program on the `i`th interface given to `attach`.
    pub fn interface(&mut self, i: usize) -> &mut Steering {
        &mut self.each[i]
    }

    /// "driver" or "generic" (the first interface's; all are attached the same way).
    pub fn mode(&self) -> &'static str {
        self.each.first().map_or("none", Steering::mode)
    }

    pub fn serve(&mut self, ip: Ipv4Addr) -> io::Result<()> {
        self.each.iter_mut().try_for_each(|s| s.serve(ip))
    }

    pub fn unserve(&mut self, ip: Ipv4Addr) -> io::Result<()> {
        self.each.iter_mut().try_for_each(|s| s.unserve(ip))
    }
}
