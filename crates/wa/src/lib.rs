//! WhatsApp multi-device auth state and its persistence, in one crate.
//!
//! This facade re-exports the workspace's crates; depend on it, or pick the crates you need.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`proto`] | `wa-proto` | wire format: protobuf messages, binary nodes, JIDs, frames |
//! | [`signal`] | `wa-signal` | Signal protocol core and the Noise handshake |
//! | [`auth`] | `wa-auth` | creds, key store, `Persistence`, `AuthState`, transactions |
//! | `link` | `wa-link` | talking to the server: connection, pairing, pre-key upload, signed pre-key rotation (feature `link`, default) |
//! | `native` | `wa-store-native` | crash-safe binary file store (feature `native`, default) |
//! | `compat` | `wa-store-compat` | Baileys-compatible JSON folders (feature `compat`, default) |
//! | `migrate` | `wa-migrate` | staged, verified migration (feature `migrate`, default) |
//! | `postgres` | `wa-store-postgres` | PostgreSQL store for fleets (feature `postgres`) |
//! | `backup` | `wa-backup` | online, age-encrypted backups and verified restores (feature `backup`) |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> wa::auth::Result<()> {
//! use std::sync::Arc;
//! let state = wa::auth::AuthState::load(Arc::new(wa::auth::MemoryStore::new())).await?;
//! assert!(!state.creds().is_paired());
//! # Ok(()) }
//! ```
//!
//! # Which feature for which backend
//!
//! | backend | feature | open it with | use it for |
//! |---|---|---|---|
//! | in memory | always on | `auth::MemoryStore` | tests, throwaway devices |
//! | native files | `native` (default) | `native::use_native_file_auth_state(dir)` | one service, one device per directory: the durable default |
//! | Baileys folder | `compat` (default) | `compat::use_multi_file_auth_state(dir)` | sharing a folder with Baileys 6/7, or moving off it |
//! | PostgreSQL | `postgres` | `postgres::PostgresStore::open(pool, options)` | many accounts across replicas |
//!
//! The `link` feature (default) adds the `link` module (`wa-link`): `DeviceLink` over a frame
//! transport, pairing, client payloads, pre-key upload and signed pre-key rotation, the flows
//! that were `wa_auth::flows` before. A program that only stores auth state (for another
//! client) can leave it out.
//!
//! The `migrate` feature (default) adds the `migrate` module (`wa-migrate`: `migrate_between`,
//! `inspect`, `verify`), the library behind `wa-auth-state migrate`. With
//! `default-features = false` only the memory store is left. The facade's `postgres` feature
//! also switches on PostgreSQL support inside `wa-migrate` (and `wa-backup`): with both
//! `migrate` and `postgres`, `migrate::Location::Postgres` accounts can be migrated to and
//! from. The `backup` feature adds the `backup` module (`wa-backup`).
//!
//! # A native auth state
//!
//! Open (or create) a native store in a directory, get its [`AuthState`](auth::AuthState), and
//! change something. Each change is one atomic commit that is on disk when the call returns;
//! creds changes are saved with it (and announced as
//! [`AuthEvent::CredsUpdated`](auth::AuthEvent::CredsUpdated)).
//!
//! ```
//! # #[cfg(feature = "native")]
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use wa::auth::AuthEvent;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("device");
//!
//! let state = wa::native::use_native_file_auth_state(&path).await?; // fresh creds: empty store
//! let mut events = state.subscribe();
//! state.update_creds(|creds| creds.next_pre_key_id = 31).await?; // saved before it returns
//! assert!(matches!(events.try_recv(), Ok(AuthEvent::CredsUpdated(c)) if c.next_pre_key_id == 31));
//! let registration_id = state.creds().registration_id;
//! drop(state); // closes the store and releases its lock
//!
//! // A restart: the same account, read back from disk.
//! let state = wa::native::use_native_file_auth_state(&path).await?;
//! assert_eq!(state.creds().registration_id, registration_id);
//! assert_eq!(state.creds().next_pre_key_id, 31);
//! # Ok(()) }
//! # #[cfg(not(feature = "native"))] fn main() {}
//! ```
//!
//! # Guides
//!
//! In the repository's `docs/` folder:
//!
//! - `quickstart.md`: from an empty project to a running native auth state, and moving a
//!   Baileys folder over;
//! - `persistence.md`: choosing a backend, saving creds, transactions, writing your own
//!   `Persistence` and running the conformance suite against it;
//! - `migration.md`: `cargo xtask migrate | inspect | verify` and the `wa-migrate` API;
//! - `operations.md`: backups, permissions, one owner per account, durability, errors;
//! - `postgres.md`, `format-native.md`, `format-compat.md`: the backends in depth.

pub use wa_auth as auth;
pub use wa_proto as proto;
pub use wa_signal as signal;

#[cfg(feature = "backup")]
#[cfg_attr(docsrs, doc(cfg(feature = "backup")))]
pub use wa_backup as backup;
#[cfg(feature = "link")]
#[cfg_attr(docsrs, doc(cfg(feature = "link")))]
pub use wa_link as link;
#[cfg(feature = "migrate")]
#[cfg_attr(docsrs, doc(cfg(feature = "migrate")))]
pub use wa_migrate as migrate;
#[cfg(feature = "compat")]
#[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
pub use wa_store_compat as compat;
#[cfg(feature = "native")]
#[cfg_attr(docsrs, doc(cfg(feature = "native")))]
pub use wa_store_native as native;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use wa_store_postgres as postgres;

/// README.md, docs/*.md and the crates' README.md as doc comments, so that `cargo test`
/// compiles (and runs) every Rust block in them: the docs cannot drift from the code. Pages
/// about an optional feature are checked when it is on (`--all-features`, as CI runs).
#[cfg(doctest)]
pub mod docs {
    #[doc = include_str!("../../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../../docs/quickstart.md")]
    pub struct Quickstart;
    #[doc = include_str!("../../../docs/persistence.md")]
    pub struct Persistence;
    #[doc = include_str!("../../../docs/migration.md")]
    pub struct Migration;
    #[doc = include_str!("../../../docs/operations.md")]
    pub struct Operations;
    #[cfg(feature = "postgres")]
    #[doc = include_str!("../../../docs/postgres.md")]
    pub struct Postgres;
    #[doc = include_str!("../../../docs/node.md")]
    pub struct Node;
    #[doc = include_str!("../../../docs/format-native.md")]
    pub struct FormatNative;
    #[doc = include_str!("../../../docs/format-compat.md")]
    pub struct FormatCompat;
    #[doc = include_str!("../../../docs/format-backup.md")]
    pub struct FormatBackup;
    #[doc = include_str!("../../../docs/benchmarks.md")]
    pub struct Benchmarks;
    #[doc = include_str!("../../wa-auth/README.md")]
    pub struct AuthReadme;
    #[doc = include_str!("../../wa-store-native/README.md")]
    pub struct StoreNativeReadme;
    #[doc = include_str!("../../wa-store-compat/README.md")]
    pub struct StoreCompatReadme;
    #[cfg(feature = "postgres")]
    #[doc = include_str!("../../wa-store-postgres/README.md")]
    pub struct StorePostgresReadme;
    #[doc = include_str!("../../wa-migrate/README.md")]
    pub struct MigrateReadme;
    #[cfg(feature = "backup")]
    #[doc = include_str!("../../wa-backup/README.md")]
    pub struct BackupReadme;
}
