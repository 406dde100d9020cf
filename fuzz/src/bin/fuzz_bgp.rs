//! `cargo afl fuzz ... target/afl/release/fuzz_bgp` (scripts/fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::bgp(data));
}
