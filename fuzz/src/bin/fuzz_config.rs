//! `cargo afl fuzz ... target/afl/release/fuzz_config` (scripts/fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::config(data));
}
