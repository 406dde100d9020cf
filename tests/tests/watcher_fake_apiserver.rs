//! `egressgw-watch` against a server speaking the Kubernetes list/watch protocol (chunked watch
//! events, resourceVersion, bookmarks, 410 Gone), loaded with the seed's objects, and a real
//! daemon over its real socket: adds, updates and deletes of each kind end in the right map
//! inside the daemon, also across a 410 Gone re-list.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use control::client::Client;
use control::proto::{MapEntry, Request, Response};
use serde_json::json;
use tests::daemon::{one_armed_sections, signal_and_wait, start_daemon};
use tests::fake_apiserver::FakeApiServer;
use tests::netns::{self, Netns};
use tests::routers::wait_until;

fn node(name: &str, ip: &str) -> serde_json::Value {
    // What OVN-Kubernetes publishes on each node: its pod subnet and its transit switch port.
    // The seed's node ids: master-01 (.23) 4, master-02 3, master-03 2.
    let id = 27 - ip.rsplit('.').next().unwrap().parse::<u8>().unwrap();
    let subnet = match id {
        4 => "10.128.0.0/23",
        3 => "10.132.0.0/23",
        _ => "10.133.0.0/23",
    };
    let subnets = json!({"default": [subnet]}).to_string();
    let transit = json!({"ipv4": format!("100.88.0.{id}/16")}).to_string();
    json!({"metadata": {"name": name, "labels": {"node-role.kubernetes.io/master": ""},
                        "annotations": {"k8s.ovn.org/node-subnets": subnets,
                                        "k8s.ovn.org/node-transit-switch-port-ifaddr": transit}},
           "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                      "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn service(lb: &str) -> serde_json::Value {
    json!({"metadata": {"name": "egress-identity", "namespace": "demo-egress"},
           "spec": {"type": "LoadBalancer",
                    "ports": [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": 8080}]},
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

fn state(socket: &Path) -> (Vec<IpAddr>, Vec<MapEntry>) {
    let Ok(mut c) = Client::connect(socket) else {
        return (vec![], vec![]);
    };
    let ips = match c.request(Request::EgressList) {
        Ok(Response::EgressIps { egress }) => egress.into_iter().map(|e| e.ip).collect(),
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
    let egress: IpAddr = egress.parse().unwrap();
    if !ips.contains(&egress) {
        return vec![];
    }
    entries
        .iter()
        .filter(|e| e.egress_ip == egress && e.comment == "demo-egress/egress-identity")
        .map(|e| e.pod.to_string())
        .collect()
}

/// A daemon in a namespace, its socket, and a scratch directory, for one test.
struct Setup {
    _peer: Netns,
    _gw: Netns,
    dir: PathBuf,
    socket: PathBuf,
}

impl Setup {
    fn new(tag: &str, subnet: u8) -> (Setup, Child) {
        Setup::with(tag, subnet, |_| String::new())
    }

    /// With more configuration (given the scratch directory).
    fn with(tag: &str, subnet: u8, extra: impl Fn(&Path) -> String) -> (Setup, Child) {
        netns::sweep_stale();
        netns::available().expect("these tests need root and iproute2");
        let peer = Netns::new("podnode").unwrap();
        let gw = Netns::new("gw").unwrap();
        netns::veth(
            (&peer, "eth0", Some(&format!("10.77.{subnet}.1/24"))),
            (&gw, "eth0", Some(&format!("10.77.{subnet}.2/24"))),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("egw-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("egressgw.sock");
        let config = dir.join("egressgw.toml");
        std::fs::write(
            &config,
            format!(
                "{}\n[control]\nsocket = \"{}\"\n{}",
                one_armed_sections(&format!("10.77.{subnet}.2"), "eth0"),
                socket.display(),
                extra(&dir)
            ),
        )
        .unwrap();
        let daemon = start_daemon(&gw, &config);
        let setup = Setup {
            _peer: peer,
            _gw: gw,
            dir,
            socket,
        };
        (setup, daemon)
    }

    /// Starts the watcher for master-01 (killed when the value drops, also when a test fails).
    fn watcher(&self, api: &FakeApiServer, extra: &[&str]) -> KillOnDrop {
        let log = std::fs::File::create(self.dir.join("watch.log")).unwrap();
        let watcher: Child = Command::new(tests::workspace_bin("egressgw-watch"))
            .args(["--node", "master-01-demo", "--api-server", &api.url(), "-s"])
            .arg(&self.socket)
            .args(extra)
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        KillOnDrop(watcher)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("watch.log")).unwrap_or_default()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The seed's objects, the EgressService hosted by `host`.
fn seed_objects(api: &FakeApiServer, host: &str) {
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
    api.apply("EgressService", "ADDED", egress_service(host));
}

#[test]
fn watcher_follows_the_cluster_into_the_daemon() {
    let (setup, mut daemon) = Setup::new("watch", 9);
    let socket = setup.socket.clone();
    let api = FakeApiServer::start();
    seed_objects(&api, "master-01-demo");
    let _watcher = setup.watcher(&api, &[]);
    let log = || setup.log();

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
    // The Service's port and the nodes' networks reached the daemon too.
    let mut c = Client::connect(&socket).unwrap();
    let Ok(Response::EgressIps { egress }) = c.request(Request::EgressList) else {
        panic!("egress list")
    };
    assert_eq!(
        egress[0].service_ports,
        vec!["8080/tcp".parse().unwrap()],
        "{egress:?}"
    );
    let Ok(Response::Cluster { learned, .. }) = c.request(Request::ClusterList) else {
        panic!("cluster list")
    };
    let learned: Vec<String> = learned.iter().map(|n| n.to_string()).collect();
    for want in ["10.132.0.0/23", "100.88.0.0/16", "192.168.99.23/32"] {
        assert!(
            learned.iter().any(|n| n == want),
            "{want} not in {learned:?}\n{}",
            log()
        );
    }

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
}

const HOST_LABEL: &str = "egress-service.k8s.ovn.org/demo-egress-egress-identity";

/// `status.host` of the EgressService and whether each node carries the host label, as the
/// API server holds them.
fn election(api: &FakeApiServer) -> (String, Vec<String>) {
    let es = api.get("/apis/k8s.ovn.org/v1/egressservices");
    let host = es["items"][0]["status"]["host"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let nodes = api.get("/api/v1/nodes");
    let mut labelled: Vec<String> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["metadata"]["labels"].get(HOST_LABEL).is_some())
        .map(|n| n["metadata"]["name"].as_str().unwrap_or("?").to_owned())
        .collect();
    labelled.sort();
    (host, labelled)
}

/// Standalone mode: no controller sets `status.host`, so the watcher elects (a node with no
/// allocations, ties by name: master-01), writes the host and its node label back to the API
/// server with merge patches, and the map follows; when master-01 stops being Ready it hands
/// the service to master-02 and drops its label, and the map empties.
#[test]
fn watcher_standalone_writes_the_election_back() {
    let (setup, mut daemon) = Setup::new("standalone", 10);
    let api = FakeApiServer::start();
    seed_objects(&api, "");
    let _watcher = setup.watcher(&api, &["--standalone"]);
    let want = (
        String::from("master-01-demo"),
        vec!["master-01-demo".to_owned()],
    );
    assert!(
        wait_until(Duration::from_secs(20), || election(&api) == want),
        "election not written: {:?}\nwatcher log:\n{}",
        election(&api),
        setup.log()
    );
    let mapped = wait_until(Duration::from_secs(20), || {
        let mut p = pods_to(&setup.socket, "192.168.66.100");
        p.sort();
        p == ["10.132.0.13", "10.133.0.3"]
    });
    assert!(mapped, "map: {:?}\n{}", state(&setup.socket), setup.log());
    assert!(api.stats()["patches"].as_u64().unwrap() >= 2);

    // master-01 goes NotReady: it hands over to master-02 and unlabels itself.
    let mut down = node("master-01-demo", "192.168.99.23");
    down["status"]["conditions"][0]["status"] = json!("False");
    down["metadata"]["labels"][HOST_LABEL] = json!("");
    api.apply("Node", "MODIFIED", down);
    let want = (String::from("master-02-demo"), vec![]);
    assert!(
        wait_until(Duration::from_secs(20), || election(&api) == want),
        "hand-over not written: {:?}\nwatcher log:\n{}",
        election(&api),
        setup.log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || state(&setup.socket)
            == (vec![], vec![])),
        "map after hand-over: {:?}",
        state(&setup.socket)
    );
    assert!(signal_and_wait(&mut daemon, "-TERM").success());
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the daemon says of its service in its gateway set: serving, withdrawn or drained.
fn drain_phase(socket: &Path) -> String {
    match Client::connect(socket).and_then(|mut c| c.request(Request::Ha)) {
        Ok(Response::Ha(h)) => h.drain.phase,
        other => format!("{other:?}"),
    }
}

/// `--gateway-set`: the daemon is one of a set of gateways ([ha]) that share the egress IP, so
/// it holds the service although `status.host` names another node, and it is drained while
/// its node is NotReady (the map kept for the flows it carries), and serves again when the
/// node is Ready.
#[test]
fn watcher_gateway_set_drains_the_node_while_it_is_not_admitted() {
    let (setup, mut daemon) = Setup::with("gwset", 11, |dir| {
        let key = dir.join("sync.key");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
        format!(
            "[ha]\nnode_id = 1\nkey_file = \"{}\"\ndrain_ms = 100\ndrain_quiet_ms = 200\n\n\
             [[ha.peers]]\nid = 2\naddress = \"10.77.11.1:4790\"\n",
            key.display()
        )
    });
    let socket = setup.socket.clone();
    let api = FakeApiServer::start();
    seed_objects(&api, "master-02-demo");
    let _watcher = setup.watcher(&api, &["--gateway-set"]);
    let mapped = || {
        let mut p = pods_to(&socket, "192.168.66.100");
        p.sort();
        p == ["10.132.0.13", "10.133.0.3"]
    };
    assert!(
        wait_until(Duration::from_secs(20), mapped),
        "a member holds the service: {:?}\n{}",
        state(&socket),
        setup.log()
    );
    assert_eq!(drain_phase(&socket), "serving");

    let mut down = node("master-01-demo", "192.168.99.23");
    down["status"]["conditions"][0]["status"] = json!("False");
    api.apply("Node", "MODIFIED", down);
    assert!(
        wait_until(Duration::from_secs(20), || drain_phase(&socket)
            == "drained"),
        "NotReady: {}\n{}",
        drain_phase(&socket),
        setup.log()
    );
    assert!(mapped(), "the map stays for the flows it carries");

    api.apply("Node", "MODIFIED", node("master-01-demo", "192.168.99.23"));
    assert!(
        wait_until(Duration::from_secs(20), || drain_phase(&socket)
            == "serving"),
        "Ready again: {}\n{}",
        drain_phase(&socket),
        setup.log()
    );
    assert!(signal_and_wait(&mut daemon, "-TERM").success());
}
