//! `cargo afl fuzz ... target/afl/release/fuzz_bfd` (scripts/fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::bfd(data));
}
