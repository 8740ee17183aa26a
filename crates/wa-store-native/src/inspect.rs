//! Checking store files without opening a store (no lock, nothing written): what tooling and
//! the fuzz target use. Runs exactly the recovery that [`NativeStore::open_blocking`] runs.
//!
//! [`NativeStore::open_blocking`]: crate::NativeStore::open_blocking

use std::collections::BTreeMap;
use std::path::Path;

use wa_auth::{KeyKind, Result};

use crate::layout::{LOG_FILE, SNAPSHOT_FILE};
use crate::recovery::{Names, recover};
use crate::snapshot::read_snapshot;

/// What a snapshot and a log hold, as recovery sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// Sequence number of the last batch the snapshot includes.
    pub snapshot_seq: u64,
    /// Sequence number of the last batch after replaying the log.
    pub last_seq: u64,
    /// Whether creds are stored.
    pub has_creds: bool,
    /// Number of keys per kind.
    pub keys: BTreeMap<KeyKind, usize>,
    /// The snapshot batch the log continues from (`None`: no log). Below `snapshot_seq` after
    /// a compaction was interrupted between publishing the snapshot and restarting the log.
    pub log_base: Option<u64>,
    /// Log frames replayed, a group written in parts counting once (frames the snapshot
    /// already includes are not counted).
    pub frames: usize,
    /// Offset in the log where a torn tail starts, which opening for writing discards.
    pub torn_tail: Option<u64>,
}

/// Recovers the state held by a snapshot's and a log's bytes (`None`: the file does not
/// exist) and summarises it. Errors are those opening would give: [`AuthError::Corrupt`]
/// naming the file (`snapshot` or `log`) and offset, or [`AuthError::UnsupportedVersion`].
///
/// [`AuthError::Corrupt`]: wa_auth::AuthError::Corrupt
/// [`AuthError::UnsupportedVersion`]: wa_auth::AuthError::UnsupportedVersion
pub fn inspect_bytes(snapshot: Option<&[u8]>, log: Option<&[u8]>) -> Result<Inspection> {
    let names = Names {
        snapshot: SNAPSHOT_FILE.into(),
        log: LOG_FILE.into(),
    };
    let snapshot = snapshot
        .map(|bytes| read_snapshot(bytes, bytes.len() as u64, &names.snapshot))
        .transpose()?;
    let recovered = recover(snapshot, log, &names)?;
    Ok(Inspection {
        snapshot_seq: recovered.snapshot_seq,
        last_seq: recovered.state.seq,
        has_creds: recovered.state.creds.is_some(),
        keys: recovered
            .state
            .keys
            .iter()
            .map(|(kind, entries)| (kind.clone(), entries.len()))
            .collect(),
        log_base: recovered.log_base,
        frames: recovered.frames_applied,
        torn_tail: recovered.torn,
    })
}

/// [`inspect_bytes`] on the files of the store directory `dir`.
pub fn inspect_dir(dir: impl AsRef<Path>) -> Result<Inspection> {
    let dir = dir.as_ref();
    let read = |name: &str| -> Result<Option<Vec<u8>>> {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(wa_auth::AuthError::io(path, e)),
        }
    };
    let snapshot = read(SNAPSHOT_FILE)?;
    let log = read(LOG_FILE)?;
    inspect_bytes(snapshot.as_deref(), log.as_deref())
}
