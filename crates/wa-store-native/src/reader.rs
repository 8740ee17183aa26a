//! [`NativeReader`]: a read-only view of a native store, the one way to read a store without
//! owning it.

use std::path::Path;

use wa_auth::Result;

use crate::options::NativeStoreOptions;
use crate::store::NativeStore;

/// A consistent, read-only view of a native store, opened without the lock and without
/// writing anything: no torn-tail truncation, no clean-up, no compaction. It reads a
/// consistent state even while another process owns the store (retrying if the owner compacts
/// meanwhile), and never modifies it (what migrations and inspection need). What it reads is
/// the state at opening. Commits fail with [`AuthError::ReadOnly`](wa_auth::AuthError::ReadOnly);
/// reads never skip damage (an unreadable value is [`AuthError::Corrupt`](wa_auth::AuthError::Corrupt)).
#[derive(Debug)]
pub struct NativeReader {
    store: NativeStore,
}

impl NativeReader {
    /// Opens a view of the store in directory `path` (which must hold one:
    /// [`AuthError::NotFound`](wa_auth::AuthError::NotFound) otherwise). The file work runs on
    /// tokio's blocking pool.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let store = NativeStore::open_with(path, Self::options()).await?;
        Ok(Self { store })
    }

    /// [`NativeReader::open`], blocking the calling thread (for synchronous tools).
    pub fn open_blocking(path: impl AsRef<Path>) -> Result<Self> {
        let store = NativeStore::open_blocking(path, Self::options())?;
        Ok(Self { store })
    }

    fn options() -> NativeStoreOptions {
        let mut options = NativeStoreOptions::default().create(false);
        options.read_only = true;
        options
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Sequence number of the last batch in the view.
    pub fn last_seq(&self) -> u64 {
        self.store.last_seq()
    }
}

// The inner store was opened read-only: it refuses commits itself.
wa_auth::forward_persistence!(NativeReader => store);
