//! One open store, as the JS side uses it: creds at open, `get`, `set` (one atomic commit, with
//! creds when they changed), `saveCreds`, `clear`, `close`. Pure Rust; `js` only exports it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use deadpool_postgres::Pool;
use parking_lot::Mutex;
use wa_auth::{AuthCreds, AuthError, KeyKind, Persistence, PersistenceExt, Result, WriteBatch};
use wa_store_compat::{CompatStore, CompatStoreOptions, Flavour, FlavourSource};
use wa_store_native::NativeStore;
use wa_store_postgres::{PostgresStore, connect};

use crate::options::{Common, FolderOptions, NativeOptions, PostgresOptions};
use crate::values::{self, GetOutput};

/// The store behind a handle.
#[derive(Debug)]
pub enum Backend {
    /// The crash-safe binary store (durable on commit).
    Native(NativeStore),
    /// A Baileys folder written crash-safely (durable on commit).
    Folder(CompatStore),
    /// PostgreSQL (write-behind; `set` flushes unless `writeBehind`).
    Postgres(PostgresStore),
}

impl Backend {
    fn store(&self) -> &dyn Persistence {
        match self {
            Backend::Native(store) => store,
            Backend::Folder(store) => store,
            Backend::Postgres(store) => store,
        }
    }

    async fn close(&self) -> Result<()> {
        self.store().close().await
    }

    /// The flavour the stored data shows, if any.
    async fn stored_flavour(&self, creds: &AuthCreds) -> Result<Option<Flavour>> {
        if let Backend::Folder(store) = self {
            return Ok(
                (store.report().flavour_source != FlavourSource::Default).then(|| store.flavour())
            );
        }
        let kinds = self.store().kinds().await?;
        if Flavour::BAILEYS7_KINDS.iter().any(|k| kinds.contains(k)) {
            return Ok(Some(Flavour::Baileys7));
        }
        Ok(creds
            .signal_identities
            .first()
            .and_then(|identity| Flavour::of_own_identity(&identity.identifier.name)))
    }
}

/// A creds snapshot from JS, numbered in the order JS took them.
#[derive(Debug, Clone)]
pub struct CredsSnapshot {
    /// Increases with every snapshot JS takes.
    pub seq: u64,
    /// The creds object's JSON text.
    pub json: String,
}

/// An open store.
#[derive(Debug)]
pub struct Handle {
    backend: Backend,
    explicit_flavour: bool,
    flavour: AtomicU8,
    /// `set` flushes after committing (PostgreSQL without `writeBehind`).
    flush_on_set: bool,
    /// The sequence number of the newest creds snapshot committed; held while a commit with
    /// creds runs, so an older snapshot never lands after a newer one.
    creds_seq: tokio::sync::Mutex<u64>,
    closed: AtomicBool,
    creds_json: String,
}

fn flavour_code(flavour: Flavour) -> u8 {
    match flavour {
        Flavour::Baileys6 => 6,
        _ => 7,
    }
}

impl Handle {
    /// Opens the native store in `dir`.
    pub async fn open_native(dir: &Path, options: NativeOptions) -> Result<Self> {
        let store = NativeStore::open(dir).await?;
        Self::load(Backend::Native(store), options.common(), false).await
    }

    /// Opens the Baileys folder `dir` (created if missing).
    pub async fn open_folder(dir: &Path, options: FolderOptions) -> Result<Self> {
        let common = options.common();
        let explicit = common.explicit()?;
        let open = |flavour: Option<Flavour>| {
            let mut store_options = CompatStoreOptions::default().fsync(options.fsync);
            if let Some(flavour) = flavour {
                store_options = store_options.flavour(flavour);
            }
            CompatStore::open_with(dir, store_options)
        };
        let mut store = open(explicit).await?;
        // A folder that shows no flavour yet gets the installed Baileys' one, so the files it
        // writes stay readable by that Baileys.
        if explicit.is_none()
            && store.report().flavour_source == FlavourSource::Default
            && let Some(hint) = common.hint().filter(|h| *h != store.flavour())
        {
            store.close().await?;
            drop(store);
            store = open(Some(hint)).await?;
        }
        Self::load(Backend::Folder(store), common, false).await
    }

    /// Opens a PostgreSQL instance (on a pool shared per connection string).
    pub async fn open_postgres(options: PostgresOptions) -> Result<Self> {
        let store_options = options.store_options()?;
        let pool = shared_pool(&options.connection_string, options.pool_size.unwrap_or(8))?;
        let store = PostgresStore::open(pool, store_options).await?;
        Self::load(
            Backend::Postgres(store),
            options.common(),
            !options.write_behind,
        )
        .await
    }

    async fn load(backend: Backend, common: Common, flush_on_set: bool) -> Result<Self> {
        let explicit = common.explicit()?;
        let store = backend.store();
        let creds = match store.load_creds().await? {
            Some(creds) => creds,
            None if store.is_empty().await? => {
                // A new account: its identity is created here and made durable at once.
                let creds = AuthCreds::generate();
                store.save_creds(&creds).await?;
                store.flush().await?;
                creds
            }
            None => {
                return Err(AuthError::NotFound {
                    what: "creds (the store holds keys but no creds; a new identity is not \
                           created over them)"
                        .into(),
                });
            }
        };
        let flavour = match explicit {
            Some(flavour) => flavour,
            None => backend
                .stored_flavour(&creds)
                .await?
                .or(common.hint())
                .unwrap_or(Flavour::Baileys7),
        };
        Ok(Self {
            creds_json: values::creds_to_json(&creds)?,
            backend,
            explicit_flavour: explicit.is_some(),
            flavour: AtomicU8::new(flavour_code(flavour)),
            flush_on_set,
            creds_seq: tokio::sync::Mutex::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// The creds as loaded at open, as `creds.json` text.
    pub fn creds_json(&self) -> &str {
        &self.creds_json
    }

    /// The flavour of the values handed out.
    pub fn flavour(&self) -> Flavour {
        match self.flavour.load(Ordering::Relaxed) {
            6 => Flavour::Baileys6,
            _ => Flavour::Baileys7,
        }
    }

    /// The backend's short name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.store().capabilities().backend
    }

    /// Whether reads are served from memory (so [`Handle::get_now`] never waits on I/O).
    pub fn reads_from_memory(&self) -> bool {
        !matches!(self.backend, Backend::Folder(_))
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(AuthError::Closed)
        } else {
            Ok(())
        }
    }

    /// `keys.get(type, ids)`.
    pub async fn get(&self, kind: &str, ids: &[String]) -> Result<GetOutput> {
        self.check_open()?;
        let kind = values::parse_kind(kind)?;
        let ids = ids
            .iter()
            .map(|id| values::parse_id(&kind, id))
            .collect::<Result<Vec<_>>>()?;
        let found = self.backend.store().get(&kind, &ids).await?;
        values::get_output(&kind, &ids, found, self.flavour())
    }

    /// [`Handle::get`] on the calling thread, for stores that read from memory (their `get`
    /// completes without waiting). Refused for the others.
    pub fn get_now(&self, kind: &str, ids: &[String]) -> Result<GetOutput> {
        if !self.reads_from_memory() {
            return Err(AuthError::invalid(
                "get_now",
                "this store reads files; use get",
            ));
        }
        futures::executor::block_on(self.get(kind, ids))
    }

    /// `keys.set(data)`: ONE atomic commit of every entry (and of `creds` when given), durable
    /// when it returns unless the store is write-behind by choice.
    pub async fn set(&self, data: &str, creds: Option<CredsSnapshot>) -> Result<()> {
        self.check_open()?;
        let (batch, info) = values::parse_batch(data)?;
        if let (false, Some(flavour)) = (self.explicit_flavour, info.flavour) {
            self.flavour.store(flavour_code(flavour), Ordering::Relaxed);
        }
        match creds {
            Some(snapshot) => self.commit_with_creds(batch, snapshot).await,
            None => self.commit(batch).await,
        }
    }

    /// `saveCreds()`: commits the creds alone.
    pub async fn save_creds(&self, snapshot: CredsSnapshot) -> Result<()> {
        self.check_open()?;
        self.commit_with_creds(WriteBatch::new(), snapshot).await
    }

    async fn commit(&self, batch: WriteBatch) -> Result<()> {
        let store = self.backend.store();
        store.commit(batch).await?;
        if self.flush_on_set {
            store.flush().await?;
        }
        Ok(())
    }

    async fn commit_with_creds(
        &self,
        mut batch: WriteBatch,
        snapshot: CredsSnapshot,
    ) -> Result<()> {
        let creds = values::creds_from_json(&snapshot.json)?;
        let mut newest = self.creds_seq.lock().await;
        // An older snapshot than one already committed would undo it: its keys still land.
        if snapshot.seq > *newest {
            batch.set_creds(creds);
        }
        self.commit(batch).await?;
        *newest = (*newest).max(snapshot.seq);
        Ok(())
    }

    /// `keys.clear()`: deletes every key (not the creds) in one commit.
    pub async fn clear(&self) -> Result<()> {
        self.check_open()?;
        let store = self.backend.store();
        let mut batch = WriteBatch::new();
        for kind in store.kinds().await? {
            for id in store.list(&kind).await? {
                batch.delete(kind.clone(), id);
            }
        }
        self.commit(batch).await
    }

    /// Flushes and releases the store (its lock or lease). Later calls fail with `CLOSED`;
    /// closing again does nothing.
    pub async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.backend.store().flush().await?;
        self.backend.close().await
    }

    /// Kinds with keys (for tests and tools).
    pub async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.check_open()?;
        self.backend.store().kinds().await
    }
}

/// One pool per connection string, shared by every instance the process opens (the first
/// open of a connection string sets its size). The string is resolved as libpq does: the
/// `PG*` environment variables fill what it leaves out, a password file supplies the
/// password, and `sslmode`/`sslrootcert` select TLS (rustls).
fn shared_pool(connection_string: &str, size: usize) -> Result<Pool> {
    static POOLS: OnceLock<Mutex<HashMap<String, Pool>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock();
    if let Some(pool) = pools.get(connection_string) {
        return Ok(pool.clone());
    }
    let pool = connect::pool(connection_string, size)?;
    pools.insert(connection_string.to_owned(), pool.clone());
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn snapshot(seq: u64, creds: &AuthCreds) -> CredsSnapshot {
        CredsSnapshot {
            seq,
            json: values::creds_to_json(creds).unwrap(),
        }
    }

    async fn native(dir: &Path) -> Handle {
        Handle::open_native(dir, crate::options::parse("{}").unwrap())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fresh_native_store_gets_durable_creds_and_round_trips_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        let handle = native(&path).await;
        let creds = values::creds_from_json(handle.creds_json()).unwrap();
        let data = json!({"lid-mapping": {"4915112345678": "123456789012345"},
                          "tool-x": {"a": {"deep": [1, 2]}}});
        handle.set(&data.to_string(), None).await.unwrap();
        let got = handle
            .get_now("lid-mapping", &["4915112345678".into(), "1".into()])
            .unwrap();
        assert_eq!(got.json, r#"{"4915112345678":"123456789012345","1":null}"#);
        handle.close().await.unwrap();
        assert!(matches!(
            handle.get("session", &[]).await,
            Err(AuthError::Closed)
        ));

        let again = native(&path).await;
        assert_eq!(values::creds_from_json(again.creds_json()).unwrap(), creds);
        let got: Value =
            serde_json::from_str(&again.get("tool-x", &["a".into()]).await.unwrap().json).unwrap();
        assert_eq!(got, json!({"a": {"deep": [1, 2]}}));
        again.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_entry_writes_nothing_and_creds_ride_along_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let handle = native(dir.path()).await;
        let bad = json!({"lid-mapping": {"1": "2"}, "session": {"1.0": 5}});
        let err = handle.set(&bad.to_string(), None).await.unwrap_err();
        assert!(matches!(err, AuthError::Invalid { .. }), "{err}");
        assert_eq!(
            handle.get_now("lid-mapping", &["1".into()]).unwrap().json,
            r#"{"1":null}"#
        );

        let mut creds = values::creds_from_json(handle.creds_json()).unwrap();
        creds.next_pre_key_id = 31;
        let newer = snapshot(2, &creds);
        creds.next_pre_key_id = 11;
        let older = snapshot(1, &creds);
        handle
            .set(r#"{"lid-mapping": {"1": "2"}}"#, Some(newer))
            .await
            .unwrap();
        handle
            .set(r#"{"lid-mapping": {"3": "4"}}"#, Some(older))
            .await
            .unwrap();
        handle.close().await.unwrap();
        let again = native(dir.path()).await;
        let stored = values::creds_from_json(again.creds_json()).unwrap();
        assert_eq!(
            stored.next_pre_key_id, 31,
            "the older snapshot must not win"
        );
        let got = again
            .get_now("lid-mapping", &["1".into(), "3".into()])
            .unwrap();
        assert_eq!(got.json, r#"{"1":"2","3":"4"}"#);
        again.clear().await.unwrap();
        assert!(again.kinds().await.unwrap().is_empty());
        again.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn folder_store_is_read_asynchronously_and_owned_once() {
        let dir = tempfile::tempdir().unwrap();
        let options =
            || crate::options::parse::<FolderOptions>(r#"{"baileysVersion": 6}"#).unwrap();
        let handle = Handle::open_folder(dir.path(), options()).await.unwrap();
        assert_eq!(handle.flavour(), Flavour::Baileys6);
        assert!(dir.path().join("creds.json").is_file());
        assert!(handle.get_now("session", &[]).is_err());
        let second = Handle::open_folder(dir.path(), options())
            .await
            .unwrap_err();
        assert!(matches!(second, AuthError::AlreadyOwned { .. }), "{second}");
        handle.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_folder_takes_the_installed_baileys_flavour_and_a_written_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let hinted = |hint: u8| {
            crate::options::parse::<FolderOptions>(&format!(r#"{{"installedBaileys": {hint}}}"#))
                .unwrap()
        };
        let handle = Handle::open_folder(dir.path(), hinted(6)).await.unwrap();
        assert_eq!(handle.flavour(), Flavour::Baileys6);
        handle.close().await.unwrap();
        // Once the folder shows its flavour, the hint no longer decides.
        let (kind, id, value) = wa_auth::sample::one_of_every_kind()
            .into_iter()
            .find(|(k, _, _)| *k == KeyKind::SenderKey)
            .unwrap();
        let sender_key = values::runtime_value(&kind, &value, Flavour::Baileys6).unwrap();
        let data = json!({"sender-key": {id.as_str(): sender_key}});
        let handle = Handle::open_folder(dir.path(), hinted(6)).await.unwrap();
        handle.set(&data.to_string(), None).await.unwrap();
        handle.close().await.unwrap();
        let handle = Handle::open_folder(dir.path(), hinted(7)).await.unwrap();
        assert_eq!(handle.flavour(), Flavour::Baileys6);
        handle.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_without_creds_are_not_given_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lid-mapping-1.json"), "\"2\"").unwrap();
        let err = Handle::open_folder(dir.path(), crate::options::parse("{}").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::NotFound { .. }), "{err}");
        assert!(!dir.path().join("creds.json").exists());
    }
}
