//! The daemon's BGP speaker with FRR 8.4 as the seed's router, on one LAN, with the dataplane
//! running (AF_XDP on master-01's br-ex): the router learns 192.168.66.100/32 via master-01,
//! BFD comes up, and the route goes away when the egress IP is unassigned (SIGHUP), when the
//! dataplane worker stalls (its thread frozen with ptrace while the rest of the daemon runs),
//! on SIGTERM (NOTIFICATION cease), on kill -9, and on silent link loss (BFD), each within the
//! time the mechanism allows; it comes back when the node serves again.

use std::time::{Duration, Instant};

use control::proto::{Request, Response};
use tests::bgp_peer::Lan;
use tests::daemon::{signal_and_wait, start_daemon};
use tests::netns::{self, Netns};
use tests::routers::{require, wait_until, Frr};

const ROUTER: &str = "frr defaults traditional
router bgp 64512
 bgp router-id 192.168.99.12
 neighbor 192.168.99.23 remote-as 64512
 neighbor 192.168.99.23 bfd
 address-family ipv4 unicast
  network 192.168.55.0/24
  maximum-paths ibgp 4
 exit-address-family
!
";

fn config(egress_ips: &str) -> String {
    let socket = socket_path();
    format!(
        r#"
egress_ips = [{egress_ips}]

[control]
socket = "{socket}"

[node]
ip = "192.168.99.23"
underlay_interface = "br-ex"
external_interface = "br-ex"

[dataplane]
queues = [0]
cores = [0]
frames_per_queue = 1024

[cluster]
pod_networks = ["10.128.0.0/13"]
service_networks = ["172.22.0.0/16"]

[bgp]
asn = 64512

[[bgp.bfd_profiles]]
name = "fast-bfd"
detect_multiplier = 3

[[bgp.neighbors]]
address = "192.168.99.12"
asn = 64512
bfd_profile = "fast-bfd"
hold_time = 9
connect_time = 1

[bgp.neighbors.to_receive.allowed]
mode = "filtered"
prefixes = [{{ prefix = "192.168.55.0/24" }}]
"#
    )
}

#[test]
fn seed_lab_bgp_route_follows_the_node() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    require(Frr::BGPD).expect("FRR");
    let router = Netns::new("router").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let lan = Lan::new(&[(&router, "192.168.99.12/24")]).unwrap();
    // master-01's interface toward the router is br-ex, as in the seed.
    netns::veth(
        (&lan.switch, "p1", None),
        (&m01, "br-ex", Some("192.168.99.23/24")),
    )
    .unwrap();
    lan.switch
        .ip(&["link", "set", "p1", "master", "br0"])
        .unwrap();
    router
        .ip(&["addr", "add", "192.168.55.12/24", "dev", "lo"])
        .unwrap();
    let frr = Frr::start(&router, ROUTER, true).unwrap();
    let has_route = || {
        router
            .run(
                "ip",
                &["route", "show", "192.168.66.100/32", "proto", "bgp"],
            )
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("via 192.168.99.23"))
    };
    let bfd_up = || {
        frr.vtysh(&["show bfd peers brief"]).is_ok_and(|o| {
            o.lines()
                .any(|l| l.contains("192.168.99.23") && l.contains(" up "))
        })
    };
    let path = std::env::temp_dir().join(format!("egressgw-bgp-{}.toml", std::process::id()));
    std::fs::write(&path, config("\"192.168.66.100\"")).unwrap();

    let mut daemon = start_daemon(&m01, &path);
    assert!(
        wait_until(Duration::from_secs(30), || has_route() && bfd_up()),
        "{}",
        frr.vtysh(&["show bgp summary", "show bfd peers"])
            .unwrap_or_default()
    );

    // Unassigned (the file no longer lists it, SIGHUP): withdrawn.
    std::fs::write(&path, config("")).unwrap();
    let t0 = Instant::now();
    signal_and_wait_alive(&daemon, "-HUP");
    assert!(
        wait_until(Duration::from_secs(5), || !has_route()),
        "not withdrawn"
    );
    eprintln!("unassigned -> route gone: {:?}", t0.elapsed());
    std::fs::write(&path, config("\"192.168.66.100\"")).unwrap();
    signal_and_wait_alive(&daemon, "-HUP");
    assert!(
        wait_until(Duration::from_secs(5), has_route),
        "not announced again"
    );

    // A stalled worker: only its thread is stopped (the speaker keeps the session up), and
    // the egress IP is withdrawn; when the thread runs again, it is announced again.
    let worker = worker_thread(&daemon).expect("the worker thread egressgw-q0");
    let mut freezer = std::process::Command::new("python3")
        .args(["-c", FREEZE, &worker.to_string(), "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(freezer.stdout.take().unwrap()));
    let mut ctl = control::client::Client::connect(std::path::Path::new(&socket_path())).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "stopped");
    let t0 = Instant::now();
    // The gate's decision (the withdrawal is handed to the speaker in the same step), polled
    // over the control socket, then the route's removal at the router.
    let withdrawn = wait_until(
        Duration::from_secs(2),
        || matches!(ctl.request(Request::Health), Ok(Response::Health(h)) if h.announced.is_empty()),
    );
    assert!(withdrawn, "the health gate did not withdraw on stall");
    eprintln!(
        "worker stalled -> withdrawn by the daemon: {:?}",
        t0.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(2), || !has_route()),
        "not withdrawn on stall"
    );
    eprintln!(
        "worker stalled -> route gone at the router: {:?}",
        t0.elapsed()
    );
    assert_eq!(lines.next().unwrap().unwrap(), "released");
    assert!(freezer.wait().unwrap().success());
    assert!(
        wait_until(Duration::from_secs(5), has_route),
        "not announced after the stall"
    );

    // SIGTERM: NOTIFICATION cease, so the router drops the route without waiting.
    let t0 = Instant::now();
    assert!(signal_and_wait(&mut daemon, "-TERM").success());
    assert!(
        wait_until(Duration::from_secs(2), || !has_route()),
        "route kept after SIGTERM"
    );
    eprintln!("SIGTERM -> route gone: {:?}", t0.elapsed());
    let neighbor = frr.vtysh(&["show bgp neighbors 192.168.99.23"]).unwrap();
    assert!(neighbor.contains("Administrative Shutdown"), "{neighbor}");

    // kill -9: the kernel closes the connection.
    let mut daemon = start_daemon(&m01, &path);
    assert!(wait_until(Duration::from_secs(30), has_route));
    let t0 = Instant::now();
    signal_and_wait(&mut daemon, "-KILL");
    assert!(
        wait_until(Duration::from_secs(2), || !has_route()),
        "route kept after kill -9"
    );
    eprintln!("kill -9 -> route gone: {:?}", t0.elapsed());

    // Silent link loss: master-01's switch port goes down; BFD (300 ms x 3) notices well before
    // the 9 s hold time.
    let mut daemon = start_daemon(&m01, &path);
    assert!(wait_until(Duration::from_secs(30), || has_route() && bfd_up()));
    let t0 = Instant::now();
    lan.switch.ip(&["link", "set", "p1", "down"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || !has_route()),
        "BFD did not remove the route"
    );
    eprintln!("silent loss -> route gone: {:?}", t0.elapsed());
    lan.switch.ip(&["link", "set", "p1", "up"]).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), has_route),
        "route did not come back"
    );
    assert!(signal_and_wait(&mut daemon, "-TERM").success());
    let _ = std::fs::remove_file(&path);
}

/// Sends a signal the daemon survives (SIGHUP).
fn signal_and_wait_alive(daemon: &std::process::Child, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([signal, &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Stops one thread (not its process) for a while: PTRACE_SEIZE + PTRACE_INTERRUPT put only
/// the seized thread in a ptrace stop; PTRACE_DETACH lets it run on.
const FREEZE: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid, hold = int(sys.argv[1]), float(sys.argv[2])
if libc.ptrace(0x4206, tid, None, None) != 0:
    raise SystemExit('PTRACE_SEIZE: errno %d' % ctypes.get_errno())
libc.ptrace(0x4207, tid, None, None)
os.waitpid(tid, 0x40000000)
print('stopped', flush=True)
time.sleep(hold)
libc.ptrace(17, tid, None, None)
print('released', flush=True)
"#;

/// The thread id of the daemon's first dataplane worker.
fn worker_thread(daemon: &std::process::Child) -> Option<u32> {
    // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", daemon.id())).ok()?;
    tasks.filter_map(Result::ok).find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        (comm.trim() == "egressgw-q0").then(|| t.file_name().to_str()?.parse().ok())?
    })
}

fn socket_path() -> String {
    std::env::temp_dir()
        .join(format!("egw-{}-bgp.sock", std::process::id()))
        .display()
        .to_string()
}
