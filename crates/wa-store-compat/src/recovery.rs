//! Recovery of an interrupted commit, decided for the whole batch from the content of its
//! files, never from file times.
//!
//! Every operation of the journal records the hash of what its file held before the commit
//! and (for a rename) of what it holds after. Each operation is then in one of these states:
//!
//! - *applied*: the file holds the new content (a delete: the file is gone);
//! - *pending*: the file still holds the old content and the new content is at hand (the
//!   rename's temp file, with the new hash; a delete needs nothing);
//! - *missing*: the file holds the old content but the temp file is gone or not the new
//!   content;
//! - *foreign*: the file holds neither: another program wrote it after the commit point;
//! - *unchanged*: old and new content are the same.
//!
//! The batch as a whole is then complete (nothing pending or missing), rolled forward
//! (nothing missing, nothing foreign: every pending operation is carried out), rolled back
//! (something missing, nothing applied, nothing foreign: nothing is carried out), or
//! superseded (something foreign: another program has taken the folder over; nothing more is
//! carried out). Missing and applied operations together (with nothing foreign) cannot be
//! made whole either way: the open fails, naming the journal, and nothing is touched.

use std::path::Path;

use tracing::{info, warn};
use wa_auth::{AuthError, Result};

use crate::codec::CompatError;
use crate::fsio::{content_hash, read_regular, remove_if_exists, sync_dir, write_new};
use crate::journal::{Journal, Op};
use crate::layout::{JOURNAL_FILE, TEMP_PREFIX};
use crate::parallel;

/// Where an operation of the journal stands (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpState {
    Applied,
    Unchanged,
    Pending,
    Missing,
    Foreign,
}

/// What recovery does with the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every operation is applied: nothing to do.
    Complete,
    /// Carry out the pending operations.
    RollForward,
    /// Nothing of it was applied and it cannot be: leave the folder as it is.
    RollBack,
    /// Another program wrote these files after the commit point: leave the folder as it is.
    Superseded(Vec<String>),
}

/// The decision, and the state of each operation (in journal order).
#[derive(Debug)]
pub(crate) struct Resolution {
    pub decision: Decision,
    pub states: Vec<OpState>,
}

fn file_hash(dir: &Path, name: &str) -> Result<Option<String>> {
    Ok(read_regular(&dir.join(name))?.map(|bytes| content_hash(&bytes)))
}

/// The state of one operation. A rename's temp file is looked at before its target, so that
/// an owner renaming it meanwhile (seen by a read-only view) is seen as applied, never as
/// missing.
fn op_state(dir: &Path, op: &Op) -> Result<OpState> {
    Ok(match op {
        Op::Rename {
            temp,
            target,
            new,
            old,
        } => {
            let at_hand = file_hash(dir, temp)?.as_ref() == Some(new);
            let now = file_hash(dir, target)?;
            if now.as_ref() == Some(new) {
                if old.as_ref() == Some(new) {
                    OpState::Unchanged
                } else {
                    OpState::Applied
                }
            } else if now != *old {
                OpState::Foreign
            } else if at_hand {
                OpState::Pending
            } else {
                OpState::Missing
            }
        }
        Op::Delete { target, old } => match file_hash(dir, target)? {
            None => OpState::Applied,
            Some(hash) if hash == *old => OpState::Pending,
            Some(_) => OpState::Foreign,
        },
    })
}

/// Decides what to do with the batch of `journal` (reads only).
pub(crate) fn resolve(dir: &Path, journal: &Journal) -> Result<Resolution> {
    let states = parallel::map(&journal.ops, parallel::cpu_threads(), |op| {
        op_state(dir, op)
    })
    .into_iter()
    .collect::<Result<Vec<OpState>>>()?;
    let names_in = |state: OpState| -> Vec<String> {
        journal
            .ops
            .iter()
            .zip(&states)
            .filter(|(_, s)| **s == state)
            .map(|(op, _)| op.target().to_owned())
            .collect()
    };
    let (foreign, missing) = (names_in(OpState::Foreign), names_in(OpState::Missing));
    let pending = states.contains(&OpState::Pending);
    let applied = states.contains(&OpState::Applied);
    let decision = if missing.is_empty() && !pending {
        Decision::Complete
    } else if !foreign.is_empty() {
        Decision::Superseded(foreign)
    } else if missing.is_empty() {
        Decision::RollForward
    } else if !applied {
        Decision::RollBack
    } else {
        let reason = format!(
            "the commit it describes can be neither completed nor undone: the new content of {} is gone while {} already changed; restore the folder from a backup",
            missing.join(", "),
            names_in(OpState::Applied).join(", ")
        );
        return Err(AuthError::corrupt(
            wa_auth::CorruptItem::Store,
            dir.join(JOURNAL_FILE).display().to_string(),
            CompatError::Journal { reason },
        ));
    };
    Ok(Resolution { decision, states })
}

/// Carries out the pending operations of a batch being rolled forward, in journal order.
/// Returns how many files were renamed and deleted.
pub(crate) fn roll_forward(
    dir: &Path,
    journal: &Journal,
    resolution: &Resolution,
) -> Result<(usize, usize)> {
    let (mut renamed, mut deleted) = (0, 0);
    for (op, state) in journal.ops.iter().zip(&resolution.states) {
        if *state != OpState::Pending {
            continue;
        }
        match op {
            Op::Rename { temp, target, .. } => {
                std::fs::rename(dir.join(temp), dir.join(target))
                    .map_err(|e| AuthError::io(dir.join(target), e))?;
                renamed += 1;
            }
            Op::Delete { target, .. } => {
                remove_if_exists(&dir.join(target))?;
                deleted += 1;
            }
        }
    }
    sync_dir(dir)?;
    info!(renamed, deleted, "rolled an interrupted commit forward");
    Ok((renamed, deleted))
}

/// Removes every temp file of the folder (none belongs to a live commit: the caller holds the
/// lock, and recovery is done). Returns how many there were.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<usize> {
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
    }
    Ok(removed)
}

/// Replaces the journal by `journal` (written to `temp`, renamed into place). The caller syncs
/// the folder.
pub(crate) fn install_journal(
    dir: &Path,
    journal: &Journal,
    temp: &str,
    fsync: bool,
) -> Result<()> {
    write_new(&dir.join(temp), &journal.to_bytes(), fsync)?;
    crate::fault::check(dir, crate::fault::FaultPoint::JournalRename)
        .and_then(|()| std::fs::rename(dir.join(temp), dir.join(JOURNAL_FILE)))
        .map_err(|e| {
            let _ = remove_if_exists(&dir.join(temp));
            AuthError::io(dir.join(JOURNAL_FILE), e)
        })
}

/// Replaces the journal of a complete (or resolved) batch by a sealed one: the same id, no
/// operations, so the next open has nothing to check.
pub(crate) fn seal(dir: &Path, journal: &Journal, fsync: bool) -> Result<()> {
    let sealed = Journal {
        id: journal.id.clone(),
        ops: Vec::new(),
    };
    let temp = format!("{TEMP_PREFIX}{}-seal", std::process::id());
    install_journal(dir, &sealed, &temp, fsync)?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Logs what recovery decided.
pub(crate) fn log(decision: &Decision) {
    match decision {
        Decision::Superseded(files) => warn!(
            ?files,
            "files of an interrupted commit were changed by another program since: the folder is left as it left them"
        ),
        Decision::RollBack => {
            warn!("an interrupted commit whose new content is gone was dropped as a whole")
        }
        Decision::Complete | Decision::RollForward => {}
    }
}
