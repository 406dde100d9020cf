//! Two-armed mode: the tunnels arrive on one interface (the underlay) and the outside is on
//! another (the external one). A pod node sends a Geneve-encapsulated UDP datagram from pod
//! 10.133.0.3 to a server behind the external interface; the server sees the egress IP,
//! answers, and the answer goes back into the tunnel on the underlay interface, to the pod.
//! Both interfaces' next hops are resolved on demand, each on its own interface; SIGTERM
//! leaves no program on either.

use std::io::Read;
use std::time::Duration;
use tests::daemon::{signal_and_wait, start_daemon};
use tests::netns::{self, Netns};
use tests::pod_node::EXCHANGE;
use tests::routers::wait_until;

/// The server: says whom the first datagram came from, and answers every datagram until the
/// pod node stops asking (it stops once an answer reaches it; the first may be dropped while
/// the gateway resolves the way back) and 3 s have passed.
const SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5555))
print('ready', flush=True)
s.settimeout(15)
data, (src, sport) = s.recvfrom(64)
print('server saw', src, sport, data.decode(), flush=True)
s.settimeout(3)
for _ in range(100):
    s.sendto(b'pong', (src, sport))
    try:
        s.recvfrom(64)
    except socket.timeout:
        break
"#;

const CONFIG: &str = r#"
egress_ips = ["192.168.66.100"]

[node]
ip = "10.77.23.2"
underlay_interface = "under0"
external_interface = "ext0"

[dataplane]
queues = [0]
cores = [0]
frames_per_queue = 1024

[cluster]
pod_networks = ["10.128.0.0/13"]
service_networks = ["172.22.0.0/16"]

[[pods]]
ip = "10.133.0.3"
egress_ip = "192.168.66.100"
"#;

#[test]
fn seed_lab_two_armed_round_trip() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let node = Netns::new("podnode").unwrap();
    let server = Netns::new("server").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&node, "eth0", Some("10.77.23.1/24")),
        (&gw, "under0", Some("10.77.23.2/24")),
    )
    .unwrap();
    netns::veth(
        (&server, "eth0", Some("10.77.24.1/24")),
        (&gw, "ext0", Some("10.77.24.2/24")),
    )
    .unwrap();
    // The server is also the external router; it routes the egress IP back to the gateway.
    gw.ip(&["route", "add", "default", "via", "10.77.24.1"])
        .unwrap();
    server
        .ip(&["route", "add", "192.168.66.100/32", "via", "10.77.24.2"])
        .unwrap();
    let dir = std::env::temp_dir().join(format!("egw-{}-two-armed", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("egressgw.toml");
    let socket = dir.join("egressgw.sock");
    std::fs::write(
        &config,
        format!("{CONFIG}\n[control]\nsocket = \"{}\"\n", socket.display()),
    )
    .unwrap();
    let mut daemon = start_daemon(&gw, &config);
    for dev in ["under0", "ext0"] {
        assert!(xdp_attached(&gw, dev), "no program on {dev}");
    }

    // The first ping must find the server bound, or the server's namespace answers it with
    // port unreachable.
    let (mut listener, mut heard) =
        netns::spawn_ready(server.command("python3").args(["-c", SERVER, "10.77.24.1"]))
            .expect("server");
    let out = node
        .run(
            "python3",
            &["-c", EXCHANGE, "10.77.23.1", "10.77.23.2", "10.77.24.1"],
        )
        .expect("pod node exchange");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rest = String::new();
    heard.read_to_string(&mut rest).unwrap();
    listener.wait().unwrap();
    let heard = rest;
    // Out through the external interface with the egress IP; back into the tunnel on the
    // underlay from the node IP, to the pod.
    assert!(
        heard.contains("server saw 192.168.66.100 "),
        "server: {heard}"
    );
    assert!(heard.contains(" ping"), "server: {heard}");
    assert!(
        text.contains("tunnel from 10.77.23.2 vni 0xff0003 inner 10.77.24.1 -> 10.133.0.3 5555 -> 4000 pong checksum ok"),
        "pod node: {text}"
    );

    assert!(signal_and_wait(&mut daemon, "-TERM").success());
    for dev in ["under0", "ext0"] {
        assert!(
            wait_until(Duration::from_secs(5), || !xdp_attached(&gw, dev)),
            "program left on {dev}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn xdp_attached(ns: &Netns, dev: &str) -> bool {
    let link = ns.run("ip", &["-d", "link", "show", dev]).unwrap();
    String::from_utf8_lossy(&link.stdout).contains("prog/xdp")
}
