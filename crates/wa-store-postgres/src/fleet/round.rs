//! The database rounds of a fleet's flusher, each covering many accounts:
//!
//! - **flush**: one transaction. The lease check of every account in the round
//!   ([`FleetStatements::guard`]) locks and renews the lease rows still ours and skips the
//!   others; the multi-row writes carry only the accounts whose check matched. A round whose
//!   writes fit in one statement of each kind sends `BEGIN`, the check and every write as ONE
//!   statement, and `COMMIT` in one round trip; a bigger one sends `BEGIN` and the check, then
//!   the writes in chunks and `COMMIT`. An account whose check did not match writes nothing;
//!   it is looked up afterwards: fenced when another owner holds its lease, merely
//!   [`Verdict::Locked`] (retried) when its row was locked by another transaction. No
//!   account's state can hold up or fail another's writes.
//! - **renew**: the same lease check, alone, in a transaction of its own (one statement for
//!   every lease due).
//! - **release**: one statement releasing many leases.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Object;
use futures::future::{BoxFuture, try_join, try_join_all, try_join3};
use tokio_postgres::types::ToSql;

use crate::error::RoundError;
use crate::fleet::sql::FleetStatements;
use crate::lease::{self, Holder};
use crate::queue::{Data, Pending};
use crate::session::{Limits, one_statement};

/// One account in a round.
pub(crate) struct Account<'a> {
    pub instance: &'a str,
    pub owner: &'a str,
    pub epoch: i64,
    /// What to write (None: a lease check only).
    pub work: Option<&'a Pending>,
}

/// What a round did for one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The lease was confirmed (and the account's work written, if any).
    Confirmed,
    /// Another owner holds the lease ([`RoundError::Fenced`]).
    Fenced(RoundError),
    /// The lease row was locked by another transaction: nothing was written; retry.
    Locked,
}

/// What every round works with.
pub(crate) struct Context<'a> {
    pub statements: &'a FleetStatements,
    pub limits: &'a Limits,
    pub ttl_ms: f64,
    pub statement_rows: usize,
}

/// Writes the work of `accounts` in one transaction, each guarded by its own lease check: in
/// one round trip when every kind of write fits in one statement (see
/// [`FleetStatements::flush_at_once`]), else in two (the check, then the writes in chunks).
pub(crate) async fn flush(
    client: &Object,
    cx: &Context<'_>,
    accounts: &[Account<'_>],
) -> Result<Vec<Verdict>, RoundError> {
    let identities = Identities::of(accounts);
    let working: Vec<&Account<'_>> = accounts.iter().filter(|a| a.work.is_some()).collect();
    let columns = Columns::of(&working);
    let matched = if columns.fits(cx.statement_rows) {
        flush_at_once(client, cx, &identities, &columns).await?
    } else {
        drop(columns);
        flush_in_two(client, cx, &identities, &working).await?
    };
    verdicts(client, cx, accounts, &matched).await
}

/// `BEGIN`, the check and all the writes in one statement, and `COMMIT`, pipelined.
async fn flush_at_once(
    client: &Object,
    cx: &Context<'_>,
    identities: &Identities<'_>,
    columns: &Columns<'_>,
) -> Result<HashSet<String>, tokio_postgres::Error> {
    let statement = client.prepare_cached(&cx.statements.flush_at_once).await?;
    let (text, json, delete) = (&columns.text, &columns.json, &columns.delete);
    let creds = &columns.creds;
    let guard = identities.guard_params(cx, &true);
    let params: [&(dyn ToSql + Sync); 21] = [
        guard[0],
        guard[1],
        guard[2],
        guard[3],
        guard[4],
        &text.instances,
        &text.kinds,
        &text.ids,
        &text.values,
        &text.epochs,
        &json.instances,
        &json.kinds,
        &json.ids,
        &json.values,
        &json.epochs,
        &delete.instances,
        &delete.kinds,
        &delete.ids,
        &creds.0,
        &creds.1,
        &creds.2,
    ];
    let ((), rows, ()) = try_join3(
        client.batch_execute(cx.limits.begin()),
        client.query(&statement, &params),
        client.batch_execute("COMMIT"),
    )
    .await?;
    matched(&rows)
}

/// The check (with `BEGIN`), then the writes of the accounts whose check matched in chunks of
/// `statement_rows` rows (with `COMMIT`).
async fn flush_in_two(
    client: &Object,
    cx: &Context<'_>,
    identities: &Identities<'_>,
    working: &[&Account<'_>],
) -> Result<HashSet<String>, RoundError> {
    let guard = client.prepare_cached(&cx.statements.guard).await?;
    let ((), rows) = try_join(
        client.batch_execute(cx.limits.begin()),
        client.query(&guard, &identities.guard_params(cx, &true)),
    )
    .await?;
    let matched = matched(&rows)?;
    let writing: Vec<&Account<'_>> = working
        .iter()
        .copied()
        .filter(|a| matched.contains(a.instance))
        .collect();
    write_and_commit(client, cx, &writing).await?;
    Ok(matched)
}

/// Renews the leases of `accounts` in one statement.
pub(crate) async fn renew(
    client: &Object,
    cx: &Context<'_>,
    accounts: &[Account<'_>],
) -> Result<Vec<Verdict>, RoundError> {
    let guard = client.prepare_cached(&cx.statements.guard).await?;
    let identities = Identities::of(accounts);
    let params = identities.guard_params(cx, &false);
    let rows = one_statement(client, cx.limits, &guard, &params).await?;
    verdicts(client, cx, accounts, &matched(&rows)?).await
}

/// Releases the leases of `accounts` in one statement; returns those that were still ours.
pub(crate) async fn release(
    client: &Object,
    cx: &Context<'_>,
    accounts: &[Account<'_>],
) -> Result<HashSet<String>, RoundError> {
    let statement = client.prepare_cached(&cx.statements.release).await?;
    let Identities(instances, owners, epochs) = Identities::of(accounts);
    let params: [&(dyn ToSql + Sync); 3] = [&instances, &owners, &epochs];
    let rows = one_statement(client, cx.limits, &statement, &params).await?;
    Ok(matched(&rows)?)
}

/// The instances, owners and epochs of a round's accounts, as parallel arrays.
struct Identities<'a>(Vec<&'a str>, Vec<&'a str>, Vec<i64>);

impl<'a> Identities<'a> {
    fn of(accounts: &[Account<'a>]) -> Self {
        Self(
            accounts.iter().map(|a| a.instance).collect(),
            accounts.iter().map(|a| a.owner).collect(),
            accounts.iter().map(|a| a.epoch).collect(),
        )
    }

    /// The parameters of [`FleetStatements::guard`].
    fn guard_params<'s>(
        &'s self,
        cx: &'s Context<'_>,
        flush: &'s bool,
    ) -> [&'s (dyn ToSql + Sync); 5] {
        [&self.0, &self.1, &self.2, &cx.ttl_ms, flush]
    }
}

/// The instance ids a lease statement returned.
fn matched(rows: &[tokio_postgres::Row]) -> Result<HashSet<String>, tokio_postgres::Error> {
    rows.iter().map(|row| row.try_get::<_, String>(0)).collect()
}

/// The verdict for each account: confirmed when its check matched, else fenced or locked
/// depending on who holds its lease now (read without locking, after the transaction).
async fn verdicts(
    client: &Object,
    cx: &Context<'_>,
    accounts: &[Account<'_>],
    matched: &HashSet<String>,
) -> Result<Vec<Verdict>, RoundError> {
    let missing: Vec<&str> = accounts
        .iter()
        .map(|a| a.instance)
        .filter(|i| !matched.contains(*i))
        .collect();
    let holders = if missing.is_empty() {
        HashMap::new()
    } else {
        holders(client, cx, &missing).await?
    };
    Ok(accounts
        .iter()
        .map(|a| {
            if matched.contains(a.instance) {
                return Verdict::Confirmed;
            }
            let holder = match holders.get(a.instance) {
                Some(h) if h.owner.as_deref() == Some(a.owner) && h.epoch == a.epoch => {
                    return Verdict::Locked;
                }
                Some(h) => h.describe(),
                None => Holder::GONE.to_owned(),
            };
            Verdict::Fenced(RoundError::Fenced {
                epoch: a.epoch,
                holder,
            })
        })
        .collect())
}

async fn holders(
    client: &Object,
    cx: &Context<'_>,
    instances: &[&str],
) -> Result<HashMap<String, Holder>, tokio_postgres::Error> {
    let rows = client.query(&cx.statements.holders, &[&instances]).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, Holder::from_row(row, 1)?)))
        .collect()
}

/// Sends the writes of `accounts` and `COMMIT`, pipelined. Should a write fail, the
/// transaction is aborted and the `COMMIT` rolls it back: nothing of the round is written.
async fn write_and_commit(
    client: &Object,
    cx: &Context<'_>,
    accounts: &[&Account<'_>],
) -> Result<(), tokio_postgres::Error> {
    let statements = cx.statements;
    let upsert_text = client.prepare_cached(&statements.upsert_text_keys).await?;
    let upsert = client.prepare_cached(&statements.upsert_keys).await?;
    let delete = client.prepare_cached(&statements.delete_keys).await?;
    let creds = client.prepare_cached(&statements.upsert_creds).await?;
    let columns = Columns::of(accounts);
    let rows = cx.statement_rows;
    let (text, json, deletes) = (
        columns.text.chunks(rows),
        columns.json.chunks(rows),
        columns.delete.chunks(rows),
    );
    let mut writes: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = Vec::new();
    for (statement, chunks) in [(&upsert_text, &text), (&upsert, &json)] {
        for (instances, kinds, ids, values, epochs) in chunks {
            let params: [&(dyn ToSql + Sync); 5] = [instances, kinds, ids, values, epochs];
            writes.push(Box::pin(client.execute_raw(statement, params)));
        }
    }
    for (instances, kinds, ids, _, _) in &deletes {
        let params: [&(dyn ToSql + Sync); 3] = [instances, kinds, ids];
        writes.push(Box::pin(client.execute_raw(&delete, params)));
    }
    if !columns.creds.0.is_empty() {
        let c = &columns.creds;
        let params: [&(dyn ToSql + Sync); 3] = [&c.0, &c.1, &c.2];
        writes.push(Box::pin(client.execute_raw(&creds, params)));
    }
    try_join(try_join_all(writes), client.batch_execute("COMMIT")).await?;
    Ok(())
}

/// Parallel arrays of instances, kinds, ids, values and epochs.
#[derive(Default)]
struct Rows<'a> {
    instances: Vec<&'a str>,
    kinds: Vec<&'a str>,
    ids: Vec<&'a str>,
    values: Vec<&'a str>,
    epochs: Vec<i64>,
}

type Chunk<'c, 'a> = (
    &'c [&'a str],
    &'c [&'a str],
    &'c [&'a str],
    &'c [&'a str],
    &'c [i64],
);

impl<'a> Rows<'a> {
    fn push(&mut self, instance: &'a str, kind: &'a str, id: &'a str, value: &'a str, epoch: i64) {
        self.instances.push(instance);
        self.kinds.push(kind);
        self.ids.push(id);
        self.values.push(value);
        self.epochs.push(epoch);
    }

    /// The arrays cut into statements of at most `rows` rows.
    fn chunks(&self, rows: usize) -> Vec<Chunk<'_, 'a>> {
        (0..self.kinds.len())
            .step_by(rows.max(1))
            .map(|start| {
                let end = (start + rows).min(self.kinds.len());
                (
                    &self.instances[start..end],
                    &self.kinds[start..end],
                    &self.ids[start..end],
                    &self.values[start..end],
                    &self.epochs[start..end],
                )
            })
            .collect()
    }
}

/// Every change of a round, grouped by statement.
#[derive(Default)]
struct Columns<'a> {
    text: Rows<'a>,
    json: Rows<'a>,
    delete: Rows<'a>,
    creds: (Vec<&'a str>, Vec<&'a str>, Vec<i64>),
}

impl<'a> Columns<'a> {
    /// Whether each kind of write fits in one statement of at most `rows` rows.
    fn fits(&self, rows: usize) -> bool {
        [&self.text, &self.json, &self.delete]
            .iter()
            .all(|r| r.kinds.len() <= rows)
            && self.creds.0.len() <= rows
    }

    fn of(accounts: &[&Account<'a>]) -> Self {
        let mut columns = Self::default();
        for account in accounts {
            let Some(work) = account.work else { continue };
            let (instance, epoch) = (account.instance, account.epoch);
            for ((kind, id), data) in &work.keys {
                let (kind, id) = (kind.as_str(), id.as_str());
                match data {
                    Some(Data::Text(v)) => columns.text.push(instance, kind, id, v, epoch),
                    Some(Data::Json(v)) => columns.json.push(instance, kind, id, v, epoch),
                    None => columns.delete.push(instance, kind, id, "", epoch),
                }
            }
            if let Some(creds) = &work.creds {
                columns.creds.0.push(instance);
                columns.creds.1.push(creds);
                columns.creds.2.push(epoch);
            }
        }
        columns
    }
}

/// The lease length the statements take.
pub(crate) fn ttl_ms(ttl: std::time::Duration) -> f64 {
    lease::ttl_ms(ttl)
}
