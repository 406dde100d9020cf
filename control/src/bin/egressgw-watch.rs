//! `egressgw-watch --node NAME [-s SOCKET] [--api-server URL] [--standalone | --gateway-set]`: keeps this
//! node's egressgw in step with the cluster. It watches EgressServices (k8s.ovn.org/v1),
//! Services, EndpointSlices and Nodes (kube-rs; in-cluster or kubeconfig credentials, or a
//! plain `--api-server` URL), computes the desired map with the pure rules of
//! `control::watcher::desired`, and sends the daemon only the difference, as the same requests
//! an operator could type. kube-rs re-lists on 410 Gone and reconnects with backoff; a daemon
//! that is away is retried. With `--standalone` (no OVN-Kubernetes controller electing hosts)
//! it also writes the election back: `status.host` and this node's
//! `egress-service.k8s.ovn.org/<namespace>-<name>` label (`control::watcher::election`).
//! With `--gateway-set` (the daemon is one of a set of gateways sharing each egress IP,
//! `[ha]`) it holds every service and drains the node while it is not Ready or no
//! `nodeSelector` admits it, and puts it back into service when it is again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use control::client::Client as ControlClient;
use control::proto::{Request, Response, DEFAULT_SOCKET};
use control::watcher::desired::{desired_with, Cluster, Hosting};
use control::watcher::diff::{requests, Current};
use control::watcher::election::{write_backs, WriteBack};
use control::watcher::objects;
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Config};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One event from any of the four watches, as JSON values keyed the same way.
enum Change {
    Init(Kind),
    InitApply(Kind, serde_json::Value),
    InitDone(Kind),
    Apply(Kind, serde_json::Value),
    Delete(Kind, serde_json::Value),
    Failed(Kind, String),
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    EgressService,
    Service,
    EndpointSlice,
    Node,
}

fn watch<K>(api: Api<K>, kind: Kind) -> BoxStream<'static, Change>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |r| match r {
            Ok(Event::Init) => Change::Init(kind),
            Ok(Event::InitApply(o)) => Change::InitApply(kind, to_json(&o)),
            Ok(Event::InitDone) => Change::InitDone(kind),
            Ok(Event::Apply(o)) => Change::Apply(kind, to_json(&o)),
            Ok(Event::Delete(o)) => Change::Delete(kind, to_json(&o)),
            Err(e) => Change::Failed(kind, e.to_string()),
        })
        .boxed()
}

fn to_json<T: Serialize>(o: &T) -> serde_json::Value {
    serde_json::to_value(o).unwrap_or_default()
}

fn key(v: &serde_json::Value) -> String {
    let m = &v["metadata"];
    format!(
        "{}/{}",
        m["namespace"].as_str().unwrap_or(""),
        m["name"].as_str().unwrap_or("")
    )
}

/// The objects of one kind, as last listed and watched.
#[derive(Default)]
struct Store {
    objects: BTreeMap<String, serde_json::Value>,
    /// Filled during a (re-)list, swapped in at InitDone.
    listing: Option<BTreeMap<String, serde_json::Value>>,
    listed: bool,
}

fn parse<T: DeserializeOwned>(store: &Store, kind: Kind) -> Vec<T> {
    store
        .objects
        .values()
        .filter_map(|v| match serde_json::from_value(v.clone()) {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("egressgw-watch: skipping a {kind:?} {}: {e}", key(v));
                None
            }
        })
        .collect()
}

struct Args {
    node: String,
    socket: PathBuf,
    api_server: Option<String>,
    standalone: bool,
    hosting: Hosting,
}

fn args() -> Result<Args, String> {
    let mut node = std::env::var("NODE_NAME").ok();
    let mut socket = PathBuf::from(DEFAULT_SOCKET);
    let mut api_server = None;
    let mut standalone = false;
    let mut hosting = Hosting::StatusHost;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--node" => node = Some(value()?),
            "-s" | "--socket" => socket = PathBuf::from(value()?),
            "--api-server" => api_server = Some(value()?),
            "--standalone" => standalone = true,
            "--gateway-set" => hosting = Hosting::GatewaySet,
            "-h" | "--help" => {
                return Err(
                    "usage: egressgw-watch --node NAME [-s SOCKET] [--api-server URL] \
                     [--standalone | --gateway-set]\n\
                            (NODE_NAME in the environment also names the node)"
                        .into(),
                )
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if standalone && hosting == Hosting::GatewaySet {
        return Err("--standalone elects one host; --gateway-set serves from every member: one or the other".into());
    }
    Ok(Args {
        node: node.ok_or("--node (or NODE_NAME) is required")?,
        socket,
        api_server,
        standalone,
        hosting,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("egressgw-watch: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match &args.api_server {
        Some(url) => match url.parse() {
            Ok(uri) => Config::new(uri),
            Err(e) => {
                eprintln!("egressgw-watch: --api-server {url}: {e}");
                return ExitCode::from(2);
            }
        },
        None => match Config::infer().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("egressgw-watch: no Kubernetes credentials: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let client = match Client::try_from(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("egressgw-watch: {e}");
            return ExitCode::from(2);
        }
    };
    let egress_services = ApiResource {
        group: "k8s.ovn.org".into(),
        version: "v1".into(),
        api_version: "k8s.ovn.org/v1".into(),
        kind: "EgressService".into(),
        plural: "egressservices".into(),
    };
    let mut changes = stream::select_all(vec![
        watch::<DynamicObject>(
            Api::all_with(client.clone(), &egress_services),
            Kind::EgressService,
        ),
        watch::<Service>(Api::all(client.clone()), Kind::Service),
        watch::<EndpointSlice>(Api::all(client.clone()), Kind::EndpointSlice),
        watch::<Node>(Api::all(client.clone()), Kind::Node),
    ]);
    let cluster_writer = args.standalone.then(|| Writer {
        client,
        egress_services: egress_services.clone(),
    });
    let mut stores: BTreeMap<Kind, Store> = BTreeMap::new();
    let mut daemon = Daemon::default();
    eprintln!("egressgw-watch: watching for node {}", args.node);
    while let Some(first) = changes.next().await {
        // Take every change already waiting, then sync once.
        let mut batch = vec![first];
        while let Some(Some(c)) = changes.next().now_or_never() {
            batch.push(c);
        }
        for change in batch {
            apply(&mut stores, change);
        }
        let kinds = [
            Kind::EgressService,
            Kind::Service,
            Kind::EndpointSlice,
            Kind::Node,
        ];
        if kinds
            .iter()
            .all(|k| stores.get(k).is_some_and(|s| s.listed))
        {
            sync(&stores, &args, &mut daemon, cluster_writer.as_ref()).await;
        }
    }
    ExitCode::SUCCESS
}

fn apply(stores: &mut BTreeMap<Kind, Store>, change: Change) {
    match change {
        Change::Init(k) => stores.entry(k).or_default().listing = Some(BTreeMap::new()),
        Change::InitApply(k, v) => {
            let s = stores.entry(k).or_default();
            s.listing
                .get_or_insert_with(BTreeMap::new)
                .insert(key(&v), v);
        }
        Change::InitDone(k) => {
            let s = stores.entry(k).or_default();
            s.objects = s.listing.take().unwrap_or_default();
            s.listed = true;
        }
        Change::Apply(k, v) => {
            stores.entry(k).or_default().objects.insert(key(&v), v);
        }
        Change::Delete(k, v) => {
            stores.entry(k).or_default().objects.remove(&key(&v));
        }
        Change::Failed(k, e) => eprintln!("egressgw-watch: watching {k:?}: {e} (retrying)"),
    }
}

/// The daemon connection and what it holds, as far as we know: read back after a reconnect,
/// a refusal, or 30 s (an operator may have edited the map), assumed between.
#[derive(Default)]
struct Daemon {
    client: Option<ControlClient>,
    known: Option<(Current, std::time::Instant)>,
}

async fn sync(
    stores: &BTreeMap<Kind, Store>,
    args: &Args,
    daemon: &mut Daemon,
    writer: Option<&Writer>,
) {
    let store = |k| stores.get(&k).expect("listed");
    let cluster = Cluster {
        egress_services: parse::<objects::EgressService>(
            store(Kind::EgressService),
            Kind::EgressService,
        ),
        services: parse(store(Kind::Service), Kind::Service),
        endpoint_slices: parse(store(Kind::EndpointSlice), Kind::EndpointSlice),
        nodes: parse(store(Kind::Node), Kind::Node),
    };
    if let Some(writer) = writer {
        // The writes come back as watch events; the next sync sees them applied.
        for w in write_backs(&cluster, &args.node) {
            match writer.write(&w).await {
                Ok(()) => eprintln!("egressgw-watch: wrote {w:?}"),
                Err(e) => eprintln!("egressgw-watch: writing {w:?}: {e}"),
            }
        }
    }
    let want = desired_with(&cluster, &args.node, args.hosting);
    for w in &want.warnings {
        eprintln!("egressgw-watch: {w}");
    }
    for attempt in 0..10u32 {
        if daemon.client.is_none() {
            match ControlClient::connect(&args.socket) {
                Ok(c) => daemon.client = Some(c),
                Err(e) => {
                    eprintln!("egressgw-watch: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
                    continue;
                }
            }
        }
        match send_difference(daemon, &want) {
            Ok(n) => {
                if n > 0 {
                    eprintln!(
                        "egressgw-watch: sent {n} change(s); {} pod(s) mapped",
                        want.map.len()
                    );
                }
                return;
            }
            Err(e) => {
                eprintln!("egressgw-watch: {e}; reconnecting");
                *daemon = Daemon::default();
            }
        }
    }
}

/// Sends what differs from what the daemon holds; the number of requests sent.
fn send_difference(
    daemon: &mut Daemon,
    want: &control::watcher::desired::Desired,
) -> Result<usize, control::client::ClientError> {
    let c = daemon.client.as_mut().expect("connected");
    let fresh = daemon
        .known
        .as_ref()
        .is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(30));
    let current = match daemon.known.take() {
        Some((known, _)) if fresh => known,
        _ => {
            let served = match c.request(Request::EgressList)? {
                Response::EgressIps { egress } => egress,
                _ => Vec::new(),
            };
            let learned = match c.request(Request::ClusterList)? {
                Response::Cluster { learned, .. } => learned,
                _ => Vec::new(),
            };
            let entries = match c.request(Request::MapList)? {
                Response::Map { entries } => entries,
                _ => Vec::new(),
            };
            let mut current = Current::from_lists(served, entries, learned);
            if want.member.is_some() {
                current.draining = match c.request(Request::Ha) {
                    Ok(Response::Ha(h)) => Some(h.drain.phase != "serving"),
                    Ok(_) => None,
                    Err(control::client::ClientError::Daemon(refusal)) => {
                        eprintln!("egressgw-watch: --gateway-set, but the daemon says: {refusal}");
                        None
                    }
                    Err(other) => return Err(other),
                };
            }
            current
        }
    };
    let todo = requests(&current, want);
    let n = todo.len();
    let mut refused = false;
    for r in todo {
        match c.request(r.clone()) {
            Ok(_) => {}
            Err(control::client::ClientError::Daemon(refusal)) => {
                eprintln!("egressgw-watch: {r:?} refused: {refusal}");
                refused = true;
            }
            Err(other) => return Err(other),
        }
    }
    if !refused {
        let now_held = Current {
            served: want.served.clone(),
            map: want.map.clone(),
            nodes: want.pod_nodes.clone(),
            service_ports: want.service_ports.clone(),
            cluster_networks: want.cluster_networks.clone(),
            draining: want.member.map(|m| !m),
        };
        daemon.known = Some((now_held, std::time::Instant::now()));
    }
    Ok(n)
}

/// Writes the standalone election back to the cluster (merge patches).
struct Writer {
    client: Client,
    egress_services: ApiResource,
}

impl Writer {
    async fn write(&self, w: &WriteBack) -> Result<(), kube::Error> {
        let params = PatchParams::default();
        match w {
            WriteBack::Host {
                namespace,
                name,
                host,
            } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &self.egress_services);
                let patch = serde_json::json!({"status": {"host": host}});
                api.patch_status(name, &params, &Patch::Merge(patch))
                    .await?;
            }
            WriteBack::Label {
                node,
                label,
                present,
            } => {
                let api: Api<Node> = Api::all(self.client.clone());
                // In a merge patch, null removes the key.
                let value = if *present {
                    serde_json::json!("")
                } else {
                    serde_json::Value::Null
                };
                let patch = serde_json::json!({"metadata": {"labels": {label.as_str(): value}}});
                api.patch(node, &params, &Patch::Merge(patch)).await?;
            }
        }
        Ok(())
    }
}
