//! The `bgp_speaker` test binary run inside a namespace and driven over its stdin, plus a LAN
//! (a bridge in a switch namespace) to put speakers and routers on one segment, as in the seed.

use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::netns::Netns;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborLine {
    pub address: String,
    pub state: String,
    pub accepted: Vec<String>,
    pub rejected: u64,
    pub advertised: Vec<String>,
    /// BFD session state, "-" without BFD.
    pub bfd: String,
    /// The families the established session carries.
    pub families: Vec<String>,
}

#[derive(Debug)]
pub struct SpeakerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl SpeakerProcess {
    /// Starts the speaker in `ns`; its log (debug level: every BFD state change) goes to a
    /// file that [`SpeakerProcess::log`] reads, for failure messages.
    pub fn start(ns: &Netns, args: &[&str]) -> io::Result<SpeakerProcess> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("{}-speaker-{n}.log", ns.name()));
        let mut child = ns
            .command(
                crate::workspace_bin("bgp_speaker")
                    .to_str()
                    .expect("utf-8 path"),
            )
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .env("BGP_SPEAKER_LOG", "debug")
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(SpeakerProcess {
            child,
            stdin,
            stdout,
            log,
        })
    }

    /// The last `lines` lines of the speaker's log.
    pub fn log(&self, lines: usize) -> String {
        let all = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = all.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    pub fn command(&mut self, line: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    pub fn status(&mut self) -> io::Result<Vec<NeighborLine>> {
        self.command("status")?;
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(io::Error::other("bgp_speaker exited"));
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["end"] => return Ok(out),
                ["neighbor", address, state, rest @ ..] => {
                    let field = |name: &str| {
                        rest.iter()
                            .find_map(|w| w.strip_prefix(name))
                            .unwrap_or("-")
                            .to_owned()
                    };
                    let list = |v: String| -> Vec<String> {
                        if v == "-" {
                            Vec::new()
                        } else {
                            v.split(',').map(str::to_owned).collect()
                        }
                    };
                    out.push(NeighborLine {
                        address: address.to_string(),
                        state: state.to_string(),
                        accepted: list(field("accepted=")),
                        rejected: field("rejected=").parse().unwrap_or(0),
                        advertised: list(field("advertised=")),
                        bfd: field("bfd="),
                        families: list(field("families=")),
                    });
                }
                _ => return Err(io::Error::other(format!("unexpected line {line:?}"))),
            }
        }
    }

    /// Whether the first neighbour's session is up carrying exactly `families` (as the
    /// status line names them: `ipv4-unicast`, `ipv6-unicast`).
    pub fn established_with(&mut self, families: &[&str]) -> bool {
        self.status().is_ok_and(|s| {
            s.first()
                .is_some_and(|n| n.state == "Established" && n.families == families)
        })
    }

    /// The state of the first neighbour, or "gone" when the process has exited.
    pub fn state(&mut self) -> String {
        self.status()
            .ok()
            .and_then(|s| s.first().map(|n| n.state.clone()))
            .unwrap_or_else(|| "gone".into())
    }

    /// Closes stdin: the speaker sends NOTIFICATION cease and exits.
    pub fn quit(&mut self) -> io::Result<std::process::ExitStatus> {
        drop(self.stdin.take());
        self.child.wait()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SpeakerProcess {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One L2 segment: a bridge in its own namespace, each member's `eth0` plugged into it with the
/// given address.
#[derive(Debug)]
pub struct Lan {
    pub switch: Netns,
}

impl Lan {
    pub fn new(members: &[(&Netns, &str)]) -> io::Result<Lan> {
        let switch = Netns::new("sw")?;
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        for (i, (ns, addr)) in members.iter().enumerate() {
            let port = format!("p{i}");
            crate::netns::veth((&switch, &port, None), (ns, "eth0", Some(addr)))?;
            switch.ip(&["link", "set", &port, "master", "br0"])?;
        }
        Ok(Lan { switch })
    }

    /// [`Lan::new`], each member's `eth0` with an IPv6 address too (`nodad`: usable at once,
    /// without waiting for duplicate address detection).
    pub fn dual_stack(members: &[(&Netns, &str, &str)]) -> io::Result<Lan> {
        let v4: Vec<(&Netns, &str)> = members.iter().map(|(ns, a, _)| (*ns, *a)).collect();
        let lan = Lan::new(&v4)?;
        for (ns, _, v6) in members {
            ns.ip(&["-6", "addr", "add", v6, "dev", "eth0", "nodad"])?;
        }
        Ok(lan)
    }
}
