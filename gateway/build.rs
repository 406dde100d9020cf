//! Compiles the steering program (`bpf/steer.c`) for the BPF target; the daemon embeds it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/steer.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("steer.o");
    let arch_include = format!(
        "/usr/include/{}-linux-gnu",
        std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default()
    );
    let status = Command::new("clang")
        .args([
            "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c", src, "-o",
        ])
        .arg(&out)
        .arg(format!("-I{arch_include}"))
        .status()
        .unwrap_or_else(|e| {
            panic!("running clang for {src} failed ({e}); install clang (scripts/test does)")
        });
    assert!(status.success(), "clang could not compile {src}");
}
