//! Shared helpers of the end-to-end tests in `tests/tests/`: network namespaces first.

pub mod bgp_peer;
pub mod daemon;
pub mod fake_apiserver;
pub mod lab;
pub mod netns;
pub mod pod_node;
pub mod routers;
pub mod steering_cases;

/// A binary of another workspace package (built by `cargo test --workspace`, which builds
/// every package's binaries), next to this test executable's `deps` directory.
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // Test executables live in target/<profile>/deps, binaries in target/<profile>.
    let mut dir = exe.parent().expect("target/<profile>");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo test --workspace` or `cargo build --bin {name}`",
        path.display()
    );
    path
}
