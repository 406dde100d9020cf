//! The namespace harness itself: two hosts joined by a veth pair exchange a UDP datagram, and
//! both namespaces are gone once their handles drop.

use std::process::Command;
use tests::netns::{self, Netns};

const ECHO_SERVER: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.2", 7007))
s.settimeout(10)
data, peer = s.recvfrom(64)
s.sendto(data.upper(), peer)
"#;

// Sends until answered: at most 50 tries, 100 ms apart, so the server's start is polled for.
const ECHO_CLIENT: &str = r#"
import socket, sys
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(0.1)
for _ in range(50):
    c.sendto(b"egress", ("10.77.0.2", 7007))
    try:
        print(c.recv(64).decode())
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"#;

fn listed() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn netns_hosts_talk_then_vanish() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let (name_a, name_b);
    {
        let a = Netns::new("pod").unwrap();
        let b = Netns::new("server").unwrap();
        name_a = a.name().to_owned();
        name_b = b.name().to_owned();
        netns::veth(
            (&a, "eth0", Some("10.77.0.1/24")),
            (&b, "eth0", Some("10.77.0.2/24")),
        )
        .unwrap();
        let mut server = b
            .command("python3")
            .args(["-c", ECHO_SERVER])
            .spawn()
            .unwrap();
        let out = a
            .run("python3", &["-c", ECHO_CLIENT])
            .expect("no echo within 5 s");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "EGRESS");
        assert!(server.wait().unwrap().success());
        assert!(listed().contains(&name_a));
    }
    let now = listed();
    assert!(
        !now.contains(&name_a) && !now.contains(&name_b),
        "namespaces left behind: {now}"
    );
}
