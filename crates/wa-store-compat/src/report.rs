//! [`FolderReport`]: what a store found in its folder besides the keys — the files it does not
//! recognise, the files it skipped, how the flavour was decided and what recovery did. A
//! migration tool prints it; nothing in it is ever deleted or rewritten.

use std::fmt;

use wa_auth::{KeyId, KeyKind};

use crate::codec::Flavour;
use crate::layout::Unrecognised;

/// How the flavour of a folder was decided, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlavourSource {
    /// Set in [`CompatStoreOptions::flavour`](crate::CompatStoreOptions::flavour).
    Option,
    /// The shape of the most recently modified sender-key file (an array: Baileys 6; a Buffer:
    /// Baileys 7): what the Baileys using the folder writes.
    SenderKeyFiles,
    /// The flavour this store recorded when it last wrote the folder.
    Registry,
    /// The folder has kinds only Baileys 7 writes (`lid-mapping`, `device-list`, `tctoken`,
    /// `identity-key`).
    Baileys7Kinds,
    /// The creds' own signal identity is a LID (Baileys 7) or a phone-number JID (Baileys 6).
    Creds,
    /// Nothing to go by (a new or unpaired folder): Baileys 7.
    Default,
}

/// What opening the folder found of an interrupted commit. Recovery decides for the whole
/// batch at once, from the hashes the journal records (see `docs/format-compat.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// Nothing to recover: the last commit completed (or there was none).
    #[default]
    Clean,
    /// A commit whose journal was in place but that was not (entirely) applied was completed:
    /// the folder now holds all of it.
    RolledForward {
        /// Files renamed into place by the recovery.
        renamed: usize,
        /// Files deleted by the recovery.
        deleted: usize,
    },
    /// A commit that cannot have been acknowledged was dropped: temp files without a
    /// complete journal, or a journal none of whose operations was applied and whose new
    /// content is gone. The folder is as before that commit.
    RolledBack {
        /// Temp files removed.
        temp_files: usize,
    },
    /// Files of an interrupted commit were changed by another program after its commit point
    /// (Baileys, run on the folder after a crash): that program has taken the folder over, so
    /// nothing more of the commit was applied and its files are left as it wrote them.
    Superseded {
        /// The files the other program changed.
        files: Vec<String>,
    },
    /// Read-only open of a folder whose last commit is not resolved yet: reads see the state
    /// recovery will produce (the whole commit, or none of it); the folder is left for its
    /// owner to recover.
    PendingReadOnly,
}

/// A file that is not part of the layout. Left where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnrecognisedFile {
    /// Its name in the folder (`backup/` for a directory).
    pub file: String,
    /// Why it is not part of the layout.
    pub reason: Unrecognised,
}

/// A key file that could not be read: skipped in lenient mode, or found by
/// [`CompatStore::scan`](crate::CompatStore::scan). Left where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFile {
    /// Its name in the folder.
    pub file: String,
    /// Its kind.
    pub kind: KeyKind,
    /// Its id.
    pub id: KeyId,
    /// Why it could not be read.
    pub reason: String,
}

/// What a store found in its folder besides readable keys.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FolderReport {
    /// The flavour written.
    pub flavour: Flavour,
    /// How it was decided.
    pub flavour_source: FlavourSource,
    /// What recovery did when the folder was opened.
    pub recovery: Recovery,
    /// Files that are not part of the layout, by name.
    pub unrecognised: Vec<UnrecognisedFile>,
    /// Key files that could not be read, by name.
    pub skipped: Vec<SkippedFile>,
    /// Why the creds cannot be read, when they cannot (only set by
    /// [`CompatStore::scan`](crate::CompatStore::scan)).
    pub creds_error: Option<String>,
    /// Why this store's registry (`.wa-store-compat.json`) could not be read, when it could not
    /// (lenient mode only; strict mode fails to open). Ids it recorded read as their file names
    /// say, kinds it recorded are unrecognised.
    pub registry_error: Option<String>,
    /// Number of key files recognised.
    pub key_files: usize,
}

impl FolderReport {
    /// Whether everything in the folder is readable and recognised.
    pub fn is_clean(&self) -> bool {
        self.unrecognised.is_empty()
            && self.skipped.is_empty()
            && self.creds_error.is_none()
            && self.registry_error.is_none()
    }
}

impl fmt::Display for FolderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} key files, flavour {} ({:?}), recovery {:?}",
            self.key_files, self.flavour, self.flavour_source, self.recovery
        )?;
        if let Some(e) = &self.creds_error {
            writeln!(f, "creds.json: {e}")?;
        }
        for u in &self.unrecognised {
            writeln!(f, "unrecognised {}: {}", u.file, u.reason)?;
        }
        for s in &self.skipped {
            writeln!(
                f,
                "unreadable {} ({} {}): {}",
                s.file, s.kind, s.id, s.reason
            )?;
        }
        Ok(())
    }
}
