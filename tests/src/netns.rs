//! Network namespaces for end-to-end tests: each test host is a namespace the test creates,
//! named uniquely per process, deleted when the handle drops (also while a failing test
//! unwinds), and swept at the next run if a test process was killed outright.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace this harness creates starts with this, then the owning process id.
const PREFIX: &str = "egw";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that exists while this value does.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// Runs `ip` with `args`; an error carries the command and its stderr.
pub fn ip(args: &[&str]) -> io::Result<()> {
    checked(
        Command::new("ip").args(args).output(),
        &format!("ip {}", args.join(" ")),
    )
    .map(|_| ())
}

fn checked(out: io::Result<Output>, what: &str) -> io::Result<Output> {
    let out = out?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether this process may create namespaces (root with iproute2); tests that need them say
/// why they cannot run instead of passing vacuously.
pub fn available() -> Result<(), String> {
    let probe =
        Netns::new("probe").map_err(|e| format!("cannot create a network namespace: {e}"))?;
    drop(probe);
    Ok(())
}

/// Deletes namespaces left by test processes that no longer exist (killed before cleanup).
pub fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let mut parts = name.split('-');
        if parts.next() != Some(PREFIX) {
            continue;
        }
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill_all(name);
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

impl Netns {
    /// A fresh namespace `egw-<pid>-<n>-<role>` with its loopback up.
    pub fn new(role: &str) -> io::Result<Netns> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}-{}-{n}-{role}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip` inside this namespace.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that will run inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `program args` inside the namespace to completion; an error carries its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        checked(
            self.command(program).args(args).output(),
            &format!("{program} in {}", self.name),
        )
    }
}

/// Spawns `cmd` with its standard output piped and waits for its first line to be `ready`
/// (what a helper process prints once it is listening): traffic sent before then would meet a
/// closed port. Returns the child and the rest of its output.
pub fn spawn_ready(cmd: &mut Command) -> io::Result<(Child, BufReader<ChildStdout>)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other(format!(
            "{cmd:?} did not say ready: {line:?}"
        )));
    }
    Ok((child, out))
}

impl Netns {
    /// Kills every process still running inside the namespace (daemons that forked away from
    /// the test, such as FRR's).
    pub fn kill_all(&self) {
        kill_all(&self.name);
    }
}

/// Kills the processes inside namespace `name` and waits until none is left, a few seconds at
/// most.
fn kill_all(name: &str) {
    {
        for _ in 0..50 {
            let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() else {
                return;
            };
            let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if pids.is_empty() {
                return;
            }
            let _ = Command::new("kill").arg("-9").args(&pids).status();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        // Deleting the namespace also deletes the interfaces in it (and their veth peers).
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

/// A veth pair with one end in each namespace, both up, each with `addr` (CIDR) if given.
/// Created directly inside the namespaces: nothing ever appears in the root namespace.
pub fn veth(a: (&Netns, &str, Option<&str>), b: (&Netns, &str, Option<&str>)) -> io::Result<()> {
    a.0.ip(&[
        "link",
        "add",
        a.1,
        "type",
        "veth",
        "peer",
        "name",
        b.1,
        "netns",
        b.0.name(),
    ])?;
    for (ns, name, addr) in [a, b] {
        if let Some(addr) = addr {
            ns.ip(&["addr", "add", addr, "dev", name])?;
        }
        ns.ip(&["link", "set", name, "up"])?;
    }
    Ok(())
}
