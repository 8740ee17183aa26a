//! [`CompatReader`]: a read-only view of a Baileys folder, the one way to read a folder without
//! owning it, and the only one that may skip unreadable keys.

use std::path::Path;

use wa_auth::Result;

use crate::codec::Flavour;
use crate::options::CompatStoreOptions;
use crate::report::FolderReport;
use crate::store::CompatStore;

/// A read-only view of a Baileys folder: opened without the lock and without writing anything
/// (an interrupted commit is applied in memory only), for inspection and migration while
/// another process may own the folder. Every read checks the folder is still in the state the
/// view indexed ([`AuthError::ChangedWhileReading`](wa_auth::AuthError::ChangedWhileReading)
/// otherwise). Commits fail with [`AuthError::ReadOnly`](wa_auth::AuthError::ReadOnly).
///
/// With [`ReadMode::Lenient`](crate::ReadMode::Lenient) (only here: a store that writes never
/// skips), an unreadable key file reads as absent and is listed in
/// [`FolderReport::skipped`]; unreadable creds are always an error.
#[derive(Debug)]
pub struct CompatReader {
    store: CompatStore,
}

impl CompatReader {
    /// Opens a strict view of the folder `path` (which must exist).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, CompatStoreOptions::default()).await
    }

    /// Opens a view of the folder `path` with `options`: their read mode and other kinds
    /// apply; the options about writing (flavour, fsync, create) do not.
    pub async fn open_with(path: impl AsRef<Path>, options: CompatStoreOptions) -> Result<Self> {
        let mut options = options.create(false);
        options.read_only = true;
        let store = CompatStore::open_with(path, options).await?;
        Ok(Self { store })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The Baileys layout the folder shows.
    pub fn flavour(&self) -> Flavour {
        self.store.flavour()
    }

    /// See [`CompatStore::report`].
    pub fn report(&self) -> FolderReport {
        self.store.report()
    }

    /// See [`CompatStore::scan`].
    pub async fn scan(&self) -> Result<FolderReport> {
        self.store.scan().await
    }
}

// The inner store was opened read-only: it refuses commits itself.
wa_auth::forward_persistence!(CompatReader => store);
