//! Opening a folder: recovery of an interrupted commit, the registry, the index of every file
//! (listed once; values are read when asked for), and the flavour.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::SystemTime;

use tracing::{info, warn};
use wa_auth::{AuthError, KeyId, KeyKind, Result};

use crate::codec::{self, CompatError, Flavour, buffer_json};
use crate::fsio::{read_if_exists, remove_if_exists, sync_dir};
use crate::journal::{Journal, Op, Registry};
use crate::layout::{FileClass, JOURNAL_FILE, Names, REGISTRY_FILE, TEMP_PREFIX, Unrecognised};
use crate::options::{CompatStoreOptions, ReadMode};
use crate::report::{FlavourSource, Recovery};

/// A key file in the index.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub kind: KeyKind,
    pub id: KeyId,
    /// Where its content is when not under its own name (a read-only view of a commit whose
    /// journal has not been replayed).
    pub physical: Option<String>,
}

/// What the store knows of its folder: every key file, the creds, the registry.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub files: HashMap<String, Entry>,
    pub by_kind: HashMap<KeyKind, BTreeSet<KeyId>>,
    /// Where the creds are (`creds.json`, or a temp file in a read-only view); `None`: none.
    pub creds: Option<String>,
    pub registry: Registry,
    pub registry_on_disk: bool,
    pub unrecognised: BTreeMap<String, Unrecognised>,
}

impl View {
    pub(crate) fn insert(
        &mut self,
        name: String,
        kind: KeyKind,
        id: KeyId,
        physical: Option<String>,
    ) {
        if let Some(old) = self.files.remove(&name) {
            self.forget(&old);
        }
        self.by_kind
            .entry(kind.clone())
            .or_default()
            .insert(id.clone());
        self.files.insert(name, Entry { kind, id, physical });
    }

    pub(crate) fn remove(&mut self, name: &str) {
        if let Some(old) = self.files.remove(name) {
            self.forget(&old);
        }
    }

    fn forget(&mut self, entry: &Entry) {
        if let Some(ids) = self.by_kind.get_mut(&entry.kind) {
            ids.remove(&entry.id);
            if ids.is_empty() {
                self.by_kind.remove(&entry.kind);
            }
        }
    }

    /// The names in effect: the registry's and the kinds given in the options.
    pub(crate) fn names(&self, options: &CompatStoreOptions) -> Names {
        let mut names = self.registry.names.clone();
        names
            .other_kinds
            .extend(options.other_kinds.iter().cloned());
        names
    }
}

/// Everything learnt when opening.
pub(crate) struct Opened {
    pub view: View,
    pub recovery: Recovery,
    pub flavour: Flavour,
    pub flavour_source: FlavourSource,
    /// The field order of the creds file, kept when it is rewritten.
    pub creds_order: Vec<String>,
    pub registry_error: Option<String>,
}

fn corrupt(dir: &Path, name: &str, source: CompatError) -> AuthError {
    AuthError::corrupt(dir.join(name).display().to_string(), source)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Replays or discards an interrupted commit. In a read-only open nothing is changed; the
/// returned overlay maps names to the temp files holding their committed content (`None`:
/// deleted).
fn recover(
    dir: &Path,
    options: &CompatStoreOptions,
) -> Result<(Recovery, BTreeMap<String, Option<String>>)> {
    let mut recovery = Recovery::Clean;
    let mut overlay = BTreeMap::new();
    if let Some(bytes) = read_if_exists(&dir.join(JOURNAL_FILE))? {
        match Journal::from_bytes(&bytes).map_err(|e| corrupt(dir, JOURNAL_FILE, e))? {
            Some(journal) => {
                // The commit point: a target changed after it was changed by another program
                // (Baileys taking the folder over after a crash), whose write must win.
                let committed = modified(&dir.join(JOURNAL_FILE));
                let changed_since = |name: &str| {
                    modified(&dir.join(name)).is_some_and(|m| committed.is_some_and(|c| m > c))
                };
                let (mut renamed, mut deleted, mut superseded) = (0, 0, 0);
                for op in journal.ops {
                    match op {
                        Op::Rename { temp, target } => {
                            let from = dir.join(&temp);
                            if !from.is_file() {
                                continue; // applied before the crash
                            }
                            if changed_since(&target) {
                                superseded += 1;
                                if !options.read_only {
                                    remove_if_exists(&from)?;
                                }
                            } else if options.read_only {
                                overlay.insert(target, Some(temp));
                            } else {
                                std::fs::rename(&from, dir.join(&target))
                                    .map_err(|e| AuthError::io(&from, e))?;
                                renamed += 1;
                            }
                        }
                        Op::Delete(name) => {
                            if !dir.join(&name).exists() {
                                continue;
                            }
                            if changed_since(&name) {
                                superseded += 1;
                            } else if options.read_only {
                                overlay.insert(name, None);
                            } else if remove_if_exists(&dir.join(&name))? {
                                deleted += 1;
                            }
                        }
                    }
                }
                if superseded > 0 {
                    warn!(
                        superseded,
                        "files changed by another program after an interrupted commit were kept"
                    );
                }
                if options.read_only {
                    if !overlay.is_empty() {
                        recovery = Recovery::PendingReadOnly;
                    }
                } else {
                    sync_dir(dir)?;
                    remove_if_exists(&dir.join(JOURNAL_FILE))?;
                    if renamed + deleted + superseded > 0 {
                        info!(renamed, deleted, "rolled an interrupted commit forward");
                        recovery = Recovery::RolledForward {
                            renamed,
                            deleted,
                            superseded,
                        };
                    }
                }
            }
            None if options.read_only => {}
            None => {
                warn!("discarding an incomplete commit journal");
                remove_if_exists(&dir.join(JOURNAL_FILE))?;
                recovery = Recovery::RolledBack { temp_files: 0 };
            }
        }
    }
    if !options.read_only {
        let mut removed = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| AuthError::io(dir, e))? {
            let entry = entry.map_err(|e| AuthError::io(dir, e))?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX))
            {
                remove_if_exists(&entry.path())?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(dir)?;
            match &mut recovery {
                Recovery::RolledBack { temp_files } => *temp_files += removed,
                Recovery::Clean => {
                    info!(removed, "discarded the temp files of an interrupted commit");
                    recovery = Recovery::RolledBack {
                        temp_files: removed,
                    };
                }
                _ => {}
            }
        }
    }
    Ok((recovery, overlay))
}

/// Opens the folder `dir` (which exists): recovery, registry, index, flavour.
pub(crate) fn open_folder(dir: &Path, options: &CompatStoreOptions) -> Result<Opened> {
    let (recovery, overlay) = recover(dir, options)?;
    let physical = |name: &str| -> Option<String> {
        match overlay.get(name) {
            Some(Some(temp)) => Some(temp.clone()),
            Some(None) => None,
            None => Some(name.to_owned()),
        }
    };

    let mut view = View::default();
    let mut registry_error = None;
    if let Some(name) = physical(REGISTRY_FILE)
        && let Some(bytes) = read_if_exists(&dir.join(&name))?
    {
        match Registry::from_bytes(&bytes) {
            Ok(registry) => {
                view.registry = registry;
                view.registry_on_disk = true;
            }
            Err(e) if options.mode == ReadMode::Lenient => {
                warn!(error = %e, "ignoring an unreadable {REGISTRY_FILE}");
                registry_error = Some(e.to_string());
            }
            Err(e) => return Err(corrupt(dir, REGISTRY_FILE, e)),
        }
    }
    let names = view.names(options);

    let mut sender_keys: Vec<(SystemTime, String)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| AuthError::io(dir, e))? {
        let entry = entry.map_err(|e| AuthError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            let shown = entry.file_name().to_string_lossy().into_owned();
            view.unrecognised.insert(shown, Unrecognised::NotUtf8);
            continue;
        };
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if overlay.contains_key(&name) {
            continue; // placed below from the journal
        }
        match names.classify(&name) {
            FileClass::Own => {}
            _ if !is_file => {
                view.unrecognised
                    .insert(format!("{name}/"), Unrecognised::NotAFile);
            }
            FileClass::Creds => view.creds = Some(name),
            FileClass::Key { kind, id } => {
                if kind == KeyKind::SenderKey && options.flavour.is_none() {
                    let modified = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    sender_keys.push((modified, name.clone()));
                }
                view.insert(name, kind, id, None);
            }
            FileClass::Unrecognised(why) => {
                view.unrecognised.insert(name, why);
            }
        }
    }
    for (name, temp) in &overlay {
        let Some(temp) = temp else { continue };
        match names.classify(name) {
            FileClass::Creds => view.creds = Some(temp.clone()),
            FileClass::Key { kind, id } => view.insert(name.clone(), kind, id, Some(temp.clone())),
            _ => {}
        }
    }

    let creds_json = view
        .creds
        .as_ref()
        .and_then(|name| std::fs::read(dir.join(name)).ok())
        .and_then(|bytes| CompatError::parse(&bytes).ok());

    let creds_order = creds_json
        .as_ref()
        .map(codec::creds::field_order)
        .unwrap_or_default();
    let (flavour, flavour_source) =
        detect_flavour(dir, options, &view, sender_keys, creds_json.as_ref());
    Ok(Opened {
        view,
        recovery,
        flavour,
        flavour_source,
        creds_order,
        registry_error,
    })
}

fn detect_flavour(
    dir: &Path,
    options: &CompatStoreOptions,
    view: &View,
    mut sender_keys: Vec<(SystemTime, String)>,
    creds: Option<&serde_json::Value>,
) -> (Flavour, FlavourSource) {
    if let Some(flavour) = options.flavour {
        return (flavour, FlavourSource::Option);
    }
    // The newest sender-key file shows what the Baileys using the folder writes now.
    sender_keys.sort();
    for (_, name) in sender_keys.iter().rev() {
        let Some(value) = std::fs::read(dir.join(name))
            .ok()
            .and_then(|bytes| CompatError::parse(&bytes).ok())
        else {
            continue;
        };
        if value.is_array() {
            return (Flavour::Baileys6, FlavourSource::SenderKeyFiles);
        }
        if buffer_json::is_buffer(&value) {
            return (Flavour::Baileys7, FlavourSource::SenderKeyFiles);
        }
    }
    if let Some(flavour) = view.registry.flavour {
        return (flavour, FlavourSource::Registry);
    }
    if Flavour::BAILEYS7_KINDS
        .iter()
        .any(|k| view.by_kind.contains_key(k))
    {
        return (Flavour::Baileys7, FlavourSource::Baileys7Kinds);
    }
    creds
        .and_then(|c| c.pointer("/signalIdentities/0/identifier/name"))
        .and_then(serde_json::Value::as_str)
        .and_then(Flavour::of_own_identity)
        .map_or((Flavour::Baileys7, FlavourSource::Default), |flavour| {
            (flavour, FlavourSource::Creds)
        })
}
