//! The shipped deployment files hold together: the DaemonSet's RBAC lets the watcher list and
//! watch exactly what it reads, it gets its node's name, and it shares the daemon's socket
//! directory; the systemd unit runs the daemon with the shipped configuration and reloads it
//! with SIGHUP. (The TOML example is parsed by the daemon's own config test.)

use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Prints, for a manifest file, its kinds, every RBAC rule, every binding, and the
/// DaemonSet's command, environment, socket mount and service account when it has one.
const CHECK: &str = r#"
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
print("kinds", ",".join(d["kind"] for d in docs))
for role in (d for d in docs if d["kind"] == "ClusterRole"):
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                print("rule", group or "core", res, ",".join(sorted(rule["verbs"])))
for b in (d for d in docs if d["kind"] == "ClusterRoleBinding"):
    s = b["subjects"][0]
    print("binds", b["roleRef"]["name"], "to", s["namespace"] + "/" + s["name"])
for ds in (d for d in docs if d["kind"] == "DaemonSet"):
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    print("command", " ".join(c["command"]))
    print("env", ",".join(e["name"] + "=" + e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]))
    print("mount", c["volumeMounts"][0]["mountPath"], pod["volumes"][0]["hostPath"]["path"])
    print("sa", pod["serviceAccountName"])
"#;

/// Runs `CHECK` on the manifest `file` (under deploy/) and checks it printed every line.
fn expect_lines(file: &str, lines: &[&str]) {
    let out = Command::new("python3")
        .args(["-c", CHECK, &format!("{ROOT}/deploy/{file}")])
        .output()
        .expect("python3 with PyYAML (scripts/deps installs python3-yaml)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "{file}: {line:?} missing:\n{text}"
        );
    }
}

#[test]
fn deploy_manifests_are_consistent() {
    expect_lines(
        "egressgw-watch.yaml",
        &[
            "kinds Namespace,ServiceAccount,ClusterRole,ClusterRoleBinding,DaemonSet",
            "rule k8s.ovn.org egressservices get,list,watch",
            "rule core services get,list,watch",
            "rule core nodes get,list,watch",
            "rule discovery.k8s.io endpointslices get,list,watch",
            "command /usr/local/bin/egressgw-watch -s /run/egressgw/egressgw.sock",
            "env NODE_NAME=spec.nodeName",
            "mount /run/egressgw /run/egressgw",
            "sa egressgw-watch",
        ],
    );
    // Standalone mode's extra rights: patching exactly what the election writes, bound to the
    // watcher's service account.
    expect_lines(
        "egressgw-watch-standalone.yaml",
        &[
            "rule k8s.ovn.org egressservices/status patch",
            "rule core nodes patch",
            "binds egressgw-watch-standalone to egressgw/egressgw-watch",
        ],
    );
    let unit = std::fs::read_to_string(format!("{ROOT}/deploy/egressgw.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/egressgw --config /etc/egressgw/egressgw.toml"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(
        unit.contains("RuntimeDirectory=egressgw"),
        "the socket's directory"
    );
}
