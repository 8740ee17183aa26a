//! Writing your own backend: implement the methods of `Persistence` and prove it with the
//! shared conformance suite (the same tests every built-in store passes).
//!
//! ```sh
//! cargo run -p wa --example custom_persistence   # runs the suite once
//! cargo test -p wa --example custom_persistence  # one test per rule
//! ```
//!
//! This toy backend keeps everything in a map behind a mutex and counts commits; a real one
//! would talk to its database. The rules it must keep are on the `Persistence` trait: validate
//! the batch, apply it all or nothing, never report unreadable data as absent, carry unknown
//! kinds and creds fields, and refuse everything once closed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use wa::auth::conformance::{self, Harness};
use wa::auth::{
    AuthCreds, AuthError, Capabilities, KeyId, KeyKind, KeyValue, Persistence, Result, WriteBatch,
};

#[derive(Debug, Default)]
struct Data {
    creds: Option<AuthCreds>,
    keys: BTreeMap<(KeyKind, KeyId), KeyValue>,
}

/// A map-backed store handle. [`MapStore::reopen`] gives a new handle on the same data, which
/// is how the suite "reopens" it.
#[derive(Debug, Default)]
struct MapStore {
    data: Arc<parking_lot::Mutex<Data>>,
    commits: Arc<AtomicUsize>,
    closed: AtomicBool,
}

impl MapStore {
    /// A new (open) handle on the same data.
    fn reopen(&self) -> Self {
        Self {
            data: self.data.clone(),
            commits: self.commits.clone(),
            closed: AtomicBool::new(false),
        }
    }

    /// Every operation of a closed handle fails with `Closed`.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AuthError::Closed);
        }
        Ok(())
    }
}

#[async_trait]
impl Persistence for MapStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("map").atomic_commit(true)
    }

    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.check_open()?;
        Ok(self.data.lock().creds.clone())
    }

    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.check_open()?;
        let data = self.data.lock();
        let mut found: Vec<(KeyId, KeyValue)> = ids
            .iter()
            .filter_map(|id| {
                data.keys
                    .get(&(kind.clone(), id.clone()))
                    .map(|v| (id.clone(), v.clone()))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok(found)
    }

    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.check_open()?;
        Ok(self
            .data
            .lock()
            .keys
            .keys()
            .filter(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.check_open()?;
        let mut kinds: Vec<KeyKind> = self
            .data
            .lock()
            .keys
            .keys()
            .map(|(k, _)| k.clone())
            .collect();
        kinds.dedup();
        Ok(kinds)
    }

    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.check_open()?;
        batch.validate()?; // reject invalid batches before touching anything
        let mut data = self.data.lock(); // one lock for the whole batch: all or nothing
        let (creds, keys) = batch.into_parts();
        if let Some(creds) = creds {
            data.creds = Some(creds);
        }
        for (kind, entries) in keys {
            for (id, value) in entries {
                match value {
                    Some(value) => data.keys.insert((kind.clone(), id), value),
                    None => data.keys.remove(&(kind.clone(), id)),
                };
            }
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        self.check_open() // nothing to make durable: the data lives in memory
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst); // idempotent
        Ok(())
    }
}

/// The suite's factory: every `open` is a new handle on the same data.
struct MapHarness(MapStore);

#[async_trait]
impl Harness for MapHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        Arc::new(self.0.reopen())
    }
}

// `cargo test --example custom_persistence`: one test per rule of the contract.
#[cfg(test)]
wa::auth::conformance_tests!(map_store, MapHarness(MapStore::default()));

#[tokio::main]
async fn main() {
    let store = MapStore::default();
    let commits = store.commits.clone();
    conformance::run_all(move || {
        MapHarness(MapStore {
            commits: commits.clone(),
            ..MapStore::default()
        })
    })
    .await;
    println!(
        "MapStore passes the wa-auth conformance suite ({} commits)",
        store.commits.load(Ordering::Relaxed)
    );

    // And it works under an AuthState like any built-in backend.
    let state = wa::auth::AuthState::load(Arc::new(store))
        .await
        .expect("load");
    println!(
        "fresh account with registration id {}",
        state.creds().registration_id
    );
}
