//! A fixed workload for `valgrind --tool=callgrind`: 64k inside lookups in a 1k-session table.
use gateway::nat::{FlowKey, NatConfig, SessionTable, TunnelEndpoint, PROTO_TCP};

fn main() {
    let table = SessionTable::new(NatConfig {
        max_sessions: 1000,
        ..NatConfig::default()
    });
    let mut w = table.worker(0);
    let key = |i: u32| FlowKey {
        src: 0x0a80_0000 | i,
        dst: 0x0100_0000 + i,
        src_port: 40000,
        dst_port: 443,
        proto: PROTO_TCP,
    };
    for i in 0..1000 {
        w.create(
            key(i),
            table.hash(&key(i)),
            0xc0a8_4264,
            TunnelEndpoint::default(),
            0,
            0,
        )
        .unwrap();
    }
    let mut found = 0u32;
    for n in 0..64_000u32 {
        let k = key(n % 1000);
        found += std::hint::black_box(table.lookup_inside(&k, table.hash(&k))).is_some() as u32;
    }
    assert_eq!(found, 64_000);
}
