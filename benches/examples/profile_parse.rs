use benches::testutil::*;
use gateway::nat::{NatConfig, SessionTable};
use gateway::wire::tcp::flags::ACK;
fn main() {
    let inner = ipv4_packet(
        POD3,
        SERVER_IP,
        64,
        true,
        L4::Tcp {
            src_port: 40000,
            dst_port: 80,
            flags: ACK,
        },
        &[0; 64],
    );
    let f = geneve_frame(NODE3_IP, NODE3_MAC, 50000, &inner);
    let tables = seed_tables();
    let table = SessionTable::new(NatConfig {
        max_sessions: 1024,
        ..NatConfig::default()
    });
    let mut x = 0u64;
    for _ in 0..100_000 {
        x ^= gateway::pipeline::parse::parse(std::hint::black_box(&f), &tables, &table)
            .unwrap()
            .hash;
    }
    println!("{x}");
}
