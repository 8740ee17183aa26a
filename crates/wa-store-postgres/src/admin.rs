//! Operator tasks on the accounts (instances) of a schema: list them with their key counts,
//! lease and last write; delete one atomically; release a dead replica's lease; export one.
//!
//! Deleting and releasing are refused while a **live** owner holds the lease (owner set and
//! not expired) unless forced. Either way the previous owner is fenced: its next renewal or
//! flush finds the lease gone or changed and it writes nothing more
//! ([`OwnershipLost`](wa_auth::AuthError::OwnershipLost)).

use std::collections::BTreeMap;

use serde::Serialize;
use wa_auth::{AuthError, Result, Snapshot};

use crate::error::{backend, backend_msg, pool_error};
use crate::schema::{self, SchemaName};
use crate::{Pool, PostgresReader};

/// The lease of an instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// The owner, `None` when released.
    pub owner: Option<String>,
    /// The fencing token of the latest acquisition.
    pub epoch: i64,
    /// Milliseconds until it expires (negative: expired that long ago).
    pub expires_in_ms: f64,
    /// An owner holds it and it has not expired.
    pub live: bool,
    /// When the owner last flushed, in milliseconds since the Unix epoch.
    pub last_flush_unix_ms: Option<i64>,
}

/// One instance as [`list_instances`] sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct InstanceInfo {
    /// The instance (account) id.
    pub instance_id: String,
    /// Whether creds are stored.
    pub has_creds: bool,
    /// Keys per kind.
    pub keys: BTreeMap<String, i64>,
    /// The lease, if one was ever taken.
    pub lease: Option<LeaseInfo>,
    /// The latest write to its creds or keys, in milliseconds since the Unix epoch.
    pub last_write_unix_ms: Option<i64>,
}

/// What [`delete_instance`] removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Deleted {
    /// Key rows removed.
    pub keys: u64,
    /// Whether creds were removed.
    pub creds: bool,
    /// The lease that was removed (its owner is fenced).
    pub lease: Option<LeaseInfo>,
}

async fn client(pool: &Pool, schema: &SchemaName) -> Result<deadpool_postgres::Object> {
    let client = pool.get().await.map_err(|e| backend_msg(pool_error(e)))?;
    schema::check_version(&client, schema).await?;
    Ok(client)
}

fn lease_sql(schema: &SchemaName, filter: &str) -> String {
    schema.render(&format!(
        "SELECT instance_id, owner_id, epoch,
            (extract(epoch FROM (expires_at - now())) * 1000)::float8,
            (extract(epoch FROM last_flush_at) * 1000)::int8
         FROM {{schema}}.leases {filter}"
    ))
}

fn lease_of(row: &tokio_postgres::Row) -> Result<(String, LeaseInfo)> {
    let owner: Option<String> = row.try_get(1).map_err(backend)?;
    let expires_in_ms: f64 = row.try_get(3).map_err(backend)?;
    Ok((
        row.try_get(0).map_err(backend)?,
        LeaseInfo {
            live: owner.is_some() && expires_in_ms > 0.0,
            owner,
            epoch: row.try_get(2).map_err(backend)?,
            expires_in_ms,
            last_flush_unix_ms: row.try_get(4).map_err(backend)?,
        },
    ))
}

/// Every instance of `schema` (one read-only snapshot), sorted by id.
pub async fn list_instances(pool: &Pool, schema: &SchemaName) -> Result<Vec<InstanceInfo>> {
    let client = client(pool, schema).await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(backend)?;
    let listed = list_in_transaction(&client, schema).await;
    let ended = client.batch_execute("COMMIT").await.map_err(backend);
    let listed = listed?;
    ended?;
    Ok(listed)
}

async fn list_in_transaction(
    client: &tokio_postgres::Client,
    schema: &SchemaName,
) -> Result<Vec<InstanceInfo>> {
    let mut found: BTreeMap<String, InstanceInfo> = BTreeMap::new();
    let entry = |found: &mut BTreeMap<String, InstanceInfo>, id: &str| {
        found
            .entry(id.to_owned())
            .or_insert_with(|| InstanceInfo {
                instance_id: id.to_owned(),
                has_creds: false,
                keys: BTreeMap::new(),
                lease: None,
                last_write_unix_ms: None,
            })
            .clone()
    };
    let keys = schema.render(
        "SELECT instance_id, kind, count(*)::int8, (extract(epoch FROM max(updated_at)) * 1000)::int8
         FROM {schema}.keys GROUP BY instance_id, kind",
    );
    for row in client.query(&keys, &[]).await.map_err(backend)? {
        let id: String = row.try_get(0).map_err(backend)?;
        let mut info = entry(&mut found, &id);
        info.keys.insert(
            row.try_get(1).map_err(backend)?,
            row.try_get(2).map_err(backend)?,
        );
        info.last_write_unix_ms = info
            .last_write_unix_ms
            .max(row.try_get(3).map_err(backend)?);
        found.insert(id, info);
    }
    let creds = schema.render(
        "SELECT instance_id, (extract(epoch FROM updated_at) * 1000)::int8 FROM {schema}.creds",
    );
    for row in client.query(&creds, &[]).await.map_err(backend)? {
        let id: String = row.try_get(0).map_err(backend)?;
        let mut info = entry(&mut found, &id);
        info.has_creds = true;
        info.last_write_unix_ms = info
            .last_write_unix_ms
            .max(row.try_get(1).map_err(backend)?);
        found.insert(id, info);
    }
    for row in client
        .query(&lease_sql(schema, ""), &[])
        .await
        .map_err(backend)?
    {
        let (id, lease) = lease_of(&row)?;
        let mut info = entry(&mut found, &id);
        info.lease = Some(lease);
        found.insert(id, info);
    }
    Ok(found.into_values().collect())
}

/// Locks the lease row of `instance` for the transaction; refuses a live owner unless `force`.
async fn lock_lease(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &SchemaName,
    instance: &str,
    force: bool,
) -> Result<Option<LeaseInfo>> {
    let sql = format!("{} FOR UPDATE", lease_sql(schema, "WHERE instance_id = $1"));
    let lease = match tx.query_opt(&sql, &[&instance]).await.map_err(backend)? {
        Some(row) => Some(lease_of(&row)?.1),
        None => None,
    };
    if let Some(lease) = &lease
        && lease.live
        && !force
    {
        return Err(AuthError::AlreadyOwned {
            resource: format!("PostgreSQL instance {instance}"),
            holder: Some(format!(
                "{} (epoch {}, lease valid for another {:.1} s)",
                lease.owner.as_deref().unwrap_or("?"),
                lease.epoch,
                lease.expires_in_ms / 1000.0
            )),
        });
    }
    Ok(lease)
}

/// Deletes every key, the creds and the lease of `instance` in one transaction. Refused
/// ([`AuthError::AlreadyOwned`]) while a live owner holds the lease, unless `force`, which
/// fences that owner.
pub async fn delete_instance(
    pool: &Pool,
    schema: &SchemaName,
    instance: &str,
    force: bool,
) -> Result<Deleted> {
    let mut client = client(pool, schema).await?;
    let tx = client.transaction().await.map_err(backend)?;
    let lease = lock_lease(&tx, schema, instance, force).await?;
    let keys = tx
        .execute(
            &schema.render("DELETE FROM {schema}.keys WHERE instance_id = $1"),
            &[&instance],
        )
        .await
        .map_err(backend)?;
    let creds = tx
        .execute(
            &schema.render("DELETE FROM {schema}.creds WHERE instance_id = $1"),
            &[&instance],
        )
        .await
        .map_err(backend)?;
    tx.execute(
        &schema.render("DELETE FROM {schema}.leases WHERE instance_id = $1"),
        &[&instance],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    tracing::info!(instance, keys, creds, "instance deleted");
    Ok(Deleted {
        keys,
        creds: creds > 0,
        lease,
    })
}

/// Releases the lease of `instance` (owner cleared, expired now, epoch kept, so the next
/// owner's epoch is larger than every earlier one). The previous owner is fenced. Refused while
/// the lease is live unless `force`. Returns the lease as it was, `None` when there was none.
pub async fn release_lease(
    pool: &Pool,
    schema: &SchemaName,
    instance: &str,
    force: bool,
) -> Result<Option<LeaseInfo>> {
    let mut client = client(pool, schema).await?;
    let tx = client.transaction().await.map_err(backend)?;
    let lease = lock_lease(&tx, schema, instance, force).await?;
    tx.execute(
        &schema.render(
            "UPDATE {schema}.leases SET owner_id = NULL, expires_at = now(), renewed_at = now()
             WHERE instance_id = $1",
        ),
        &[&instance],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    tracing::info!(instance, previous = ?lease.as_ref().and_then(|l| l.owner.as_deref()), "lease released");
    Ok(lease)
}

/// Everything `instance` holds, read in one snapshot without taking the lease.
pub async fn export_instance(pool: &Pool, schema: &SchemaName, instance: &str) -> Result<Snapshot> {
    use wa_auth::PersistenceExt as _;
    PostgresReader::open(pool, schema, instance)
        .await?
        .load_all()
        .await
}
