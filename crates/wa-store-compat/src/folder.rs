//! Opening a folder: refusal of what it must not open, recovery of an interrupted commit, the
//! registry, the index of every file (listed once; values are read when asked for), and the
//! flavour. A read-only open changes nothing and records which state of the folder it indexed
//! (the journal's id), so that every later read can prove it still reads that state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;
use tracing::warn;
use wa_auth::{AuthError, KeyId, KeyKind, Result};

use crate::codec::{CompatError, Flavour, buffer_json};
use crate::fsio::{content_hash, entry_type, read_regular, remove_if_exists, sync_dir};
use crate::journal::{Journal, JournalError, JournalId, Registry};
use crate::layout::{
    CREDS_FILE, FileClass, JOURNAL_FILE, LOCK_FILE, Names, REGISTRY_FILE, Unrecognised,
};
use crate::options::{CompatStoreOptions, ReadMode};
use crate::recovery::{self, Decision, OpState};
use crate::report::{FlavourSource, Recovery};

/// How often a read-only open lists the folder again when the owner commits meanwhile.
const READ_ONLY_ATTEMPTS: usize = 8;

/// The files a native store (`wa-store-native`) keeps in its directory.
const NATIVE_FILES: [&str; 5] = ["snapshot", "log", "lock", "snapshot.tmp", "log.tmp"];

/// Where a file's committed content is when the journal's commit is not applied yet (a
/// read-only view): the temp file, known by the hash of its content.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub temp: String,
    pub hash: String,
}

/// A key file in the index.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub kind: KeyKind,
    pub id: KeyId,
    /// Set when the content is not under its own name yet (a read-only view).
    pub pending: Option<Pending>,
}

/// What the store knows of its folder: every key file, the creds, the registry.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub files: HashMap<String, Entry>,
    pub by_kind: HashMap<KeyKind, BTreeSet<KeyId>>,
    /// `None`: no creds; `Some(None)`: `creds.json`; `Some(Some(p))`: committed content not
    /// in place yet (a read-only view).
    pub creds: Option<Option<Pending>>,
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
        pending: Option<Pending>,
    ) {
        if let Some(old) = self.files.remove(&name) {
            self.forget(&old);
        }
        self.by_kind
            .entry(kind.clone())
            .or_default()
            .insert(id.clone());
        self.files.insert(name, Entry { kind, id, pending });
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

/// Which state of the folder its journal stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// No journal.
    Absent,
    /// A torn journal (its content hash).
    Torn(String),
    /// A journal.
    Id(JournalId),
}

/// The journal found in a folder.
enum Found {
    Absent,
    Torn(String),
    Journal(Journal),
}

impl Found {
    fn token(&self) -> Token {
        match self {
            Found::Absent => Token::Absent,
            Found::Torn(hash) => Token::Torn(hash.clone()),
            Found::Journal(journal) => Token::Id(journal.id.clone()),
        }
    }
}

fn load_journal(dir: &Path) -> Result<Found> {
    let path = dir.join(JOURNAL_FILE);
    let Some(bytes) = read_regular(&path)? else {
        return Ok(Found::Absent);
    };
    match Journal::from_bytes(&bytes) {
        Ok(journal) => Ok(Found::Journal(journal)),
        Err(JournalError::Torn) => Ok(Found::Torn(content_hash(&bytes))),
        Err(JournalError::Unsupported(version)) => Err(AuthError::UnsupportedVersion {
            what: path.display().to_string(),
            version,
            supported: crate::journal::JOURNAL_FORMAT.to_owned(),
        }),
        Err(JournalError::Invalid(reason)) => Err(corrupt(dir, JOURNAL_FILE, {
            CompatError::Journal { reason }
        })),
    }
}

/// The folder's current state id (for a read-only view's checks).
pub(crate) fn current_token(dir: &Path) -> Result<Token> {
    load_journal(dir).map(|found| found.token())
}

/// The error of a read that found the folder changed under it.
pub(crate) fn changed(dir: &Path, name: &str, reason: &str) -> AuthError {
    AuthError::ChangedWhileReading {
        resource: dir.join(name).display().to_string(),
        reason: reason.to_owned(),
    }
}

/// Reads the file `name` of the index: its committed content, never "absent" (a file of the
/// index that is gone means the folder changed).
pub(crate) fn read_indexed(dir: &Path, name: &str, pending: Option<&Pending>) -> Result<Vec<u8>> {
    let Some(pending) = pending else {
        return read_regular(&dir.join(name))?
            .ok_or_else(|| changed(dir, name, "the file disappeared"));
    };
    // The owner may rename the temp file into place at any moment: look in both.
    for candidate in [pending.temp.as_str(), name] {
        if let Some(bytes) = read_regular(&dir.join(candidate))?
            && content_hash(&bytes) == pending.hash
        {
            return Ok(bytes);
        }
    }
    Err(changed(dir, name, "its committed content was replaced"))
}

/// Refuses a directory that holds another backend's store.
pub(crate) fn refuse_other_backends(dir: &Path) -> Result<()> {
    let mut found = Vec::new();
    for name in NATIVE_FILES {
        match std::fs::symlink_metadata(dir.join(name)) {
            Ok(_) => found.push(name),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(AuthError::io(dir.join(name), e)),
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(AuthError::invalid(
        format!("Baileys folder {}", dir.display()),
        format!(
            "it holds {} of a native store (wa-store-native), not a Baileys folder; open it with wa_store_native, or copy its state into a Baileys folder with `cargo xtask migrate --from {} --to <new folder>`",
            found.join(", "),
            dir.display()
        ),
    ))
}

/// Everything learnt when opening.
pub(crate) struct Opened {
    pub scan: Scanned,
    pub recovery: Recovery,
    /// The id of the folder's last journal (the writer continues from it).
    pub journal_id: JournalId,
    /// The state a read-only view indexed.
    pub token: Token,
}

/// What listing the folder found.
pub(crate) struct Scanned {
    pub view: View,
    pub flavour: Flavour,
    pub flavour_source: FlavourSource,
    /// The creds file as read, whose field order a rewrite keeps.
    pub creds_template: Option<Value>,
    pub registry_error: Option<String>,
}

fn corrupt(dir: &Path, name: &str, source: CompatError) -> AuthError {
    let item = crate::layout::corrupt_item(name);
    AuthError::corrupt(item, dir.join(name).display().to_string(), source)
}

/// Opens the folder `dir` (which exists).
pub(crate) fn open_folder(dir: &Path, options: &CompatStoreOptions) -> Result<Opened> {
    if options.read_only {
        return open_read_only(dir, options);
    }
    let (recovery, journal_id) = recover(dir, load_journal(dir)?)?;
    let scan = scan(dir, options, &BTreeMap::new())?;
    Ok(Opened {
        scan,
        recovery,
        journal_id,
        token: Token::Absent,
    })
}

/// Under the lock: resolves the batch of the journal found (see [`recovery`]), removes temp
/// files and seals the journal.
fn recover(dir: &Path, found: Found) -> Result<(Recovery, JournalId)> {
    let (mut outcome, id, journal) = match found {
        Found::Absent => (Recovery::Clean, JournalId::fresh(), None),
        Found::Torn(_) => {
            warn!("discarding an incomplete commit journal");
            remove_if_exists(&dir.join(JOURNAL_FILE))?;
            sync_dir(dir)?;
            let torn = Recovery::RolledBack { temp_files: 0 };
            (torn, JournalId::fresh(), None)
        }
        Found::Journal(journal) => {
            let resolution = recovery::resolve(dir, &journal)?;
            recovery::log(&resolution.decision);
            let outcome = match &resolution.decision {
                Decision::Complete => Recovery::Clean,
                Decision::RollForward => {
                    let (renamed, deleted) = recovery::roll_forward(dir, &journal, &resolution)?;
                    Recovery::RolledForward { renamed, deleted }
                }
                Decision::RollBack => Recovery::RolledBack { temp_files: 0 },
                Decision::Superseded(files) => Recovery::Superseded {
                    files: files.clone(),
                },
            };
            (outcome, journal.id.clone(), Some(journal))
        }
    };
    let removed = recovery::remove_temp_files(dir)?;
    match &mut outcome {
        Recovery::RolledBack { temp_files } => *temp_files += removed,
        Recovery::Clean if removed > 0 => {
            warn!(removed, "discarded the temp files of an interrupted commit");
            outcome = Recovery::RolledBack {
                temp_files: removed,
            };
        }
        _ => {}
    }
    if let Some(journal) = journal.filter(|j| !j.ops.is_empty()) {
        recovery::seal(dir, &journal, true)?;
    }
    Ok((outcome, id))
}

/// Without the lock, changing nothing: indexes the state the journal stands for (a commit in
/// progress or interrupted is applied in memory, as recovery will apply it), and lists the
/// folder again when its owner committed meanwhile.
fn open_read_only(dir: &Path, options: &CompatStoreOptions) -> Result<Opened> {
    for _ in 0..READ_ONLY_ATTEMPTS {
        let found = load_journal(dir)?;
        let token = found.token();
        let listed = match &found {
            Found::Journal(journal) => read_only_overlay(dir, journal),
            Found::Torn(_) => Ok((Recovery::PendingReadOnly, BTreeMap::new())),
            Found::Absent => Ok((Recovery::Clean, BTreeMap::new())),
        }
        .and_then(|(recovery, overlay)| Ok((recovery, scan(dir, options, &overlay)?)));
        // Whatever was found, it only counts if the owner did not commit meanwhile.
        if current_token(dir)? != token {
            continue;
        }
        let (recovery, scan) = listed?;
        return Ok(Opened {
            scan,
            recovery,
            journal_id: JournalId::fresh(),
            token,
        });
    }
    Err(changed(
        dir,
        "",
        &format!("its owner committed while it was listed, {READ_ONLY_ATTEMPTS} times in a row"),
    ))
}

/// Where the committed content of each file of a batch being rolled forward is (`None`:
/// deleted); nothing for a batch recovery leaves as it is.
type Overlay = BTreeMap<String, Option<Pending>>;

fn read_only_overlay(dir: &Path, journal: &Journal) -> Result<(Recovery, Overlay)> {
    let resolution = recovery::resolve(dir, journal)?;
    let mut overlay = Overlay::new();
    match resolution.decision {
        Decision::Complete => return Ok((Recovery::Clean, overlay)),
        Decision::RollForward => {}
        Decision::RollBack | Decision::Superseded(_) => {
            return Ok((Recovery::PendingReadOnly, overlay));
        }
    }
    for (op, state) in journal.ops.iter().zip(&resolution.states) {
        match (op, state) {
            (
                crate::journal::Op::Rename {
                    temp, target, new, ..
                },
                OpState::Pending | OpState::Applied,
            ) => {
                let pending = Pending {
                    temp: temp.clone(),
                    hash: new.clone(),
                };
                overlay.insert(target.clone(), Some(pending));
            }
            (crate::journal::Op::Delete { target, .. }, OpState::Pending) => {
                overlay.insert(target.clone(), None);
            }
            _ => {}
        }
    }
    Ok((Recovery::PendingReadOnly, overlay))
}

/// Lists the folder: registry, index, creds, flavour.
fn scan(dir: &Path, options: &CompatStoreOptions, overlay: &Overlay) -> Result<Scanned> {
    let mut view = View::default();
    let registry_error = read_registry(dir, options, overlay, &mut view)?;
    let names = view.names(options);
    let sender_keys = index(dir, options, &names, overlay, &mut view)?;
    for (name, pending) in overlay {
        let Some(pending) = pending else { continue };
        match names.classify(name) {
            FileClass::Creds => view.creds = Some(Some(pending.clone())),
            FileClass::Key { kind, id } => {
                view.insert(name.clone(), kind, id, Some(pending.clone()))
            }
            _ => {}
        }
    }
    let creds_template = match &view.creds {
        Some(pending) => read_indexed(dir, CREDS_FILE, pending.as_ref())
            .ok()
            .and_then(|bytes| CompatError::parse(&bytes).ok()),
        None => None,
    };
    let (flavour, flavour_source) =
        detect_flavour(dir, options, &view, sender_keys, creds_template.as_ref());
    Ok(Scanned {
        view,
        flavour,
        flavour_source,
        creds_template,
        registry_error,
    })
}

fn read_registry(
    dir: &Path,
    options: &CompatStoreOptions,
    overlay: &Overlay,
    view: &mut View,
) -> Result<Option<String>> {
    let bytes = match overlay.get(REGISTRY_FILE) {
        Some(pending) => Some(read_indexed(dir, REGISTRY_FILE, pending.as_ref())?),
        None => read_regular(&dir.join(REGISTRY_FILE))?,
    };
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    match Registry::from_bytes(&bytes) {
        Ok(registry) => {
            view.registry = registry;
            view.registry_on_disk = true;
            Ok(None)
        }
        Err(e) if options.mode == ReadMode::Lenient => {
            warn!(error = %e, "ignoring an unreadable {REGISTRY_FILE}");
            Ok(Some(e.to_string()))
        }
        Err(e) => Err(corrupt(dir, REGISTRY_FILE, e)),
    }
}

/// Indexes every entry of the folder (except those the overlay places); returns the sender-key
/// files with their times (for the flavour). Refuses entries named like files of the layout
/// that are not regular files.
fn index(
    dir: &Path,
    options: &CompatStoreOptions,
    names: &Names,
    overlay: &Overlay,
    view: &mut View,
) -> Result<Vec<(SystemTime, String)>> {
    let mut sender_keys = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| AuthError::io(dir, e))? {
        let entry = entry.map_err(|e| AuthError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            let shown = entry.file_name().to_string_lossy().into_owned();
            view.unrecognised.insert(shown, Unrecognised::NotUtf8);
            continue;
        };
        let file_type = entry
            .file_type()
            .map_err(|e| AuthError::io(entry.path(), e))?;
        let class = names.classify(&name);
        if !file_type.is_file() {
            let layout = matches!(class, FileClass::Creds | FileClass::Key { .. })
                || (class == FileClass::Own && name != LOCK_FILE);
            if layout {
                refused.push(format!("{name} is {}", entry_type(file_type)));
            } else if file_type.is_dir() {
                view.unrecognised
                    .insert(format!("{name}/"), Unrecognised::NotAFile);
            } else {
                view.unrecognised.insert(name, Unrecognised::NotAFile);
            }
            continue;
        }
        if overlay.contains_key(&name) {
            continue; // placed from the journal
        }
        match class {
            FileClass::Own => {}
            FileClass::Creds => view.creds = Some(None),
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
    if let Some(first) = refused.first() {
        let first = first.split(' ').next().unwrap_or_default();
        return Err(corrupt(dir, first, {
            CompatError::NotAFile {
                entries: refused.join(", "),
            }
        }));
    }
    Ok(sender_keys)
}

fn detect_flavour(
    dir: &Path,
    options: &CompatStoreOptions,
    view: &View,
    mut sender_keys: Vec<(SystemTime, String)>,
    creds: Option<&Value>,
) -> (Flavour, FlavourSource) {
    if let Some(flavour) = options.flavour {
        return (flavour, FlavourSource::Option);
    }
    // The newest sender-key file shows what the Baileys using the folder writes now.
    sender_keys.sort();
    for (_, name) in sender_keys.iter().rev() {
        let Some(value) = read_regular(&dir.join(name))
            .ok()
            .flatten()
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
        .and_then(Value::as_str)
        .and_then(Flavour::of_own_identity)
        .map_or((Flavour::Baileys7, FlavourSource::Default), |flavour| {
            (flavour, FlavourSource::Creds)
        })
}
