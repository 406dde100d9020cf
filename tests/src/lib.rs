//! Shared helpers of the end-to-end tests in `tests/tests/`: network namespaces first.

pub mod bgp_peer;
pub mod netns;
pub mod routers;

/// A binary of another workspace package (built by `cargo test --workspace`, which builds
/// every package's binaries), next to this test executable's `deps` directory.
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo test --workspace` or `cargo build --bin {name}`",
        path.display()
    );
    path
}
