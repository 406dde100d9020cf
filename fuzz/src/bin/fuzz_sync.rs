//! `cargo afl fuzz ... target/afl/release/fuzz_sync` (scripts/fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::sync(data));
}
