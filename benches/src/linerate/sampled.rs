//! Every core's busy share from `perf`'s cpu-clock samples, for the all-CPU trials. The soak
//! (`soak.rs`) reads a core's load from its idle thread's turn rate, which this VM's host
//! moves by 10-30% of a core between calibration and trial; at 0.1 M frames a second that is
//! several microseconds a frame, more than the paths differ by. Sampling counts instead what
//! ran: each core is sampled at a fixed rate (the soak threads keep it from idling, so no
//! sample is lost to a sleeping core), and busy = the share of its samples that were neither
//! the soak nor the idle task.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Samples per second per core.
const FREQUENCY: &str = "1999";

/// A `perf record` of every core, running until [`Recording::busy_by_core`].
#[derive(Debug)]
pub struct Recording {
    child: Child,
    data: PathBuf,
}

impl Recording {
    /// Starts recording into `dir`.
    pub fn start(dir: &Path) -> io::Result<Recording> {
        let data = dir.join("all-cpu.perf.data");
        let child = Command::new("perf")
            .args([
                "record",
                "-q",
                "-e",
                "cpu-clock",
                "-a",
                "-F",
                FREQUENCY,
                "-o",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::other(format!("perf record: {e} (install linux-perf)")))?;
        Ok(Recording { child, data })
    }

    /// Stops the recording and returns each core's busy share of it, by core number.
    pub fn busy_by_core(mut self) -> io::Result<BTreeMap<usize, f64>> {
        // perf writes its file out on SIGINT.
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status()?;
        self.child.wait()?;
        let out = Command::new("perf")
            .args(["script", "-F", "comm,cpu,ip,sym,dso", "-i"])
            .arg(&self.data)
            .stderr(Stdio::null())
            .output()?;
        let _ = std::fs::remove_file(&self.data);
        if !out.status.success() {
            return Err(io::Error::other("perf script failed"));
        }
        Ok(busy_shares(&String::from_utf8_lossy(&out.stdout)))
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether a sample was an idle core rather than work: the soak threads' own loop (`soak.rs`
/// names them; in the kernel they are interrupted for softirq work, whose samples carry the
/// interrupted task's name and count as work), and the idle task halted.
fn idle(comm: &str, symbol_and_dso: &str) -> bool {
    match comm {
        "soak" => !symbol_and_dso.ends_with("([kernel.kallsyms])"),
        "swapper" => ["halt", "idle", "mwait"]
            .iter()
            .any(|i| symbol_and_dso.contains(i)),
        _ => false,
    }
}

/// Each core's share of samples that were work, from `perf script -F comm,cpu,ip,sym,dso`
/// lines ("   comm [001]  ffffffff8224215b pv_native_safe_halt ([kernel.kallsyms])").
fn busy_shares(script: &str) -> BTreeMap<usize, f64> {
    let mut counts: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for line in script.lines() {
        // The core: the first "[digits]" (a task's name may hold spaces, not that).
        let Some((comm, cpu, rest)) = line.match_indices('[').find_map(|(at, _)| {
            let (cpu, rest) = line[at + 1..].split_once(']')?;
            let cpu = cpu.parse::<usize>().ok()?;
            Some((line[..at].trim(), cpu, rest.trim()))
        }) else {
            continue;
        };
        let (all, idle_samples) = counts.entry(cpu).or_default();
        *all += 1;
        if idle(comm, rest) {
            *idle_samples += 1;
        }
    }
    counts
        .into_iter()
        .map(|(cpu, (all, idle))| (cpu, 1.0 - idle as f64 / all as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_what_was_neither_the_soak_loop_nor_the_halted_idle_task() {
        let script = "\
            soak [000]  55d0c0 benches::soak (/work/target/release/linerate)
        linerate [000]  55d0c4 tester::send (/work/target/release/linerate)
            soak [000]  ffffffff81a0 veth_xmit ([kernel.kallsyms])
     ksoftirqd/1 [001]  ffffffff81a1 __netif_receive_skb_core ([kernel.kallsyms])
            soak [001]  55d0c0 benches::soak (/work/target/release/linerate)
         swapper [001]  ffffffff8224 pv_native_safe_halt ([kernel.kallsyms])
         swapper [001]  ffffffff8225 net_rx_action ([kernel.kallsyms])
   egressgw-q0 x [001]  55e000 gateway::pipeline (/usr/bin/egressgw)
garbage
            soak [zz]  55d0c0 benches::soak (/work/target/release/linerate)
";
        let busy = busy_shares(script);
        assert_eq!(busy.len(), 2);
        // Core 0: the tester and a softirq in the soak's name are work, the soak loop not.
        assert!((busy[&0] - 2.0 / 3.0).abs() < 1e-12, "{busy:?}");
        // Core 1: ksoftirqd, the idle task's softirq and egressgw; not the loop nor the halt.
        assert!((busy[&1] - 3.0 / 5.0).abs() < 1e-12, "{busy:?}");
    }
}
