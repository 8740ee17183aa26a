//! The database schema: its name, the embedded ordered migrations, and the version check.
//!
//! Every table lives in one PostgreSQL schema (default `wa_auth`), shared by all instances
//! (accounts). `<schema>.schema_migrations` records each applied migration; the schema's version
//! is the highest applied. Its layout never changes, so any build can read the version of any
//! database. A database at a version this build does not know is refused with
//! [`AuthError::UnsupportedVersion`]; it is never reset or downgraded.
//!
//! Migrations run in one transaction under an advisory lock, so replicas starting together
//! migrate once and never see a half-migrated schema.

use std::fmt;
use std::time::Duration;

use tokio_postgres::Client;
use tracing::info;
use wa_auth::{AuthError, Result};

use crate::error::{backend, backend_msg, describe};

/// One embedded migration: its version (1, 2, ... without gaps) and SQL with `{schema}` where
/// the quoted schema name goes.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The version the schema has after this migration.
    pub version: i32,
    /// What it does, recorded in `schema_migrations`.
    pub name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. The last one's version is [`LATEST_VERSION`].
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys, creds and leases",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "written_epoch on keys and creds, last_flush_at on leases",
        sql: include_str!("migrations/0002_write_epochs.sql"),
    },
];

/// How long the server keeps a migration transaction whose client went silent.
const MIGRATION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema version this build writes and reads.
pub const LATEST_VERSION: i32 = 2;

/// A validated PostgreSQL schema name: 1..=63 characters of `[a-z0-9_]`, not starting with a
/// digit, and not starting with `pg_` (reserved by PostgreSQL).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    /// The default schema, `wa_auth`.
    pub const DEFAULT: &'static str = "wa_auth";

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit()
            && !name.starts_with("pg_");
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(AuthError::invalid(
                format!("schema name {name:?}"),
                "must be 1..=63 characters of [a-z0-9_], not starting with a digit or pg_",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an SQL identifier (quoted).
    pub(crate) fn ident(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// `sql` with every `{schema}` replaced by the quoted name.
    pub(crate) fn render(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.ident())
    }
}

impl Default for SchemaName {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchemaName({:?})", self.0)
    }
}

fn too_new(schema: &SchemaName, version: i32) -> AuthError {
    AuthError::UnsupportedVersion {
        what: format!("PostgreSQL schema {schema}"),
        version: version.to_string(),
        supported: format!("1..={LATEST_VERSION}"),
    }
}

/// The schema's current version: 0 when it has no `schema_migrations` table yet.
pub async fn current_version(client: &Client, schema: &SchemaName) -> Result<i32> {
    let table = format!("{}.schema_migrations", schema.ident());
    let exists: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&table])
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)?;
    if exists.is_none() {
        return Ok(0);
    }
    let row = client
        .query_one(
            &schema.render("SELECT COALESCE(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .map_err(backend)?;
    row.try_get(0).map_err(backend)
}

/// Checks that the schema is exactly at [`LATEST_VERSION`], without changing anything.
pub async fn check_version(client: &Client, schema: &SchemaName) -> Result<()> {
    match current_version(client, schema).await? {
        LATEST_VERSION => Ok(()),
        v if v > LATEST_VERSION => Err(too_new(schema, v)),
        v => Err(AuthError::UnsupportedVersion {
            what: format!("PostgreSQL schema {schema} (migrations not applied)"),
            version: v.to_string(),
            supported: format!("{LATEST_VERSION}; run wa_store_postgres::migrate first"),
        }),
    }
}

/// Migrates the schema to [`LATEST_VERSION`]; see [`migrate_to`].
pub async fn migrate(client: &mut Client, schema: &SchemaName) -> Result<MigrationReport> {
    migrate_to(client, schema, LATEST_VERSION).await
}

/// What a migration run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version before.
    pub from: i32,
    /// The version after.
    pub to: i32,
    /// The versions applied by this run, in order (empty when already up to date).
    pub applied: Vec<i32>,
}

/// Creates the schema if needed and applies, in order and in ONE transaction, every embedded
/// migration above the current version up to `target` (useful for staged upgrades and tests;
/// [`migrate`] goes to the latest). A database already at or above `target` is left unchanged
/// (and no lock is taken); one above [`LATEST_VERSION`] is [`AuthError::UnsupportedVersion`].
///
/// The transaction sets `idle_in_transaction_session_timeout` (60 s): should the migrating
/// process die or lose its network, the server ends the transaction and its lock, instead of
/// holding up every other replica's `open` until TCP gives up.
pub async fn migrate_to(
    client: &mut Client,
    schema: &SchemaName,
    target: i32,
) -> Result<MigrationReport> {
    if !(0..=LATEST_VERSION).contains(&target) {
        return Err(AuthError::invalid(
            "migration target",
            format!("{target} is not in 0..={LATEST_VERSION}"),
        ));
    }
    let current = current_version(client, schema).await?;
    if current > LATEST_VERSION {
        return Err(too_new(schema, current));
    }
    if current >= target {
        return Ok(MigrationReport {
            from: current,
            to: current,
            applied: Vec::new(),
        });
    }
    let tx = client.transaction().await.map_err(backend)?;
    tx.batch_execute(&format!(
        "SET LOCAL idle_in_transaction_session_timeout = {}",
        MIGRATION_IDLE_TIMEOUT.as_millis()
    ))
    .await
    .map_err(backend)?;
    // Serialises concurrent migrators of this schema (CREATE ... IF NOT EXISTS is not
    // race-free on its own); released at commit or rollback.
    let lock_name = format!("wa-store-postgres migrations {schema}");
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_name])
        .await
        .map_err(backend)?;
    tx.batch_execute(&schema.render(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version    INTEGER     PRIMARY KEY,
             name       TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    ))
    .await
    .map_err(backend)?;
    let from: i32 = tx
        .query_one(
            &schema.render("SELECT COALESCE(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(backend)?;
    if from > LATEST_VERSION {
        return Err(too_new(schema, from));
    }
    let applied = apply(&tx, schema, from, target).await?;
    tx.commit().await.map_err(backend)?;
    let to = applied.last().copied().unwrap_or(from);
    if !applied.is_empty() {
        info!(%schema, from, to, ?applied, "applied schema migrations");
    }
    Ok(MigrationReport { from, to, applied })
}

/// Applies the migrations above `from` up to `target` in `tx`; returns their versions.
async fn apply(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &SchemaName,
    from: i32,
    target: i32,
) -> Result<Vec<i32>> {
    let mut applied = Vec::new();
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= target)
    {
        tx.batch_execute(&schema.render(migration.sql))
            .await
            .map_err(|e| {
                backend_msg(format!(
                    "migration {} ({}) failed: {}",
                    migration.version,
                    migration.name,
                    describe(&e)
                ))
            })?;
        tx.execute(
            &schema
                .render("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(backend)?;
        applied.push(migration.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert!(m.sql.contains("{schema}"));
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST_VERSION));
    }

    #[test]
    fn schema_names_are_validated() {
        for ok in ["wa_auth", "tenant_17", "_x"] {
            assert!(SchemaName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Upper",
            "a-b",
            "pg_catalog",
            "a\"b",
            &"x".repeat(64),
        ] {
            assert!(SchemaName::new(bad).is_err(), "{bad}");
        }
        assert_eq!(SchemaName::default().ident(), "\"wa_auth\"");
    }
}
