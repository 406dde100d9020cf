//! Real BGP daemons in test namespaces: FRR 8.4 (zebra, bfdd, bgpd), BIRD 2 and GoBGP 3, each
//! with its state in a private directory removed on drop. The daemons are killed when their
//! namespace is dropped (`Netns::kill_all`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::netns::Netns;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Polls `cond` every 20 ms until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state_dir(kind: &str) -> io::Result<PathBuf> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("egw-{}-{n}-{kind}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run_checked(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Which daemons are installed; tests say so instead of passing without them.
pub fn require(binary: &str) -> Result<(), String> {
    if Path::new(binary).exists() {
        Ok(())
    } else {
        Err(format!("{binary} missing: run scripts/deps"))
    }
}

#[derive(Debug)]
pub struct Frr {
    dir: PathBuf,
}

impl Frr {
    pub const BGPD: &'static str = "/usr/lib/frr/bgpd";

    /// Starts zebra, then bfdd when `bfd`, then bgpd with `bgpd_conf`, inside `ns`.
    pub fn start(ns: &Netns, bgpd_conf: &str, bfd: bool) -> io::Result<Frr> {
        let dir = state_dir("frr")?;
        fs::write(dir.join("zebra.conf"), "")?;
        fs::write(dir.join("bfdd.conf"), "")?;
        fs::write(dir.join("bgpd.conf"), bgpd_conf)?;
        run_checked(Command::new("chown").args(["-R", "frr:frr"]).arg(&dir))?;
        let d = dir.display().to_string();
        let common = |daemon: &str| {
            let mut c = ns.command(&format!("/usr/lib/frr/{daemon}"));
            c.args([
                "-d",
                "-P",
                "0",
                "--vty_socket",
                &d,
                "-z",
                &format!("{d}/zserv.api"),
            ]);
            c.args([
                "-f",
                &format!("{d}/{daemon}.conf"),
                "-i",
                &format!("{d}/{daemon}.pid"),
            ]);
            c
        };
        run_checked(&mut common("zebra"))?;
        if !wait_until(Duration::from_secs(10), || dir.join("zserv.api").exists()) {
            return Err(io::Error::other("zebra did not create its zserv socket"));
        }
        if bfd {
            run_checked(common("bfdd").args(["--bfdctl", &format!("{d}/bfdd.sock")]))?;
        }
        run_checked(&mut common("bgpd"))?;
        let frr = Frr { dir };
        if !wait_until(Duration::from_secs(10), || {
            frr.vtysh(&["show bgp summary"]).is_ok()
        }) {
            return Err(io::Error::other("bgpd did not answer vtysh"));
        }
        Ok(frr)
    }

    pub fn vtysh(&self, commands: &[&str]) -> io::Result<String> {
        let mut c = Command::new("vtysh");
        c.arg("--vty_socket").arg(&self.dir);
        for cmd in commands {
            c.args(["-c", cmd]);
        }
        run_checked(&mut c)
    }

    /// `show ip route bgp` lines for `prefix` (empty when FRR has no BGP route to it).
    pub fn bgp_routes_to(&self, prefix: &str) -> String {
        let out = self.vtysh(&["show ip route bgp"]).unwrap_or_default();
        out.lines()
            .skip_while(|l| !l.contains(prefix))
            .take_while(|l| l.contains(prefix) || l.trim_start().starts_with('*'))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
pub struct Bird {
    dir: PathBuf,
}

impl Bird {
    pub const BINARY: &'static str = "/usr/sbin/bird";

    pub fn start(ns: &Netns, config: &str) -> io::Result<Bird> {
        let dir = state_dir("bird")?;
        let conf = dir.join("bird.conf");
        fs::write(&conf, config)?;
        let ctl = dir.join("bird.ctl");
        run_checked(
            ns.command(Self::BINARY)
                .arg("-c")
                .arg(&conf)
                .arg("-s")
                .arg(&ctl)
                .arg("-P")
                .arg(dir.join("bird.pid")),
        )?;
        let bird = Bird { dir };
        if !wait_until(Duration::from_secs(10), || {
            bird.birdc("show status").is_ok()
        }) {
            return Err(io::Error::other("bird did not answer birdc"));
        }
        Ok(bird)
    }

    pub fn birdc(&self, command: &str) -> io::Result<String> {
        run_checked(
            Command::new("birdc")
                .arg("-s")
                .arg(self.dir.join("bird.ctl"))
                .args(command.split_whitespace()),
        )
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A GoBGP configuration with one neighbour (iBGP when `peer_as` is 64512), hold time 9 s
/// and keepalive 3 s, the timers every interop test uses; `connect_retry` seconds if given
/// (GoBGP's default is 120).
pub fn gobgp_config(
    router_id: &str,
    neighbor: &str,
    peer_as: u32,
    connect_retry: Option<u32>,
) -> String {
    let retry = connect_retry.map_or(String::new(), |s| format!("    connect-retry = {s}\n"));
    format!(
        r#"
[global.config]
  as = 64512
  router-id = "{router_id}"
  local-address-list = ["{router_id}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{neighbor}"
    peer-as = {peer_as}
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
{retry}"#
    )
}

#[derive(Debug)]
pub struct Gobgp {
    dir: PathBuf,
}

impl Gobgp {
    pub const BINARY: &'static str = "/usr/bin/gobgpd";

    pub fn start(ns: &Netns, config_toml: &str) -> io::Result<Gobgp> {
        let dir = state_dir("gobgp")?;
        let conf = dir.join("gobgpd.toml");
        fs::write(&conf, config_toml)?;
        let api = format!("unix://{}", dir.join("gobgpd.sock").display());
        ns.command(Self::BINARY)
            .arg("-f")
            .arg(&conf)
            .args(["-p", "--api-hosts", &api, "-l", "warn"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let gobgp = Gobgp { dir };
        if !wait_until(Duration::from_secs(10), || gobgp.cli(&["global"]).is_ok()) {
            return Err(io::Error::other("gobgpd did not answer"));
        }
        Ok(gobgp)
    }

    pub fn cli(&self, args: &[&str]) -> io::Result<String> {
        let target = format!("unix://{}", self.dir.join("gobgpd.sock").display());
        run_checked(Command::new("gobgp").args(["--target", &target]).args(args))
    }
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
