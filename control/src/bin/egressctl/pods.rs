use control::proto::{PodUsage, Response};

use crate::{table, Printed};

/// The per-pod limits, then the pods with the most sessions and those refused the most.
pub fn render(r: &Response) -> Printed {
    let Response::Pods(p) = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let limits: Vec<String> = p
        .limits
        .iter()
        .map(|(name, v)| match (name.as_str(), v) {
            ("pod_destination_share", v) => format!("{name} {v}%"),
            (_, 0) => format!("{name} off"),
            _ => format!("{name} {v}"),
        })
        .collect();
    let mut text = format!("limits: {}\n\n", limits.join(", "));
    text.push_str("most sessions\n");
    text.push_str(&pod_table(&p.by_sessions));
    text.push_str("\nmost new flows refused\n");
    text.push_str(&pod_table(&p.by_drops));
    Printed { text, ok: true }
}

fn pod_table(pods: &[PodUsage]) -> String {
    if pods.is_empty() {
        return "(none)\n".into();
    }
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|u| {
            let refused: u64 = u.drops.iter().map(|(_, n)| n).sum();
            let reasons: Vec<String> = u.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
            vec![
                u.pod.to_string(),
                u.egress_ip.map_or("-".into(), |ip| ip.to_string()),
                u.sessions.to_string(),
                refused.to_string(),
                reasons.join(" "),
            ]
        })
        .collect();
    table(
        &["POD", "EGRESS IP", "SESSIONS", "REFUSED", "REASONS"],
        &rows,
    )
}
