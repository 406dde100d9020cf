//! Compiles the BPF programs (`bpf/*.c`) for the BPF target: the steering program, which the
//! daemon embeds, and the line-rate bench's wire (`testutil::WIRE_PROGRAM`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch_include = format!(
        "/usr/include/{}-linux-gnu",
        std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default()
    );
    for name in ["steer", "wire"] {
        let src = format!("bpf/{name}.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new("clang")
            .args([
                "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c", &src, "-o",
            ])
            .arg(out_dir.join(format!("{name}.o")))
            .arg(format!("-I{arch_include}"))
            .status()
            .unwrap_or_else(|e| {
                panic!("running clang for {src} failed ({e}); install clang (scripts/test does)")
            });
        assert!(status.success(), "clang could not compile {src}");
    }
}
