//! Shared by the fixture-driven tests: reading the wire vectors under `$WA_FIXTURES`.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use serde_json::Value;

/// `$WA_FIXTURES/wire`.
pub fn wire_dir() -> PathBuf {
    wa_testkit::fixtures::fixtures_dir().join("wire")
}

/// The files in `$WA_FIXTURES/wire` whose name starts with `prefix` and ends in `.json`,
/// sorted. Panics when there are none, so a test cannot pass vacuously.
pub fn wire_files(prefix: &str) -> Vec<PathBuf> {
    let dir = wire_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no {prefix}*.json under {}",
        dir.display()
    );
    files
}

/// Reads and parses a JSON file.
pub fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

#[allow(unused_imports)] // each test binary uses a different subset
pub use wa_testkit::vectors::{Failures, b64, node_from_json, same_bytes};
