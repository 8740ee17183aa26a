//! The background flusher: one tokio task per store, the only writer of the instance's rows.
//!
//! It sleeps until a commit arrives, lets commits gather for `flush_interval` (or less when
//! `flush_batch_keys` are queued, a caller waits in `flush`, or the store closes), then takes
//! everything queued and writes it in ONE transaction ([`crate::write`]).
//!
//! Every database round (a flush or a lease renewal) is bounded by `operation_timeout`, and
//! its outcome is recorded in the store's status: a success confirms the lease
//! ([`LeaseClock`](crate::health::LeaseClock), from when the round started) and the health
//! ([`RoundHealth`](crate::health::RoundHealth), which counts a round from its start, so a
//! hung round makes the store unhealthy on time). A failed round keeps its changes (merged
//! with newer commits, newer winning) and is retried with exponential backoff and jitter; its
//! connection is discarded. When idle, the flusher renews the lease `lease_renew_interval`
//! after the last confirmation, and at once when a caller waits in `flush` while the lease may
//! have expired. On close it flushes what is left, releases the lease and ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use futures::FutureExt;
use tracing::{debug, error, info, warn};

use crate::error::RoundError;
use crate::lease;
use crate::metrics::Counters;
use crate::queue::Pending;
use crate::session::Lent;
use crate::store::Shared;
use crate::write::write;

/// What the loop does next.
enum Step {
    /// Nothing queued: sleep until woken or until the lease renewal is due.
    Idle(Instant),
    /// Renew the lease now.
    Renew,
    /// Commits are gathering: wait until `until` (or a wake-up).
    Gather(Instant),
    /// Write now.
    Flush,
    /// Closing and nothing left: release the lease and end.
    Release,
}

/// Exponential backoff with jitter.
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    /// The next delay: the current step with ±25 % jitter, then the step doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
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
    let mut flusher = Flusher {
        backoff: Backoff::new(shared.options.retry_initial, shared.options.retry_max),
        shared,
        in_flight: None,
        renew_retry_at: None,
    };
    loop {
        let go_on = match flusher.next_step() {
            Step::Idle(until) => flusher.sleep_until(until).await,
            Step::Renew => flusher.renew().await,
            Step::Gather(until) => flusher.sleep_until(until).await,
            Step::Flush => flusher.flush().await,
            Step::Release => flusher.release().await,
        };
        if !go_on {
            return;
        }
    }
}

/// The flusher's own state; each step returns whether the loop goes on.
struct Flusher {
    shared: Arc<Shared>,
    /// A flush that failed and waits to be retried (newer commits are merged into it).
    in_flight: Option<Pending>,
    backoff: Backoff,
    /// When a failed renewal is retried (None: at the regular time).
    renew_retry_at: Option<Instant>,
}

impl Flusher {
    fn next_step(&self) -> Step {
        let shared = &self.shared;
        let renew_at = self.renew_retry_at.unwrap_or_else(|| {
            let interval = shared.timings.lease_renew_interval;
            shared.status.borrow().lease.renewal_due(interval)
        });
        let retrying = self.in_flight.is_some();
        let mut queue = shared.queue.lock();
        if queue.pending.is_empty() && !retrying {
            if queue.closing {
                return Step::Release;
            }
            // A caller waiting in `flush` with nothing queued waits for the lease.
            if queue.flush_requested || renew_at <= Instant::now() {
                queue.flush_requested = false;
                return Step::Renew;
            }
            return Step::Idle(renew_at);
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

    /// Sleeps until `until` or a wake-up.
    async fn sleep_until(&self, until: Instant) -> bool {
        tokio::select! {
            () = self.shared.wake.notified() => {}
            () = tokio::time::sleep_until(until.into()) => {}
        }
        true
    }

    async fn renew(&mut self) -> bool {
        let shared = self.shared.clone();
        let renewed = self
            .round("lease renewal", async |client| {
                let (statements, limits) = (&shared.statements, &shared.limits);
                lease::renew(client, statements, limits, &shared.options, shared.epoch).await
            })
            .await;
        match renewed {
            Ok(()) => {
                Counters::add(&shared.counters.lease_renewals, 1);
                shared.telemetry.lease_renewals.increment(1);
                shared.telemetry.lease_renewal_statements.increment(1);
                self.backoff.reset();
                self.renew_retry_at = None;
                true
            }
            Err(RoundError::Fenced(_)) => false,
            Err(RoundError::Transient(_)) => {
                self.renew_retry_at = Some(Instant::now() + self.backoff.next_delay());
                true
            }
        }
    }

    async fn flush(&mut self) -> bool {
        let work = self.take_work();
        let started = Instant::now();
        let shared = self.shared.clone();
        let written = self
            .round("flush", async |client| write(client, &shared, &work).await)
            .await;
        match written {
            Ok(()) => {
                self.flushed(&work, started);
                true
            }
            Err(RoundError::Fenced(_)) => false,
            Err(RoundError::Transient(_)) => {
                let (keys, delay) = (work.len(), self.backoff.next_delay());
                self.in_flight = Some(work);
                debug!(instance = %shared.options.instance_id, keys, delay_ms = delay.as_millis() as u64, "retrying flush");
                pause(&shared, delay).await;
                true
            }
        }
    }

    /// Takes everything queued, merged into the flush being retried, if any.
    fn take_work(&mut self) -> Pending {
        let mut work = self.in_flight.take().unwrap_or_default();
        let mut queue = self.shared.queue.lock();
        work.absorb(std::mem::take(&mut queue.pending));
        queue.flush_requested = false;
        queue.in_flight_keys = work.len();
        queue.in_flight_since = work.since;
        work
    }

    /// Records a successful flush of `work`, which started at `started`.
    fn flushed(&mut self, work: &Pending, started: Instant) {
        let shared = &self.shared;
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
        shared.telemetry.flushed(started.elapsed(), keys, 1);
        debug!(
            instance = %shared.options.instance_id,
            keys,
            batches = work.batches,
            elapsed_us = started.elapsed().as_micros() as u64,
            "flushed"
        );
        shared.status.send_modify(|status| {
            status.flushed_seq = status.flushed_seq.max(work.last_seq);
        });
        shared.space.notify_waiters();
        self.backoff.reset();
        self.renew_retry_at = None;
    }

    /// Releases the lease and ends the flusher.
    async fn release(&self) -> bool {
        let shared = &self.shared;
        let (options, epoch) = (&shared.options, shared.epoch);
        let released = with_client(shared, async |client| {
            lease::release(client, &shared.statements, &shared.limits, options, epoch)
                .await
                .map_err(RoundError::from)
        })
        .await;
        let instance = &options.instance_id;
        match released {
            Ok(true) => info!(%instance, epoch, "closed; lease released"),
            Ok(false) => warn!(%instance, epoch, "closed; the lease was no longer ours"),
            Err(RoundError::Transient(reason) | RoundError::Fenced(reason)) => warn!(
                %instance,
                error = %reason,
                "closed; could not release the lease (it will expire)"
            ),
        }
        shared.status.send_modify(|status| status.stopped = true);
        shared.space.notify_waiters();
        false
    }

    /// Runs one database round and records its outcome: the lease confirmed from when the
    /// round started, the health (a round counts from its start), or the store fenced.
    async fn round<T>(
        &self,
        what: &str,
        body: impl AsyncFnOnce(&Object) -> Result<T, RoundError>,
    ) -> Result<T, RoundError> {
        let shared = &self.shared;
        let started = Instant::now();
        shared
            .status
            .send_if_modified(|status| status.health.started(started));
        let outcome = with_client(shared, body).await;
        match &outcome {
            Ok(_) => succeeded(shared, started),
            Err(RoundError::Transient(reason)) => failed(shared, what, reason.clone()),
            Err(RoundError::Fenced(reason)) => fenced(shared, reason.clone()),
        }
        outcome
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

/// Records a successful round that started at `started`: the server confirmed the lease.
pub(crate) fn succeeded(shared: &Shared, started: Instant) {
    shared.status.send_modify(|status| {
        if status.health.succeeded() {
            info!(instance = %shared.options.instance_id, "database reachable again");
        }
        status.lease.confirm(started);
    });
}

/// Records a failed round.
fn failed(shared: &Shared, what: &str, reason: String) {
    Counters::add(&shared.counters.retries, 1);
    shared.telemetry.retries.increment(1);
    warn!(
        instance = %shared.options.instance_id,
        error = %reason,
        "{what} failed; will retry"
    );
    let now = Instant::now();
    shared
        .status
        .send_modify(|status| status.health.failed(now, reason));
}

/// The lease was taken: refuse everything from now on.
pub(crate) fn fenced(shared: &Shared, reason: String) {
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

/// Runs `body` on a pooled connection of the store's pool (see [`lend`]).
async fn with_client<T>(
    shared: &Shared,
    body: impl AsyncFnOnce(&Object) -> Result<T, RoundError>,
) -> Result<T, RoundError> {
    lend(&shared.pool, shared.timings.operation_timeout, body).await
}

/// Runs `body` on a connection of `pool`, everything (getting the connection included) within
/// `timeout`. After a failure or a timeout the connection is closed instead of going back to
/// the pool.
pub(crate) async fn lend<T>(
    pool: &deadpool_postgres::Pool,
    timeout: Duration,
    body: impl AsyncFnOnce(&Object) -> Result<T, RoundError>,
) -> Result<T, RoundError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut client = Lent::get(pool, timeout)
        .await
        .map_err(RoundError::Transient)?;
    let outcome = match tokio::time::timeout_at(deadline, body(&client)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(RoundError::Transient(format!(
            "database round timed out after {:.1} s",
            timeout.as_secs_f64()
        ))),
    };
    if !matches!(outcome, Err(RoundError::Transient(_))) {
        client.keep();
    }
    outcome
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
