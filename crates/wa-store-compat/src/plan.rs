//! Planning a group commit: the batches of a group checked one by one and merged into the
//! files to write and delete (a later batch wins). A batch that cannot be stored is refused
//! alone, before anything is written.

use std::collections::BTreeMap;

use serde_json::Value;
use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Result, WriteBatch};

use crate::codec::{self, CompatError};
use crate::folder::View;
use crate::journal::Registry;
use crate::layout::{FileClass, MAX_FILE_NAME, Names, Unrecognised, key_file_name};
use crate::parallel;
use crate::store::Shared;

/// A change to one file.
pub(crate) enum Change {
    Put {
        kind: KeyKind,
        id: KeyId,
        bytes: Vec<u8>,
    },
    Delete,
}

/// The changes of the batches of a group, merged (a later batch wins).
#[derive(Default)]
pub(crate) struct Plan {
    pub files: BTreeMap<String, Change>,
    /// The new `creds.json`: its bytes and its JSON (the template of the next rewrite).
    pub creds: Option<(Vec<u8>, Value)>,
    pub registry: Option<Registry>,
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> AuthError {
    AuthError::invalid(what, reason)
}

fn not_representable(kind: &KeyKind, id: &KeyId, e: CompatError) -> AuthError {
    invalid(format!("{kind} {id}"), e.to_string())
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
pub(crate) fn prepare(
    shared: &Shared,
    view: &View,
    plan: &mut Plan,
    batch: &WriteBatch,
) -> Result<()> {
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
        let name = key_file_name(kind, id);
        if name.len() > MAX_FILE_NAME {
            let reason = format!(
                "its file name would be {} bytes (at most {MAX_FILE_NAME})",
                name.len()
            );
            return Err(invalid(format!("{kind} {id}"), reason));
        }
        if let Some((k, i)) = owners.insert(name.clone(), (kind, id)) {
            let reason = format!("{k} {i} of the same batch is stored in the same file {name}");
            return Err(invalid(format!("{kind} {id}"), reason));
        }
        let Some(value) = value else {
            if current(view, plan, &name).is_some_and(|(k, _)| k == kind) {
                registry.names.ids.remove(&name);
                changes.insert(name, Change::Delete);
            }
            continue;
        };
        name_put(view, plan, &mut names, &mut registry, kind, id, &name)?;
        puts.push((name, kind, id, value));
    }
    changes.extend(encode_puts(shared, puts)?);
    let creds = match batch.creds() {
        Some(creds) => Some(encode_creds(shared, creds)?),
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

/// Checks that the key `kind`/`id` can be stored in the file `name` and read back as itself,
/// registering its kind and recording its id where needed.
fn name_put(
    view: &View,
    plan: &Plan,
    names: &mut Names,
    registry: &mut Registry,
    kind: &KeyKind,
    id: &KeyId,
    name: &str,
) -> Result<()> {
    let what = || format!("{kind} {id}");
    if let KeyKind::Other(other) = kind
        && !names.other_kinds.contains(other)
    {
        let mut wider = names.clone();
        wider.other_kinds.insert(other.clone());
        if let Some(file) = view.files.iter().find_map(|(file, e)| {
            let same = FileClass::Key {
                kind: e.kind.clone(),
                id: e.id.clone(),
            };
            (wider.classify(file) != same).then_some(file)
        }) {
            let reason = format!("recognising kind {kind} would change how {file} is read");
            return Err(invalid(what(), reason));
        }
        *names = wider;
        registry.names.other_kinds.insert(other.clone());
    }
    if view.unrecognised.contains_key(name) && !plan.files.contains_key(name) {
        let reason =
            format!("{name} exists and is not a file of this store's layout; move it away first");
        return Err(invalid(what(), reason));
    }
    // How the name reads without a recorded id: if that is not `id`, record `id`.
    names.ids.remove(name);
    registry.names.ids.remove(name);
    let needs_record = match names.classify(name) {
        FileClass::Key { kind: k, id: i } => &k == kind && &i != id,
        FileClass::Unrecognised(
            Unrecognised::InvalidId { kind: k, .. } | Unrecognised::NotCanonical { kind: k, .. },
        ) => &k == kind,
        _ => false,
    };
    if needs_record {
        names.ids.insert(name.to_owned(), id.as_str().to_owned());
        let recorded = id.as_str().to_owned();
        registry.names.ids.insert(name.to_owned(), recorded);
    }
    let read_back = names.classify(name);
    let itself = FileClass::Key {
        kind: kind.clone(),
        id: id.clone(),
    };
    if read_back != itself {
        let reason = format!("its file {name} would be read back as {read_back:?}");
        return Err(invalid(what(), reason));
    }
    Ok(())
}

/// Encodes the values of the puts. Encoding is the costly part of a large batch: spread over
/// the cores.
fn encode_puts(
    shared: &Shared,
    puts: Vec<(String, &KeyKind, &KeyId, &KeyValue)>,
) -> Result<Vec<(String, Change)>> {
    let encoded = parallel::map(&puts, parallel::cpu_threads(), |(_, kind, id, value)| {
        let json = codec::key_value::to_json(kind, value, shared.flavour)
            .map_err(|e| not_representable(kind, id, e))?;
        serde_json::to_vec(&json)
            .map_err(|e| invalid(format!("{kind} {id}"), format!("cannot serialise: {e}")))
    });
    puts.into_iter()
        .zip(encoded)
        .map(|((name, kind, id, _), bytes)| {
            let change = Change::Put {
                kind: kind.clone(),
                id: id.clone(),
                bytes: bytes?,
            };
            Ok((name, change))
        })
        .collect()
}

/// Encodes creds in the field order of the `creds.json` they replace.
fn encode_creds(shared: &Shared, creds: &wa_auth::AuthCreds) -> Result<(Vec<u8>, Value)> {
    let template = shared.creds_template.lock().clone();
    let json = codec::creds::to_json_like(creds, template.as_ref())
        .map_err(|e| invalid("creds", e.to_string()))?;
    let bytes = serde_json::to_vec(&json).map_err(|e| invalid("creds", e.to_string()))?;
    Ok((bytes, json))
}
