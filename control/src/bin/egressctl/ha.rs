use std::time::{Duration, Instant};

use control::client::{Client, ClientError};
use control::proto::{Request, Response};

use crate::Printed;

#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    /// Ask for the drain and return at once.
    #[arg(long)]
    pub no_wait: bool,
    /// Wait at most this many seconds for the drain to end (exit 1 past it).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// `egressctl drain`: asks for it, then follows it until the node is drained.
pub fn drain(c: &mut Client, a: &DrainArgs) -> Result<Printed, ClientError> {
    let mut r = c.request(Request::HaDrain { drain: true })?;
    let until = Instant::now() + Duration::from_secs(a.timeout);
    let started = Instant::now();
    while !a.no_wait && Instant::now() < until {
        match &r {
            Response::Ha(h) if h.drain.phase == "drained" => break,
            Response::Ha(_) => {}
            _ => break,
        }
        std::thread::sleep(Duration::from_millis(100));
        r = c.request(Request::Ha)?;
    }
    let drained = matches!(&r, Response::Ha(h) if h.drain.phase == "drained");
    let mut text = if drained && !a.no_wait {
        format!("drained after {:.1} s\n", started.elapsed().as_secs_f64())
    } else if !a.no_wait {
        format!("not drained within {} s\n", a.timeout)
    } else {
        String::new()
    };
    text.push_str(&render(&r).text);
    Ok(Printed {
        text,
        ok: a.no_wait || drained,
    })
}

/// `egressctl ha`: the gateway set as this node sees it; exits 1 while not in sync.
pub fn render(r: &Response) -> Printed {
    let Response::Ha(h) = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let mut text = format!(
        "node {} (epoch {}): {}; owns {} port blocks (ownership {})\n",
        h.node_id,
        h.epoch,
        if h.in_sync {
            "in sync"
        } else {
            "not in sync (holds not yet every live peer's sessions; not announcing)"
        },
        h.blocks,
        h.blocks_epoch
    );
    let d = &h.drain;
    let ago = |ms: Option<u64>| ms.map_or("-".to_owned(), |ms| format!("{ms} ms ago"));
    match d.phase.as_str() {
        "withdrawn" => text.push_str(&format!(
            "draining: routes withdrawn {}, blocks kept while the pods move (last egress packet {})\n",
            ago(d.since_ms),
            ago(d.last_egress_ms_ago)
        )),
        "drained" => text.push_str(&format!(
            "drained: blocks handed to the serving members ({}; drain asked {})\n",
            d.ended.as_deref().unwrap_or("-"),
            ago(d.since_ms)
        )),
        _ => text.push_str("serving\n"),
    }
    text.push_str(&format!(
        "{:<6} {:<22} {:<6} {:<8} {:<7} {:<5} {:>6} {:>12} {:>15} {:>9}\n",
        "PEER",
        "ADDRESS",
        "ALIVE",
        "SERVING",
        "SYNCED",
        "BULK",
        "BLOCKS",
        "OUTSTANDING",
        "OLDEST-UNACKED",
        "HEARD"
    ));
    let yes = |b: bool| if b { "yes" } else { "no" };
    for p in &h.peers {
        text.push_str(&format!(
            "{:<6} {:<22} {:<6} {:<8} {:<7} {:<5} {:>6} {:>12} {:>15} {:>9}\n",
            p.id,
            p.address.to_string(),
            yes(p.alive),
            if p.draining { "drained" } else { yes(p.alive) },
            yes(p.synced_from),
            yes(p.bulk_to),
            p.blocks,
            p.outstanding,
            p.oldest_unacked_us
                .map_or("-".to_owned(), |us| format!("{us} us")),
            p.heard_ms_ago
                .map_or("never".to_owned(), |ms| format!("{ms} ms")),
        ));
    }
    for (group, name, n) in &h.counters {
        if *n > 0 {
            text.push_str(&format!("{group} {name}: {n}\n"));
        }
    }
    Printed {
        text,
        ok: h.in_sync,
    }
}
