use std::net::IpAddr;

use super::desired::{desired, desired_with, elect_host, host_label, Cluster, Hosting};
use super::diff::{requests, Current};
use super::election::{write_backs, WriteBack};
use super::objects::*;
use crate::proto::{EgressIp, MapEntry, Request};

/// Nothing to serve or map (the cluster's networks are known all the same).
fn serves_nothing(d: &super::desired::Desired) -> bool {
    d.served.is_empty() && d.map.is_empty() && d.pod_nodes.is_empty() && d.service_ports.is_empty()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: name.into(),
        namespace: ns.into(),
        ..ObjectMeta::default()
    }
}

fn node(name: &str, addr: &str, ready: bool) -> Node {
    let mut m = meta("", name);
    m.labels
        .insert("node-role.kubernetes.io/master".into(), String::new());
    Node {
        metadata: m,
        status: NodeStatus {
            addresses: vec![NodeAddress {
                kind: "InternalIP".into(),
                address: addr.into(),
            }],
            conditions: vec![NodeCondition {
                kind: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
            }],
        },
    }
}

fn slice(name: &str, service: &str, kind: &str, endpoints: &[(&str, &str, bool)]) -> EndpointSlice {
    let mut m = meta("demo-egress", name);
    m.labels
        .insert("kubernetes.io/service-name".into(), service.into());
    EndpointSlice {
        metadata: m,
        address_type: kind.into(),
        endpoints: endpoints
            .iter()
            .map(|(addr, node, ready)| Endpoint {
                addresses: vec![addr.to_string()],
                node_name: Some(node.to_string()),
                conditions: EndpointConditions {
                    ready: Some(*ready),
                },
            })
            .collect(),
    }
}

/// The seed: EgressService demo-egress/egress-identity (as the API server sends it), its
/// Service with LB 192.168.66.100, the two requester pods, nodes master-01..03.
fn seed() -> Cluster {
    let es: EgressService = serde_json::from_str(
        r#"{"apiVersion":"k8s.ovn.org/v1","kind":"EgressService",
            "metadata":{"name":"egress-identity","namespace":"demo-egress","resourceVersion":"185799"},
            "spec":{"nodeSelector":{"matchLabels":{"node-role.kubernetes.io/master":""}},
                    "sourceIPBy":"LoadBalancerIP"},
            "status":{"host":"master-01-demo"}}"#,
    )
    .unwrap();
    let svc: Service = serde_json::from_str(
        r#"{"metadata":{"name":"egress-identity","namespace":"demo-egress"},
            "spec":{"type":"LoadBalancer","selector":{"app":"requester"},
                    "ports":[{"name":"http","protocol":"TCP","port":8080,"targetPort":8080}]},
            "status":{"loadBalancer":{"ingress":[{"ip":"192.168.66.100","ipMode":"VIP"}]}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Cluster {
        egress_services: vec![es],
        services: vec![svc],
        endpoint_slices: vec![slice(
            "egress-identity-abcde",
            "egress-identity",
            "IPv4",
            &[
                ("10.133.0.3", "master-03-demo", true),
                ("10.132.0.13", "master-02-demo", true),
            ],
        )],
        nodes: vec![
            node("master-01-demo", "192.168.99.23", true),
            node("master-02-demo", "192.168.99.24", true),
            node("master-03-demo", "192.168.99.25", true),
        ],
    }
}

const COMMENT: &str = "demo-egress/egress-identity";

#[test]
fn the_seed_maps_both_pods_on_the_host_node_only() {
    let d = desired(&seed(), "master-01-demo");
    assert_eq!(d.served, [ip("192.168.66.100")].into_iter().collect());
    assert_eq!(
        d.map.get(&ip("10.133.0.3")),
        Some(&(ip("192.168.66.100"), COMMENT.to_owned()))
    );
    assert_eq!(
        d.map.get(&ip("10.132.0.13")),
        Some(&(ip("192.168.66.100"), COMMENT.to_owned()))
    );
    assert_eq!(
        d.pod_nodes.get(&ip("10.133.0.3")),
        Some(&ip("192.168.99.25"))
    );
    assert!(d.warnings.is_empty());
    assert!(
        serves_nothing(&desired(&seed(), "master-02-demo")),
        "not the host"
    );
}

#[test]
fn source_ip_by() {
    let mut c = seed();
    c.egress_services[0].spec.source_ip_by = None;
    assert_eq!(
        desired(&c, "master-01-demo").map.len(),
        2,
        "unset means LoadBalancerIP"
    );
    c.egress_services[0].spec.source_ip_by = Some("Network".into());
    assert!(
        serves_nothing(&desired(&c, "master-01-demo")),
        "Network: no SNAT"
    );
}

#[test]
fn load_balancer_ip_rules() {
    let mut c = seed();
    c.services[0].status.load_balancer.ingress = vec![];
    assert!(
        serves_nothing(&desired(&c, "master-01-demo")),
        "no LB IP, nothing"
    );
    c.services[0].status.load_balancer.ingress = vec![
        LoadBalancerIngress {
            ip: Some("192.168.66.7".into()),
            hostname: None,
        },
        LoadBalancerIngress {
            ip: None,
            hostname: Some("lb.example".into()),
        },
        LoadBalancerIngress {
            ip: Some("192.168.66.9".into()),
            hostname: None,
        },
        LoadBalancerIngress {
            ip: Some("fd00::9".into()),
            hostname: None,
        },
    ];
    let d = desired(&c, "master-01-demo");
    assert_eq!(
        d.served,
        [ip("192.168.66.9")].into_iter().collect(),
        "the last IPv4 ingress IP"
    );
}

/// The seed made dual-stack: nodes and pods with both families, the Service with an IPv4 and
/// two IPv6 ingress IPs.
fn dual_stack() -> Cluster {
    let mut c = seed();
    c.services[0].status.load_balancer.ingress =
        ["2001:db8:66::7", "192.168.66.100", "2001:db8:66::100"]
            .iter()
            .map(|a| LoadBalancerIngress {
                ip: Some(a.to_string()),
                hostname: None,
            })
            .collect();
    for (n, v6) in c
        .nodes
        .iter_mut()
        .zip(["fd00:99::23", "fd00:99::24", "fd00:99::25"])
    {
        n.status.addresses.push(NodeAddress {
            kind: "InternalIP".into(),
            address: v6.into(),
        });
    }
    c.endpoint_slices.push(slice(
        "egress-identity-v6",
        "egress-identity",
        "IPv6",
        &[
            ("fd00:10:133::3", "master-03-demo", true),
            ("fd00:10:132::d", "master-02-demo", false),
            ("fd00:99::24", "master-02-demo", true), // host network: the node's IPv6 address
            ("10.132.0.99", "master-02-demo", true), // not IPv6: not this slice's
        ],
    ));
    c
}

#[test]
fn dual_stack_maps_each_family_to_its_own_lb_ip() {
    let d = desired(&dual_stack(), "master-01-demo");
    assert_eq!(
        d.served,
        [ip("192.168.66.100"), ip("2001:db8:66::100")]
            .into_iter()
            .collect(),
        "the last ingress IP of each family"
    );
    let v6: Vec<(IpAddr, IpAddr)> = d
        .map
        .iter()
        .filter(|(p, _)| p.is_ipv6())
        .map(|(p, (e, _))| (*p, *e))
        .collect();
    assert_eq!(
        v6,
        vec![
            (ip("fd00:10:132::d"), ip("2001:db8:66::100")),
            (ip("fd00:10:133::3"), ip("2001:db8:66::100")),
        ]
    );
    assert_eq!(
        d.map.get(&ip("10.133.0.3")).map(|m| m.0),
        Some(ip("192.168.66.100"))
    );
    // The tunnel of an IPv6 pod starts at its node's IPv4 address (the underlay's).
    assert_eq!(
        d.pod_nodes.get(&ip("fd00:10:133::3")),
        Some(&ip("192.168.99.25"))
    );
    // Geneve to a node's IPv6 address is east-west too.
    assert!(d
        .cluster_networks
        .contains(&"fd00:99::24/128".parse().unwrap()));
    // The Service's ports belong to the node on both LB IPs.
    assert_eq!(
        d.service_ports[&ip("2001:db8:66::100")],
        d.service_ports[&ip("192.168.66.100")]
    );
    // Without an IPv6 ingress IP the IPv6 pods map to nothing; the IPv4 side is untouched.
    let mut c = dual_stack();
    c.services[0].status.load_balancer.ingress.retain(|i| {
        i.ip.as_deref()
            .is_some_and(|a| a.parse::<IpAddr>().is_ok_and(|a| a.is_ipv4()))
    });
    let d4 = desired(&c, "master-01-demo");
    assert_eq!(d4.served, [ip("192.168.66.100")].into_iter().collect());
    assert!(d4.map.keys().all(IpAddr::is_ipv4));
    assert_eq!(d4.map.len(), 2);
    // And the difference from an IPv4-only daemon serves the IPv6 LB IP, then maps its pods.
    let r = requests(&super::diff::Current::default(), &d);
    assert!(r.contains(&Request::EgressAdd {
        ip: ip("2001:db8:66::100"),
        service_ports: vec!["8080/tcp".parse().unwrap()],
    }));
    assert!(matches!(r.last(), Some(Request::MapUpdate { set, .. })
        if set.iter().filter(|e| e.pod.is_ipv6() && e.egress_ip.is_ipv6()).count() == 2));
}

#[test]
fn endpoint_rules() {
    let mut c = seed();
    c.endpoint_slices = vec![];
    assert!(
        serves_nothing(&desired(&c, "master-01-demo")),
        "no endpoints, nothing"
    );

    let mut c = seed();
    c.endpoint_slices.push(slice(
        "more",
        "egress-identity",
        "IPv4",
        &[
            ("10.132.0.50", "master-02-demo", false), // not ready: still mapped
            ("192.168.99.24", "master-02-demo", true), // host network: a node IP, excluded
        ],
    ));
    // IPv6 endpoints with no IPv6 ingress IP: nothing for them (the v6 map gets an entry only
    // when the Service has an IPv6 LB IP).
    c.endpoint_slices.push(slice(
        "v6",
        "egress-identity",
        "IPv6",
        &[("fd00::1", "master-02-demo", true)],
    ));
    c.endpoint_slices.push(slice(
        "fqdn",
        "egress-identity",
        "FQDN",
        &[("10.9.9.9", "master-02-demo", true)],
    ));
    c.endpoint_slices.push(slice(
        "other",
        "other-service",
        "IPv4",
        &[("10.9.9.8", "master-02-demo", true)],
    ));
    let d = desired(&c, "master-01-demo");
    let pods: Vec<IpAddr> = d.map.keys().copied().collect();
    assert_eq!(
        pods,
        vec![ip("10.132.0.13"), ip("10.132.0.50"), ip("10.133.0.3")]
    );
}

#[test]
fn a_pod_in_two_services_keeps_the_first_and_says_so() {
    let mut c = seed();
    let mut es2 = c.egress_services[0].clone();
    es2.metadata.name = "another".into();
    c.egress_services.push(es2);
    let mut svc2 = c.services[0].clone();
    svc2.metadata.name = "another".into();
    svc2.status.load_balancer.ingress[0].ip = Some("192.168.66.101".into());
    c.services.push(svc2);
    c.endpoint_slices.push(slice(
        "another-x",
        "another",
        "IPv4",
        &[("10.133.0.3", "master-03-demo", true)],
    ));
    let d = desired(&c, "master-01-demo");
    assert_eq!(
        d.map[&ip("10.133.0.3")].1,
        "demo-egress/another",
        "sorted by namespace/name"
    );
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
}

#[test]
fn standalone_election() {
    let mut c = seed();
    c.egress_services[0].status.host = String::new();
    assert_eq!(
        elect_host(&c, &c.egress_services[0]).as_deref(),
        Some("master-01-demo"),
        "ties by name"
    );
    // Another service already on master-01: the least loaded node wins.
    let mut busy = c.egress_services[0].clone();
    busy.metadata.name = "busy".into();
    busy.status.host = "master-01-demo".into();
    c.egress_services.push(busy);
    assert_eq!(
        elect_host(&c, &c.egress_services[0]).as_deref(),
        Some("master-02-demo")
    );
    // Not Ready and not matching the selector are out; a current eligible host is kept.
    c.nodes[1] = node("master-02-demo", "192.168.99.24", false);
    c.nodes[2].metadata.labels.clear();
    assert_eq!(
        elect_host(&c, &c.egress_services[0]).as_deref(),
        Some("master-01-demo")
    );
    c.egress_services[0].status.host = "master-01-demo".into();
    assert_eq!(
        elect_host(&c, &c.egress_services[0]).as_deref(),
        Some("master-01-demo")
    );
    c.nodes[0] = node("master-01-demo", "192.168.99.23", false);
    assert_eq!(
        elect_host(&c, &c.egress_services[0]),
        None,
        "no eligible node"
    );
    assert_eq!(
        host_label(&c.egress_services[0]),
        "egress-service.k8s.ovn.org/demo-egress-egress-identity"
    );
}

fn host(h: &str) -> WriteBack {
    WriteBack::Host {
        namespace: "demo-egress".into(),
        name: "egress-identity".into(),
        host: h.into(),
    }
}

fn label(node: &str, present: bool) -> WriteBack {
    WriteBack::Label {
        node: node.into(),
        label: "egress-service.k8s.ovn.org/demo-egress-egress-identity".into(),
        present,
    }
}

#[test]
fn standalone_write_backs_each_node_writes_its_own() {
    let mut c = seed();
    c.egress_services[0].status.host = String::new();
    // The winner claims the service and labels itself; the others write nothing.
    assert_eq!(
        write_backs(&c, "master-01-demo"),
        vec![host("master-01-demo"), label("master-01-demo", true)]
    );
    assert_eq!(write_backs(&c, "master-02-demo"), vec![]);
    // Claimed and labelled: nothing more to write (the writes converge).
    c.egress_services[0].status.host = "master-01-demo".into();
    let l = "egress-service.k8s.ovn.org/demo-egress-egress-identity".to_string();
    c.nodes[0].metadata.labels.insert(l.clone(), String::new());
    assert_eq!(write_backs(&c, "master-01-demo"), vec![]);
    // The host goes NotReady: it hands over to the new winner and drops its label; the winner
    // (seeing the old host still written) claims it too, the same value.
    c.nodes[0] = node("master-01-demo", "192.168.99.23", false);
    c.nodes[0].metadata.labels.insert(l.clone(), String::new());
    assert_eq!(
        write_backs(&c, "master-01-demo"),
        vec![host("master-02-demo"), label("master-01-demo", false)]
    );
    assert_eq!(
        write_backs(&c, "master-02-demo"),
        vec![host("master-02-demo"), label("master-02-demo", true)]
    );
    // No node eligible: the host clears it rather than leave itself written.
    for n in &mut c.nodes {
        n.metadata.labels.remove("node-role.kubernetes.io/master");
    }
    assert_eq!(
        write_backs(&c, "master-01-demo"),
        vec![host(""), label("master-01-demo", false)]
    );
    // A label for a service that no longer exists goes.
    c.egress_services.clear();
    assert_eq!(
        write_backs(&c, "master-01-demo"),
        vec![label("master-01-demo", false)]
    );
}

#[test]
fn only_the_difference_in_a_safe_order() {
    let d = desired(&seed(), "master-01-demo");
    let from_empty = requests(&Current::default(), &d);
    assert_eq!(
        from_empty[0],
        Request::ClusterSet {
            networks: d.cluster_networks.iter().copied().collect()
        }
    );
    assert_eq!(
        from_empty[1],
        Request::EgressAdd {
            ip: ip("192.168.66.100"),
            service_ports: vec!["8080/tcp".parse().unwrap()],
        }
    );
    assert_eq!(from_empty.len(), 3);
    assert!(
        matches!(&from_empty[2], Request::MapUpdate { set, delete } if set.len() == 2 && delete.is_empty())
    );

    let current = Current::from_lists(
        vec![EgressIp {
            ip: ip("192.168.66.100"),
            service_ports: vec!["8080/tcp".parse().unwrap()],
        }],
        d.map
            .iter()
            .map(|(p, (e, c))| MapEntry {
                pod: *p,
                egress_ip: *e,
                comment: c.clone(),
                node: d.pod_nodes.get(p).copied(),
            })
            .collect(),
        d.cluster_networks.iter().copied().collect(),
    );
    assert!(
        requests(&current, &d).is_empty(),
        "in step: nothing to send"
    );
    // The diff also carries each pod's node, and a changed node is a change.
    assert!(matches!(&from_empty[2], Request::MapUpdate { set, .. }
        if set.iter().any(|e| e.pod == ip("10.133.0.3") && e.node == Some(ip("192.168.99.25")))));
    let mut moved = d.clone();
    moved
        .pod_nodes
        .insert(ip("10.133.0.3"), ip("192.168.99.24"));
    assert!(
        matches!(&requests(&current, &moved)[..], [Request::MapUpdate { set, delete }]
        if set.len() == 1 && delete.is_empty())
    );

    // The service moved away from this node: delete the mappings, then stop serving.
    let gone = desired(&seed(), "master-02-demo");
    let r = requests(&current, &gone);
    assert_eq!(r.len(), 2);
    assert!(
        matches!(&r[0], Request::MapUpdate { set, delete } if set.is_empty() && delete.len() == 2)
    );
    assert_eq!(
        r[1],
        Request::EgressRemove {
            ip: ip("192.168.66.100")
        }
    );
}

#[test]
fn service_ports_and_cluster_networks_come_from_the_cluster() {
    let mut c = seed();
    // What OVN-Kubernetes publishes on master-01 (the seed's transit IP, its pod subnet).
    let annotations = &mut c.nodes[0].metadata.annotations;
    annotations.insert(
        "k8s.ovn.org/node-subnets".into(),
        r#"{"default":["10.128.0.0/23","fd00:10:128:1::/64"]}"#.into(),
    );
    annotations.insert(
        "k8s.ovn.org/node-transit-switch-port-ifaddr".into(),
        r#"{"ipv4":"100.88.0.4/16","ipv6":"fd97::4/64"}"#.into(),
    );
    annotations.insert(
        "k8s.ovn.org/node-gateway-router-lrp-ifaddr".into(),
        r#"{"ipv4":"100.64.0.4/16"}"#.into(),
    );
    annotations.insert(
        "k8s.ovn.org/node-masquerade-subnet".into(),
        r#"{"ipv4":"169.254.0.0/17","ipv6":"fd69::/112"}"#.into(),
    );
    // An older release's form, and garbage, on master-02.
    c.nodes[1].metadata.annotations.insert(
        "k8s.ovn.org/node-subnets".into(),
        r#"{"default":"10.132.0.0/23"}"#.into(),
    );
    c.nodes[1].metadata.annotations.insert(
        "k8s.ovn.org/node-transit-switch-port-ifaddr".into(),
        "not json".into(),
    );
    // UDP and SCTP ports on the Service.
    c.services[0].spec.ports.push(ServicePortSpec {
        protocol: Some("UDP".into()),
        port: 53,
    });
    c.services[0].spec.ports.push(ServicePortSpec {
        protocol: Some("SCTP".into()),
        port: 9,
    });
    let d = desired(&c, "master-01-demo");
    let nets: Vec<String> = d.cluster_networks.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        [
            "10.128.0.0/23",
            "10.132.0.0/23",
            "100.64.0.0/16",
            "100.88.0.0/16",
            "169.254.0.0/17",
            "192.168.99.23/32",
            "192.168.99.24/32",
            "192.168.99.25/32",
            "fd00:10:128:1::/64",
            "fd69::/112",
            "fd97::/64",
        ]
    );
    let ports: Vec<String> = d.service_ports[&ip("192.168.66.100")]
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(ports, ["8080/tcp", "53/udp"]);
    assert!(
        d.warnings.iter().any(|w| w.contains("9/SCTP")),
        "{:?}",
        d.warnings
    );
    // A changed port set is sent again; the same set is not.
    let current = Current::from_lists(
        vec![EgressIp {
            ip: ip("192.168.66.100"),
            service_ports: vec!["8080/tcp".parse().unwrap()],
        }],
        Vec::new(),
        d.cluster_networks.iter().copied().collect(),
    );
    let r = requests(&current, &d);
    assert!(
        matches!(&r[0], Request::EgressAdd { service_ports, .. } if service_ports.len() == 2),
        "{r:?}"
    );
    assert!(!r.iter().any(|x| matches!(x, Request::ClusterSet { .. })));
}

/// In a gateway set every member holds the service whoever `status.host` names, and serves
/// while it is Ready and admitted by the `nodeSelector`; the watcher drains it first thing
/// when it is not, and puts it back into service last, once the map is in place.
#[test]
fn a_gateway_set_member_holds_every_service_and_drains_when_not_admitted() {
    let c = seed();
    let set = |c: &Cluster, n: &str| desired_with(c, n, Hosting::GatewaySet);
    // master-02 is not status.host, yet holds the service in a gateway set.
    let d = set(&c, "master-02-demo");
    assert_eq!(d.member, Some(true));
    assert_eq!(d.map.len(), 2);
    assert_eq!(d.served, [ip("192.168.66.100")].into_iter().collect());
    assert!(serves_nothing(&desired(&c, "master-02-demo")));
    assert_eq!(desired(&c, "master-02-demo").member, None);
    // NotReady: drained, the map kept for the flows it still carries.
    let mut not_ready = c.clone();
    not_ready.nodes[1] = node("master-02-demo", "192.168.99.24", false);
    let d = set(&not_ready, "master-02-demo");
    assert_eq!((d.member, d.map.len()), (Some(false), 2));
    // No longer matching the selector: drained too.
    let mut unlabelled = c.clone();
    unlabelled.nodes[1].metadata.labels.clear();
    assert_eq!(set(&unlabelled, "master-02-demo").member, Some(false));
    // A service by network (no SNAT here) admits no one.
    let mut by_network = c.clone();
    by_network.egress_services[0].spec.source_ip_by = Some("Network".into());
    assert_eq!(set(&by_network, "master-02-demo").member, Some(false));
    // An unknown node is no member.
    assert_eq!(set(&c, "elsewhere").member, Some(false));

    // The requests: a drain goes first, before any other change.
    let mut current = Current {
        draining: Some(false),
        ..Current::default()
    };
    let mut want = set(&not_ready, "master-02-demo");
    want.cluster_networks.clear();
    let r = requests(&current, &want);
    assert_eq!(r.first(), Some(&Request::HaDrain { drain: true }), "{r:?}");
    assert!(matches!(r.last(), Some(Request::MapUpdate { .. })), "{r:?}");
    // Drained already: nothing more to say about it.
    current.draining = Some(true);
    assert!(!requests(&current, &want).contains(&Request::HaDrain { drain: true }));
    // Admitted again: back into service after the map.
    let mut want = set(&c, "master-02-demo");
    want.cluster_networks.clear();
    let r = requests(&current, &want);
    assert!(
        matches!(r.first(), Some(Request::EgressAdd { .. })),
        "{r:?}"
    );
    assert_eq!(r.last(), Some(&Request::HaDrain { drain: false }), "{r:?}");
    current.draining = Some(false);
    assert!(!requests(&current, &want)
        .iter()
        .any(|r| matches!(r, Request::HaDrain { .. })));
}

#[test]
fn on_a_single_stack_ipv6_node_a_pods_tunnel_starts_at_the_nodes_ipv6_address() {
    let mut c = dual_stack();
    for n in &mut c.nodes {
        n.status.addresses.retain(|a| !a.address.contains('.'));
    }
    let d = desired(&c, "master-01-demo");
    assert_eq!(
        d.pod_nodes.get(&ip("fd00:10:133::3")),
        Some(&ip("fd00:99::25"))
    );
    // Where the node has both, the IPv4 address is the tunnel's, whatever the order.
    let mut c = dual_stack();
    for n in &mut c.nodes {
        n.status.addresses.reverse();
    }
    let d = desired(&c, "master-01-demo");
    assert_eq!(
        d.pod_nodes.get(&ip("fd00:10:133::3")),
        Some(&ip("192.168.99.25"))
    );
}
