//! AF_XDP on veth, in namespaces: frames sent to an interface reach our socket's UMEM, and
//! with egressgw's steering program only the frames the dataplane translates do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tests::netns::{self, Netns};

const MARKER: &str = "egressgw-xsk-probe";

fn mac_of(ns: &Netns, dev: &str) -> String {
    let out = ns.run("ip", &["-o", "link", "show", dev]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .expect("an Ethernet device");
    words.next().unwrap().to_owned()
}

/// `xsk_probe` running in a namespace, its stdout lines arriving on a channel.
struct Probe {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Probe {
    /// Starts the probe and waits (10 s at most) for it to say `ready`; returns the lines
    /// it printed before that.
    fn start(ns: &Netns, args: &[&str]) -> (Probe, Vec<String>) {
        let mut child = ns
            .command(env!("CARGO_BIN_EXE_xsk_probe"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let mut probe = Probe { child, lines };
        let mut before = Vec::new();
        loop {
            match probe.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(l) if l == "ready" => return (probe, before),
                Ok(l) => before.push(l),
                Err(_) => {
                    let _ = probe.child.kill();
                    let out = probe.child.wait_with_output().unwrap();
                    panic!(
                        "probe never ready: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }

    /// Waits (10 s at most) for the probe to exit; returns whether it succeeded and its last line.
    fn finish(mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("probe did not finish");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.success(),
            self.lines
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_default(),
        )
    }
}

/// Sends `count` Geneve datagrams to `to`:6081 as OVN does (VNI 0xff0003, OVN's option),
/// carrying IPv4/UDP from `inner_src` to `inner_dst` with `payload`.
fn send_geneve(ns: &Netns, to: &str, inner_src: &str, inner_dst: &str, payload: &str, count: u32) {
    let script = format!(
        "import socket, struct, time\n\
         geneve = bytes.fromhex('02406558ff00030001028001000200040a58645800040a58645800020800')\n\
         body = b'{payload}'\n\
         udp = struct.pack('!HHHH', 40000, 9999, 8 + len(body), 0) + body\n\
         ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,\n\
             socket.inet_aton('{inner_src}'), socket.inet_aton('{inner_dst}'))\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range({count}):\n    s.sendto(geneve + ip + udp, ('{to}', 6081))\n    time.sleep(0.02)\n"
    );
    ns.run("python3", &["-c", &script]).unwrap();
}

fn send_udp(ns: &Netns, to: &str, port: u16, payload: &str, count: u32) {
    let script = format!(
        "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range({count}):\n    s.sendto(b'{payload}', ('{to}', {port}))\n    time.sleep(0.02)\n"
    );
    ns.run("python3", &["-c", &script]).unwrap();
}

#[test]
fn xsk_socket_on_veth_receives_frames() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let sender = Netns::new("sender").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&sender, "eth0", Some("10.77.1.1/24")),
        (&gw, "eth0", Some("10.77.1.2/24")),
    )
    .unwrap();
    // libxdp's default program takes every frame, ARP included: give the sender the neighbour.
    let mac = mac_of(&gw, "eth0");
    sender
        .ip(&["neigh", "add", "10.77.1.2", "lladdr", &mac, "dev", "eth0"])
        .unwrap();

    let (probe, before) = Probe::start(&gw, &["eth0", "20", MARKER]);
    let mode = before.last().cloned().unwrap_or_default();
    assert!(mode == "mode=Copy" || mode == "mode=ZeroCopy", "{mode}");
    eprintln!("AF_XDP bound in {mode}");
    send_udp(&sender, "10.77.1.2", 9999, MARKER, 40);
    let (ok, last) = probe.finish();
    assert!(ok && last.starts_with("received "), "probe: {last}");
}

#[test]
fn steering_program_redirects_only_ours() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let sender = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&sender, "eth0", Some("10.77.3.1/24")),
        (&gw, "eth0", Some("10.77.3.2/24")),
    )
    .unwrap();
    sender
        .ip(&["route", "add", "192.168.66.100/32", "via", "10.77.3.2"])
        .unwrap();

    // Kernel sockets on the node: traffic the dataplane does not translate must still reach
    // them, the node's own Geneve endpoint (its OVS) included.
    let (mut kernel, _kernel_out) = netns::spawn_ready(gw.command("python3").args([
        "-c",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('10.77.3.2', 7000))\nprint('ready', flush=True)\ns.settimeout(10)\nn = 0\nwhile n < 3:\n    if s.recv(64) == b'kernel':\n        n += 1\nprint(n)\n",
    ]))
    .expect("kernel socket");
    let (mut overlay, _overlay_out) = netns::spawn_ready(gw.command("python3").args([
        "-c",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('10.77.3.2', 6081))\nprint('ready', flush=True)\ns.settimeout(10)\nn = 0\nwhile n < 3:\n    d = s.recv(2048)\n    if d.endswith(b'east-west') or d.endswith(b'unmapped'):\n        n += 1\nprint(n)\n",
    ]))
    .expect("node's Geneve socket");

    // 20 of the 40 steered datagrams are enough for the probe (UDP in a namespace can lose a
    // few while the program attaches).
    let (probe, before) = Probe::start(&gw, &["eth0", "20", MARKER, "10.77.3.2", "192.168.66.100"]);
    assert!(
        before.iter().any(|l| l.starts_with("steering=")),
        "{before:?}"
    );
    eprintln!("steered AF_XDP: {before:?}");
    // No static neighbour this time: ARP must pass to the kernel and be answered. The served
    // pod's egress and datagrams to the egress IP go to the dataplane; the pod's east-west
    // traffic and an unmapped pod's go to the node's own Geneve socket.
    send_geneve(
        &sender,
        "10.77.3.2",
        "10.133.0.3",
        "192.168.55.13",
        MARKER,
        20,
    );
    send_udp(&sender, "192.168.66.100", 80, MARKER, 20);
    send_udp(&sender, "10.77.3.2", 7000, "kernel", 5);
    send_geneve(
        &sender,
        "10.77.3.2",
        "10.133.0.3",
        "10.128.0.5",
        "east-west",
        3,
    );
    send_geneve(
        &sender,
        "10.77.3.2",
        "10.133.0.99",
        "192.168.55.13",
        "unmapped",
        3,
    );
    let (ok, last) = probe.finish();
    assert!(ok, "probe: {last}");
    assert!(
        kernel.wait().unwrap().success(),
        "the kernel socket did not get its datagrams"
    );
    assert!(
        overlay.wait().unwrap().success(),
        "the node's Geneve socket did not get the east-west and unmapped pods' frames"
    );
    // The program left with the probe.
    let link = gw.run("ip", &["-d", "link", "show", "eth0"]).unwrap();
    assert!(
        !String::from_utf8_lossy(&link.stdout).contains("prog/xdp"),
        "XDP program still attached"
    );
}

/// One `flush` of a full batch puts all of it on the wire: in copy mode the kernel sends at
/// most 32 frames per wakeup, so the port must wake it until the ring is empty (a port that
/// woke it once delivered 32 of 64 and dropped the rest later as `tx_ring_full`).
#[test]
fn one_flush_sends_a_whole_batch() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let sender = Netns::new("xsktx").unwrap();
    let receiver = Netns::new("xskrx").unwrap();
    netns::veth((&sender, "eth0", None), (&receiver, "eth0", None)).unwrap();
    let (probe, _) = Probe::start(&receiver, &["eth0", "64", MARKER]);
    let out = sender
        .run(
            env!("CARGO_BIN_EXE_xsk_probe"),
            &["--send", "eth0", "64", MARKER],
        )
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("queued 64"), "{said}");
    // Where the kernel takes a raised budget (XDP_MAX_TX_SKB_BUDGET, 6.17+), one wakeup sends
    // the whole batch; elsewhere it takes two (32 each).
    let word = |name: &str| -> String {
        let mut w = said.split_whitespace();
        w.find(|x| *x == name);
        w.next().unwrap_or_default().to_owned()
    };
    let wakeups: u32 = word("wakeups").parse().unwrap();
    match word("budget").as_str() {
        "default" => assert!(wakeups >= 2, "{said}"),
        b => {
            assert!(b.parse::<u32>().unwrap() >= 64, "{said}");
            assert_eq!(wakeups, 1, "{said}");
        }
    }
    let (ok, last) = probe.finish();
    assert!(ok, "receiver: {last} (sender: {said})");
}

/// Frames the kernel could not hand to a socket are counted where the operator sees them: a
/// socket that reads nothing takes its rings' worth (32), and the kernel counts the rest of
/// 200 frames in the socket's own counters (`XDP_STATISTICS`, what `egressctl stats` shows).
#[test]
fn kernel_side_loss_is_counted() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let sender = Netns::new("xsklossa").unwrap();
    let receiver = Netns::new("xsklossb").unwrap();
    netns::veth((&sender, "eth0", None), (&receiver, "eth0", None)).unwrap();
    let mut holder = receiver
        .command(env!("CARGO_BIN_EXE_xsk_probe"))
        .args(["--hold", "eth0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let sent = sender
        .run(
            env!("CARGO_BIN_EXE_xsk_probe"),
            &["--send", "eth0", "200", MARKER],
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&sent.stdout).contains("queued 200"));
    // The frames are in the receiver's hands once the sender's flush returned; read the
    // counters once they have settled (polled, bounded).
    use std::io::Write as _;
    holder.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut counters = String::new();
    out.read_line(&mut counters).unwrap();
    assert!(holder.wait().unwrap().success());
    let count = |name: &str| -> u64 {
        counters
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {counters:?}"))
    };
    eprintln!("{counters}");
    let lost = count("rx_dropped") + count("rx_ring_full");
    assert!(lost >= 100, "the kernel's loss is not counted: {counters}");
}
