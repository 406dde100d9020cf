//! The 1M-vs-1k lookup rate ratio, measured side by side: both tables are built first, then
//! timed in alternation (20 rounds of 64k lookups each), so drift on a noisy machine hits both
//! alike. Prints min and median ns per lookup and the ratios.
//!
//! `cargo run --release -p benches --example lookup_scaling`

use benches::{filled_table, random_keys};
use gateway::nat::{FlowKey, SessionTable};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn table(n: u32) -> (Arc<SessionTable>, Vec<FlowKey>) {
    (filled_table(n).0, random_keys(n, 65_536))
}

/// How a pass fetches ahead.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ahead {
    Nothing,
    Buckets,
    BucketsThenSessions,
}

/// ns per lookup for one pass, batches of 64. Every mode looks up as the egress path does
/// (the binding, with the slot stage two found as a hint where there is a stage two).
fn pass(t: &SessionTable, keys: &[FlowKey], ahead: Ahead) -> f64 {
    let start = Instant::now();
    let mut found = 0u32;
    for chunk in keys.chunks(64) {
        found += staged(t, chunk, ahead);
    }
    assert_eq!(black_box(found) as usize, keys.len());
    start.elapsed().as_nanos() as f64 / keys.len() as f64
}

/// Each step over the whole batch before the next.
fn staged(t: &SessionTable, chunk: &[FlowKey], ahead: Ahead) -> u32 {
    let (mut hashes, mut hints) = ([0u64; 64], [None; 64]);
    for (h, k) in hashes.iter_mut().zip(chunk) {
        *h = t.hash(k);
        if ahead != Ahead::Nothing {
            t.prefetch_inside(*h);
        }
    }
    if ahead == Ahead::BucketsThenSessions {
        for (hint, h) in hints.iter_mut().zip(&hashes).take(chunk.len()) {
            *hint = t.prefetch_session(true, *h);
        }
    }
    let lookups = chunk.iter().zip(hashes).zip(hints);
    lookups
        .map(|((k, h), hint)| t.lookup_binding_hinted(k, h, hint).is_some() as u32)
        .sum()
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let small = table(1_000);
    let large = table(1_000_000);
    for ahead in [Ahead::Nothing, Ahead::Buckets, Ahead::BucketsThenSessions] {
        let (mut s, mut l) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            s.push(pass(&small.0, &small.1, ahead));
            l.push(pass(&large.0, &large.1, ahead));
        }
        let ((smin, smed), (lmin, lmed)) = (stats(s), stats(l));
        println!(
            "{:<20} 1k: min {smin:.1} ns, median {smed:.1} ns | 1M: min {lmin:.1} ns, median {lmed:.1} ns | 1M rate / 1k rate: {:.0}% (min), {:.0}% (median)",
            format!("{ahead:?}"),
            100.0 * smin / lmin,
            100.0 * smed / lmed
        );
    }
}
