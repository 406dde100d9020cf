//! Two-armed mode: the tunnels arrive on one interface (the underlay) and the outside is on
//! another (the external one). A pod node sends a Geneve-encapsulated UDP datagram from pod
//! 10.133.0.3 to a server behind the external interface; the server sees the egress IP,
//! answers, and the answer goes back into the tunnel on the underlay interface, to the pod.
//! Both interfaces' next hops are resolved on demand, each on its own interface. With a
//! smaller MTU outside, a pod's larger packet draws fragmentation-needed through its tunnel.
//! SIGTERM leaves no program on either.

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

/// The pod node sends a 1100-byte UDP packet with DF (through the tunnel, as OVN would) every
/// 250 ms until ICMP comes back through the tunnel, and prints it as `tunnel from SRC icmp SRC
/// -> DST type T code C mtu M quoting SRC:PORT -> DST:PORT checksum ok|bad`.
const TOO_BIG: &str = r#"
import socket, struct, sys
NODE, GW, SERVER = sys.argv[1:4]

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

payload = b'x' * 1072
udp = struct.pack('!HHHH', 4001, 5555, 8 + len(payload), 0) + payload
h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                socket.inet_aton('10.133.0.3'), socket.inet_aton(SERVER))
inner = h[:10] + struct.pack('!H', csum(h)) + h[12:] + udp
assert len(inner) == 1100
eth = bytes.fromhex('0a5864580004' '0a5864580002' '0800')
geneve = bytes.fromhex('02406558' 'ff000300' '01028001' '00020004')
tunnel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tunnel.bind((NODE, 6081))
tunnel.settimeout(0.25)
for _ in range(40):
    tunnel.sendto(geneve + eth + inner, (GW, 6081))
    try:
        pkt, (tsrc, _) = tunnel.recvfrom(4096)
    except socket.timeout:
        continue
    ip = pkt[8 + (pkt[0] & 0x3f) * 4 + 14:]
    if len(ip) < 56 or ip[9] != 1:
        continue
    icmp = ip[20:struct.unpack('!H', ip[2:4])[0]]
    q = icmp[8:]
    print('tunnel from', tsrc, 'icmp', socket.inet_ntoa(ip[12:16]), '->',
          socket.inet_ntoa(ip[16:20]), 'type', icmp[0], 'code', icmp[1],
          'mtu', struct.unpack('!H', icmp[6:8])[0], 'quoting',
          '%s:%d -> %s:%d' % (socket.inet_ntoa(q[12:16]), struct.unpack('!H', q[20:22])[0],
                              socket.inet_ntoa(q[16:20]), struct.unpack('!H', q[22:24])[0]),
          'checksum', 'ok' if csum(icmp) == 0 and csum(ip[:20]) == 0 else 'bad')
    break
else:
    raise SystemExit('no ICMP came back')
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

    // The outside carries less than the overlay: the daemon reads the external interface's
    // new MTU, and a pod's larger packet (DF set) draws fragmentation-needed from its egress
    // IP, back through its tunnel, as the router on its path would answer.
    gw.ip(&["link", "set", "ext0", "mtu", "1000"]).unwrap();
    let out = node
        .run(
            "python3",
            &["-c", TOO_BIG, "10.77.23.1", "10.77.23.2", "10.77.24.1"],
        )
        .expect("pod node too big");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("tunnel from 10.77.23.2 icmp 192.168.66.100 -> 10.133.0.3 type 3 code 4 mtu 1000 quoting 10.133.0.3:4001 -> 10.77.24.1:5555 checksum ok"),
        "pod node: {text} {}",
        String::from_utf8_lossy(&out.stderr)
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
