//! The commit journal and the registry: this store's two metadata files, both JSON, both
//! written by temp file + rename.
//!
//! A commit writes every new file under a temp name, then the journal: the renames and deletes
//! that apply it, each with the SHA-256 of the content its file holds before and after the
//! commit. Once the journal is in place the commit has happened, and the operations are
//! carried out. Opening a folder decides from those hashes, for the whole batch at once,
//! whether to finish it, to drop it, or to leave the folder as another program left it (see
//! `recovery`). The journal also identifies the folder's state for read-only views: its
//! `epoch` and `seq` change with every commit. See `docs/format-compat.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use wa_auth::key::OtherKind;

use crate::codec::{CompatError, Flavour};
use crate::layout::{CREDS_FILE, MAX_FILE_NAME, REGISTRY_FILE, TEMP_PREFIX};

/// The journal format this build writes and reads.
pub(crate) const JOURNAL_FORMAT: &str = "wa-store-compat-journal/2";
const JOURNAL_FORMAT_PREFIX: &str = "wa-store-compat-journal/";
const REGISTRY_FORMAT: &str = "wa-store-compat-registry/1";

/// Which state of the folder a journal stands for: a random `epoch` chosen when a store starts
/// a folder's first journal, and `seq`, one more for every commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JournalId {
    pub epoch: String,
    pub seq: u64,
}

impl JournalId {
    /// A new epoch, at sequence 0.
    pub(crate) fn fresh() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        Self {
            epoch: format!("{:016x}", hasher.finish()),
            seq: 0,
        }
    }

    /// The id of the next commit.
    pub(crate) fn next(&self) -> Self {
        Self {
            epoch: self.epoch.clone(),
            seq: self.seq + 1,
        }
    }
}

/// One step of applying a commit. Hashes are lowercase hex SHA-256 of file contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Rename a temp file onto its final name (replacing the old file).
    Rename {
        /// The temp file.
        temp: String,
        /// The final name.
        target: String,
        /// The hash of the new content.
        new: String,
        /// The hash of what the final name held before (`None`: nothing).
        old: Option<String>,
    },
    /// Delete a file.
    Delete {
        /// The file.
        target: String,
        /// The hash of its content before.
        old: String,
    },
}

impl Op {
    /// The file the operation changes.
    pub(crate) fn target(&self) -> &str {
        match self {
            Op::Rename { target, .. } | Op::Delete { target, .. } => target,
        }
    }
}

/// The operations of one commit, in the order they are applied. No operations: a sealed
/// journal, whose commit is complete (it only carries the id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Journal {
    pub id: JournalId,
    pub ops: Vec<Op>,
}

/// Why a journal was not read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JournalError {
    /// Not JSON at all: a torn write (only possible without fsync, after an OS crash).
    Torn,
    /// A journal of another format version.
    Unsupported(String),
    /// JSON, but not a valid journal.
    Invalid(String),
}

impl Journal {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let ops: Vec<Value> = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Rename {
                    temp,
                    target,
                    new,
                    old,
                } => json!(["rename", temp, target, new, old]),
                Op::Delete { target, old } => json!(["delete", target, old]),
            })
            .collect();
        let value = json!({
            "format": JOURNAL_FORMAT,
            "epoch": self.id.epoch,
            "seq": self.id.seq,
            "ops": ops,
        });
        value.to_string().into_bytes()
    }

    /// Parses a journal, strictly: exactly the fields and operations of the format, names the
    /// store may touch, each at most once.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, JournalError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| JournalError::Torn)?;
        let invalid = |reason: &str| JournalError::Invalid(reason.to_owned());
        let obj = value.as_object().ok_or_else(|| invalid("not an object"))?;
        match obj.get("format").and_then(Value::as_str) {
            Some(JOURNAL_FORMAT) => {}
            Some(other) if other.starts_with(JOURNAL_FORMAT_PREFIX) => {
                let version = &other[JOURNAL_FORMAT_PREFIX.len()..];
                return Err(JournalError::Unsupported(version.to_owned()));
            }
            _ => return Err(invalid("no \"format\": \"wa-store-compat-journal/<n>\"")),
        }
        let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
        fields.sort_unstable();
        if fields != ["epoch", "format", "ops", "seq"] {
            return Err(invalid("fields must be exactly format, epoch, seq and ops"));
        }
        let epoch = obj["epoch"]
            .as_str()
            .filter(|e| e.len() == 16 && is_lower_hex(e))
            .ok_or_else(|| invalid("epoch must be 16 lowercase hex digits"))?;
        let seq = obj["seq"]
            .as_u64()
            .ok_or_else(|| invalid("seq must be a non-negative integer"))?;
        let ops = obj["ops"]
            .as_array()
            .ok_or_else(|| invalid("ops must be an array"))?
            .iter()
            .map(parse_op)
            .collect::<Result<Vec<Op>, String>>()
            .map_err(JournalError::Invalid)?;
        check_unique(&ops).map_err(JournalError::Invalid)?;
        let id = JournalId {
            epoch: epoch.to_owned(),
            seq,
        };
        Ok(Self { id, ops })
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hash_field(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .filter(|h| h.len() == 64 && is_lower_hex(h))
        .map(str::to_owned)
        .ok_or_else(|| format!("{value} is not a SHA-256 in lowercase hex"))
}

fn name_field(value: &Value, ok: fn(&str) -> bool, what: &str) -> Result<String, String> {
    value
        .as_str()
        .filter(|name| ok(name))
        .map(str::to_owned)
        .ok_or_else(|| format!("{value} is not {what}"))
}

fn parse_op(op: &Value) -> Result<Op, String> {
    let parts = op.as_array().map(Vec::as_slice).unwrap_or_default();
    match parts {
        [kind, temp, target, new, old] if kind == "rename" => Ok(Op::Rename {
            temp: name_field(temp, is_temp_name, "a temp file of this store")?,
            target: name_field(target, is_rename_target, "a file of the layout")?,
            new: hash_field(new)?,
            old: match old {
                Value::Null => None,
                other => Some(hash_field(other)?),
            },
        }),
        [kind, target, old] if kind == "delete" => Ok(Op::Delete {
            target: name_field(target, is_key_file_name, "a key file")?,
            old: hash_field(old)?,
        }),
        _ => Err(format!("unknown operation {op}")),
    }
}

fn check_unique(ops: &[Op]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for op in ops {
        let temp = match op {
            Op::Rename { temp, .. } => Some(temp.as_str()),
            Op::Delete { .. } => None,
        };
        for name in temp.into_iter().chain([op.target()]) {
            if !seen.insert(name) {
                return Err(format!("{name} appears twice"));
            }
        }
    }
    Ok(())
}

/// A single name inside the folder: no path, no `.`/`..`, at most 255 bytes.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
}

fn is_temp_name(name: &str) -> bool {
    plain_name(name) && name.len() > TEMP_PREFIX.len() && name.starts_with(TEMP_PREFIX)
}

/// A key file: a plain name ending in `.json`, not hidden, not `creds.json`.
pub(crate) fn is_key_file_name(name: &str) -> bool {
    plain_name(name) && name.ends_with(".json") && !name.starts_with('.') && name != CREDS_FILE
}

fn is_rename_target(name: &str) -> bool {
    name == CREDS_FILE || name == REGISTRY_FILE || is_key_file_name(name)
}

/// The registry: what this store needs to read back what it wrote, beyond Baileys' layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Registry {
    /// The flavour last written.
    pub flavour: Option<Flavour>,
    /// Other kinds written and ids `fixFileName` does not preserve.
    pub names: crate::layout::Names,
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
        let mut names = crate::layout::Names::default();
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
    use crate::layout::Names;

    const H1: &str = "abababababababababababababababababababababababababababababababab";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn sample() -> Journal {
        Journal {
            id: JournalId {
                epoch: "0123456789abcdef".into(),
                seq: 7,
            },
            ops: vec![
                Op::Rename {
                    temp: format!("{TEMP_PREFIX}1-0"),
                    target: "session-1.0.json".into(),
                    new: H1.into(),
                    old: None,
                },
                Op::Delete {
                    target: "pre-key-5.json".into(),
                    old: H2.into(),
                },
                Op::Rename {
                    temp: format!("{TEMP_PREFIX}1-1"),
                    target: REGISTRY_FILE.into(),
                    new: H2.into(),
                    old: Some(H1.into()),
                },
                Op::Rename {
                    temp: format!("{TEMP_PREFIX}1-2"),
                    target: CREDS_FILE.into(),
                    new: H2.into(),
                    old: Some(H1.into()),
                },
            ],
        }
    }

    #[test]
    fn journals_round_trip_and_torn_ones_are_told_apart() {
        let journal = sample();
        let bytes = journal.to_bytes();
        assert_eq!(Journal::from_bytes(&bytes), Ok(journal));
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(
                Journal::from_bytes(&bytes[..cut]),
                Err(JournalError::Torn),
                "cut at {cut}"
            );
        }
        assert_eq!(Journal::from_bytes(&[0; 64]), Err(JournalError::Torn));
        let other = br#"{"format":"wa-store-compat-journal/1","ops":[]}"#;
        assert_eq!(
            Journal::from_bytes(other),
            Err(JournalError::Unsupported("1".into()))
        );
    }

    /// A valid journal with `op` as its only operation, or with a top-level field replaced.
    fn with(op: &str) -> String {
        format!(
            r#"{{"format":"{JOURNAL_FORMAT}","epoch":"0123456789abcdef","seq":1,"ops":[{op}]}}"#
        )
    }

    #[test]
    fn journals_are_read_strictly() {
        let ok = format!(r#"["rename",".wa-store-compat.tmp-1","creds.json","{H1}",null]"#);
        assert!(Journal::from_bytes(with(&ok).as_bytes()).is_ok());
        let tmp = ".wa-store-compat.tmp-1";
        let bad_ops = [
            format!(r#"["rename","../x","creds.json","{H1}",null]"#),
            format!(r#"["rename","{tmp}","../creds.json","{H1}",null]"#),
            format!(r#"["rename","{tmp}",".DS_Store","{H1}",null]"#),
            format!(r#"["rename","{tmp}","notes.txt","{H1}",null]"#),
            format!(r#"["rename","{tmp}",".wa-store-compat.lock","{H1}",null]"#),
            format!(r#"["rename",".wa-store-compat.tmp-","creds.json","{H1}",null]"#),
            format!(r#"["rename","creds.json","session-1.0.json","{H1}",null]"#),
            format!(
                r#"["rename","{tmp}","creds.json","{}",null]"#,
                H1.to_uppercase()
            ),
            format!(r#"["rename","{tmp}","creds.json","abc",null]"#),
            format!(r#"["rename","{tmp}","creds.json"]"#),
            format!(r#"["delete","creds.json","{H1}"]"#),
            format!(r#"["delete","{REGISTRY_FILE}","{H1}"]"#),
            format!(r#"["delete",".wa-store-compat.lock","{H1}"]"#),
            format!(r#"["delete","a/b.json","{H1}"]"#),
            r#"["delete","pre-key-1.json",null]"#.to_owned(),
            format!(r#"["delete","pre-key-1.json","{H1}"],["delete","pre-key-1.json","{H1}"]"#),
            r#"["copy","a","b"]"#.to_owned(),
        ];
        for op in bad_ops {
            let err = Journal::from_bytes(with(&op).as_bytes()).unwrap_err();
            assert!(matches!(err, JournalError::Invalid(_)), "{op}: {err:?}");
        }
        let fields = [
            r#"{}"#.to_owned(),
            format!(r#"{{"format":"{JOURNAL_FORMAT}","epoch":"0123456789abcdef","ops":[]}}"#),
            format!(r#"{{"format":"{JOURNAL_FORMAT}","epoch":"XYZ","seq":1,"ops":[]}}"#),
            format!(
                r#"{{"format":"{JOURNAL_FORMAT}","epoch":"0123456789abcdef","seq":-1,"ops":[]}}"#
            ),
            with("").replace("\"ops\"", "\"extra\":1,\"ops\""),
            r#"[]"#.to_owned(),
        ];
        for text in fields {
            let err = Journal::from_bytes(text.as_bytes()).unwrap_err();
            assert!(matches!(err, JournalError::Invalid(_)), "{text}: {err:?}");
        }
    }

    #[test]
    fn every_commit_has_its_own_id() {
        let id = JournalId::fresh();
        assert_eq!(id.seq, 0);
        assert_ne!(id.next(), id);
        assert_ne!(JournalId::fresh().epoch, id.epoch);
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
