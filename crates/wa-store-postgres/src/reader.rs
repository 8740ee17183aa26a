//! [`PostgresReader`]: a consistent, read-only snapshot of one account, taken without the
//! lease. What inspection, verification and migration read from, so they work beside a live
//! owner and never change anything (not even the lease row).

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tracing::debug;
use wa_auth::{
    AuthCreds, AuthError, Capabilities, KeyId, KeyKind, KeyValue, Persistence, Result, WriteBatch,
};

use crate::Pool;
use crate::error::{BACKEND, backend, no_connection};
use crate::load;
use crate::memory::Memory;
use crate::schema::{self, SchemaName};
use crate::sql::Statements;

/// The creds and keys of one account as they were at one moment (read in a single
/// `REPEATABLE READ READ ONLY` transaction). Commits are refused with
/// [`AuthError::ReadOnly`]; after [`Persistence::close`] every read fails with
/// [`AuthError::Closed`].
pub struct PostgresReader {
    instance: String,
    memory: Memory,
    closed: AtomicBool,
}

impl std::fmt::Debug for PostgresReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReader")
            .field("instance", &self.instance)
            .field("keys", &self.memory.key_count())
            .finish_non_exhaustive()
    }
}

impl PostgresReader {
    /// Reads account `instance` in schema `schema`: checks the schema version (never migrates
    /// it), takes no lease, loads everything in one read-only snapshot transaction. Values
    /// are decoded when read, so one damaged row fails only the read that touches it
    /// ([`AuthError::Corrupt`] naming it).
    pub async fn open(pool: &Pool, schema: &SchemaName, instance: &str) -> Result<Self> {
        let client = pool.get().await.map_err(no_connection)?;
        schema::check_version(&client, schema).await?;
        let statements = Statements::new(schema);
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(backend)?;
        let loaded = load::load(&client, &statements, instance, &[]).await;
        // Ending a read-only transaction cannot lose anything; a failure here only matters
        // for the connection, which the pool then discards.
        let ended = client.batch_execute("COMMIT").await.map_err(backend);
        let memory = loaded?;
        ended?;
        debug!(
            instance,
            keys = memory.key_count(),
            "read PostgreSQL snapshot"
        );
        Ok(Self {
            instance: instance.to_owned(),
            memory,
            closed: AtomicBool::new(false),
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AuthError::Closed);
        }
        Ok(())
    }

    /// The account read.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }
}

#[async_trait]
impl Persistence for PostgresReader {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND).persistent(true).read_only(true)
    }

    async fn load_creds(&self) -> Result<Option<AuthCreds>> {
        self.check_open()?;
        self.memory.load_creds()
    }

    async fn get(&self, kind: &KeyKind, ids: &[KeyId]) -> Result<Vec<(KeyId, KeyValue)>> {
        self.check_open()?;
        self.memory
            .get(kind, ids)
            .into_iter()
            .map(|(id, slot)| {
                Memory::decode(&self.instance, kind, &id, slot).map(|value| (id, value))
            })
            .collect()
    }

    async fn list(&self, kind: &KeyKind) -> Result<Vec<KeyId>> {
        self.check_open()?;
        Ok(self.memory.list(kind))
    }

    async fn kinds(&self) -> Result<Vec<KeyKind>> {
        self.check_open()?;
        Ok(self.memory.kinds())
    }

    async fn commit(&self, _batch: WriteBatch) -> Result<()> {
        self.check_open()?;
        Err(AuthError::ReadOnly {
            resource: format!("PostgreSQL instance {} (a PostgresReader)", self.instance),
        })
    }

    async fn flush(&self) -> Result<()> {
        self.check_open()
    }

    /// Drops nothing but the right to read: the snapshot holds no connection or lease.
    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}
