//! Shared by the fixture-driven tests: reading the wire vectors under `$WA_FIXTURES`.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use wa_proto::{Attrs, Content, Node};

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

/// Standard base64 with padding, as every `*_b64` field.
pub fn b64(s: &Value) -> Vec<u8> {
    let s = s
        .as_str()
        .unwrap_or_else(|| panic!("not a base64 string: {s}"));
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// A node from the vectors' JSON form. Attributes whose value is `null` are skipped, as the
/// Baileys encoder skips them (and `Node::with_attr_opt` does).
pub fn node_from_json(v: &Value) -> Node {
    let tag = v["tag"].as_str().expect("tag is a string");
    let mut node = Node::new(tag);
    if let Some(attrs) = v["attrs"].as_object() {
        let mut out = Attrs::new();
        for (k, value) in attrs {
            match value {
                Value::Null => {}
                Value::String(s) => {
                    out.insert(k.as_str(), s.as_str());
                }
                other => panic!("attribute {k} of <{tag}> is not a string: {other}"),
            }
        }
        node.attrs = out;
    }
    node.content = match &v["content"] {
        Value::Null => Content::None,
        Value::Array(children) => Content::Nodes(children.iter().map(node_from_json).collect()),
        Value::String(s) => Content::Text(s.clone()),
        Value::Object(o) if o.contains_key("b64") => Content::Bytes(b64(&o["b64"])),
        other => panic!("unknown content in <{tag}>: {other}"),
    };
    node
}

/// Collects failures by case name, so one run reports every failing vector.
#[derive(Default)]
pub struct Failures {
    checked: usize,
    failures: Vec<String>,
}

impl Failures {
    /// Records that `name` was checked, and its failure if `result` is an error.
    pub fn check(&mut self, name: &str, result: Result<(), String>) {
        self.checked += 1;
        if let Err(e) = result {
            self.failures.push(format!("{name}: {e}"));
        }
    }

    /// Panics listing every failure, or when nothing was checked.
    pub fn finish(self, what: &str) -> usize {
        assert!(self.checked > 0, "no {what} found");
        assert!(
            self.failures.is_empty(),
            "{} of {} {what} failed:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
        self.checked
    }
}

/// `Err` with a short description when `a != b` (byte strings shown as hex, truncated).
pub fn same_bytes(what: &str, got: &[u8], expected: &[u8]) -> Result<(), String> {
    if got == expected {
        return Ok(());
    }
    let first = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let window = |b: &[u8]| -> String {
        b[first.saturating_sub(4)..b.len().min(first + 12)]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    Err(format!(
        "{what}: {} bytes vs {} expected, first difference at {first}: got …{}… expected …{}…",
        got.len(),
        expected.len(),
        window(got),
        window(expected)
    ))
}
