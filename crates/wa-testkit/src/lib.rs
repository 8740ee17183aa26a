//! Test support shared by the workspace's crates. Not published, dev-dependency only.
//!
//! - [`fixtures`]: where the fixtures live (`$WA_FIXTURES`, default the repository's `fixtures/`)
//!   and helpers that enumerate the cases found there.
//! - [`vectors`]: base64 fields, the node JSON form, BufferJSON, failure collection.

pub mod fixtures;
pub mod vectors;
