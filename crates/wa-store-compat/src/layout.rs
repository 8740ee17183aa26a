//! The folder layout: which file holds which key, and which files are not part of the layout.
//!
//! Baileys' `useMultiFileAuthState` keeps `creds.json` and one file per key, named
//! `fixFileName("<kind>-<id>.json")`, where `fixFileName` replaces every `/` with `__` and every
//! `:` with `-` ([`key_file_name`]). It only ever opens the names it computes from a kind and an
//! id; reading a folder needs the inverse ([`Names::classify`]):
//!
//! 1. `creds.json` is the creds; names starting with `.wa-store-compat` are this store's own
//!    files (lock, registry, journal, temp files); any other name starting with `.`, any name
//!    not ending in `.json`, and anything that is not a regular file are *unrecognised*.
//! 2. The kind is the longest known kind `K` such that the name starts with `K-` (so
//!    `sender-key-memory-…` is a sender-key memory, not a sender key with id `memory-…`).
//!    Known kinds are Baileys' ten and the other kinds registered in the folder's registry or
//!    in the options; a name with no known kind prefix (`unknown-type-123.json`) is
//!    unrecognised — its kind boundary cannot be known.
//! 3. The id is the rest, with `__` turned back into `/` and, for sender keys, the last two `--`
//!    turned back into `::` (`<group>::<user>::<device>`; legacy group ids such as
//!    `4915112345678-1612345678@g.us` keep their `-`). An id this store wrote that does not
//!    come back this way (say `c:d`, filed as `c-d`) is recorded in the registry under its file
//!    name, and that record wins.
//! 4. The id must be valid for its kind (a pre-key id is a decimal number, a session id a
//!    Signal address `name.device`, a sender-key id `<group>::<user>::<device>`, an app-state
//!    key id base64), and `fixFileName` of kind and id must give back exactly the file's name.
//!    Otherwise the file is unrecognised: a stray copy named `…@g.us::155…::17.json` or
//!    `app-state-sync-key-AAAAAP%2F6.json` can never shadow the canonical file, as Baileys
//!    would never open it either.
//!
//! Unrecognised files are reported (see [`FolderReport`](crate::FolderReport)) and never
//! touched.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use wa_auth::key::OtherKind;
use wa_auth::{KeyId, KeyKind};
use wa_signal::{SenderKeyName, SignalAddress};

/// The creds file.
pub const CREDS_FILE: &str = "creds.json";

/// Prefix of every file this store adds to a folder (Baileys never opens a name starting with
/// `.`, since every name it computes starts with a kind).
pub(crate) const OWN_PREFIX: &str = ".wa-store-compat";

/// The lock file, held while a store is open for writing; it holds the owner's pid.
pub const LOCK_FILE: &str = ".wa-store-compat.lock";

/// The registry: the flavour written, other kinds written, and ids that do not survive
/// `fixFileName` (see the module docs).
pub const REGISTRY_FILE: &str = ".wa-store-compat.json";

/// The commit journal (see `docs/format-compat.md`).
pub(crate) const JOURNAL_FILE: &str = ".wa-store-compat.journal";

/// Prefix of temp files (a commit's new files before they are renamed into place).
pub(crate) const TEMP_PREFIX: &str = ".wa-store-compat.tmp-";

/// Longest file name most file systems accept, in bytes.
pub(crate) const MAX_FILE_NAME: usize = 255;

/// What a damaged file named `name` holds, for [`AuthError::Corrupt`](wa_auth::AuthError::Corrupt):
/// the creds for `creds.json`, the store's own data for anything else found where a file of the
/// folder belongs (key files are named by the code that knows their kind and id).
pub(crate) fn corrupt_item(name: &str) -> wa_auth::CorruptItem {
    if name == CREDS_FILE {
        wa_auth::CorruptItem::Creds
    } else {
        wa_auth::CorruptItem::Store
    }
}

/// Baileys' `fixFileName`: `/` -> `__`, `:` -> `-`.
pub(crate) fn fix_file_name(name: &str) -> String {
    name.replace('/', "__").replace(':', "-")
}

/// The file name of a key: `fixFileName("<kind>-<id>.json")`.
pub fn key_file_name(kind: &KeyKind, id: &KeyId) -> String {
    fix_file_name(&format!("{}-{}.json", kind.as_str(), id.as_str()))
}

/// Why a file is not part of the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unrecognised {
    /// A directory, symlink or other non-regular file.
    NotAFile,
    /// The name is not valid UTF-8.
    NotUtf8,
    /// A hidden (dot) file that is not this store's.
    Hidden,
    /// The name does not end in `.json`.
    NotJson,
    /// The name starts with no known kind (it may be a kind this version does not know;
    /// register it with [`CompatStoreOptions::other_kind`](crate::CompatStoreOptions::other_kind)).
    UnknownKind,
    /// The id is not valid for the kind.
    InvalidId {
        /// The kind the name starts with.
        kind: KeyKind,
        /// What is wrong with the id.
        reason: String,
    },
    /// `fixFileName` of the kind and id read from the name is another name: Baileys would
    /// never open this file.
    NotCanonical {
        /// The kind the name starts with.
        kind: KeyKind,
        /// The name Baileys would use for that kind and id.
        canonical: String,
    },
}

impl fmt::Display for Unrecognised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrecognised::NotAFile => f.write_str("not a regular file"),
            Unrecognised::NotUtf8 => f.write_str("name is not UTF-8"),
            Unrecognised::Hidden => f.write_str("hidden file not written by this store"),
            Unrecognised::NotJson => f.write_str("not a .json file"),
            Unrecognised::UnknownKind => f.write_str("name starts with no known key kind"),
            Unrecognised::InvalidId { kind, reason } => {
                write!(f, "not a valid {kind} id: {reason}")
            }
            Unrecognised::NotCanonical { kind, canonical } => write!(
                f,
                "not the name Baileys uses for that {kind} key (it would open {canonical})"
            ),
        }
    }
}

/// What a file in the folder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileClass {
    /// `creds.json`.
    Creds,
    /// A key file.
    Key {
        /// Its kind.
        kind: KeyKind,
        /// Its id.
        id: KeyId,
    },
    /// One of this store's own files (lock, registry, journal, temp file).
    Own,
    /// Not part of the layout.
    Unrecognised(Unrecognised),
}

/// The kinds recognised in file names and the registered exact ids.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Other kinds recognised besides Baileys' ten.
    pub other_kinds: BTreeSet<OtherKind>,
    /// File name -> exact id, for ids that `fixFileName` does not preserve.
    pub ids: BTreeMap<String, String>,
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Names")
            .field(
                "other_kinds",
                &self
                    .other_kinds
                    .iter()
                    .map(OtherKind::as_str)
                    .collect::<Vec<_>>(),
            )
            .field("ids", &self.ids)
            .finish()
    }
}

impl Names {
    /// Classifies a file name (of a regular file).
    pub fn classify(&self, name: &str) -> FileClass {
        if name == CREDS_FILE {
            return FileClass::Creds;
        }
        if name.starts_with(OWN_PREFIX) {
            return FileClass::Own;
        }
        if name.starts_with('.') {
            return FileClass::Unrecognised(Unrecognised::Hidden);
        }
        let Some(stem) = name.strip_suffix(".json") else {
            return FileClass::Unrecognised(Unrecognised::NotJson);
        };
        let Some((kind, rest)) = self.kind_prefix(stem) else {
            return FileClass::Unrecognised(Unrecognised::UnknownKind);
        };
        let recorded = self
            .ids
            .get(name)
            .map(|id| KeyId::new(id.as_str()))
            .filter(|id| id.validate().is_ok() && key_file_name(&kind, id) == name);
        let id = match recorded {
            Some(id) => id,
            None => {
                let id = KeyId::new(restore_id(&kind, rest));
                if let Err(reason) = check_id(&kind, &id) {
                    return FileClass::Unrecognised(Unrecognised::InvalidId { kind, reason });
                }
                id
            }
        };
        let canonical = key_file_name(&kind, &id);
        if canonical != name {
            return FileClass::Unrecognised(Unrecognised::NotCanonical { kind, canonical });
        }
        FileClass::Key { kind, id }
    }

    /// The longest known kind `K` with `stem` starting with `K-` and something after it.
    fn kind_prefix<'s>(&self, stem: &'s str) -> Option<(KeyKind, &'s str)> {
        KeyKind::KNOWN
            .iter()
            .cloned()
            .chain(self.other_kinds.iter().cloned().map(KeyKind::Other))
            .filter_map(|kind| {
                let rest = stem.strip_prefix(kind.as_str())?.strip_prefix('-')?;
                (!rest.is_empty()).then_some((kind, rest))
            })
            .max_by_key(|(kind, _)| kind.as_str().len())
    }
}

/// The id a file name stands for, undoing `fixFileName` where it can be undone.
fn restore_id(kind: &KeyKind, rest: &str) -> String {
    let id = rest.replace("__", "/");
    if *kind != KeyKind::SenderKey {
        return id;
    }
    // `<group>--<user>--<device>`: only the last two `--` are separators.
    let Some((head, device)) = id.rsplit_once("--") else {
        return id;
    };
    let Some((group, user)) = head.rsplit_once("--") else {
        return id;
    };
    format!("{group}::{user}::{device}")
}

/// Whether `id` is a valid id of `kind` as Baileys writes them.
pub(crate) fn check_id(kind: &KeyKind, id: &KeyId) -> Result<(), String> {
    id.validate().map_err(|e| e.to_string())?;
    let text = id.as_str();
    match kind {
        KeyKind::PreKey => match text.parse::<u32>() {
            Ok(n) if n.to_string() == text => Ok(()),
            _ => Err("a pre-key id is a decimal number".into()),
        },
        KeyKind::Session | KeyKind::IdentityKey => match SignalAddress::parse(text) {
            Ok(address) if address.to_string() == text => Ok(()),
            _ => Err("expected a Signal address <name>.<device>".into()),
        },
        KeyKind::SenderKey => match SenderKeyName::parse(text) {
            Some(name) if name.to_string() == text => Ok(()),
            _ => Err("expected <group>::<user>::<device>".into()),
        },
        KeyKind::AppStateSyncKey => {
            if text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            {
                Ok(())
            } else {
                Err("an app-state sync key id is base64".into())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: KeyKind, id: &str) -> FileClass {
        FileClass::Key {
            kind,
            id: KeyId::new(id),
        }
    }

    #[test]
    fn baileys_names_map_to_kinds_and_ids() {
        let names = Names::default();
        let cases = [
            (
                "session-4915112345678.0.json",
                key(KeyKind::Session, "4915112345678.0"),
            ),
            (
                "session-123456789012345_1.2.json",
                key(KeyKind::Session, "123456789012345_1.2"),
            ),
            ("pre-key-10.json", key(KeyKind::PreKey, "10")),
            (
                "sender-key-120363025246125888@g.us--15550100001--17.json",
                key(
                    KeyKind::SenderKey,
                    "120363025246125888@g.us::15550100001::17",
                ),
            ),
            (
                "sender-key-4915112345678-1612345678@g.us--4915112345678--0.json",
                key(
                    KeyKind::SenderKey,
                    "4915112345678-1612345678@g.us::4915112345678::0",
                ),
            ),
            (
                "sender-key-120363099887766554@g.us--210987654321098_1--3.json",
                key(
                    KeyKind::SenderKey,
                    "120363099887766554@g.us::210987654321098_1::3",
                ),
            ),
            (
                "sender-key-memory-120363025246125888@g.us.json",
                key(KeyKind::SenderKeyMemory, "120363025246125888@g.us"),
            ),
            (
                "app-state-sync-key-AAAAAP__6.json",
                key(KeyKind::AppStateSyncKey, "AAAAAP/6"),
            ),
            (
                "app-state-sync-version-critical_block.json",
                key(KeyKind::AppStateSyncVersion, "critical_block"),
            ),
            (
                "lid-mapping-100000000000001_reverse.json",
                key(KeyKind::LidMapping, "100000000000001_reverse"),
            ),
            (
                "device-list-15550100001.json",
                key(KeyKind::DeviceList, "15550100001"),
            ),
            (
                "tctoken-210987654321098@lid.json",
                key(KeyKind::TcToken, "210987654321098@lid"),
            ),
            (
                "identity-key-4915112345678.0.json",
                key(KeyKind::IdentityKey, "4915112345678.0"),
            ),
            ("creds.json", FileClass::Creds),
            (".wa-store-compat.lock", FileClass::Own),
        ];
        for (name, expected) in cases {
            assert_eq!(names.classify(name), expected, "{name}");
            if let FileClass::Key { kind, id } = expected {
                assert_eq!(key_file_name(&kind, &id), name);
            }
        }
    }

    #[test]
    fn stray_files_are_unrecognised() {
        let names = Names::default();
        for (name, reason) in [
            (".DS_Store", "hidden"),
            ("notes.txt", "json"),
            ("creds.json.bak", "json"),
            ("unknown-type-123.json", "kind"),
            (
                "sender-key-120363025246125888@g.us::15550100001::17.json",
                "baileys uses",
            ),
            ("app-state-sync-key-AAAAAP%2F6.json", "base64"),
            ("pre-key-010.json", "decimal"),
            ("pre-key-x.json", "decimal"),
            ("session-abc.json", "address"),
            ("session-.json", "kind"),
        ] {
            match names.classify(name) {
                FileClass::Unrecognised(why) => {
                    let text = why.to_string().to_lowercase();
                    assert!(text.contains(reason), "{name}: {text}");
                }
                other => panic!("{name} classified as {other:?}"),
            }
        }
    }

    #[test]
    fn registered_kinds_and_ids_are_recognised() {
        let mut names = Names::default();
        let other = KeyKind::from_name("future-kind").unwrap();
        let id = KeyId::new("x/y:z");
        let file = key_file_name(&other, &id);
        assert_eq!(file, "future-kind-x__y-z.json");
        assert!(matches!(
            names.classify(&file),
            FileClass::Unrecognised(Unrecognised::UnknownKind)
        ));
        if let KeyKind::Other(o) = &other {
            names.other_kinds.insert(o.clone());
        }
        assert_eq!(
            names.classify(&file),
            FileClass::Key {
                kind: other.clone(),
                id: KeyId::new("x/y-z")
            }
        );
        names.ids.insert(file.clone(), id.as_str().to_owned());
        assert_eq!(names.classify(&file), FileClass::Key { kind: other, id });
        // A recorded id that does not produce the name is ignored.
        names.ids.insert("lid-mapping-a.json".into(), "b".into());
        assert_eq!(
            names.classify("lid-mapping-a.json"),
            key(KeyKind::LidMapping, "a")
        );
    }
}
