//! [`CompatStoreOptions`]: how a folder is opened, with documented defaults.

use wa_auth::key::OtherKind;

use crate::codec::Flavour;

/// What to do with a key file that cannot be read (invalid JSON, an empty file, a value of the
/// wrong shape). Creds are never skipped: unreadable creds are always an error. Lenient reads
/// are for a [`CompatReader`](crate::CompatReader) only: a [`CompatStore`](crate::CompatStore)
/// (which writes) refuses them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadMode {
    /// Fail the read with [`AuthError::Corrupt`](wa_auth::AuthError::Corrupt) naming the
    /// file and the reason. The default.
    #[default]
    Strict,
    /// Treat the key as absent, log a warning and record the file in
    /// [`FolderReport::skipped`](crate::FolderReport::skipped). The file is left as it is.
    /// Read-only views only.
    Lenient,
}

/// Options of a [`CompatStore`](crate::CompatStore). Build them from the defaults:
///
/// ```
/// use wa_store_compat::{CompatStoreOptions, Flavour, ReadMode};
///
/// let options = CompatStoreOptions::default()
///     .flavour(Flavour::Baileys6)
///     .fsync(false);
/// // For a CompatReader: skip unreadable keys.
/// let lenient = CompatStoreOptions::default().mode(ReadMode::Lenient);
/// assert!(options.create);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct CompatStoreOptions {
    /// The Baileys layout to write (default `None`: detected from the folder, see
    /// [`FlavourSource`](crate::FlavourSource); Baileys 7 for a new folder).
    pub flavour: Option<Flavour>,
    /// What to do with unreadable key files (default [`ReadMode::Strict`]).
    pub mode: ReadMode,
    /// Sync every written file and the folder before a commit returns (default `true`). With
    /// `false`, commits are still atomic across a crash of the process, but not across an
    /// operating-system crash or power loss.
    pub fsync: bool,
    /// Create the folder when it does not exist (default `true`, as Baileys does). With
    /// `false`, a missing folder is [`AuthError::NotFound`](wa_auth::AuthError::NotFound).
    pub create: bool,
    /// Set by [`CompatReader`](crate::CompatReader), the read-only view.
    pub(crate) read_only: bool,
    /// Kinds besides Baileys' ten to recognise in file names (default none). Kinds this store
    /// writes are recorded in the folder and recognised without this.
    pub other_kinds: Vec<OtherKind>,
}

impl Default for CompatStoreOptions {
    fn default() -> Self {
        Self {
            flavour: None,
            mode: ReadMode::Strict,
            fsync: true,
            create: true,
            read_only: false,
            other_kinds: Vec::new(),
        }
    }
}

impl std::fmt::Debug for CompatStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompatStoreOptions")
            .field("flavour", &self.flavour)
            .field("mode", &self.mode)
            .field("fsync", &self.fsync)
            .field("create", &self.create)
            .field("read_only", &self.read_only)
            .field(
                "other_kinds",
                &self
                    .other_kinds
                    .iter()
                    .map(OtherKind::as_str)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl CompatStoreOptions {
    /// Sets [`flavour`](Self::flavour) (instead of detecting it).
    pub fn flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = Some(flavour);
        self
    }

    /// Sets [`mode`](Self::mode).
    pub fn mode(mut self, mode: ReadMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`fsync`](Self::fsync).
    pub fn fsync(mut self, yes: bool) -> Self {
        self.fsync = yes;
        self
    }

    /// Sets [`create`](Self::create).
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// Adds a kind to [`other_kinds`](Self::other_kinds).
    pub fn other_kind(mut self, kind: OtherKind) -> Self {
        self.other_kinds.push(kind);
        self
    }
}
