//! Test support shared by the workspace's crates. Not published, dev-dependency only.
//!
//! - [`fixtures`]: where the fixtures live (`$WA_FIXTURES`, default the repository's `fixtures/`)
//!   and helpers that enumerate the cases found there.
//! - [`vectors`]: base64 fields, the node JSON form, BufferJSON, failure collection.
//! - [`postgres`]: a throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir, a free port)
//!   that tests can stop, restart and kill.
//! - [`tls`]: a test CA and a server certificate signed by it (openssl CLI), for PostgreSQL
//!   over verified TLS ([`postgres::Cluster::enable_test_tls`]).
//! - [`crash`]: the seed, runtime and kill step (`run_and_kill`) of the tests that kill a child
//!   process.

pub mod crash;
pub mod fixtures;
pub mod postgres;
pub mod tls;
pub mod vectors;
