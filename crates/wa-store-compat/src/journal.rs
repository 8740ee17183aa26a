//! The commit journal and the registry: this store's two metadata files, both JSON, both
//! written by temp file + rename.
//!
//! A commit writes every new file under a temp name, then the journal listing, in order, the
//! renames and deletes that apply it; once the journal is durable the commit has happened, and
//! the operations are carried out. Opening a folder replays a journal it finds (the
//! operations are idempotent: a rename whose temp file is gone has already happened) and
//! removes temp files no journal refers to (a commit interrupted before its journal). See
//! `docs/format-compat.md`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use wa_auth::key::OtherKind;

use crate::codec::{CompatError, Flavour};
use crate::layout::{Names, OWN_PREFIX, REGISTRY_FILE, TEMP_PREFIX};

const JOURNAL_FORMAT: &str = "wa-store-compat-journal/1";
const REGISTRY_FORMAT: &str = "wa-store-compat-registry/1";

/// One step of applying a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Rename a temp file onto its final name (replacing the old file).
    Rename {
        /// The temp file.
        temp: String,
        /// The final name.
        target: String,
    },
    /// Delete a file (absent is fine).
    Delete(String),
}

/// The operations of one commit, in the order they are applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Journal {
    pub ops: Vec<Op>,
}

fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

fn journal_error(reason: impl Into<String>) -> CompatError {
    CompatError::Journal {
        reason: reason.into(),
    }
}

impl Journal {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let ops: Vec<Value> = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Rename { temp, target } => json!(["rename", temp, target]),
                Op::Delete(name) => json!(["delete", name]),
            })
            .collect();
        let value = json!({"format": JOURNAL_FORMAT, "ops": ops});
        value.to_string().into_bytes()
    }

    /// Parses a journal. `Ok(None)` when the text is not a complete journal (a torn write, only
    /// possible without fsync after an operating-system crash); an error when it is a
    /// journal of another format version or names files it must not touch.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Option<Self>, CompatError> {
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return Ok(None);
        };
        let Some(obj) = value.as_object() else {
            return Ok(None);
        };
        match obj.get("format").and_then(Value::as_str) {
            Some(JOURNAL_FORMAT) => {}
            Some(other) => {
                return Err(journal_error(format!(
                    "unsupported journal format {other:?} (this build reads {JOURNAL_FORMAT})"
                )));
            }
            None => return Ok(None),
        }
        let Some(ops) = obj.get("ops").and_then(Value::as_array) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let parts: Vec<&str> = op
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let op = match parts.as_slice() {
                ["rename", temp, target] => Op::Rename {
                    temp: (*temp).to_owned(),
                    target: (*target).to_owned(),
                },
                ["delete", name] => Op::Delete((*name).to_owned()),
                _ => return Err(journal_error(format!("unknown operation {op}"))),
            };
            check_op(&op)?;
            out.push(op);
        }
        Ok(Some(Self { ops: out }))
    }
}

/// A journal only moves this store's temp files onto layout names (or its registry) and
/// deletes layout names: never anything outside the folder, never someone else's file.
fn check_op(op: &Op) -> Result<(), CompatError> {
    let target_ok =
        |name: &str| plain_name(name) && (!name.starts_with('.') || name == REGISTRY_FILE);
    let ok = match op {
        Op::Rename { temp, target } => {
            plain_name(temp) && temp.starts_with(TEMP_PREFIX) && target_ok(target)
        }
        Op::Delete(name) => target_ok(name) && !name.starts_with(OWN_PREFIX),
    };
    if ok {
        Ok(())
    } else {
        Err(journal_error(format!(
            "operation {op:?} names a file it must not touch"
        )))
    }
}

/// The registry: what this store needs to read back what it wrote, beyond Baileys' layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Registry {
    /// The flavour last written.
    pub flavour: Option<Flavour>,
    /// Other kinds written and ids `fixFileName` does not preserve.
    pub names: Names,
}

impl Registry {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("format".into(), Value::from(REGISTRY_FORMAT));
        if let Some(flavour) = self.flavour {
            obj.insert("flavour".into(), Value::from(flavour.as_str()));
        }
        obj.insert(
            "otherKinds".into(),
            Value::from(
                self.names
                    .other_kinds
                    .iter()
                    .map(|k| Value::from(k.as_str()))
                    .collect::<Vec<_>>(),
            ),
        );
        obj.insert(
            "ids".into(),
            Value::Object(
                self.names
                    .ids
                    .iter()
                    .map(|(file, id)| (file.clone(), Value::from(id.as_str())))
                    .collect(),
            ),
        );
        Value::Object(obj).to_string().into_bytes()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, CompatError> {
        let value = CompatError::parse(bytes)?;
        let bad = |reason: &str| CompatError::InvalidValue {
            path: String::new(),
            reason: reason.to_owned(),
        };
        let obj = value.as_object().ok_or_else(|| bad("not an object"))?;
        match obj.get("format").and_then(Value::as_str) {
            Some(REGISTRY_FORMAT) => {}
            other => {
                return Err(bad(&format!(
                    "unsupported registry format {other:?} (this build reads {REGISTRY_FORMAT})"
                )));
            }
        }
        let flavour = match obj.get("flavour") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(Flavour::from_name)
                    .ok_or_else(|| bad("unknown flavour"))?,
            ),
        };
        let mut names = Names::default();
        for kind in obj
            .get("otherKinds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = kind.as_str().ok_or_else(|| bad("a kind is not a string"))?;
            let kind = OtherKind::new(name).map_err(|e| bad(&e.to_string()))?;
            names.other_kinds.insert(kind);
        }
        let ids: BTreeMap<String, String> = obj
            .get("ids")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(file, id)| {
                id.as_str()
                    .map(|id| (file.clone(), id.to_owned()))
                    .ok_or_else(|| bad("an id is not a string"))
            })
            .collect::<Result<_, _>>()?;
        names.ids = ids;
        Ok(Self { flavour, names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_round_trip_and_torn_ones_are_incomplete() {
        let journal = Journal {
            ops: vec![
                Op::Rename {
                    temp: format!("{TEMP_PREFIX}1-0"),
                    target: "session-1.0.json".into(),
                },
                Op::Delete("pre-key-5.json".into()),
                Op::Rename {
                    temp: format!("{TEMP_PREFIX}1-1"),
                    target: REGISTRY_FILE.into(),
                },
            ],
        };
        let bytes = journal.to_bytes();
        assert_eq!(Journal::from_bytes(&bytes).unwrap(), Some(journal));
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(
                Journal::from_bytes(&bytes[..cut]).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        assert_eq!(Journal::from_bytes(&[0; 64]).unwrap(), None);
    }

    #[test]
    fn journals_never_touch_other_files() {
        for op in [
            r#"["rename", "../x", "creds.json"]"#,
            r#"["rename", ".wa-store-compat.tmp-1", "../creds.json"]"#,
            r#"["rename", ".wa-store-compat.tmp-1", ".DS_Store"]"#,
            r#"["delete", ".wa-store-compat.lock"]"#,
            r#"["delete", "a/b"]"#,
            r#"["copy", "a", "b"]"#,
        ] {
            let text = format!(r#"{{"format": "{JOURNAL_FORMAT}", "ops": [{op}]}}"#);
            assert!(Journal::from_bytes(text.as_bytes()).is_err(), "{op}");
        }
        let newer = br#"{"format": "wa-store-compat-journal/2", "ops": []}"#;
        assert!(Journal::from_bytes(newer).is_err());
    }

    #[test]
    fn registries_round_trip() {
        let mut registry = Registry {
            flavour: Some(Flavour::Baileys6),
            names: Names::default(),
        };
        registry
            .names
            .other_kinds
            .insert(OtherKind::new("future-kind").unwrap());
        registry
            .names
            .ids
            .insert("future-kind-x__y-z.json".into(), "x/y:z".into());
        assert_eq!(
            Registry::from_bytes(&registry.to_bytes()).unwrap(),
            registry
        );
        assert!(Registry::from_bytes(b"{}").is_err());
        assert!(Registry::from_bytes(b"").is_err());
    }
}
