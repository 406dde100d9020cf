//! `nat/lookup/{1k,100k,1M,10M}`: inside-key lookups of established sessions in random order,
//! hash included, one at a time; `nat/lookup_batched/*` the same in batches of 64 with the
//! buckets and then the sessions prefetched, as the pipeline does. Also prints bytes per
//! session (allocated, and resident-set growth).

use benches::{filled_table, random_keys};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// 256k keys per iteration, so at a million sessions the lines touched (32 MiB) do not stay in
/// cache between iterations.
const KEYS: usize = 1 << 18;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat");
    for (name, n) in [
        ("1k", 1_000u32),
        ("100k", 100_000),
        ("1M", 1_000_000),
        ("10M", 10_000_000),
    ] {
        let (table, rss) = filled_table(n);
        let keys = random_keys(n, KEYS);
        eprintln!(
            "nat/{name}: {} sessions, allocated {:.1} B/session, resident {:.1} B/session",
            n,
            table.memory_bytes() as f64 / f64::from(n),
            rss as f64 / f64::from(n)
        );
        g.throughput(Throughput::Elements(keys.len() as u64));
        g.bench_with_input(BenchmarkId::new("lookup", name), &keys, |b, keys| {
            b.iter(|| {
                let mut found = 0u32;
                for k in keys {
                    found += table.lookup_inside(k, table.hash(k)).is_some() as u32;
                }
                black_box(found)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("lookup_batched", name),
            &keys,
            |b, keys| {
                b.iter(|| {
                    let mut found = 0u32;
                    let mut hashes = [0u64; 64];
                    for chunk in keys.chunks(64) {
                        let hashes = &mut hashes[..chunk.len()];
                        // As the pipeline stages it: buckets, then the sessions they point at.
                        for (h, k) in hashes.iter_mut().zip(chunk) {
                            *h = table.hash(k);
                            table.prefetch_inside(*h);
                        }
                        for h in hashes.iter() {
                            table.prefetch_session(true, *h);
                        }
                        for (h, k) in hashes.iter().zip(chunk) {
                            found += table.lookup_inside(k, *h).is_some() as u32;
                        }
                    }
                    black_box(found)
                })
            },
        );
        drop(table);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
