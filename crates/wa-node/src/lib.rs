//! Node-API addon: Baileys' auth state — `AuthenticationCreds` and its `SignalKeyStore` — over
//! this workspace's stores, so a Baileys program switches with one line:
//!
//! ```js
//! const { state, saveCreds, close } = await useNativeAuthState('auth_native')
//! ```
//!
//! The npm package (`package/`: a thin JS entry and TypeScript declarations around this addon)
//! exports `useNativeAuthState`, `useBaileysFolderAuthState` and `usePostgresAuthState`. Values
//! cross the boundary as JSON text in Baileys' own shapes, converted by `wa_store_compat`'s
//! codecs ([`values`]); the JS side only turns Buffers into `{"type":"Buffer","data"}` objects
//! and back. Errors reach JS as `Error`s with a stable `code` ([`error`]). See `docs/node.md`.
//!
//! - [`handle`]: one open store and its operations (pure Rust, unit-tested);
//! - [`values`]: JSON text <-> typed creds, keys and batches, with input checks;
//! - [`options`]: the options objects of the three entry points;
//! - `js`: the napi exports (the only module with generated unsafe code).

pub mod error;
pub mod handle;
pub mod options;
pub mod values;

// napi-derive registers the exports only outside unit tests, where they look unused.
#[allow(unsafe_code)]
#[cfg_attr(test, allow(dead_code))]
mod js;
