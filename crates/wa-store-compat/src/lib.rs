//! Baileys-compatible JSON multi-file store for WhatsApp auth state (Baileys 6 and 7 layouts).
//!
//! [`CompatStore`] is a [`Persistence`](wa_auth::Persistence) over the folder layout of
//! Baileys' `useMultiFileAuthState`, so a Rust service can take over a Baileys folder, keep it
//! usable by Baileys (6.x or 7.x), and migrate off it:
//!
//! - **Layout** ([`layout`]): `creds.json` and one file per key named
//!   `fixFileName("<kind>-<id>.json")`; file names are mapped back to kinds and ids, files that
//!   are not part of the layout are reported ([`FolderReport`]) and never touched.
//! - **Values** ([`codec`]): Baileys' JSON shapes for every kind, in both flavours
//!   ([`Flavour`]: detected from the folder, or set), BufferJSON in all its forms, libsignal-node
//!   session JSON, unknown kinds and unknown creds fields kept.
//! - **Crash safety**: every file is written to a temp file and renamed into place (synced by
//!   default), never rewritten in place; a commit of many keys goes through a journal that
//!   records the hash of every file's content before and after, so a crash, or an I/O error
//!   after the commit point, leaves the folder as before or as after the commit once
//!   reopened, decided for the whole batch from content, never from file times. A store whose
//!   commit failed after its commit point refuses further commits until reopened. A reader
//!   that ignores the journal (Baileys) never sees a torn file, but may see part of an
//!   interrupted commit: see `docs/format-compat.md`.
//! - **Bad input**: an unreadable key file is an error naming the file ([`ReadMode::Strict`],
//!   the default) or, on a read-only [`CompatReader`] only, skipped with a warning and
//!   reported ([`ReadMode::Lenient`]); unreadable
//!   creds are always an error, never a reason to start over. Nothing is deleted or rewritten
//!   because it is bad. A symbolic link or directory named like a file of the layout, and a
//!   directory holding another backend's store, are refused when opening.
//! - **One owner**: a lock file (`.wa-store-compat.lock`, invisible to Baileys) held while the
//!   folder is open for writing.
//! - **Reads**: the folder is listed once when opened; values are read from their files when
//!   asked for, on tokio's blocking pool. Commits are written in groups by the committers
//!   themselves (leader/follower, `wa_store_fs::GroupCommit`: one journal and one folder sync
//!   per group, no writer thread; a tokio caller never blocks a worker). A
//!   read-only view ([`CompatReader`]) beside a live owner returns only
//!   values of the state it indexed (the state after a prefix of the owner's commits), or
//!   fails with [`AuthError::ChangedWhileReading`](wa_auth::AuthError::ChangedWhileReading):
//!   open it again and retry.
//!
//! ```
//! use wa_auth::{KeyKind, KeyValue, PersistenceExt, Transaction};
//! use wa_store_compat::{CompatStore, use_multi_file_auth_state};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> wa_auth::Result<()> {
//! let dir = std::env::temp_dir().join(format!("wa-compat-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! // Like Baileys' useMultiFileAuthState: fresh creds for an empty folder.
//! let state = use_multi_file_auth_state(&dir).await?;
//! state
//!     .transaction("4915112345678.0", async |tx: &mut Transaction<'_>| {
//!         tx.put(KeyKind::LidMapping, "4915112345678", KeyValue::LidMapping("123456789012345".into()));
//!         Ok::<_, wa_auth::AuthError>(())
//!     })
//!     .await?;
//! drop(state); // releases the folder
//! assert!(dir.join("lid-mapping-4915112345678.json").is_file());
//!
//! let store = CompatStore::open(&dir).await?;
//! let mapping = store.get_one(&KeyKind::LidMapping, &"4915112345678".into()).await?;
//! assert_eq!(mapping, Some(KeyValue::LidMapping("123456789012345".into())));
//! assert!(store.report().is_clean());
//! # drop(store); std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `fault-injection` (off by default): I/O fault injection for this crate's own tests. It is
//!   active only in builds with debug assertions and is not part of the public API.

#![forbid(unsafe_code)]

pub mod codec;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
mod folder;
mod fsio;
mod journal;
pub mod layout;
mod options;
mod parallel;
mod plan;
mod reader;
mod recovery;
mod report;
mod store;
mod writer;

use std::path::Path;
use std::sync::Arc;

use wa_auth::{AuthState, Result};

pub use codec::{CompatError, Flavour};
pub use options::{CompatStoreOptions, ReadMode};
pub use reader::CompatReader;
pub use report::{FlavourSource, FolderReport, Recovery, SkippedFile, UnrecognisedFile};
pub use store::CompatStore;

/// Opens (or creates) the Baileys folder `path` and loads its [`AuthState`], like Baileys'
/// `useMultiFileAuthState`: fresh creds are created and saved only when the folder holds
/// neither creds nor keys; unreadable creds are an error. Creds changes are saved with the
/// commits that make them. The folder stays locked while the state (or a clone) lives.
pub async fn use_multi_file_auth_state(path: impl AsRef<Path>) -> Result<AuthState> {
    use_multi_file_auth_state_with(path, CompatStoreOptions::default()).await
}

/// [`use_multi_file_auth_state`] with options.
pub async fn use_multi_file_auth_state_with(
    path: impl AsRef<Path>,
    options: CompatStoreOptions,
) -> Result<AuthState> {
    let store = CompatStore::open_with(path, options).await?;
    AuthState::load(Arc::new(store)).await
}
