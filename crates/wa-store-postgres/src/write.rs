//! The flush transaction: everything a flush takes from the queue, written in ONE transaction
//! that starts with the fencing check.
//!
//! 1. `BEGIN` with the store's [limits](crate::session);
//! 2. `UPDATE leases ... WHERE owner = me AND epoch = mine` — the fencing check; it renews the
//!    lease and locks its row until the transaction ends;
//! 3. multi-row upserts and deletes (`unnest` of arrays, at most `statement_rows` rows each);
//! 4. the creds upsert, when creds changed.
//!
//! All of it is pipelined on one connection (one round trip); then `COMMIT` when the fencing
//! check matched, `ROLLBACK` otherwise (the store is then fenced for good).

use deadpool_postgres::Object;
use futures::future::{BoxFuture, try_join_all, try_join3};
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use crate::error::RoundError;
use crate::lease;
use crate::queue::{Data, Pending};
use crate::store::Shared;

/// Writes `work` in one transaction, conditional on the lease.
pub(crate) async fn write(
    client: &Object,
    shared: &Shared,
    work: &Pending,
) -> Result<(), RoundError> {
    let prepared = Prepared::new(client, shared).await?;
    let matched = send(client, shared, &prepared, work).await?;
    if matched != 1 {
        client.batch_execute("ROLLBACK").await?;
        let instance = shared.options.instance_id.as_str();
        let holder = lease::describe_holder(client, &shared.statements, instance).await?;
        return Err(RoundError::Fenced {
            epoch: shared.epoch,
            holder,
        });
    }
    client.batch_execute("COMMIT").await?;
    Ok(())
}

/// The statements of a flush, prepared once per connection.
struct Prepared {
    lease: Statement,
    upsert: Statement,
    upsert_text: Statement,
    delete: Statement,
    creds: Statement,
}

impl Prepared {
    async fn new(client: &Object, shared: &Shared) -> Result<Self, tokio_postgres::Error> {
        let statements = &shared.statements;
        Ok(Self {
            lease: client.prepare_cached(&statements.flush_lease).await?,
            upsert: client.prepare_cached(&statements.upsert_keys).await?,
            upsert_text: client.prepare_cached(&statements.upsert_text_keys).await?,
            delete: client.prepare_cached(&statements.delete_keys).await?,
            creds: client.prepare_cached(&statements.upsert_creds).await?,
        })
    }
}

/// Sends `BEGIN`, the fencing check and every write, pipelined; returns the rows the fencing
/// check matched (1: the lease is ours). The transaction is left open.
async fn send(
    client: &Object,
    shared: &Shared,
    prepared: &Prepared,
    work: &Pending,
) -> Result<u64, tokio_postgres::Error> {
    let options = &shared.options;
    let (text, json, delete) = columns(work);
    let instance = options.instance_id.as_str();
    let owner = options.owner_id.as_str();
    let epoch = shared.epoch;
    let ttl_ms = lease::ttl_ms(options.lease_ttl);
    let rows = options.statement_rows;
    let (text_chunks, json_chunks, delete_chunks) =
        (text.chunks(rows), json.chunks(rows), delete.chunks(rows));
    let creds = work.creds.as_deref();

    // Sent in the order first polled: BEGIN, the lease check, then every write.
    let begin = client.batch_execute(shared.limits.begin());
    let lease_params: [&(dyn ToSql + Sync); 4] = [&instance, &owner, &epoch, &ttl_ms];
    let lease_check = client.execute_raw(&prepared.lease, lease_params);
    let mut writes: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = Vec::new();
    for (statement, chunks) in [
        (&prepared.upsert_text, &text_chunks),
        (&prepared.upsert, &json_chunks),
    ] {
        for (kinds, ids, data) in chunks {
            let params: [&(dyn ToSql + Sync); 5] = [&instance, kinds, ids, data, &epoch];
            writes.push(Box::pin(client.execute_raw(statement, params)));
        }
    }
    for (kinds, ids, _) in &delete_chunks {
        let params: [&(dyn ToSql + Sync); 3] = [&instance, kinds, ids];
        writes.push(Box::pin(client.execute_raw(&prepared.delete, params)));
    }
    if let Some(creds) = &creds {
        let params: [&(dyn ToSql + Sync); 3] = [&instance, creds, &epoch];
        writes.push(Box::pin(client.execute_raw(&prepared.creds, params)));
    }
    let ((), matched, _) = try_join3(begin, lease_check, try_join_all(writes)).await?;
    Ok(matched)
}

/// The changes as three groups of parallel arrays: string values, other JSON values, deletes.
fn columns(work: &Pending) -> (Columns<'_>, Columns<'_>, Columns<'_>) {
    let mut text = Columns::default();
    let mut json = Columns::default();
    let mut delete = Columns::default();
    for ((kind, id), data) in &work.keys {
        match data {
            Some(Data::Text(value)) => text.push(kind.as_str(), id.as_str(), value),
            Some(Data::Json(value)) => json.push(kind.as_str(), id.as_str(), value),
            None => delete.push(kind.as_str(), id.as_str(), ""),
        }
    }
    (text, json, delete)
}

/// Parallel arrays of kinds, ids and values: the parameters of one multi-row statement.
#[derive(Default)]
struct Columns<'a> {
    kinds: Vec<&'a str>,
    ids: Vec<&'a str>,
    values: Vec<&'a str>,
}

type Chunk<'c, 'a> = (&'c [&'a str], &'c [&'a str], &'c [&'a str]);

impl<'a> Columns<'a> {
    fn push(&mut self, kind: &'a str, id: &'a str, value: &'a str) {
        self.kinds.push(kind);
        self.ids.push(id);
        self.values.push(value);
    }

    /// The arrays cut into statements of at most `rows` rows.
    fn chunks(&self, rows: usize) -> Vec<Chunk<'_, 'a>> {
        (0..self.kinds.len())
            .step_by(rows)
            .map(|start| {
                let end = (start + rows).min(self.kinds.len());
                (
                    &self.kinds[start..end],
                    &self.ids[start..end],
                    &self.values[start..end],
                )
            })
            .collect()
    }
}
