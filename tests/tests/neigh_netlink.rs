//! Next hops read from the kernel over rtnetlink, in a namespace: the connected subnet, the
//! default gateway and the neighbour table become the pipeline's `Fib`.

use tests::netns::{self, Netns};

#[test]
fn fib_from_the_kernel_tables() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let peer = Netns::new("router").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&peer, "eth0", Some("10.77.5.1/24")),
        (&gw, "eth0", Some("10.77.5.2/24")),
    )
    .unwrap();
    gw.ip(&["route", "add", "default", "via", "10.77.5.1"])
        .unwrap();
    gw.ip(&[
        "neigh",
        "replace",
        "10.77.5.1",
        "lladdr",
        "02:00:00:77:05:01",
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])
    .unwrap();
    gw.ip(&[
        "neigh",
        "replace",
        "10.77.5.9",
        "lladdr",
        "02:00:00:77:05:09",
        "dev",
        "eth0",
        "nud",
        "reachable",
    ])
    .unwrap();

    let out = gw
        .run(
            env!("CARGO_BIN_EXE_fib_dump"),
            &[
                "eth0",
                "192.168.55.13",
                "10.77.5.9",
                "10.77.5.77",
                "10.77.5.1",
            ],
        )
        .expect("fib_dump");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = [
        // Off link: via the default gateway.
        "192.168.55.13 -> 02:00:00:77:05:01",
        // On link, resolved.
        "10.77.5.9 -> 02:00:00:77:05:09",
        // On link, not in the neighbour table.
        "10.77.5.77 -> unresolved",
        "10.77.5.1 -> 02:00:00:77:05:01",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
}

/// The IPv6 next hops: the connected prefix (not the link-local one), the default gateway
/// (link-local, as router advertisements give it) and the NDP neighbours become `Fib6`; and
/// a neighbour never talked to is resolved on request (the kernel sends a neighbour
/// solicitation; no packet of ours goes to the peer).
#[test]
fn ipv6_fib_and_ndp_from_the_kernel() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let peer = Netns::new("router6").unwrap();
    let gw = Netns::new("gw6").unwrap();
    netns::veth((&peer, "eth0", None), (&gw, "eth0", None)).unwrap();
    for (ns, addr) in [(&peer, "2001:db8:77::1/64"), (&gw, "2001:db8:77::2/64")] {
        ns.ip(&["-6", "addr", "add", addr, "dev", "eth0", "nodad"])
            .unwrap();
    }
    gw.ip(&[
        "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
    ])
    .unwrap();
    for (ip, mac) in [
        ("fe80::1", "02:00:00:77:06:01"),
        ("2001:db8:77::9", "02:00:00:77:06:09"),
    ] {
        gw.ip(&[
            "-6",
            "neigh",
            "replace",
            ip,
            "lladdr",
            mac,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])
        .unwrap();
    }
    let out = gw
        .run(
            env!("CARGO_BIN_EXE_fib_dump"),
            &[
                "eth0",
                "2001:db8:55::13",
                "2001:db8:77::9",
                "2001:db8:77::77",
            ],
        )
        .expect("fib_dump");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let expected = [
        // Off link: via the link-local default gateway.
        "2001:db8:55::13 -> 02:00:00:77:06:01",
        // On link, resolved.
        "2001:db8:77::9 -> 02:00:00:77:06:09",
        // On link, not in the neighbour table.
        "2001:db8:77::77 -> unresolved",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");

    let mac = peer.run("cat", &["/sys/class/net/eth0/address"]).unwrap();
    let mac = String::from_utf8_lossy(&mac.stdout).trim().to_owned();
    let after = gw
        .run(
            env!("CARGO_BIN_EXE_fib_dump"),
            &["--resolve", "2001:db8:77::1", "eth0", "2001:db8:77::1"],
        )
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&after.stdout).trim(),
        format!("2001:db8:77::1 -> {mac}")
    );
}

/// A next hop the node never talked to: asking the kernel (RTM_NEWNEIGH with NTF_USE, the
/// daemon's reaction to a `neighbor_unresolved` drop) makes it send ARP, and the neighbour
/// table then has the peer's real MAC, without any packet of ours sent to the peer.
#[test]
fn unresolved_next_hop_is_resolved_on_request() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let peer = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&peer, "eth0", Some("10.77.7.1/24")),
        (&gw, "eth0", Some("10.77.7.2/24")),
    )
    .unwrap();
    let mac = peer.run("cat", &["/sys/class/net/eth0/address"]).unwrap();
    let mac = String::from_utf8_lossy(&mac.stdout).trim().to_owned();
    let before = gw
        .run(env!("CARGO_BIN_EXE_fib_dump"), &["eth0", "10.77.7.1"])
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&before.stdout).trim(),
        "10.77.7.1 -> unresolved"
    );
    let after = gw
        .run(
            env!("CARGO_BIN_EXE_fib_dump"),
            &["--resolve", "10.77.7.1", "eth0", "10.77.7.1"],
        )
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&after.stdout).trim(),
        format!("10.77.7.1 -> {mac}")
    );
}

/// The kernel announces a neighbour change (the rtnetlink groups the daemon follows), and a
/// read after the announcement has the new MAC.
#[test]
fn neighbour_changes_are_announced() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let peer = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&peer, "eth0", Some("10.77.8.1/24")),
        (&gw, "eth0", Some("10.77.8.2/24")),
    )
    .unwrap();
    let mut watch = gw
        .command(env!("CARGO_BIN_EXE_fib_dump"))
        .args(["--watch", "eth0", "10.77.8.1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    gw.ip(&[
        "neigh",
        "replace",
        "10.77.8.1",
        "lladdr",
        "02:00:00:77:08:01",
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(watch.wait().unwrap().success());
    assert_eq!(rest, ["announced", "10.77.8.1 -> 02:00:00:77:08:01"]);
}
