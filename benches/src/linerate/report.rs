//! What a run measured, as a markdown table, JSON and an SVG plot.

use super::tester::TesterResult;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One measured point: a path at a flow count and offered rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub path: String,
    pub flows: u32,
    /// The rate asked for (frames per second), `None` for as fast as the tester goes.
    pub asked: Option<f64>,
    pub tester: TesterResult,
    /// Busy core-seconds on the gateway's cores during the measured window.
    pub busy_core_seconds: f64,
    /// Busy core-seconds on the tester's cores (meaningful when the tester waits instead of
    /// spinning: `all_cpu`).
    #[serde(default)]
    pub tester_busy_core_seconds: f64,
    /// An all-CPU trial: every core counted, at a load every path carries.
    #[serde(default)]
    pub all_cpu: bool,
    /// Frames the receive backlogs and the veth pair dropped during the trial (`losses`).
    #[serde(default)]
    pub link_drops: u64,
    /// The gateway's own loss counters that grew during the trial (`losses::egressgw`).
    #[serde(default)]
    pub gateway_drops: Vec<(String, u64)>,
    /// A trial of the throughput search.
    #[serde(default)]
    pub search: bool,
    /// The PDR: the highest rate within the loss allowance.
    #[serde(default)]
    pub throughput: bool,
    /// The NDR: the highest rate with no loss.
    #[serde(default)]
    pub ndr: bool,
    /// A latency trial at this fraction of the path's NDR.
    #[serde(default)]
    pub load: Option<f64>,
    /// A connection-rate trial: every request opened a new flow.
    #[serde(default)]
    pub cps: bool,
    /// TCP connection cycles: `tester.sent` counts SYNs, `tester.arrived` the connections
    /// completed.
    #[serde(default)]
    pub tcp: bool,
}

impl Point {
    fn mpps(&self, n: u64) -> f64 {
        n as f64 / self.tester.seconds.max(1e-9) / 1e6
    }

    pub fn offered_mpps(&self) -> f64 {
        self.mpps(self.tester.sent)
    }

    /// Frames per second that reached the server side.
    pub fn delivered_mpps(&self) -> f64 {
        self.mpps(self.tester.arrived)
    }

    pub fn replies_mpps(&self) -> f64 {
        self.mpps(self.tester.replies)
    }

    /// Frames the gateway forwarded, both ways.
    pub fn forwarded(&self) -> u64 {
        self.tester.arrived + self.tester.replies
    }

    /// Lost on the way out and on the way back, as a fraction of what was offered each way.
    pub fn loss(&self) -> f64 {
        match self.offered() {
            0 => 0.0,
            offered => 1.0 - self.forwarded() as f64 / offered as f64,
        }
    }

    /// Frames offered to the path, both ways (replies are offered only when answered at all).
    fn offered(&self) -> u64 {
        let t = &self.tester;
        t.sent + if t.replies > 0 { t.arrived } else { 0 }
    }

    /// The part of [`Self::loss`] the tester's own sockets lost on receive (the sink's, not
    /// the path's).
    pub fn sink_loss(&self) -> f64 {
        self.part_of_loss(self.tester.rx_lost + self.tester.answers_unsent)
    }

    /// The part of [`Self::loss`] lost between the tester and the gateway: the receive
    /// backlogs (frames RPS could not queue, on any core) and the veth pair's drops.
    pub fn link_loss(&self) -> f64 {
        self.part_of_loss(self.link_drops)
    }

    /// The part of [`Self::loss`] the gateway counted itself (its drops by reason, its
    /// sockets' and interfaces' losses).
    pub fn gateway_loss(&self) -> f64 {
        self.part_of_loss(self.gateway_drops.iter().map(|(_, n)| n).sum())
    }

    fn part_of_loss(&self, frames: u64) -> f64 {
        match self.offered() {
            0 => 0.0,
            offered => (frames as f64 / offered as f64).min(self.loss()),
        }
    }

    /// Gateway CPU seconds per million frames forwarded (= microseconds per frame).
    pub fn cpu_per_mpkt(&self) -> f64 {
        self.per_frame_us(self.busy_core_seconds)
    }

    /// `busy` core-seconds as microseconds per frame forwarded.
    fn per_frame_us(&self, busy: f64) -> f64 {
        busy / self.forwarded().max(1) as f64 * 1e6
    }

    /// Million frames forwarded per busy core-second.
    pub fn mpps_per_core(&self) -> f64 {
        if self.busy_core_seconds <= 0.0 {
            return f64::NAN;
        }
        self.forwarded() as f64 / self.busy_core_seconds / 1e6
    }

    /// Whether `other` is the point to compare this one with: the same flows, and the same
    /// offered rate (sweep) or also a throughput result.
    fn comparable(&self, other: &Point) -> bool {
        self.flows == other.flows
            && (self.cps, self.tcp, self.load) == (other.cps, other.tcp, other.load)
            && self.throughput == other.throughput
            && self.ndr == other.ndr
            && (self.throughput || self.ndr || self.asked == other.asked)
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn rate_text(asked: Option<f64>) -> String {
    match asked {
        Some(r) => format!("{:.2}", r / 1e6),
        None => "max".into(),
    }
}

/// The tables: each path's NDR and PDR at each flow count, the latency at fixed fractions of
/// the NDR, then the rate sweep; a connection-rate run's NDR and PDR apart.
pub fn tables(points: &[Point], loss: f64) -> String {
    let (cps, established): (Vec<Point>, Vec<Point>) = points.iter().cloned().partition(|p| p.cps);
    let mut t = String::new();
    let all_cpu: Vec<Point> = established.iter().filter(|p| p.all_cpu).cloned().collect();
    if !all_cpu.is_empty() {
        t.push_str(
            "All CPU: every core's busy time per frame forwarded (both ways), at one load; a \
             path's own is what it costs above the wire\n\n",
        );
        t.push_str(&all_cpu_table(&all_cpu));
        t.push('\n');
    }
    bounds(&mut t, &established, loss, "offered rate");
    let latency: Vec<Point> = established
        .iter()
        .filter(|p| p.load.is_some())
        .cloned()
        .collect();
    if !latency.is_empty() {
        t.push_str(
            "Latency at fixed load: one-way, request sent to its arrival at the server side\n\n",
        );
        t.push_str(&latency_table(&latency));
        t.push('\n');
    }
    for (tcp, what) in [
        (
            false,
            "rate of new UDP connections (a request and its reply, each a new flow)",
        ),
        (
            true,
            "rate of new TCP connections (SYN, SYN-ACK, ACK, FIN-ACK, FIN-ACK, ACK; \
             delivered: completed)",
        ),
    ] {
        let mine: Vec<Point> = cps.iter().filter(|p| p.tcp == tcp).cloned().collect();
        bounds(&mut t, &mine, loss, what);
        let offered: Vec<Point> = mine
            .iter()
            .filter(|p| !p.search && !p.throughput && !p.ndr)
            .cloned()
            .collect();
        if !offered.is_empty() {
            let _ = writeln!(
                t,
                "New {} connections at the rate offered\n",
                if tcp { "TCP" } else { "UDP" }
            );
            t.push_str(&table(&offered));
            t.push('\n');
        }
    }
    let sweep: Vec<Point> = established
        .iter()
        .filter(|p| !p.search && !p.throughput && !p.ndr && p.load.is_none() && !p.all_cpu)
        .cloned()
        .collect();
    if !sweep.is_empty() {
        t.push_str("Rate sweep\n\n");
        t.push_str(&table(&sweep));
    }
    t
}

impl Point {
    /// Busy core-seconds of every core (the tester's and the gateway's) per million frames
    /// forwarded: microseconds per frame.
    pub fn all_cpu_per_frame(&self) -> f64 {
        self.per_frame_us(self.busy_core_seconds + self.tester_busy_core_seconds)
    }
}

/// Each path's CPU per frame on each side and in all, and its own: above the wire's at the
/// same flows (the tester's work and the veth hops, the same for every path).
pub fn all_cpu_table(points: &[Point]) -> String {
    let mut t = String::from(
        "| path | flows | offered Mpps | loss | tester's core us/frame | gateway's core us/frame \
         | all us/frame | the path's own us/frame | kernel's own vs this |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let own = |p: &Point| -> Option<f64> {
        let wire = points
            .iter()
            .find(|w| w.path == "wire" && w.flows == p.flows)?;
        Some(p.all_cpu_per_frame() - wire.all_cpu_per_frame())
    };
    for p in points {
        let mine = own(p).filter(|_| p.path != "wire");
        let kernel = points
            .iter()
            .find(|k| k.path == "kernel" && k.flows == p.flows)
            .and_then(own);
        let ratio = match (mine, kernel) {
            (Some(m), Some(k)) if p.path != "kernel" && m > 0.0 => format!("{:.2}x", k / m),
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {:.3} | {:.2}% | {:.2} | {:.2} | {:.2} | {} | {} |",
            p.path,
            p.flows,
            p.offered_mpps(),
            p.loss() * 100.0,
            p.per_frame_us(p.tester_busy_core_seconds),
            p.per_frame_us(p.busy_core_seconds),
            p.all_cpu_per_frame(),
            mine.map_or(String::new(), |m| format!("{m:.2}")),
            ratio,
        );
    }
    t
}

/// The NDR and PDR tables of `points`.
fn bounds(t: &mut String, points: &[Point], loss: f64, what: &str) {
    let ndr: Vec<Point> = points.iter().filter(|p| p.ndr).cloned().collect();
    let pdr: Vec<Point> = points.iter().filter(|p| p.throughput).cloned().collect();
    if !ndr.is_empty() {
        let _ = writeln!(t, "NDR: the highest {what} with no loss\n");
        t.push_str(&table(&ndr));
        limited_by_tester(t, &ndr, points, 0.0);
        t.push('\n');
    }
    if !pdr.is_empty() {
        let _ = writeln!(
            t,
            "PDR: the highest {what} with at most {:.1}% loss\n",
            loss * 100.0
        );
        t.push_str(&table(&pdr));
        limited_by_tester(t, &pdr, points, loss);
        t.push('\n');
    }
}

/// Whether the tester, not the path, set `bound`: the lowest search trial above it that lost
/// more than `allowance` lost at least half of it at the sink (answers the tester could not
/// send, frames its own sockets dropped). Such a bound is the tester's limit with that path.
pub fn tester_limited(bound: &Point, points: &[Point], allowance: f64) -> bool {
    points
        .iter()
        .filter(|p| {
            p.search
                && p.path == bound.path
                && p.flows == bound.flows
                && (p.cps, p.tcp) == (bound.cps, bound.tcp)
                && p.asked > bound.asked
                && p.loss() > allowance
        })
        .min_by(|a, b| {
            a.asked
                .partial_cmp(&b.asked)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .is_some_and(|failed| failed.sink_loss() >= failed.loss() / 2.0)
}

/// A line naming the bounds the tester set, if any.
fn limited_by_tester(t: &mut String, bounds: &[Point], points: &[Point], allowance: f64) {
    let limited: Vec<String> = bounds
        .iter()
        .filter(|b| tester_limited(b, points, allowance))
        .map(|b| format!("{} at {} flows", b.path, b.flows))
        .collect();
    if !limited.is_empty() {
        let _ = writeln!(
            t,
            "\nSet by the tester, not the path (the next trial's loss mostly at the sink): {}.",
            limited.join(", ")
        );
    }
}

/// Latency percentiles at each fraction of each path's NDR, with p99 as a ratio to the
/// floor's at the same flows and fraction.
pub fn latency_table(points: &[Point]) -> String {
    let mut t = String::from(
        "| path | flows | load (of its NDR) | offered Mpps | loss | p50 us | p99 us | p99.9 us | \
         p99 vs floor |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in points {
        let floor = points
            .iter()
            .find(|o| o.path == "af_xdp floor" && o.flows == p.flows && o.load == p.load);
        let ratio = match (floor, p.tester.p99_us) {
            (Some(f), Some(mine)) if f.path != p.path => f
                .tester
                .p99_us
                .map_or(String::new(), |f| format!("{:.2}x", mine / f)),
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {:.0}% | {:.3} | {:.2}% | {} | {} | {} | {} |",
            p.path,
            p.flows,
            p.load.unwrap_or(0.0) * 100.0,
            p.offered_mpps(),
            p.loss() * 100.0,
            us(p.tester.p50_us),
            us(p.tester.p99_us),
            us(p.tester.p999_us),
            ratio,
        );
    }
    t
}

/// The markdown table: every point, with its per-core rate as a ratio to the other paths'
/// at the same load.
pub fn table(points: &[Point]) -> String {
    let mut t = String::new();
    t.push_str(
        "| path | flows | asked Mpps | offered Mpps | delivered Mpps | replies Mpps | loss | \
         of it at the sink / link / gateway | reordered | gateway CPU s per Mpkt | Mpps per busy core | \
         p50 / p99 us | vs kernel | vs floor |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let ratio = |p: &Point, path: &str| -> String {
        match points.iter().find(|o| o.path == path && o.comparable(p)) {
            Some(o) if o.path != p.path => {
                format!("{:.2}x", p.mpps_per_core() / o.mpps_per_core())
            }
            _ => "".into(),
        }
    };
    for p in points {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.2}% | {:.2}% / {:.2}% / {:.2}% | {} | {:.2} | {:.3} | {} / {} | {} | {} |",
            p.path,
            if p.cps { "each new".into() } else { p.flows.to_string() },
            rate_text(p.asked),
            p.offered_mpps(),
            p.delivered_mpps(),
            p.replies_mpps(),
            p.loss() * 100.0,
            p.sink_loss() * 100.0,
            p.link_loss() * 100.0,
            p.gateway_loss() * 100.0,
            p.tester.reordered,
            p.cpu_per_mpkt(),
            p.mpps_per_core(),
            us(p.tester.p50_us),
            us(p.tester.p99_us),
            ratio(p, "kernel"),
            ratio(p, "af_xdp floor"),
        );
    }
    t
}

const COLORS: [(&str, &str); 3] = [
    ("egressgw", "#1b7837"),
    ("kernel", "#b2182b"),
    ("af_xdp floor", "#2166ac"),
];

/// One panel: lines of (x, y) per path.
struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    log_x: bool,
    lines: Vec<(&'a str, Vec<(f64, f64)>)>,
    /// Draw y = x (delivered equals offered).
    diagonal: bool,
}

/// The plot: delivered rate against offered rate, and against the number of flows.
pub fn svg(points: &[Point], sweep_flows: u32) -> String {
    let paths: Vec<&str> = COLORS.iter().map(|c| c.0).collect();
    let by_rate = paths
        .iter()
        .map(|&path| {
            let mut v: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| {
                    p.path == path
                        && p.flows == sweep_flows
                        && !p.search
                        && !p.cps
                        && !p.all_cpu
                        && p.load.is_none()
                })
                .map(|p| (p.offered_mpps(), p.delivered_mpps()))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (path, v)
        })
        .collect();
    let by_flows = paths
        .iter()
        .map(|&path| {
            let mut v: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.path == path && p.throughput && !p.cps)
                .map(|p| (f64::from(p.flows), p.delivered_mpps()))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v.dedup_by(|a, b| a.0 == b.0);
            (path, v)
        })
        .collect();
    let panels = [
        Panel {
            title: &format!("delivered vs offered ({sweep_flows} flows)"),
            x_label: "offered Mpps",
            y_label: "delivered Mpps",
            log_x: false,
            lines: by_rate,
            diagonal: true,
        },
        Panel {
            title: "throughput vs flows (highest rate within the loss allowance)",
            x_label: "flows",
            y_label: "delivered Mpps",
            log_x: true,
            lines: by_flows,
            diagonal: false,
        },
    ];
    let (w, h) = (520.0, 360.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n",
        w * 2.0
    );
    for (i, panel) in panels.iter().enumerate() {
        draw(&mut s, panel, w * i as f64, w, h);
    }
    s.push_str("</svg>\n");
    s
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let step = 10f64.powf(v.log10().floor());
    (v / step).ceil() * step
}

fn draw(s: &mut String, p: &Panel, left: f64, w: f64, h: f64) {
    let (x0, x1, y0, y1) = (left + 60.0, left + w - 40.0, h - 50.0, 40.0);
    let all = p.lines.iter().flat_map(|l| l.1.iter());
    let xs: Vec<f64> = all.clone().map(|q| q.0).collect();
    let ys: Vec<f64> = all.map(|q| q.1).collect();
    let y_max = nice_max(ys.iter().copied().fold(0.0, f64::max));
    let (x_min, x_max) = if p.log_x {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(1.0, f64::max);
        (
            10f64.powf(lo.max(1.0).log10().floor()),
            10f64.powf(hi.log10().ceil()),
        )
    } else {
        (0.0, nice_max(xs.iter().copied().fold(0.0, f64::max)))
    };
    let sx = |x: f64| {
        let f = if p.log_x {
            (x.log10() - x_min.log10()) / (x_max.log10() - x_min.log10()).max(1e-9)
        } else {
            (x - x_min) / (x_max - x_min).max(1e-9)
        };
        x0 + f * (x1 - x0)
    };
    let sy = |y: f64| y0 - y / y_max * (y0 - y1);
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
        (x0 + x1) / 2.0,
        p.title
    );
    let _ = writeln!(
        s,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"black\"/>\n<line \
         x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"black\"/>"
    );
    for k in 0..=4 {
        let y = y_max * f64::from(k) / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y:.3}</text><line x1=\"{x0}\" \
             y1=\"{2}\" x2=\"{x1}\" y2=\"{2}\" stroke=\"#ddd\"/>",
            x0 - 6.0,
            sy(y) + 4.0,
            sy(y)
        );
    }
    let ticks: Vec<f64> = if p.log_x {
        let mut t = vec![];
        let mut v = x_min;
        while v <= x_max * 1.0001 {
            t.push(v);
            v *= 10.0;
        }
        t
    } else {
        (0..=4).map(|k| x_max * f64::from(k) / 4.0).collect()
    };
    for x in ticks {
        let label = if p.log_x {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            sx(x),
            y0 + 16.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n<text x=\"{}\" y=\"{}\" \
         text-anchor=\"middle\" transform=\"rotate(-90 {3} {4})\">{}</text>",
        (x0 + x1) / 2.0,
        h - 14.0,
        p.x_label,
        left + 16.0,
        (y0 + y1) / 2.0,
        p.y_label
    );
    if p.diagonal {
        let end = x_max.min(y_max);
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" \
             stroke-dasharray=\"4 4\"/>",
            sx(0.0),
            sy(0.0),
            sx(end),
            sy(end)
        );
    }
    for (k, (path, line)) in p.lines.iter().enumerate() {
        let color = COLORS
            .iter()
            .find(|c| c.0 == *path)
            .map_or("black", |c| c.1);
        let pts: Vec<String> = line
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if !pts.is_empty() {
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
                pts.join(" ")
            );
        }
        for &(x, y) in line {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                sx(x),
                sy(y)
            );
        }
        let ly = y1 + 4.0 + 16.0 * k as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{color}\"/><text x=\"{}\" \
             y=\"{}\">{path}</text>",
            x0 + 10.0,
            ly - 4.0,
            x0 + 28.0,
            ly
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(path: &str, asked: Option<f64>, arrived: u64, busy: f64) -> Point {
        Point {
            path: path.into(),
            flows: 1000,
            asked,
            tester: TesterResult {
                sent: 1_000_000,
                seconds: 1.0,
                arrived,
                replies: arrived,
                ..TesterResult::default()
            },
            busy_core_seconds: busy,
            tester_busy_core_seconds: 0.0,
            all_cpu: false,
            link_drops: 0,
            gateway_drops: Vec::new(),
            search: false,
            throughput: false,
            ndr: false,
            load: None,
            cps: false,
            tcp: false,
        }
    }

    #[test]
    fn ratios_compare_per_core_rates_at_the_same_load() {
        let points = vec![
            point("egressgw", None, 900_000, 0.6),
            point("kernel", None, 400_000, 1.0),
            point("af_xdp floor", None, 1_000_000, 0.6),
        ];
        let t = table(&points);
        let egw = t.lines().find(|l| l.starts_with("| egressgw")).unwrap();
        // egressgw: 1.8 M forwarded / 0.6 s = 3.0 Mpps per core; kernel 0.8; floor 3.33.
        assert!(egw.contains("| 3.000 |"), "{egw}");
        assert!(egw.contains("| 3.75x | 0.90x |"), "{egw}");
        assert!(
            t.contains("| kernel | 1000 | max | 1.000 | 0.400 | 0.400 | 42.86% |"),
            "{t}"
        );
    }

    #[test]
    fn the_loss_is_split_between_the_path_and_the_sink() {
        // 1M sent, 900k arrived and answered: 100k of 1.9M lost, 40k of them by the tester's
        // own sockets.
        let mut p = point("egressgw", Some(1e6), 900_000, 0.5);
        p.tester.rx_lost = 40_000;
        // 19k on the link (backlogs, veth); the gateway counted 30k, by two names.
        p.link_drops = 19_000;
        p.gateway_drops = vec![
            ("drop:no_session".into(), 10_000),
            ("socket:rx_ring_full".into(), 20_000),
        ];
        assert!((p.loss() - 100_000.0 / 1_900_000.0).abs() < 1e-12);
        assert!((p.sink_loss() - 40_000.0 / 1_900_000.0).abs() < 1e-12);
        let t = table(&[p.clone()]);
        assert!(t.contains("| 5.26% | 2.11% / 1.00% / 1.58% |"), "{t}");
        // Never more than the loss itself (the counters also see frames outside the window).
        p.tester.rx_lost = 500_000;
        p.link_drops = 500_000;
        assert_eq!(p.sink_loss(), p.loss());
        assert_eq!(p.link_loss(), p.loss());
    }

    #[test]
    fn the_plot_has_a_line_per_path_in_each_panel() {
        let mut best = point("egressgw", Some(8e5), 800_000, 0.5);
        (best.search, best.throughput) = (true, true);
        let mut kernel_best = best.clone();
        kernel_best.path = "kernel".into();
        let mut no_loss = point("egressgw", Some(6e5), 600_000, 0.4);
        (no_loss.search, no_loss.ndr) = (true, true);
        let points = vec![
            point("egressgw", Some(1e5), 100_000, 0.1),
            point("egressgw", None, 900_000, 0.6),
            point("kernel", Some(1e5), 100_000, 0.3),
            point("kernel", None, 400_000, 1.0),
            best,
            kernel_best,
            no_loss,
        ];
        let tables = tables(&points, 0.005);
        // The NDR table, the PDR table, then the sweep: egressgw once in each of the first
        // two, twice in the sweep.
        let pdr = tables.find("PDR: the highest offered rate with at most 0.5% loss");
        let sweep = tables.find("Rate sweep");
        assert!(tables.starts_with("NDR: the highest offered rate with no loss"));
        assert!(pdr.is_some() && sweep > pdr, "{tables}");
        assert_eq!(tables.matches("| egressgw |").count(), 4, "{tables}");
        let svg = svg(&points, 1000);
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn latency_and_connection_rate_points_get_tables_of_their_own() {
        let at_half = |path: &str, p99: f64| {
            let mut p = point(path, Some(5e5), 500_000, 0.3);
            p.load = Some(0.5);
            (p.tester.p50_us, p.tester.p99_us, p.tester.p999_us) =
                (Some(20.0), Some(p99), Some(400.0));
            p
        };
        let mut cps = point("egressgw", Some(2e5), 200_000, 0.5);
        (cps.search, cps.ndr, cps.cps) = (true, true, true);
        let points = vec![
            at_half("egressgw", 90.0),
            at_half("af_xdp floor", 60.0),
            point("egressgw", Some(1e5), 100_000, 0.1),
            cps,
        ];
        let t = tables(&points, 0.005);
        let latency = t.find("Latency at fixed load").expect("latency table");
        let cps_at = t
            .find("NDR: the highest rate of new UDP connections")
            .expect("connection-rate table");
        let sweep = t.find("Rate sweep").expect("sweep");
        assert!(latency < cps_at && cps_at < sweep, "{t}");
        // egressgw's p99 against the floor's at the same fraction of their NDRs.
        assert!(
            t.contains("| egressgw | 1000 | 50% | 1.000 | 33.33% | 20 | 90 | 400 | 1.50x |"),
            "{t}"
        );
        // Neither the latency points nor the connection-rate point are in the sweep, nor does
        // the connection rate stand in the established NDR table.
        assert_eq!(t[sweep..].matches("| egressgw |").count(), 1, "{t}");
        assert!(!t.contains("NDR: the highest offered rate"), "{t}");
    }

    #[test]
    fn all_cpu_charges_each_path_what_it_costs_above_the_wire() {
        // 1M sent and answered: 2M frames each. The wire costs 1 us a frame on the tester's
        // core and 0.5 on the gateway's; egressgw 1.2 + 1.5; the kernel 1.1 + 4.4.
        let trial = |path: &str, tester: f64, gateway: f64| {
            let mut p = point(path, Some(1e6), 1_000_000, gateway);
            p.tester.sent = 1_000_000;
            (p.all_cpu, p.tester_busy_core_seconds) = (true, tester);
            p
        };
        let points = vec![
            trial("egressgw", 2.4, 3.0),
            trial("kernel", 2.2, 8.8),
            trial("wire", 2.0, 1.0),
            point("egressgw", Some(1e5), 100_000, 0.1),
        ];
        let t = tables(&points, 0.005);
        // egressgw: 2.7 - 1.5 = 1.2 us its own; the kernel 5.5 - 1.5 = 4.0: 3.33x.
        assert!(
            t.contains("| egressgw | 1000 | 1.000 | 0.00% | 1.20 | 1.50 | 2.70 | 1.20 | 3.33x |"),
            "{t}"
        );
        assert!(
            t.contains("| kernel | 1000 | 1.000 | 0.00% | 1.10 | 4.40 | 5.50 | 4.00 |  |"),
            "{t}"
        );
        assert!(
            t.contains("| wire | 1000 | 1.000 | 0.00% | 1.00 | 0.50 | 1.50 |  |  |"),
            "{t}"
        );
        // The all-CPU trials are not in the sweep.
        let sweep = t.find("Rate sweep").expect("sweep");
        assert_eq!(t[sweep..].matches("| egressgw |").count(), 1, "{t}");
    }

    #[test]
    fn a_bound_the_tester_set_is_named() {
        let trial = |path: &str, rate: f64, arrived: u64, unsent: u64| {
            let mut p = point(path, Some(rate), arrived, 0.5);
            p.search = true;
            p.tester.sent = arrived;
            p.tester.replies = arrived - unsent;
            p.tester.answers_unsent = unsent;
            p
        };
        let mut kernel_ndr = trial("kernel", 1e5, 100_000, 0);
        kernel_ndr.ndr = true;
        let mut egw_ndr = trial("egressgw", 1e5, 100_000, 0);
        egw_ndr.ndr = true;
        let mut egw_fail = trial("egressgw", 1.2e5, 120_000, 0);
        egw_fail.tester.replies = 100_000; // lost by the path
        let points = vec![
            kernel_ndr.clone(),
            // Above the kernel's bound, a failed trial whose loss was the tester's.
            trial("kernel", 1.2e5, 120_000, 30_000),
            trial("kernel", 1.5e5, 150_000, 10_000),
            egw_ndr.clone(),
            egw_fail,
        ];
        assert!(tester_limited(&kernel_ndr, &points, 0.0));
        assert!(!tester_limited(&egw_ndr, &points, 0.0));
        let t = tables(&points, 0.005);
        assert!(
            t.contains("Set by the tester, not the path (the next trial's loss mostly at the sink): kernel at 1000 flows."),
            "{t}"
        );
    }
}
