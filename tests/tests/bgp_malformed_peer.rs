//! A hostile BGP peer (a Python script in the router's namespace) sends malformed messages to
//! the speaker, one per session: each gets the RFC 4271 / RFC 7606 NOTIFICATION, the session
//! resets and comes back, and the speaker keeps running. An UPDATE whose attribute error is
//! treat-as-withdraw keeps the session up.

use std::time::Duration;

use tests::bgp_peer::{Lan, SpeakerProcess};
use tests::netns::{self, Netns};
use tests::routers::wait_until;

const PEER: &str = r#"
import socket, struct, sys, time
M = b'\xff' * 16
def msg(kind, body):
    return M + struct.pack('!HB', 19 + len(body), kind) + body
OPEN = msg(1, struct.pack('!BHH4sB', 4, 64512, 9, socket.inet_aton('192.168.99.12'), 8)
           + bytes([2, 6, 65, 4, 0, 0, 0xfc, 0]))
KEEPALIVE = msg(4, b'')
def update(attrs, nlri=b''):
    return msg(2, b'\x00\x00' + struct.pack('!H', len(attrs)) + attrs + nlri)
GOOD = bytes([0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 168, 99, 12])
CASES = [
    ('bad_marker', b'\x00' + M[1:] + struct.pack('!HB', 19, 4)),
    ('short_length', M + struct.pack('!HB', 18, 4)),
    ('bad_type', M + struct.pack('!HB', 19, 9)),
    ('long_keepalive', M + struct.pack('!HB', 20, 4) + b'\x00'),
    ('prefix_too_long', update(GOOD, bytes([33, 1, 2, 3, 4, 5]))),
    ('unknown_well_known', update(GOOD + bytes([0x40, 99, 0]), bytes([24, 10, 1, 2]))),
    ('withdrawn_overrun', msg(2, b'\x00\x09\x20\x01\x02\x03\x04\x00\x00')),
    ('open_when_established', OPEN),
    ('bad_origin_treat_as_withdraw', update(bytes([0x40, 1, 1, 7]) + GOOD[4:], bytes([24, 10, 1, 2]))),
]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('192.168.99.12', 179))
srv.listen(4)
srv.settimeout(20)
def read_msg(c):
    head = b''
    while len(head) < 19:
        d = c.recv(19 - len(head))
        if not d:
            return None
        head += d
    n = struct.unpack('!H', head[16:18])[0]
    body = b''
    while len(body) < n - 19:
        d = c.recv(n - 19 - len(body))
        if not d:
            return None
        body += d
    return head[18], body
for name, bad in CASES:
    c, _ = srv.accept()
    c.settimeout(3)
    c.sendall(OPEN)
    assert read_msg(c)[0] == 1, 'speaker OPEN'
    c.sendall(KEEPALIVE)
    assert read_msg(c)[0] == 4, 'speaker KEEPALIVE'
    c.sendall(bad)
    # Up to 4 s (well inside the 9 s hold time) for a NOTIFICATION; the speaker's keepalives
    # meanwhile are fine. A deadline, not a per-read timeout: keepalives every 3 s would keep
    # resetting one, until the hold timer ran out under a slow machine.
    result = 'session_up'
    deadline = time.time() + 4
    try:
        while time.time() < deadline:
            c.settimeout(max(0.05, deadline - time.time()))
            m = read_msg(c)
            if m is None:
                result = 'closed'
                break
            if m[0] == 3:
                result = '%d/%d' % (m[1][0], m[1][1])
                break
    except socket.timeout:
        pass
    print(name, result, flush=True)
    c.close()
"#;

#[test]
fn bgp_malformed_messages_get_notifications_and_the_speaker_survives() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let router = Netns::new("router").unwrap();
    let m01 = Netns::new("m01").unwrap();
    let _lan = Lan::new(&[(&router, "192.168.99.12/24"), (&m01, "192.168.99.23/24")]).unwrap();
    // The speaker connects out every second (retry interval) to the hostile peer.
    let mut gw = SpeakerProcess::start(
        &m01,
        &[
            "--as",
            "64512",
            "--router-id",
            "192.168.99.23",
            "--neighbor",
            "192.168.99.12:64512:9",
        ],
    )
    .unwrap();
    let peer = router
        .command("python3")
        .args(["-c", PEER])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&peer.stdout);
    assert!(
        peer.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&peer.stderr)
    );
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        [
            "bad_marker 1/1",
            "short_length 1/2",
            "bad_type 1/3",
            "long_keepalive 1/2",
            "prefix_too_long 3/10",
            "unknown_well_known 3/2",
            "withdrawn_overrun 3/1",
            "open_when_established 5/3",
            "bad_origin_treat_as_withdraw session_up",
        ]
    );
    // Alive and answering, and it keeps trying to reconnect.
    assert!(wait_until(Duration::from_secs(5), || gw.status().is_ok()));
    assert!(gw.quit().unwrap().success());
}
