//! Crash-safe binary file store for WhatsApp multi-device auth state: the durable default
//! backend of the workspace.
//!
//! One directory per linked device holds a handful of files whatever the number of keys:
//!
//! - `snapshot`: the whole state at one point, one checksummed record per key;
//! - `log`: the batches committed since, appended as checksummed frames;
//! - `lock`: the OS file lock held while the store is open for writing, with the owner's pid.
//!
//! Files are 0600 and the directory 0700. The format is specified in `docs/format-native.md`.
//!
//! # Guarantees
//! - **Atomic, durable commits.** A [`WriteBatch`](wa_auth::WriteBatch) (creds and any number
//!   of keys) lands entirely or not at all across a crash at any instant, and with
//!   [`Durability::Full`] (the default) it is on stable storage when `commit` returns.
//! - **Failed commits are reported exactly.** When a log write or `fdatasync` fails, the
//!   failed frame is truncated away and the truncation synced: the commit returns
//!   [`AuthError::Io`](wa_auth::AuthError::Io) and the batch is gone for good. Only when that
//!   fails too does it return [`AuthError::CommitUnknown`](wa_auth::AuthError::CommitUnknown)
//!   (after a reopen the batch is there whole or not at all). The store then refuses writes
//!   until reopened.
//! - **Group commit, on the committers' own threads.** A commit encodes its batch, then joins
//!   the open group; the first committer to find no write in progress leads the group: it
//!   writes every batch queued as one log frame with one `write` and one `fdatasync`, for all
//!   of them ([`wa_store_fs::group`]). No hop to a writer thread and back; concurrent
//!   committers share a sync. On tokio's multi-thread runtime the leader's write and sync run
//!   in `block_in_place` (the worker's other tasks move to another thread); on a current-thread
//!   runtime, on the blocking pool. Opening, closing and checking large batches run on tokio's
//!   blocking pool.
//! - **Big batches written while they are encoded.** A batch of 2,048 keys or more (an import,
//!   a restore) is encoded by one thread per core in segments of a few hundred keys, and the
//!   leader writes each segment as one part of the group's frame as soon as it is ready, so
//!   the disk starts long before the last key is encoded; the parts are synced together and
//!   the batch is applied only then, all or nothing as any other.
//! - **Reads from memory.** Every value is held in memory in its canonical binary encoding
//!   ([`wa_auth::codec`]) and decoded on read; the disk is read only when opening.
//! - **Recovery.** A torn tail of the log (the last, unacknowledged write cut short by a crash)
//!   is discarded on open; damage anywhere else is [`AuthError::Corrupt`](wa_auth::AuthError::Corrupt)
//!   naming the file and offset, an unknown format version is
//!   [`AuthError::UnsupportedVersion`](wa_auth::AuthError::UnsupportedVersion), never a reset.
//! - **Compaction.** When the log outgrows the snapshot (see [`NativeStoreOptions`]), a
//!   background thread writes a new snapshot (temp file, fsync, rename, directory fsync) and the
//!   log restarts. The file names are those of [`layout`].
//! - **One owner.** A second opener for writing, in this process or another, gets
//!   [`AuthError::AlreadyOwned`](wa_auth::AuthError::AlreadyOwned) with the holder's pid.
//!   [`NativeReader`] is the read-only view: it opens without the lock and writes nothing.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use wa_auth::{KeyKind, KeyValue, Persistence, PersistenceExt, Transaction};
//! use wa_store_native::{NativeStore, load_credentials, use_native_file_auth_state};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> wa_auth::Result<()> {
//! let dir = std::env::temp_dir().join(format!("wa-native-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! // Open or create the store and load the auth state (fresh creds for a new store).
//! let state = use_native_file_auth_state(&dir).await?;
//! state
//!     .transaction("4915112345678.0", async |tx: &mut Transaction<'_>| {
//!         tx.put(KeyKind::LidMapping, "4915112345678", KeyValue::LidMapping("123456789012345".into()));
//!         Ok::<_, wa_auth::AuthError>(())
//!     })
//!     .await?; // one atomic, durable commit
//! let registration_id = state.creds().registration_id;
//! state.close().await?; // flushes, closes the store and releases the lock
//!
//! // The same data, through the store directly.
//! let store = NativeStore::open(&dir).await?;
//! let mapping = store.get_one(&KeyKind::LidMapping, &"4915112345678".into()).await?;
//! assert_eq!(mapping, Some(KeyValue::LidMapping("123456789012345".into())));
//! store.close().await?;
//! assert_eq!(load_credentials(&dir).await?.map(|c| c.registration_id), Some(registration_id));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `fault-injection` (off by default): I/O fault injection for the tests (through
//!   `wa_auth::fault`); active only in builds with debug assertions, not part of the API.

#![forbid(unsafe_code)]

mod commit;
mod compaction;
/// The fault hooks the file stores share (inert without the `fault-injection` feature).
use wa_store_fs::fault;
mod format;
pub mod inspect;
pub mod layout;
mod log;
mod options;
mod reader;
mod recovery;
mod snapshot;
mod state;
mod store;
mod stream;

use std::path::Path;
use std::sync::Arc;

use wa_auth::{AuthCreds, AuthState, Persistence, PersistenceExt, Result};

pub use options::{Durability, NativeStoreOptions};
pub use reader::NativeReader;
pub use store::NativeStore;

/// Opens (or creates) the native store in directory `path` and loads its [`AuthState`]:
/// fresh creds are created and committed only when the store is empty. The store stays open
/// (and locked) as long as the returned state or a clone of it lives.
pub async fn use_native_file_auth_state(path: impl AsRef<Path>) -> Result<AuthState> {
    let store = NativeStore::open(path).await?;
    AuthState::load(Arc::new(store)).await
}

/// Reads the creds of the store in directory `path` without taking its lock or writing
/// anything (so it works while another process owns the store). `None` when the directory or
/// the store does not exist, or holds no creds; an error when it cannot be read.
pub async fn load_credentials(path: impl AsRef<Path>) -> Result<Option<AuthCreds>> {
    let path = path.as_ref();
    // Only a path that does not exist means "no store"; one that cannot be examined is an
    // error.
    match tokio::fs::metadata(path).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(wa_auth::AuthError::io(path, e)),
    }
    NativeReader::open(path).await?.load_creds().await
}

/// Stores `creds` in the store in directory `path` (created if needed) as one durable commit,
/// then closes it. Fails with [`AlreadyOwned`](wa_auth::AuthError::AlreadyOwned) while another
/// handle owns the store.
pub async fn save_credentials(path: impl AsRef<Path>, creds: &AuthCreds) -> Result<()> {
    let store = NativeStore::open(path).await?;
    store.save_creds(creds).await?;
    store.close().await
}
