//! The crate's layout is its architecture (see `src/lib.rs`): each top-level module uses only
//! the layers below it, files within a module folder do not import each other in a circle,
//! `unsafe` appears only in `mem/` and `xdp/`, and the pure core does no I/O and reads no
//! clock. Read from the sources, so a change that breaks a rule fails here, not in review.
//! Unit tests (from a file's first `#[cfg(test)]` on) may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer: a module may use its own layer and those before it.
const LAYERS: &[&[&str]] = &[
    &["mem"],
    &["wire", "drop"],
    &["nat"],
    &["pipeline"],
    &["sync"],
    &["mailbox"],
    &["xdp"],
    &["daemon"],
    &["testutil"],
];
const PURE_CORE: &[&str] = &["wire", "drop", "nat", "pipeline", "sync"];
const UNSAFE_ALLOWED: &[&str] = &["mem", "xdp"];
/// What the pure core must not name: clocks, sockets, files, threads, system calls.
const IO_OR_CLOCK: &[&str] = &[
    "Instant",
    "SystemTime",
    "std::fs",
    "std::net::Tcp",
    "std::net::Udp",
    "std::thread",
    "std::io",
    "libc::",
    "netlink",
];

struct Source {
    /// Path below `src/`, with `/` separators.
    rel: String,
    /// The code before the unit tests, comments removed.
    code: String,
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let before_tests = text.split("#[cfg(test)]").next().unwrap();
            let code = before_tests
                .lines()
                .map(|l| l.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            let rel = p
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            Source { rel, code }
        })
        .collect()
}

/// The top-level module a file belongs to (`nat/table.rs` -> `nat`, `drop.rs` -> `drop`).
fn top_module(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `prefix<name>` in `code`, `name` an identifier.
fn names_after<'a>(code: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    code.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let mut violations = Vec::new();
    for s in sources() {
        let own = top_module(&s.rel);
        let Some(own_layer) = layer_of(own) else {
            continue; // lib.rs, bin/
        };
        for used in names_after(&s.code, "crate::") {
            match layer_of(used) {
                Some(l) if l > own_layer => violations.push(format!("{} uses {used}", s.rel)),
                Some(_) => {}
                None => violations.push(format!("{} uses crate::{used}, in no layer", s.rel)),
            }
        }
    }
    assert!(violations.is_empty(), "layering broken: {violations:#?}");
    // The rule bites: the module the workers' loop lives in may not reach the daemon.
    assert!(layer_of("xdp") < layer_of("daemon"));
}

#[test]
fn no_circle_between_the_files_of_a_module() {
    // Edges between sibling files, through `super::x` or `crate::module::x`.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let all = sources();
    let files: BTreeSet<String> = all.iter().map(|s| s.rel.clone()).collect();
    for s in &all {
        let Some((dir, file)) = s.rel.rsplit_once('/') else {
            continue;
        };
        if file == "mod.rs" {
            continue; // the parent lists its children; that is not a use
        }
        let mut targets = names_after(&s.code, "super::");
        targets.extend(names_after(&s.code, &format!("crate::{dir}::")));
        for t in targets {
            let sibling = format!("{dir}/{t}.rs");
            if sibling != s.rel && files.contains(&sibling) {
                edges.entry(s.rel.clone()).or_default().insert(sibling);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        on_path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = on_path.iter().position(|p| p == n) {
            let mut circle = on_path[i..].to_vec();
            circle.push(n.to_string());
            return Some(circle);
        }
        if !done.insert(n.to_string()) {
            return None;
        }
        on_path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, on_path, done) {
                return Some(c);
            }
        }
        on_path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        let circle = visit(n, &edges, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "import circle: {}",
            circle.unwrap().join(" -> ")
        );
    }
    // The search sees real edges: the fast parser's result type lives in its own file.
    assert!(edges["pipeline/fast.rs"].contains("pipeline/parsed.rs"));
}

#[test]
fn unsafe_only_in_mem_and_xdp() {
    let mut found = Vec::new();
    let mut in_allowed = 0;
    for s in sources() {
        let uses_unsafe = ["unsafe {", "unsafe impl", "unsafe fn", "unsafe trait"]
            .iter()
            .any(|u| s.code.contains(u));
        if uses_unsafe && UNSAFE_ALLOWED.contains(&top_module(&s.rel)) {
            in_allowed += 1;
        } else if uses_unsafe {
            found.push(s.rel);
        }
    }
    assert!(found.is_empty(), "unsafe outside mem/ and xdp/: {found:?}");
    assert!(
        in_allowed >= 2,
        "the scan finds the unsafe code that exists"
    );
}

#[test]
fn the_pure_core_does_no_io_and_reads_no_clock() {
    let mut found = Vec::new();
    let mut scanned = 0;
    for s in sources() {
        if !PURE_CORE.contains(&top_module(&s.rel)) {
            continue;
        }
        scanned += 1;
        for w in IO_OR_CLOCK {
            if s.code.contains(w) {
                found.push(format!("{} names {w}", s.rel));
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O or a clock in the pure core: {found:#?}"
    );
    assert!(scanned > 20, "the scan reads the core's files ({scanned})");
}
