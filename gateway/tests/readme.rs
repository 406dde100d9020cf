//! The README's drop-reason table names every reason the pipeline counts.

use gateway::drop::DropReason;

#[test]
fn readme_lists_every_drop_reason() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for r in DropReason::ALL {
        assert!(
            readme.contains(&format!("| `{}` |", r.name())),
            "README lacks drop reason {}",
            r.name()
        );
    }
}
