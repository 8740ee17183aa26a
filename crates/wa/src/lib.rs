//! WhatsApp multi-device auth state and its persistence, in one crate.
//!
//! This facade re-exports the workspace's crates; depend on it, or pick the crates you need.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`proto`] | `wa-proto` | wire format: protobuf messages, binary nodes, JIDs, frames |
//! | [`signal`] | `wa-signal` | Signal protocol core and the Noise handshake |
//! | [`auth`] | `wa-auth` | creds, key store, `Persistence`, `AuthState`, transactions |
//! | `native` | `wa-store-native` | crash-safe binary file store (feature `native`, default) |
//! | `compat` | `wa-store-compat` | Baileys-compatible JSON folders (feature `compat`, default) |
//! | `migrate` | `wa-migrate` | staged, verified migration (feature `migrate`, default) |
//! | `postgres` | `wa-store-postgres` | PostgreSQL store for fleets (feature `postgres`) |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> wa::auth::Result<()> {
//! use std::sync::Arc;
//! let state = wa::auth::AuthState::load(Arc::new(wa::auth::MemoryStore::new())).await?;
//! assert!(!state.creds().is_paired());
//! # Ok(()) }
//! ```

pub use wa_auth as auth;
pub use wa_proto as proto;
pub use wa_signal as signal;

#[cfg(feature = "migrate")]
pub use wa_migrate as migrate;
#[cfg(feature = "compat")]
pub use wa_store_compat as compat;
#[cfg(feature = "native")]
pub use wa_store_native as native;
#[cfg(feature = "postgres")]
pub use wa_store_postgres as postgres;
