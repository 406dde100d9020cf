use control::proto::Response;

use crate::Printed;

pub fn render(r: &Response) -> Printed {
    let Response::Health(h) = r else {
        return Printed {
            text: format!("unexpected response {r:?}\n"),
            ok: false,
        };
    };
    let list = |v: &[std::net::IpAddr]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut text = format!(
        "dataplane: {}\n",
        if h.dataplane_ok {
            "ok".to_owned()
        } else {
            format!("stalled queues {:?}", h.stalled_workers)
        }
    );
    text.push_str(&format!("announced: {}\n", list(&h.announced)));
    text.push_str(&format!(
        "bgp: {} of {} neighbours established\n",
        h.bgp_established, h.bgp_configured
    ));
    Printed {
        text,
        ok: h.dataplane_ok,
    }
}
