//! The background flusher: one tokio task per store, the only writer of the instance's rows.
//!
//! It sleeps until a commit arrives, lets commits gather for `flush_interval` (or less when
//! `flush_batch_keys` are queued, a caller waits in `flush`, or the store closes), then takes
//! everything queued and writes it in ONE transaction:
//!
//! 1. `UPDATE leases ... WHERE owner = me AND epoch = mine` — the fencing check; it renews the
//!    lease and locks its row until the transaction ends;
//! 2. multi-row upserts and deletes (`unnest` of arrays, at most `statement_rows` rows each);
//! 3. the creds upsert, when creds changed.
//!
//! All statements are pipelined on one connection; the transaction commits only when the
//! fencing check matched, otherwise it rolls back and the store is fenced for good.
//!
//! A failed round keeps its changes (merged with newer commits, newer winning) and is retried
//! with exponential backoff and jitter; its connection is discarded. When idle, the flusher
//! renews the lease every `lease_renew_interval`. On close it flushes what is left, releases
//! the lease and ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use futures::FutureExt;
use futures::future::{BoxFuture, try_join, try_join_all};
use tokio_postgres::types::ToSql;
use tracing::{debug, error, info, warn};

use crate::error::RoundError;
use crate::error::pool_error;
use crate::lease;
use crate::metrics::Counters;
use crate::queue::{Data, Pending};
use crate::store::Shared;

/// What the loop does next.
enum Step {
    /// Nothing queued: sleep until woken or the lease needs renewing.
    Idle,
    /// Commits are gathering: wait until `until` (or a wake-up).
    Gather(Instant),
    /// Write now.
    Flush,
    /// Closing and nothing left: release the lease and end.
    Release,
}

/// Exponential backoff with jitter.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }

    /// The next delay: the current step with ±25 % jitter, then the step doubles.
    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.75 + rand::random::<f64>() * 0.5)
    }
}

/// Runs the flusher; should it panic (a bug), the store is marked as crashed so that callers
/// get an error instead of waiting forever.
pub(crate) async fn supervise(shared: Arc<Shared>) {
    let outcome = std::panic::AssertUnwindSafe(run(shared.clone()))
        .catch_unwind()
        .await;
    if let Err(panic) = outcome {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        error!(instance = %shared.options.instance_id, %reason, "the flusher panicked");
        shared.status.send_modify(|status| {
            status.crashed = Some(reason);
            status.stopped = true;
        });
        shared.space.notify_waiters();
    }
}

/// Runs the flusher of `shared` until the store is closed (and released) or fenced.
async fn run(shared: Arc<Shared>) {
    let options = &shared.options;
    let mut in_flight: Option<Pending> = None;
    let mut backoff = Backoff::new(options.retry_initial, options.retry_max);
    let mut next_renew = Instant::now() + options.lease_renew_interval;
    loop {
        let step = next_step(&shared, in_flight.is_some());
        match step {
            Step::Idle => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(next_renew.into()) => {
                        let started = Instant::now();
                        match with_client(&shared, |client, shared| Box::pin(async move {
                            lease::renew(client, &shared.statements, &shared.options, shared.epoch).await
                        })).await {
                            Ok(()) => {
                                Counters::add(&shared.counters.lease_renewals, 1);
                                succeeded(&shared, started, None);
                                backoff.reset();
                                next_renew = Instant::now() + options.lease_renew_interval;
                            }
                            Err(RoundError::Fenced(reason)) => return fenced(&shared, reason),
                            Err(RoundError::Transient(reason)) => {
                                failed(&shared, "lease renewal", reason);
                                next_renew = Instant::now() + backoff.next_delay();
                            }
                        }
                    }
                }
            }
            Step::Gather(until) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(until.into()) => {}
                }
            }
            Step::Flush => {
                let mut work = in_flight.take().unwrap_or_default();
                {
                    let mut queue = shared.queue.lock();
                    work.absorb(std::mem::take(&mut queue.pending));
                    queue.flush_requested = false;
                    queue.in_flight_keys = work.len();
                    queue.in_flight_since = work.since;
                }
                let started = Instant::now();
                match write(&shared, &work).await {
                    Ok(()) => {
                        let keys = work.len();
                        {
                            let mut queue = shared.queue.lock();
                            queue.in_flight_keys = 0;
                            queue.in_flight_since = None;
                        }
                        let counters = &shared.counters;
                        Counters::add(&counters.flushes, 1);
                        Counters::add(&counters.flushed_batches, work.batches);
                        Counters::add(&counters.flushed_keys, keys as u64);
                        debug!(
                            instance = %options.instance_id,
                            keys,
                            batches = work.batches,
                            elapsed_us = started.elapsed().as_micros() as u64,
                            "flushed"
                        );
                        succeeded(&shared, started, Some(work.last_seq));
                        shared.space.notify_waiters();
                        backoff.reset();
                        next_renew = Instant::now() + options.lease_renew_interval;
                    }
                    Err(RoundError::Fenced(reason)) => return fenced(&shared, reason),
                    Err(RoundError::Transient(reason)) => {
                        let keys = work.len();
                        in_flight = Some(work);
                        failed(&shared, "flush", reason);
                        let delay = backoff.next_delay();
                        debug!(instance = %options.instance_id, keys, delay_ms = delay.as_millis() as u64, "retrying flush");
                        pause(&shared, delay).await;
                    }
                }
            }
            Step::Release => {
                let released = with_client(&shared, |client, shared| {
                    Box::pin(async move {
                        lease::release(client, &shared.statements, &shared.options, shared.epoch)
                            .await
                            .map_err(RoundError::from)
                    })
                })
                .await;
                match released {
                    Ok(true) => info!(
                        instance = %options.instance_id,
                        epoch = shared.epoch,
                        "closed; lease released"
                    ),
                    Ok(false) => warn!(
                        instance = %options.instance_id,
                        epoch = shared.epoch,
                        "closed; the lease was no longer ours"
                    ),
                    Err(RoundError::Transient(reason) | RoundError::Fenced(reason)) => warn!(
                        instance = %options.instance_id,
                        error = %reason,
                        "closed; could not release the lease (it will expire)"
                    ),
                }
                shared.status.send_modify(|status| status.stopped = true);
                shared.space.notify_waiters();
                return;
            }
        }
    }
}

/// Sleeps `delay` before a retry; a caller waiting in `flush` (or `close`) cuts it short.
async fn pause(shared: &Shared, delay: Duration) {
    let until = tokio::time::Instant::now() + delay;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => return,
            () = shared.wake.notified() => {
                let queue = shared.queue.lock();
                if queue.flush_requested || queue.closing {
                    return;
                }
            }
        }
    }
}

fn next_step(shared: &Shared, retrying: bool) -> Step {
    let queue = shared.queue.lock();
    if queue.pending.is_empty() && !retrying {
        return if queue.closing {
            Step::Release
        } else {
            Step::Idle
        };
    }
    let due = queue
        .pending
        .since
        .map(|since| since + shared.options.flush_interval);
    let urgent = retrying
        || queue.closing
        || queue.flush_requested
        || queue.pending.len() >= shared.options.flush_batch_keys
        || due.is_some_and(|due| due <= Instant::now());
    match due {
        Some(due) if !urgent => Step::Gather(due),
        _ => Step::Flush,
    }
}

/// Records a successful round that started at `started`.
fn succeeded(shared: &Shared, started: Instant, flushed_seq: Option<u64>) {
    let lease_until = started + shared.options.lease_ttl;
    shared.status.send_modify(|status| {
        status.rounds += 1;
        if let Some(seq) = flushed_seq {
            status.flushed_seq = status.flushed_seq.max(seq);
        }
        if status.failing_since.take().is_some() {
            info!(instance = %shared.options.instance_id, "database reachable again");
        }
        status.last_error = None;
        status.lease_until = status.lease_until.max(lease_until);
    });
}

/// Records a failed round.
fn failed(shared: &Shared, what: &str, reason: String) {
    Counters::add(&shared.counters.retries, 1);
    warn!(
        instance = %shared.options.instance_id,
        error = %reason,
        "{what} failed; will retry"
    );
    shared.status.send_modify(|status| {
        status.rounds += 1;
        status.failing_since.get_or_insert_with(Instant::now);
        status.last_error = Some(reason);
    });
}

/// The lease was taken: refuse everything from now on.
fn fenced(shared: &Shared, reason: String) {
    error!(
        instance = %shared.options.instance_id,
        owner = %shared.options.owner_id,
        epoch = shared.epoch,
        %reason,
        "lease lost: this store is fenced and stops"
    );
    shared.status.send_modify(|status| {
        status.fenced = Some(reason);
        status.stopped = true;
    });
    shared.space.notify_waiters();
}

/// Runs one round on a pooled connection, within `operation_timeout`. After a failure the
/// connection is discarded instead of going back to the pool.
async fn with_client<T>(
    shared: &Arc<Shared>,
    round: impl for<'a> FnOnce(
        &'a tokio_postgres::Client,
        &'a Shared,
    ) -> BoxFuture<'a, Result<T, RoundError>>,
) -> Result<T, RoundError> {
    let timeout = shared.options.operation_timeout;
    let client = match tokio::time::timeout(timeout, shared.pool.get()).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(RoundError::Transient(pool_error(e))),
        Err(_) => {
            return Err(RoundError::Transient(
                "timed out waiting for a database connection".to_owned(),
            ));
        }
    };
    let pg: &tokio_postgres::Client = &client;
    let outcome = match tokio::time::timeout(timeout, round(pg, shared)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(RoundError::Transient(format!(
            "database round timed out after {:.1} s",
            timeout.as_secs_f64()
        ))),
    };
    if matches!(outcome, Err(RoundError::Transient(_))) {
        drop(Object::take(client));
    }
    outcome
}

/// Writes `work` in one transaction, conditional on the lease.
async fn write(shared: &Arc<Shared>, work: &Pending) -> Result<(), RoundError> {
    let timeout = shared.options.operation_timeout;
    let mut client = match tokio::time::timeout(timeout, shared.pool.get()).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(RoundError::Transient(pool_error(e))),
        Err(_) => {
            return Err(RoundError::Transient(
                "timed out waiting for a database connection".to_owned(),
            ));
        }
    };
    let outcome = match tokio::time::timeout(timeout, transaction(shared, &mut client, work)).await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(RoundError::Transient(format!(
            "flush timed out after {:.1} s",
            timeout.as_secs_f64()
        ))),
    };
    if matches!(outcome, Err(RoundError::Transient(_))) {
        drop(Object::take(client));
    }
    outcome
}

async fn transaction(
    shared: &Shared,
    client: &mut Object,
    work: &Pending,
) -> Result<(), RoundError> {
    let statements = &shared.statements;
    let options = &shared.options;
    // Three groups of parallel arrays: string values, other JSON values, deletes.
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
    let tx = client.transaction().await?;
    let lease_stmt = tx.prepare_cached(&statements.flush_lease).await?;
    let upsert_stmt = tx.prepare_cached(&statements.upsert_keys).await?;
    let upsert_text_stmt = tx.prepare_cached(&statements.upsert_text_keys).await?;
    let delete_stmt = tx.prepare_cached(&statements.delete_keys).await?;
    let creds_stmt = tx.prepare_cached(&statements.upsert_creds).await?;
    let instance = options.instance_id.as_str();
    let epoch = shared.epoch;
    let ttl_ms = lease::ttl_ms(options.lease_ttl);

    // Pipelined: the lease check is sent first, then every write; all in this transaction.
    let owner = options.owner_id.as_str();
    let lease_params: [&(dyn ToSql + Sync); 4] = [&instance, &owner, &epoch, &ttl_ms];
    let lease_check = tx.execute_raw(&lease_stmt, lease_params);
    let rows = options.statement_rows;
    let (text_chunks, json_chunks, delete_chunks) =
        (text.chunks(rows), json.chunks(rows), delete.chunks(rows));
    let creds = work.creds.as_deref();
    let mut writes: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = Vec::new();
    for (statement, chunks) in [
        (&upsert_text_stmt, &text_chunks),
        (&upsert_stmt, &json_chunks),
    ] {
        for (kinds, ids, data) in chunks {
            let params: [&(dyn ToSql + Sync); 5] = [&instance, kinds, ids, data, &epoch];
            writes.push(Box::pin(tx.execute_raw(statement, params)));
        }
    }
    for (kinds, ids, _) in &delete_chunks {
        let params: [&(dyn ToSql + Sync); 3] = [&instance, kinds, ids];
        writes.push(Box::pin(tx.execute_raw(&delete_stmt, params)));
    }
    if let Some(creds) = &creds {
        let params: [&(dyn ToSql + Sync); 3] = [&instance, creds, &epoch];
        writes.push(Box::pin(tx.execute_raw(&creds_stmt, params)));
    }
    let (matched, _) = try_join(lease_check, try_join_all(writes)).await?;
    if matched != 1 {
        tx.rollback().await?;
        let holder = lease::describe_holder(client, statements, instance).await?;
        return Err(RoundError::Fenced(format!(
            "the lease (epoch {epoch}) is now held by {holder}"
        )));
    }
    tx.commit().await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let steps: Vec<Duration> = (0..6).map(|_| backoff.next_delay()).collect();
        for (step, nominal) in steps.iter().zip([100u64, 200, 400, 800, 800, 800]) {
            let nominal = Duration::from_millis(nominal);
            assert!(
                *step >= nominal.mul_f64(0.75) && *step <= nominal.mul_f64(1.25),
                "{step:?} vs {nominal:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(125));
    }
}
