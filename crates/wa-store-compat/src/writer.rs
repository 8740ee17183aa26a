//! The writer: a dedicated thread that applies commits, several queued batches at a time
//! (group commit: one journal and one folder sync for all of them).
//!
//! A group is applied in three steps (see `docs/format-compat.md`):
//! 1. every new file is written under a temp name (and synced);
//! 2. the journal listing the renames and deletes is written under a temp name, synced and
//!    renamed into place, and the folder is synced: from here on the commit has happened;
//! 3. the renames and deletes are carried out, in order: key files, deletes, the registry,
//!    `creds.json` last.
//!
//! The journal stays until the next commit replaces it, the writer stops (the store is closed)
//! or the next open removes it (replaying a completed journal changes nothing), which saves a
//! second folder sync per commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use tokio::sync::oneshot;
use tracing::{debug, error};
use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Result, WriteBatch};

use crate::codec::{self, CompatError};
use crate::folder::View;
use crate::fsio::{remove_if_exists, sync_dir, write_new};
use crate::journal::{Journal, Op, Registry};
use crate::layout::{
    FileClass, JOURNAL_FILE, MAX_FILE_NAME, REGISTRY_FILE, TEMP_PREFIX, Unrecognised, key_file_name,
};
use crate::parallel;
use crate::store::Shared;

/// Most batches merged into one group commit.
const MAX_GROUP: usize = 64;

/// A batch waiting for the writer.
pub(crate) struct Job {
    pub batch: WriteBatch,
    pub reply: oneshot::Sender<Result<()>>,
}

/// A change to one file.
enum Change {
    Put {
        kind: KeyKind,
        id: KeyId,
        bytes: Vec<u8>,
    },
    Delete,
}

/// The changes of the batches of a group, merged (a later batch wins).
#[derive(Default)]
struct Plan {
    files: BTreeMap<String, Change>,
    creds: Option<(Vec<u8>, Vec<String>)>,
    registry: Option<Registry>,
}

/// The writer thread's loop: until every sender is gone.
pub(crate) fn run(shared: Arc<Shared>, jobs: Receiver<Job>) {
    let mut poisoned: Option<String> = None;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Some(reason) = &poisoned {
            for job in group {
                let _ = job.reply.send(Err(unhealthy(reason)));
            }
            continue;
        }
        commit_group(&shared, group, &mut poisoned);
    }
    // Closed cleanly: every commit is applied, the journal is no longer needed.
    if poisoned.is_none() {
        let dir = shared.dir.as_path();
        let synced = !shared.options.fsync || sync_dir(dir).is_ok();
        if synced && let Err(e) = remove_if_exists(&dir.join(JOURNAL_FILE)) {
            error!(error = %e, "cannot remove the journal on close");
        }
    }
}

fn unhealthy(reason: &str) -> AuthError {
    AuthError::Unhealthy {
        backend: "compat",
        reason: format!("{reason}; reopen the folder to complete the last commit"),
    }
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> AuthError {
    AuthError::invalid(what, reason)
}

fn not_representable(kind: &KeyKind, id: &KeyId, e: CompatError) -> AuthError {
    invalid(format!("{kind} {id}"), e.to_string())
}

fn commit_group(shared: &Shared, group: Vec<Job>, poisoned: &mut Option<String>) {
    let mut plan = Plan::default();
    let mut accepted = Vec::with_capacity(group.len());
    {
        let view = shared.view.read();
        for job in group {
            match prepare(shared, &view, &mut plan, &job.batch) {
                Ok(()) => accepted.push(job.reply),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
    }
    if accepted.is_empty() {
        return;
    }
    let outcome = execute(shared, plan, poisoned);
    for reply in accepted {
        let result = match &outcome {
            Ok(()) => Ok(()),
            Err(e) if poisoned.is_some() => Err(unhealthy(&e.to_string())),
            Err(AuthError::Io { path, source }) => Err(AuthError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            }),
            Err(e) => Err(AuthError::Backend {
                backend: "compat",
                source: e.to_string().into(),
            }),
        };
        let _ = reply.send(result);
    }
}

/// The kind and id the file `name` holds, as of the group so far.
fn current<'a>(view: &'a View, plan: &'a Plan, name: &str) -> Option<(&'a KeyKind, &'a KeyId)> {
    match plan.files.get(name) {
        Some(Change::Put { kind, id, .. }) => Some((kind, id)),
        Some(Change::Delete) => None,
        None => view.files.get(name).map(|e| (&e.kind, &e.id)),
    }
}

/// Adds `batch` to `plan`, or fails leaving `plan` unchanged.
fn prepare(shared: &Shared, view: &View, plan: &mut Plan, batch: &WriteBatch) -> Result<()> {
    let mut registry = plan
        .registry
        .clone()
        .unwrap_or_else(|| view.registry.clone());
    let mut names = registry.names.clone();
    names
        .other_kinds
        .extend(shared.options.other_kinds.iter().cloned());

    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    let mut owners: BTreeMap<String, (&KeyKind, &KeyId)> = BTreeMap::new();
    let mut puts: Vec<(String, &KeyKind, &KeyId, &KeyValue)> = Vec::new();
    for (kind, id, value) in batch.entries() {
        let what = || format!("{kind} {id}");
        let name = key_file_name(kind, id);
        if name.len() > MAX_FILE_NAME {
            return Err(invalid(
                what(),
                format!(
                    "its file name would be {} bytes (at most {MAX_FILE_NAME})",
                    name.len()
                ),
            ));
        }
        if let Some((k, i)) = owners.insert(name.clone(), (kind, id)) {
            return Err(invalid(
                what(),
                format!("{k} {i} of the same batch is stored in the same file {name}"),
            ));
        }
        let Some(value) = value else {
            if current(view, plan, &name).is_some_and(|(k, _)| k == kind) {
                registry.names.ids.remove(&name);
                changes.insert(name, Change::Delete);
            }
            continue;
        };
        if let KeyKind::Other(other) = kind
            && !names.other_kinds.contains(other)
        {
            let mut wider = names.clone();
            wider.other_kinds.insert(other.clone());
            if let Some(file) = view.files.iter().find_map(|(file, e)| {
                (wider.classify(file)
                    != FileClass::Key {
                        kind: e.kind.clone(),
                        id: e.id.clone(),
                    })
                .then_some(file)
            }) {
                return Err(invalid(
                    what(),
                    format!("recognising kind {kind} would change how {file} is read"),
                ));
            }
            names = wider;
            registry.names.other_kinds.insert(other.clone());
        }
        if view.unrecognised.contains_key(&name) && !plan.files.contains_key(&name) {
            return Err(invalid(
                what(),
                format!(
                    "{name} exists and is not a file of this store's layout; move it away first"
                ),
            ));
        }
        // How the name reads without a recorded id: if that is not `id`, record `id`.
        names.ids.remove(&name);
        registry.names.ids.remove(&name);
        let needs_record = match names.classify(&name) {
            FileClass::Key { kind: k, id: i } => &k == kind && &i != id,
            FileClass::Unrecognised(
                Unrecognised::InvalidId { kind: k, .. }
                | Unrecognised::NotCanonical { kind: k, .. },
            ) => &k == kind,
            _ => false,
        };
        if needs_record {
            names.ids.insert(name.clone(), id.as_str().to_owned());
            registry
                .names
                .ids
                .insert(name.clone(), id.as_str().to_owned());
        }
        let read_back = names.classify(&name);
        if read_back
            != (FileClass::Key {
                kind: kind.clone(),
                id: id.clone(),
            })
        {
            return Err(invalid(
                what(),
                format!("its file {name} would be read back as {read_back:?}"),
            ));
        }
        puts.push((name, kind, id, value));
    }
    // Encoding is the costly part of a large batch: spread it over the cores.
    let encoded = parallel::map(&puts, parallel::cpu_threads(), |(_, kind, id, value)| {
        let json = codec::key_value::to_json(kind, value, shared.flavour)
            .map_err(|e| not_representable(kind, id, e))?;
        serde_json::to_vec(&json)
            .map_err(|e| invalid(format!("{kind} {id}"), format!("cannot serialise: {e}")))
    });
    for ((name, kind, id, _), bytes) in puts.into_iter().zip(encoded) {
        changes.insert(
            name,
            Change::Put {
                kind: kind.clone(),
                id: id.clone(),
                bytes: bytes?,
            },
        );
    }
    let creds = match batch.creds() {
        Some(creds) => {
            let order = shared.creds_order.lock().clone();
            let json = codec::creds::to_json_ordered(creds, &order)
                .map_err(|e| invalid("creds", e.to_string()))?;
            let bytes = serde_json::to_vec(&json).map_err(|e| invalid("creds", e.to_string()))?;
            Some((bytes, codec::creds::field_order(&json)))
        }
        None => None,
    };

    // Accepted: merge.
    plan.files.extend(changes);
    if creds.is_some() {
        plan.creds = creds;
    }
    registry.flavour = Some(shared.flavour);
    if plan.registry.is_some() || !view.registry_on_disk || registry != view.registry {
        plan.registry = Some(registry);
    }
    Ok(())
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{TEMP_PREFIX}{}-{nanos}-{}-",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn execute(shared: &Shared, plan: Plan, poisoned: &mut Option<String>) -> Result<()> {
    let dir = shared.dir.as_path();
    let fsync = shared.options.fsync;
    let prefix = unique_prefix();
    let mut temps = Vec::new();
    let mut renames = Vec::new();
    let mut deletes = Vec::new();
    let mut index_updates = Vec::new();
    // Name every new file, then write (and sync) them, in parallel for large groups.
    let mut targets: Vec<(&str, &[u8])> = Vec::new();
    for (name, change) in &plan.files {
        match change {
            Change::Put { kind, id, bytes } => {
                targets.push((name, bytes));
                index_updates.push((name.clone(), Some((kind.clone(), id.clone()))));
            }
            Change::Delete => {
                deletes.push(Op::Delete(name.clone()));
                index_updates.push((name.clone(), None));
            }
        }
    }
    let registry_bytes = plan.registry.as_ref().map(Registry::to_bytes);
    if let Some(bytes) = &registry_bytes {
        targets.push((REGISTRY_FILE, bytes));
    }
    if let Some((creds, _)) = &plan.creds {
        targets.push((crate::layout::CREDS_FILE, creds));
    }
    let mut writes: Vec<(String, &[u8])> = Vec::with_capacity(targets.len());
    for (n, (target, bytes)) in targets.into_iter().enumerate() {
        let temp = format!("{prefix}{n}");
        temps.push(temp.clone());
        renames.push(Op::Rename {
            temp: temp.clone(),
            target: target.to_owned(),
        });
        writes.push((temp, bytes));
    }
    let threads = if fsync {
        parallel::SYNC_THREADS
    } else {
        parallel::cpu_threads()
    };
    let written = parallel::map(&writes, threads, |(temp, bytes)| {
        write_new(&dir.join(temp), bytes, fsync)
    })
    .into_iter()
    .collect::<Result<Vec<()>>>()
    .map(|_| ());
    let mut ops = Vec::with_capacity(renames.len() + deletes.len());
    // Keys first, then deletes, then the registry and creds (the last renames).
    let tail = usize::from(plan.registry.is_some()) + usize::from(plan.creds.is_some());
    let keys = renames.len().saturating_sub(tail);
    let meta = renames.split_off(keys);
    ops.extend(renames);
    ops.extend(deletes);
    ops.extend(meta);
    let journal_temp = format!("{prefix}journal");
    let committed = written.and_then(|()| {
        let journal = Journal { ops: ops.clone() };
        write_new(&dir.join(&journal_temp), &journal.to_bytes(), fsync)?;
        std::fs::rename(dir.join(&journal_temp), dir.join(JOURNAL_FILE))
            .map_err(|e| AuthError::io(dir.join(JOURNAL_FILE), e))?;
        if fsync {
            sync_dir(dir)?;
        }
        Ok(())
    });
    if let Err(e) = committed {
        // Nothing was applied: remove what was written (best effort; the next open would).
        for temp in temps.iter().chain(std::iter::once(&journal_temp)) {
            let _ = remove_if_exists(&dir.join(temp));
        }
        error!(error = %e, "commit failed before its journal; nothing applied");
        return Err(e);
    }

    // The commit has happened: apply it.
    let mut view = shared.view.write();
    for op in &ops {
        let result = match op {
            Op::Rename { temp, target } => std::fs::rename(dir.join(temp), dir.join(target))
                .map_err(|e| AuthError::io(dir.join(target), e)),
            Op::Delete(name) => remove_if_exists(&dir.join(name)).map(|_| ()),
        };
        if let Err(e) = result {
            error!(error = %e, "commit journaled but not applied; refusing further commits");
            *poisoned = Some(e.to_string());
            return Err(e);
        }
    }
    for (name, change) in index_updates {
        view.unrecognised.remove(&name);
        match change {
            Some((kind, id)) => view.insert(name, kind, id, None),
            None => view.remove(&name),
        }
    }
    if let Some(registry) = plan.registry {
        view.registry = registry;
        view.registry_on_disk = true;
    }
    if let Some((_, order)) = plan.creds {
        view.creds = Some(crate::layout::CREDS_FILE.to_owned());
        *shared.creds_order.lock() = order;
    }
    debug!(ops = ops.len(), "commit applied");
    Ok(())
}
