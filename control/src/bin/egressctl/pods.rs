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
    // The burst alone limits nothing.
    let every_limit_off = p.limits.iter().all(|(name, v)| match name.as_str() {
        "pod_destination_share" => *v >= 100,
        "pod_new_flow_burst" => true,
        _ => *v == 0,
    });
    if every_limit_off {
        text.push_str("every limit is off: the workers keep no per-pod accounts\n");
        return Printed { text, ok: true };
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use control::proto::PodsStatus;

    fn status(limits: [u64; 4], pods: Vec<PodUsage>) -> Response {
        let names = [
            "pod_max_sessions",
            "pod_new_flows_per_second",
            "pod_new_flow_burst",
            "pod_destination_share",
        ];
        Response::Pods(PodsStatus {
            limits: names.iter().map(|n| n.to_string()).zip(limits).collect(),
            by_sessions: pods.clone(),
            by_drops: pods,
        })
    }

    #[test]
    fn every_limit_off_says_no_accounts_are_kept() {
        let p = render(&status([0, 0, 40000, 100], vec![]));
        assert!(p.ok);
        assert!(p.text.contains("pod_max_sessions off"), "{}", p.text);
        assert!(p.text.contains("no per-pod accounts"), "{}", p.text);
        assert!(!p.text.contains("most sessions"), "{}", p.text);
    }

    #[test]
    fn a_limit_on_lists_the_pods() {
        let pod = PodUsage {
            pod: "10.133.0.3".parse().unwrap(),
            egress_ip: Some("192.168.66.100".parse().unwrap()),
            sessions: 7,
            drops: vec![("pod_rate_limit".into(), 3)],
        };
        let p = render(&status([0, 20000, 40000, 100], vec![pod]));
        assert!(!p.text.contains("no per-pod accounts"), "{}", p.text);
        assert!(p.text.contains("most sessions"), "{}", p.text);
        assert!(p.text.contains("pod_rate_limit=3"), "{}", p.text);
    }
}
