//! Reading the fixtures' vector formats: base64 fields, the node JSON form, Baileys' BufferJSON,
//! and collecting failures by case name.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use wa_proto::{Attrs, Content, Node};

/// Standard base64 with padding, as every `*_b64` field.
pub fn b64(s: &Value) -> Vec<u8> {
    let s = s
        .as_str()
        .unwrap_or_else(|| panic!("not a base64 string: {s}"));
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// [`b64`] of a field that must decode to exactly `N` bytes (a key, a hash).
pub fn b64_array<const N: usize>(s: &Value) -> [u8; N] {
    let bytes = b64(s);
    let len = bytes.len();
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("expected {N} bytes of base64, got {len}: {s}"))
}

/// A node from the vectors' JSON form (`{"tag", "attrs", "content"}`, see
/// `fixtures/wire/README.md`). Attributes whose value is `null` are skipped, as Baileys'
/// encoder skips them.
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

/// Baileys' BufferJSON `{"type":"Buffer","data":"<base64>"}` replaced by the plain base64
/// string, everywhere in `value`: the canonical serde form of wa-auth's types.
pub fn debufferize(value: Value) -> Value {
    match value {
        Value::Object(map)
            if map.get("type") == Some(&Value::from("Buffer"))
                && map.get("data").is_some_and(Value::is_string) =>
        {
            map["data"].clone()
        }
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, debufferize(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(debufferize).collect()),
        other => other,
    }
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

    /// Panics listing every failure, or when nothing was checked. Returns the number checked.
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

/// `Err` with a short description when `got != expected` (byte strings shown as hex around the
/// first difference).
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
        b[first.saturating_sub(4).min(b.len())..b.len().min(first + 12)]
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
