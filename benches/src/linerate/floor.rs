//! The floor: plain AF_XDP forwarding on the gateway's interface, nothing but the MAC
//! rewrite, through the same `XskPort` the dataplane uses (so the same copy per frame).
//! What any AF_XDP program pays for receive and transmit on this device; egressgw's cost
//! above it is the pipeline's.

use gateway::wire::ethernet::MacAddr;
use gateway::xdp::port::XskPort;
use std::io;

const BATCH: usize = 64;
const SLOT: usize = 2048;

/// Forwards every frame on `queues` of `ifname` back out to `peer`, one pinned thread per
/// queue, until the process is killed (driver-mode XDP if `native`, else generic). Prints
/// `ready` once every socket is bound.
pub fn run(
    ifname: &str,
    queues: u32,
    cores: &[usize],
    peer: MacAddr,
    native: bool,
) -> io::Result<()> {
    let own = gateway::daemon::next_hops::interface_mac(ifname)?;
    let mut ports = Vec::new();
    for queue in 0..queues {
        ports.push(if native {
            XskPort::open(ifname, queue, 8192)?
        } else {
            XskPort::open_generic(ifname, queue, 8192)?
        });
    }
    println!("ready");
    let mut threads = Vec::new();
    for (i, mut port) in ports.into_iter().enumerate() {
        let core = cores[i % cores.len()];
        threads.push(std::thread::spawn(move || -> io::Result<()> {
            core_affinity::set_for_current(core_affinity::CoreId { id: core });
            let mut scratch = vec![0u8; BATCH * SLOT];
            let mut lens = Vec::with_capacity(BATCH);
            loop {
                lens.clear();
                port.receive(10, |frame| {
                    let at = lens.len() * SLOT;
                    let n = frame.len().min(SLOT);
                    scratch[at..at + n].copy_from_slice(&frame[..n]);
                    scratch[at..at + 6].copy_from_slice(&peer.0);
                    scratch[at + 6..at + 12].copy_from_slice(&own.0);
                    lens.push(n);
                })?;
                for (i, &n) in lens.iter().enumerate() {
                    port.queue(&scratch[i * SLOT..i * SLOT + n]);
                }
                port.flush()?;
            }
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("a floor thread panicked"))??;
    }
    Ok(())
}
