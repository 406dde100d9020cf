//! Where a trial's loss happened, beyond the tester's own sockets: counters read before and
//! after each trial and differenced. The receive backlogs of every core (frames RPS could
//! not queue, `/proc/net/softnet_stat`'s second column: kernel-wide, and only the lab's
//! traffic runs here), and the gateway's own counts: for egressgw every drop by its reason,
//! its AF_XDP sockets' kernel counters and its interfaces' receive drops (the control
//! socket's `stats`).

use control::client::Client;
use control::proto::{Request, Response};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// Named counters at one moment.
pub type Counters = BTreeMap<String, u64>;

/// Frames dropped at the receive backlog, summed over every core.
pub fn backlog_drops() -> io::Result<u64> {
    parse_softnet(&std::fs::read_to_string("/proc/net/softnet_stat")?)
}

/// The dropped column of `softnet_stat` (one line per core, hexadecimal), summed.
fn parse_softnet(text: &str) -> io::Result<u64> {
    text.lines()
        .map(|line| {
            let dropped = line.split_whitespace().nth(1).ok_or_else(|| {
                io::Error::other(format!("softnet_stat line without a drop count: {line:?}"))
            })?;
            u64::from_str_radix(dropped, 16).map_err(io::Error::other)
        })
        .sum()
}

/// egressgw's own loss counters, from its control socket: `drop:<reason>` summed over the
/// workers, `socket:<counter>` over the sockets (the receive side's: frames the kernel had
/// and the pipeline never saw), `interface:rx_dropped` over the interfaces.
pub fn egressgw(socket: &Path) -> io::Result<Counters> {
    let mut client = Client::connect(socket).map_err(io::Error::other)?;
    let Response::Stats(stats) = client.request(Request::Stats).map_err(io::Error::other)? else {
        return Err(io::Error::other(
            "the control socket answered stats with no stats",
        ));
    };
    let mut c = Counters::new();
    for w in &stats.workers {
        for (reason, n) in &w.drops {
            *c.entry(format!("drop:{reason}")).or_default() += n;
        }
        for s in &w.sockets {
            for (name, n) in &s.counters {
                if LOST_BY_SOCKET.contains(&name.as_str()) {
                    *c.entry(format!("socket:{name}")).or_default() += n;
                }
            }
        }
    }
    for i in &stats.interfaces {
        *c.entry("interface:rx_dropped".into()).or_default() += i.rx_dropped;
    }
    Ok(c)
}

/// The socket counters that are frames lost (the rest count events, as an empty fill ring).
const LOST_BY_SOCKET: [&str; 4] = [
    "rx_dropped",
    "rx_ring_full",
    "rx_invalid_descs",
    "tx_invalid_descs",
];

/// What grew from `before` to `after` (counters that shrank, as after a restart, count 0).
pub fn grown(before: &Counters, after: &Counters) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                a.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softnet_drops_are_the_second_column_summed() {
        let text = "0001e240 00000003 00000000 00000000 00000000 00000000 00000000 00000000 \
                    00000000 00000000 00000000 00000000 00000000\n\
                    00000010 0000000a 00000001 00000000 00000000 00000000 00000000 00000000 \
                    00000000 00000000 00000000 00000000 00000001\n";
        assert_eq!(parse_softnet(text).unwrap(), 13);
        assert!(parse_softnet("0001e240\n").is_err());
        assert!(parse_softnet("0001e240 zz\n").is_err());
    }

    #[test]
    fn only_what_grew_is_kept() {
        let before: Counters = [
            ("drop:no_session".into(), 5),
            ("socket:rx_ring_full".into(), 9),
        ]
        .into_iter()
        .collect();
        let after: Counters = [
            ("drop:no_session".into(), 5),
            ("socket:rx_ring_full".into(), 12),
            ("drop:ttl_exceeded".into(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            grown(&before, &after),
            vec![
                ("drop:ttl_exceeded".to_string(), 2),
                ("socket:rx_ring_full".to_string(), 3)
            ]
        );
        // A counter that went back (a restarted daemon) is no loss.
        assert!(grown(&after, &before).is_empty());
    }

    /// The backlog counter exists on this kernel and reads.
    #[test]
    fn this_kernel_has_backlog_counters() {
        backlog_drops().expect("/proc/net/softnet_stat");
    }
}
