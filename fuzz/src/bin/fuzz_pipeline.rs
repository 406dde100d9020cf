//! `cargo afl fuzz ... target/afl/release/fuzz_pipeline` (scripts/fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::pipeline(data));
}
