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

use std::collections::HashSet;
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

/// What an account needs next (both flushers decide with [`FlushState::step`]).
pub(crate) enum Need {
    /// Write its queued commits now.
    Flush,
    /// Renew its lease now.
    Renew,
    /// Its renewal is not due yet, but is at the instant given, before the alignment horizon.
    RenewSoon(Instant),
    /// Closing with nothing left: release the lease and stop.
    Release,
    /// Nothing until the instant given (or a wake-up): commits gathering, a retry's backoff,
    /// or the next renewal.
    Wait(Instant),
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

/// One account's flush state, as a store's own flusher and a fleet's keep it.
pub(crate) struct FlushState {
    pub shared: Arc<Shared>,
    /// A flush that failed and waits to be retried (newer commits are merged into it).
    in_flight: Option<Pending>,
    backoff: Backoff,
    /// When the failed flush may be retried.
    retry_at: Option<Instant>,
    /// When a failed renewal is retried (None: at the regular time).
    renew_retry_at: Option<Instant>,
}

impl FlushState {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let options = &shared.options;
        Self {
            backoff: Backoff::new(options.retry_initial, options.retry_max),
            shared,
            in_flight: None,
            retry_at: None,
            renew_retry_at: None,
        }
    }

    /// What the account needs at `now`: gather commits for `flush_interval`, flush at once
    /// when `flush_batch_keys` wait, a caller waits in `flush`, the account closes or a failed
    /// flush is retried (after its backoff, unless a caller waits); renew the lease when due.
    /// A renewal due before `horizon` is [`Need::RenewSoon`] (a fleet aligns them). Adds the
    /// keys queued or being written to `queued` (read under the same lock).
    pub(crate) fn step(&self, now: Instant, horizon: Instant, queued: &mut usize) -> Need {
        let shared = &self.shared;
        let renew_at = self.renew_retry_at.unwrap_or_else(|| {
            let interval = shared.timings.lease_renew_interval;
            shared.status.borrow().lease.renewal_due(interval)
        });
        let mut queue = shared.queue.lock();
        *queued += queue.pending.len() + queue.in_flight_keys;
        if queue.pending.is_empty() && self.in_flight.is_none() {
            if queue.closing {
                return Need::Release;
            }
            // A caller waiting in `flush` with nothing queued waits for the lease.
            if queue.flush_requested || renew_at <= now {
                queue.flush_requested = false;
                return Need::Renew;
            }
            return if renew_at <= horizon {
                Need::RenewSoon(renew_at)
            } else {
                Need::Wait(renew_at)
            };
        }
        let waited_for = queue.flush_requested || queue.closing;
        if let Some(at) = self.retry_at
            && at > now
            && !waited_for
        {
            return Need::Wait(at);
        }
        let due = queue
            .pending
            .since
            .map(|since| since + shared.options.flush_interval);
        let urgent = self.in_flight.is_some()
            || waited_for
            || queue.pending.len() >= shared.options.flush_batch_keys
            || due.is_some_and(|due| due <= now);
        match due {
            Some(due) if !urgent => Need::Wait(due),
            _ => Need::Flush,
        }
    }

    /// Takes everything queued, merged into the flush being retried, if any.
    pub(crate) fn take_work(&mut self) -> Pending {
        let mut work = self.in_flight.take().unwrap_or_default();
        let mut queue = self.shared.queue.lock();
        work.absorb(std::mem::take(&mut queue.pending));
        queue.flush_requested = false;
        queue.in_flight_keys = work.len();
        queue.in_flight_since = work.since;
        work
    }

    /// `work` is durable: the account's counters move and its waiters learn it.
    pub(crate) fn flushed(&mut self, work: &Pending) {
        let shared = &self.shared;
        {
            let mut queue = shared.queue.lock();
            queue.in_flight_keys = 0;
            queue.in_flight_since = None;
        }
        let counters = &shared.counters;
        Counters::add(&counters.flushes, 1);
        Counters::add(&counters.flushed_batches, work.batches);
        Counters::add(&counters.flushed_keys, work.len() as u64);
        shared.status.send_modify(|status| {
            status.flushed_seq = status.flushed_seq.max(work.last_seq);
        });
        shared.space.notify_waiters();
        self.renewed();
    }

    /// The lease was confirmed: the backoff starts over.
    pub(crate) fn renewed(&mut self) {
        self.backoff.reset();
        self.retry_at = None;
        self.renew_retry_at = None;
    }

    /// A round failed for this account at `at`: its work (if any) is kept for a retry after
    /// the backoff; the health records `error`.
    pub(crate) fn failed(&mut self, work: Option<Pending>, at: Instant, error: &RoundError) {
        let shared = &self.shared;
        Counters::add(&shared.counters.retries, 1);
        shared
            .status
            .send_modify(|status| status.health.failed(at, error.to_string()));
        let retry = at + self.backoff.next_delay();
        match work {
            Some(work) => {
                self.in_flight = Some(work);
                self.retry_at = Some(retry);
            }
            None => self.renew_retry_at = Some(retry),
        }
    }

    /// Whether the account stopped (released, fenced or crashed).
    pub(crate) fn stopped(&self) -> bool {
        self.shared.status.borrow().stopped
    }
}

/// The text of a caught panic.
pub(crate) fn panic_reason(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// Runs the flusher; should it panic (a bug), the store is marked as crashed so that callers
/// get an error instead of waiting forever.
pub(crate) async fn supervise(shared: Arc<Shared>) {
    let outcome = std::panic::AssertUnwindSafe(run(shared.clone()))
        .catch_unwind()
        .await;
    if let Err(panic) = outcome {
        let reason = panic_reason(panic.as_ref());
        error!(instance = %shared.options.instance_id, %reason, "the flusher panicked");
        crashed(&shared, reason);
    }
}

/// Marks an account's store as crashed (its flusher panicked).
pub(crate) fn crashed(shared: &Shared, reason: String) {
    shared.status.send_modify(|status| {
        status.crashed = Some(reason);
        status.stopped = true;
    });
    shared.space.notify_waiters();
}

/// Runs the flusher of `shared` until the store is closed (and released) or fenced.
async fn run(shared: Arc<Shared>) {
    let mut flusher = Flusher {
        state: FlushState::new(shared),
    };
    loop {
        let now = Instant::now();
        let go_on = match flusher.state.step(now, now, &mut 0) {
            Need::Wait(until) | Need::RenewSoon(until) => flusher.sleep_until(until).await,
            Need::Renew => flusher.renew().await,
            Need::Flush => flusher.flush().await,
            Need::Release => flusher.release().await,
        };
        if !go_on {
            return;
        }
    }
}

/// The flusher's own state; each step returns whether the loop goes on.
struct Flusher {
    state: FlushState,
}

impl Flusher {
    /// Sleeps until `until` or a wake-up.
    async fn sleep_until(&self, until: Instant) -> bool {
        tokio::select! {
            () = self.state.shared.wake.notified() => {}
            () = tokio::time::sleep_until(until.into()) => {}
        }
        true
    }

    async fn renew(&mut self) -> bool {
        let shared = self.state.shared.clone();
        let renewed = self
            .round(None, async |client| {
                let (statements, limits) = (&shared.statements, &shared.limits);
                lease::renew(client, statements, limits, &shared.options, shared.epoch).await
            })
            .await;
        match renewed {
            Ok(()) => {
                Counters::add(&shared.counters.lease_renewals, 1);
                shared.telemetry.lease_renewals.increment(1);
                shared.telemetry.lease_renewal_statements.increment(1);
                self.state.renewed();
                true
            }
            Err(error) if error.is_transient() => {
                self.state.failed(None, Instant::now(), &error);
                true
            }
            Err(_) => false,
        }
    }

    async fn flush(&mut self) -> bool {
        let work = self.state.take_work();
        let started = Instant::now();
        let shared = self.state.shared.clone();
        let written = self
            .round(Some(&work), async |client| {
                write(client, &shared, &work).await
            })
            .await;
        match written {
            Ok(()) => {
                let keys = work.len();
                shared.telemetry.flushed(started.elapsed(), keys, 1);
                debug!(
                    instance = %shared.options.instance_id,
                    keys,
                    batches = work.batches,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "flushed"
                );
                self.state.flushed(&work);
                true
            }
            Err(error) if error.is_transient() => {
                self.state.failed(Some(work), Instant::now(), &error);
                true
            }
            Err(_) => false,
        }
    }

    /// Releases the lease and ends the flusher.
    async fn release(&self) -> bool {
        let shared = &self.state.shared;
        let (options, epoch) = (&shared.options, shared.epoch);
        let released = with_client(shared, async |client| {
            Ok(lease::release(client, &shared.statements, &shared.limits, options, epoch).await?)
        })
        .await;
        let released = released.map(|ours| {
            ours.then(|| options.instance_id.clone())
                .into_iter()
                .collect()
        });
        closed(shared, &released);
        false
    }

    /// Runs one database round (carrying `work`, if a flush) and records its outcome: the
    /// lease confirmed from when the round started, the health (a round counts from its
    /// start), or the store fenced.
    async fn round<T>(
        &self,
        work: Option<&Pending>,
        body: impl AsyncFnOnce(&Object) -> Result<T, RoundError>,
    ) -> Result<T, RoundError> {
        let shared = &self.state.shared;
        let started = Instant::now();
        shared
            .status
            .send_if_modified(|status| status.health.started(started));
        let outcome = with_client(shared, body).await;
        match &outcome {
            Ok(_) => succeeded(shared, started),
            Err(error) if error.is_transient() => {
                shared.telemetry.retries.increment(1);
                let what = if work.is_some() {
                    "flush"
                } else {
                    "lease renewal"
                };
                warn!(instance = %shared.options.instance_id, %error, sqlstate = error.sqlstate(), "{what} failed; will retry");
            }
            Err(error) => fenced(shared, error),
        }
        outcome
    }
}

/// An account's lease release ended (`released`: the instances whose lease was still ours):
/// it is logged and the account stops.
pub(crate) fn closed(shared: &Shared, released: &Result<HashSet<String>, RoundError>) {
    let (instance, epoch) = (&shared.options.instance_id, shared.epoch);
    match released {
        Ok(ours) if ours.contains(instance) => info!(%instance, epoch, "closed; lease released"),
        Ok(_) => warn!(%instance, epoch, "closed; the lease was no longer ours"),
        Err(error) => warn!(
            %instance,
            %error,
            "closed; could not release the lease (it will expire)"
        ),
    }
    shared.status.send_modify(|status| status.stopped = true);
    shared.space.notify_waiters();
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

/// The lease was taken: refuse everything from now on.
pub(crate) fn fenced(shared: &Shared, error: &RoundError) {
    error!(
        instance = %shared.options.instance_id,
        owner = %shared.options.owner_id,
        epoch = shared.epoch,
        %error,
        "lease lost: this store is fenced and stops"
    );
    shared.status.send_modify(|status| {
        status.fenced = Some(error.to_string());
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
    let mut client = Lent::get(pool, timeout).await?;
    let outcome = match tokio::time::timeout_at(deadline, body(&client)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(RoundError::TimedOut { after: timeout }),
    };
    // A fenced round ended its transaction: the connection is idle.
    if !matches!(&outcome, Err(error) if error.is_transient()) {
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
