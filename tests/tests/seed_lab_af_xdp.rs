//! The first real packets through egressgw over AF_XDP, one-armed on a veth: a pod node sends
//! a Geneve-encapsulated UDP datagram from pod 10.133.0.3; the server (the same namespace, as
//! the one peer of the link) sees it come from the egress IP 192.168.66.100, answers, and the
//! answer comes back Geneve-encapsulated to the pod node, addressed to the pod. (`gw_forward`
//! stands in for the daemon, which comes next.)

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tests::daemon::{signal_and_wait, start_daemon};
use tests::netns::{self, Netns};

/// Runs in the pod node's namespace: builds the Geneve frame as OVN would (VNI 0xff0003, OVN
/// option), sends it until the server socket hears from the gateway (40 tries, 250 ms apart),
/// replies, and reads the reply back off the tunnel.
const POD_NODE: &str = r#"
import socket, struct, sys
NODE, GW = sys.argv[1], sys.argv[2]

def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ipv4(src, dst, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, 0x4000, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload

udp = struct.pack('!HHHH', 4000, 5555, 8 + 4, 0) + b'ping'
inner = ipv4('10.133.0.3', NODE, udp)
eth = bytes.fromhex('0a5864580004' '0a5864580002' '0800')
geneve = bytes.fromhex('02406558' 'ff000300' '01028001' '00020004')
frame = geneve + eth + inner

server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind((NODE, 5555))
server.settimeout(0.25)
tunnel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tunnel.bind((NODE, 6081))
tunnel.settimeout(5)
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(40):
    out.sendto(frame, (GW, 6081))
    try:
        data, (src, sport) = server.recvfrom(64)
        break
    except socket.timeout:
        pass
else:
    raise SystemExit('server heard nothing')
print('server saw', src, sport, data.decode())
server.sendto(b'pong', (src, sport))
pkt, (tsrc, _) = tunnel.recvfrom(2048)
opt_words = pkt[0] & 0x3f
vni = int.from_bytes(pkt[4:7], 'big')
ip = pkt[8 + opt_words * 4 + 14:]
ports = struct.unpack('!HH', ip[20:24])
print('tunnel from', tsrc, 'vni', hex(vni), 'inner', socket.inet_ntoa(ip[12:16]), '->',
      socket.inet_ntoa(ip[16:20]), ports[0], '->', ports[1], ip[28:].decode(),
      'checksum', 'ok' if csum(ip[:20]) == 0 else 'bad')
"#;

#[test]
fn seed_lab_af_xdp_udp_round_trip() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let node = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&node, "eth0", Some("10.77.4.1/24")),
        (&gw, "eth0", Some("10.77.4.2/24")),
    )
    .unwrap();
    node.ip(&["route", "add", "192.168.66.100/32", "via", "10.77.4.2"])
        .unwrap();
    let node_mac = node.run("cat", &["/sys/class/net/eth0/address"]).unwrap();
    let node_mac = String::from_utf8_lossy(&node_mac.stdout).trim().to_owned();

    let mut fwd = gw
        .command(env!("CARGO_BIN_EXE_gw_forward"))
        .args([
            "eth0",
            "10.77.4.2",
            "192.168.66.100",
            "10.133.0.3",
            "10.77.4.1",
            &node_mac,
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(fwd.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "ready",
        "gateway did not start"
    );

    let out = node
        .run("python3", &["-c", POD_NODE, "10.77.4.1", "10.77.4.2"])
        .expect("pod node exchange");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = fwd.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gateway did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let report: Vec<String> = lines.map_while(Result::ok).collect();
    eprintln!("{text}{report:?}");
    assert!(status.success(), "gateway: {report:?}");
    // The server saw the egress IP, never the pod or the node.
    assert!(text.contains("server saw 192.168.66.100 "), "{text}");
    assert!(text.contains(" ping"), "{text}");
    // The reply came back through the tunnel from the gateway's node IP, to the pod.
    assert!(text.contains("tunnel from 10.77.4.2 vni 0xff0003 inner 10.77.4.1 -> 10.133.0.3 5555 -> 4000 pong checksum ok"), "{text}");
}

/// The same exchange through the real daemon, configured from TOML; SIGTERM then stops it
/// and leaves no program attached, and so does kill -9.
#[test]
fn seed_lab_daemon_round_trip_then_clean_exit() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let node = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&node, "eth0", Some("10.77.6.1/24")),
        (&gw, "eth0", Some("10.77.6.2/24")),
    )
    .unwrap();
    node.ip(&["route", "add", "192.168.66.100/32", "via", "10.77.6.2"])
        .unwrap();
    let config = std::env::temp_dir().join(format!("egressgw-test-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        r#"
egress_ips = ["192.168.66.100"]

[node]
ip = "10.77.6.2"
underlay_interface = "eth0"
external_interface = "eth0"

[dataplane]
queues = [0]
cores = [0]
frames_per_queue = 1024

[control]
socket = "/tmp/egw-seed-lab-af-xdp.sock"

[[pods]]
ip = "10.133.0.3"
egress_ip = "192.168.66.100"
comment = "demo-egress/egress-identity"
"#,
    )
    .unwrap();

    let mut daemon = start_daemon(&gw, &config);
    // The daemon learns the pod node's MAC from the kernel's neighbour table (filled by the
    // node's ARP), re-read every second: the exchange retries until then.
    let out = node
        .run("python3", &["-c", POD_NODE, "10.77.6.1", "10.77.6.2"])
        .expect("pod node exchange");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("server saw 192.168.66.100 "), "{text}");
    assert!(
        text.contains("tunnel from 10.77.6.2 vni 0xff0003 inner 10.77.6.1 -> 10.133.0.3 5555 -> 4000 pong checksum ok"),
        "{text}"
    );

    let status = signal_and_wait(&mut daemon, "-TERM");
    assert!(status.success(), "daemon exit after SIGTERM: {status:?}");
    assert!(
        !xdp_attached(&gw),
        "XDP program left attached after SIGTERM"
    );
    // kill -9 gives the daemon no chance to clean up: the program hangs on a bpf link owned by
    // the process, so the kernel detaches it when the process dies.
    let mut daemon = start_daemon(&gw, &config);
    assert!(xdp_attached(&gw), "daemon running without its program");
    signal_and_wait(&mut daemon, "-KILL");
    let _ = std::fs::remove_file(&config);
    assert!(
        !xdp_attached(&gw),
        "XDP program left attached after kill -9"
    );
}

fn xdp_attached(ns: &Netns) -> bool {
    let link = ns.run("ip", &["-d", "link", "show", "eth0"]).unwrap();
    String::from_utf8_lossy(&link.stdout).contains("prog/xdp")
}
