//! `cargo afl fuzz ... target/afl/release/fuzz_control` (scripts/fuzz).
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::control(data));
}
