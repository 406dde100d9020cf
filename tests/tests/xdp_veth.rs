//! AF_XDP on veth, in namespaces: frames sent to an interface reach our socket's UMEM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
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
    // The socket takes every frame, ARP included: give the sender the neighbour statically.
    let mac = mac_of(&gw, "eth0");
    sender
        .ip(&["neigh", "add", "10.77.1.2", "lladdr", &mac, "dev", "eth0"])
        .unwrap();

    let mut probe = gw
        .command(env!("CARGO_BIN_EXE_xsk_probe"))
        .args(["eth0", "20", MARKER])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = probe.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut mode = String::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l == "ready" => break,
            Ok(l) => mode = l,
            Err(_) => {
                let _ = probe.kill();
                let out = probe.wait_with_output().unwrap();
                panic!(
                    "probe never ready: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    assert!(mode == "mode=Copy" || mode == "mode=ZeroCopy", "{mode}");
    eprintln!("AF_XDP bound in {mode}");

    // 40 datagrams, 20 ms apart; the probe needs 20 of them.
    let send = format!(
        "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(40):\n    s.sendto(b'{MARKER}', ('10.77.1.2', 9999))\n    time.sleep(0.02)\n"
    );
    sender.run("python3", &["-c", &send]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = probe.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "probe did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let last = lines
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    assert!(status.success(), "probe: {last}");
    assert!(last.starts_with("received "), "{last}");
}
