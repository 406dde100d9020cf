use control::proto::Response;

use crate::Printed;

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
    text.push_str(&format!(
        "{:<6} {:<22} {:<6} {:<7} {:<5} {:>6} {:>12} {:>15} {:>9}\n",
        "PEER",
        "ADDRESS",
        "ALIVE",
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
            "{:<6} {:<22} {:<6} {:<7} {:<5} {:>6} {:>12} {:>15} {:>9}\n",
            p.id,
            p.address.to_string(),
            yes(p.alive),
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
