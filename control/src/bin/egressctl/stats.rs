use control::proto::Response;

use crate::{table, Printed};

pub fn render(r: &Response) -> Printed {
    let Response::Stats(s) = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let rows: Vec<Vec<String>> = s
        .workers
        .iter()
        .map(|w| {
            vec![
                w.queue.to_string(),
                w.core.to_string(),
                w.af_xdp_mode.clone(),
                w.rx_packets.to_string(),
                w.tx_packets.to_string(),
                w.sessions_created.to_string(),
                w.slots_in_use.to_string(),
                match w.rx_packets {
                    0 => "-".to_owned(),
                    rx => (w.busy_ns / rx).to_string(),
                },
                w.drops.iter().map(|(_, n)| n).sum::<u64>().to_string(),
            ]
        })
        .collect();
    let header = [
        "queue",
        "core",
        "af_xdp",
        "rx",
        "tx",
        "sessions made",
        "slots in use",
        "busy ns/pkt",
        "dropped",
    ];
    let mut text = table(&header, &rows);
    text.push_str(&format!(
        "sessions: {} of {} IPv4, {} of {} IPv6 (indexed {} by pod tuple, {} by reply tuple)\n",
        s.sessions - s.sessions_v6,
        s.max_sessions,
        s.sessions_v6,
        s.max_sessions_v6,
        s.indexed[0],
        s.indexed[1]
    ));
    let mut drops: Vec<(String, u64)> = Vec::new();
    for w in &s.workers {
        for (reason, n) in &w.drops {
            match drops.iter_mut().find(|(r, _)| r == reason) {
                Some((_, total)) => *total += n,
                None => drops.push((reason.clone(), *n)),
            }
        }
    }
    if !drops.is_empty() {
        let rows: Vec<Vec<String>> = drops
            .into_iter()
            .map(|(r, n)| vec![r, n.to_string()])
            .collect();
        text.push_str(&table(&["drop reason", "packets"], &rows));
    }
    // What the kernel lost before the dataplane saw it, per socket and per interface.
    let kernel: Vec<Vec<String>> = s
        .workers
        .iter()
        .flat_map(|w| {
            w.sockets.iter().map(move |sock| {
                let mut row = vec![w.queue.to_string(), sock.interface.clone()];
                row.extend(sock.counters.iter().map(|(_, n)| n.to_string()));
                row
            })
        })
        .collect();
    if let Some(first) = s.workers.iter().flat_map(|w| &w.sockets).next() {
        let mut header = vec!["queue", "socket on"];
        header.extend(first.counters.iter().map(|(name, _)| name.as_str()));
        text.push_str(&table(&header, &kernel));
    }
    if !s.interfaces.is_empty() {
        let rows: Vec<Vec<String>> = s
            .interfaces
            .iter()
            .map(|i| vec![i.interface.clone(), i.rx_dropped.to_string()])
            .collect();
        text.push_str(&table(&["interface", "rx_dropped"], &rows));
    }
    if !s.steering.is_empty() {
        // Where the uplink's frames went, by the steering program's verdict.
        let rows: Vec<Vec<String>> = s
            .steering
            .iter()
            .map(|v| {
                vec![
                    v.interface.clone(),
                    v.verdict.clone(),
                    v.packets.to_string(),
                ]
            })
            .collect();
        text.push_str(&table(&["interface", "steering verdict", "packets"], &rows));
    }
    Printed { text, ok: true }
}
