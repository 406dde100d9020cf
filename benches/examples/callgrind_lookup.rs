//! A fixed workload for `valgrind --tool=callgrind`: 64k inside lookups in a 1k-session table.
use benches::{filled_table, random_keys};

fn main() {
    let (table, _) = filled_table(1000);
    let mut found = 0u32;
    for k in random_keys(1000, 64_000) {
        found += std::hint::black_box(table.lookup_inside(&k, table.hash(&k))).is_some() as u32;
    }
    assert_eq!(found, 64_000);
}
