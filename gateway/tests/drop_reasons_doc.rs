//! docs/drop-reasons.md names every reason the pipeline counts.

use gateway::drop::DropReason;

#[test]
fn the_drop_reasons_page_lists_every_reason() {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/drop-reasons.md"
    ))
    .unwrap();
    for r in DropReason::ALL {
        assert!(
            page.contains(&format!("| `{}` |", r.name())),
            "docs/drop-reasons.md lacks drop reason {}",
            r.name()
        );
    }
}
