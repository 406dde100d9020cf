//! `egressgw-watch` against a server speaking the Kubernetes list/watch protocol (chunked watch
//! events, resourceVersion, bookmarks, 410 Gone), loaded with the seed's objects, and a real
//! daemon over its real socket: adds, updates and deletes of each kind end in the right map
//! inside the daemon, also across a 410 Gone re-list.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use control::client::Client;
use control::proto::{MapEntry, Request, Response};
use serde_json::json;
use tests::daemon::{signal_and_wait, start_daemon};
use tests::fake_apiserver::FakeApiServer;
use tests::netns::{self, Netns};
use tests::routers::wait_until;

fn node(name: &str, ip: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "labels": {"node-role.kubernetes.io/master": ""}},
           "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                      "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn service(lb: &str) -> serde_json::Value {
    json!({"metadata": {"name": "egress-identity", "namespace": "demo-egress"},
           "spec": {"type": "LoadBalancer"},
           "status": {"loadBalancer": {"ingress": [{"ip": lb}]}}})
}

fn slice(pods: &[(&str, &str)]) -> serde_json::Value {
    let endpoints: Vec<_> = pods
        .iter()
        .map(|(ip, node)| json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": true}}))
        .collect();
    json!({"metadata": {"name": "egress-identity-x7k2p", "namespace": "demo-egress",
                        "labels": {"kubernetes.io/service-name": "egress-identity"}},
           "addressType": "IPv4", "endpoints": endpoints})
}

fn egress_service(host: &str) -> serde_json::Value {
    json!({"metadata": {"name": "egress-identity", "namespace": "demo-egress"},
           "spec": {"sourceIPBy": "LoadBalancerIP",
                    "nodeSelector": {"matchLabels": {"node-role.kubernetes.io/master": ""}}},
           "status": {"host": host}})
}

fn state(socket: &Path) -> (Vec<Ipv4Addr>, Vec<MapEntry>) {
    let Ok(mut c) = Client::connect(socket) else {
        return (vec![], vec![]);
    };
    let ips = match c.request(Request::EgressList) {
        Ok(Response::EgressIps { ips }) => ips,
        _ => vec![],
    };
    let entries = match c.request(Request::MapList) {
        Ok(Response::Map { entries }) => entries,
        _ => vec![],
    };
    (ips, entries)
}

fn pods_to(socket: &Path, egress: &str) -> Vec<String> {
    let (ips, entries) = state(socket);
    let egress: Ipv4Addr = egress.parse().unwrap();
    if !ips.contains(&egress) {
        return vec![];
    }
    entries
        .iter()
        .filter(|e| e.egress_ip == egress && e.comment == "demo-egress/egress-identity")
        .map(|e| e.pod.to_string())
        .collect()
}

const DAEMON: &str = r#"
[node]
ip = "10.77.9.2"
underlay_interface = "eth0"
external_interface = "eth0"

[dataplane]
queues = [0]
cores = [0]
frames_per_queue = 1024
"#;

#[test]
fn watcher_follows_the_cluster_into_the_daemon() {
    netns::sweep_stale();
    netns::available().expect("these tests need root and iproute2");
    let peer = Netns::new("podnode").unwrap();
    let gw = Netns::new("gw").unwrap();
    netns::veth(
        (&peer, "eth0", Some("10.77.9.1/24")),
        (&gw, "eth0", Some("10.77.9.2/24")),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("egw-{}-watch", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("egressgw.sock");
    let config = dir.join("egressgw.toml");
    std::fs::write(
        &config,
        format!("{DAEMON}\n[control]\nsocket = \"{}\"\n", socket.display()),
    )
    .unwrap();
    let mut daemon = start_daemon(&gw, &config);

    // The seed's objects.
    let api = FakeApiServer::start();
    for (name, ip) in [
        ("master-01-demo", "192.168.99.23"),
        ("master-02-demo", "192.168.99.24"),
        ("master-03-demo", "192.168.99.25"),
    ] {
        api.apply("Node", "ADDED", node(name, ip));
    }
    api.apply("Service", "ADDED", service("192.168.66.100"));
    api.apply(
        "EndpointSlice",
        "ADDED",
        slice(&[
            ("10.133.0.3", "master-03-demo"),
            ("10.132.0.13", "master-02-demo"),
        ]),
    );
    api.apply("EgressService", "ADDED", egress_service("master-01-demo"));

    let log = std::fs::File::create(dir.join("watch.log")).unwrap();
    let watcher: Child = Command::new(tests::workspace_bin("egressgw-watch"))
        .args(["--node", "master-01-demo", "--api-server", &api.url(), "-s"])
        .arg(&socket)
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    // Killed when the test ends, also when it fails.
    let _watcher = KillOnDrop(watcher);
    let log = || std::fs::read_to_string(dir.join("watch.log")).unwrap_or_default();

    let wait_pods = |egress: &str, want: &[&str], what: &str| {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        let ok = wait_until(Duration::from_secs(20), || {
            let mut got = pods_to(&socket, egress);
            got.sort();
            got == want
        });
        assert!(
            ok,
            "{what}: daemon holds {:?}\nwatcher log:\n{}",
            state(&socket),
            log()
        );
    };
    wait_pods(
        "192.168.66.100",
        &["10.132.0.13", "10.133.0.3"],
        "initial list",
    );

    // Update an EndpointSlice: a third pod.
    api.apply(
        "EndpointSlice",
        "MODIFIED",
        slice(&[
            ("10.133.0.3", "master-03-demo"),
            ("10.132.0.13", "master-02-demo"),
            ("10.132.0.50", "master-02-demo"),
        ]),
    );
    wait_pods(
        "192.168.66.100",
        &["10.132.0.13", "10.133.0.3", "10.132.0.50"],
        "endpoint added",
    );

    // Update the Service: a new LB IP moves every pod, and the old IP stops being served.
    api.apply("Service", "MODIFIED", service("192.168.66.101"));
    wait_pods(
        "192.168.66.101",
        &["10.132.0.13", "10.133.0.3", "10.132.0.50"],
        "LB IP changed",
    );
    // The old IP goes last, after the map moved (the watcher's safe order).
    let old_gone = wait_until(Duration::from_secs(20), || {
        !state(&socket)
            .0
            .contains(&"192.168.66.100".parse().unwrap())
    });
    assert!(old_gone, "old IP still served");

    // 410 Gone: history compacted, then a change; the watcher re-lists and still converges.
    let lists_before = api.stats()["lists"].as_u64().unwrap();
    api.compact();
    api.apply(
        "EndpointSlice",
        "MODIFIED",
        slice(&[("10.133.0.3", "master-03-demo")]),
    );
    wait_pods("192.168.66.101", &["10.133.0.3"], "after 410 Gone");
    let stats = api.stats();
    assert!(
        stats["gone"].as_u64().unwrap() >= 1,
        "no watch got 410 Gone: {stats}"
    );
    assert!(
        stats["lists"].as_u64().unwrap() > lists_before,
        "no re-list after 410: {stats}"
    );

    // The EgressService moves to another node: nothing left here.
    api.apply(
        "EgressService",
        "MODIFIED",
        egress_service("master-02-demo"),
    );
    assert!(
        wait_until(Duration::from_secs(20), || state(&socket)
            == (vec![], vec![])),
        "moved away: {:?}",
        state(&socket)
    );
    api.apply(
        "EgressService",
        "MODIFIED",
        egress_service("master-01-demo"),
    );
    wait_pods("192.168.66.101", &["10.133.0.3"], "moved back");

    // Deletes: the Node of the pod (the map stays: the pod is still an endpoint), then the
    // EgressService.
    api.apply("Node", "DELETED", node("master-03-demo", "192.168.99.25"));
    api.apply("EgressService", "DELETED", egress_service("master-01-demo"));
    assert!(
        wait_until(Duration::from_secs(20), || state(&socket)
            == (vec![], vec![])),
        "deleted: {:?}",
        state(&socket)
    );

    assert!(signal_and_wait(&mut daemon, "-TERM").success());
    let _ = std::fs::remove_dir_all(&dir);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
