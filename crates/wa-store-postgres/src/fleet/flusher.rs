//! The fleet's flusher: one task for every account of the replica.
//!
//! Each turn it looks at every account ([`Slot::step`], the same rules as a store's own
//! flusher: gather commits for `flush_interval`, flush at once when `flush_batch_keys` wait, a
//! caller waits in `flush`, or the account closes; renew the lease when due), then runs at
//! most one flush round carrying every account due (up to `fleet_batch_keys` rows; the lease
//! checks of the accounts whose renewal is due ride along), or else one renewal round for
//! every lease due soon, then one release round for the accounts closing. Renewals are
//! aligned: when one is due, every lease due within half an interval is renewed with it, so
//! a steady fleet sends one renewal statement per interval.
//!
//! Failures are per account: a round that fails (connection lost, timeout) puts every
//! account's work back, to be retried after that account's backoff; an account whose lease
//! row was locked is retried alone; a fenced account stops, the others carry on.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tracing::{debug, error, info, warn};

use super::FleetShared;
use super::round::{self, Account, Context, Verdict};
use crate::error::RoundError;
use crate::events;
use crate::flusher::{Backoff, fenced, lend, succeeded};
use crate::metrics::Counters;
use crate::queue::Pending;
use crate::store::Shared;

/// One account as the flusher tracks it.
struct Slot {
    shared: Arc<Shared>,
    /// A flush that failed and waits to be retried (newer commits are merged into it).
    in_flight: Option<Pending>,
    backoff: Backoff,
    /// When the failed flush may be retried.
    retry_at: Option<Instant>,
    /// When a failed renewal is retried (None: at the regular time).
    renew_retry_at: Option<Instant>,
}

/// What an account needs next.
enum Need {
    Flush,
    Renew,
    /// Its renewal is not due yet, but is at `at`, before the alignment horizon.
    RenewSoon(Instant),
    Release,
    /// Nothing until `at` (or a wake-up).
    Wait(Instant),
}

impl Slot {
    fn new(shared: Arc<Shared>) -> Self {
        let options = &shared.options;
        Self {
            backoff: Backoff::new(options.retry_initial, options.retry_max),
            shared,
            in_flight: None,
            retry_at: None,
            renew_retry_at: None,
        }
    }

    fn step(&self, now: Instant, horizon: Instant) -> Need {
        let shared = &self.shared;
        let renew_at = self.renew_retry_at.unwrap_or_else(|| {
            let interval = shared.timings.lease_renew_interval;
            shared.status.borrow().lease.renewal_due(interval)
        });
        let mut queue = shared.queue.lock();
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
    fn take_work(&mut self) -> Pending {
        let mut work = self.in_flight.take().unwrap_or_default();
        let mut queue = self.shared.queue.lock();
        work.absorb(std::mem::take(&mut queue.pending));
        queue.flush_requested = false;
        queue.in_flight_keys = work.len();
        queue.in_flight_since = work.since;
        work
    }

    fn account<'a>(&'a self, work: Option<&'a Pending>) -> Account<'a> {
        let shared = &self.shared;
        Account {
            instance: &shared.options.instance_id,
            owner: &shared.options.owner_id,
            epoch: shared.epoch,
            work,
        }
    }

    /// `work` is durable: the account's waiters learn it.
    fn flushed(&mut self, work: &Pending) {
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
        self.backoff.reset();
        self.retry_at = None;
        self.renew_retry_at = None;
    }

    /// A round failed for this account: keep its work (if any) for a retry after the backoff.
    fn failed(&mut self, work: Option<Pending>, at: Instant, reason: &str) {
        let shared = &self.shared;
        Counters::add(&shared.counters.retries, 1);
        shared
            .status
            .send_modify(|status| status.health.failed(at, reason.to_owned()));
        let retry = at + self.backoff.next_delay();
        match work {
            Some(work) => {
                self.in_flight = Some(work);
                self.retry_at = Some(retry);
            }
            None => self.renew_retry_at = Some(retry),
        }
    }

    fn stopped(&self) -> bool {
        self.shared.status.borrow().stopped
    }
}

/// The accounts of one turn.
#[derive(Default)]
struct Plan {
    flush: Vec<usize>,
    renew: Vec<usize>,
    renew_soon: Vec<usize>,
    release: Vec<usize>,
    next: Option<Instant>,
    queued_keys: usize,
}

/// Runs the flusher; should it panic (a bug), every account is marked as crashed so that
/// callers get an error instead of waiting forever.
pub(crate) async fn supervise(fleet: Arc<FleetShared>) {
    let outcome = std::panic::AssertUnwindSafe(run(fleet.clone()))
        .catch_unwind()
        .await;
    if let Err(panic) = outcome {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        error!(fleet = %fleet.options.name, %reason, "the fleet's flusher panicked");
        let mut accounts = fleet.snapshot();
        accounts.extend(fleet.added.lock().drain(..));
        for shared in accounts {
            shared.status.send_modify(|status| {
                status.crashed = Some(reason.clone());
                status.stopped = true;
            });
            shared.space.notify_waiters();
        }
        fleet.monitor_wake.notify_one();
    }
}

async fn run(fleet: Arc<FleetShared>) {
    let mut flusher = Flusher {
        fleet,
        slots: Vec::new(),
        cursor: 0,
    };
    loop {
        flusher.adopt();
        let plan = flusher.plan(Instant::now());
        let busy = !(plan.flush.is_empty() && plan.renew.is_empty() && plan.release.is_empty());
        if busy {
            flusher.execute(plan).await;
            flusher.retire();
            flusher.fleet.monitor_wake.notify_one();
            continue;
        }
        if flusher.finished() {
            return;
        }
        flusher.sleep(plan.next).await;
    }
}

struct Flusher {
    fleet: Arc<FleetShared>,
    slots: Vec<Slot>,
    /// Where the next flush round starts taking accounts (fairness when one round cannot
    /// carry every account due).
    cursor: usize,
}

impl Flusher {
    /// Takes over the accounts opened since the last turn.
    fn adopt(&mut self) {
        let added = std::mem::take(&mut *self.fleet.added.lock());
        if added.is_empty() {
            return;
        }
        self.slots.extend(added.into_iter().map(Slot::new));
        self.gauges();
    }

    /// Forgets the accounts that stopped (released or fenced), after publishing their final
    /// ownership.
    fn retire(&mut self) {
        let before = self.slots.len();
        let now = Instant::now();
        let fleet = &self.fleet;
        self.slots.retain(|slot| {
            if !slot.stopped() {
                return true;
            }
            events::observe(&slot.shared, now);
            let instance = &slot.shared.options.instance_id;
            let mut accounts = fleet.accounts.lock();
            if accounts
                .get(instance)
                .is_some_and(|a| Arc::ptr_eq(a, &slot.shared))
            {
                accounts.remove(instance);
            }
            false
        });
        if self.slots.len() != before {
            self.gauges();
        }
    }

    fn gauges(&self) {
        let telemetry = &self.fleet.telemetry;
        telemetry.accounts.set(self.slots.len() as f64);
        let bytes: usize = self.slots.iter().map(|s| s.shared.resident_bytes()).sum();
        telemetry.resident_bytes.set(bytes as f64);
    }

    /// Whether the fleet is closed and every account released.
    fn finished(&self) -> bool {
        self.fleet.is_closing() && self.slots.is_empty() && self.fleet.added.lock().is_empty()
    }

    fn plan(&mut self, now: Instant) -> Plan {
        let mut plan = Plan::default();
        let horizon = now + self.fleet.timings.lease_renew_interval / 2;
        let earliest = |at: Instant, plan: &mut Plan| {
            plan.next = Some(plan.next.map_or(at, |next| next.min(at)));
        };
        for (i, slot) in self.slots.iter().enumerate() {
            match slot.step(now, horizon) {
                Need::Flush => plan.flush.push(i),
                Need::Renew => plan.renew.push(i),
                Need::RenewSoon(at) => {
                    plan.renew_soon.push(i);
                    earliest(at, &mut plan);
                }
                Need::Release => plan.release.push(i),
                Need::Wait(at) => earliest(at, &mut plan),
            }
            let queue = slot.shared.queue.lock();
            plan.queued_keys += queue.pending.len() + queue.in_flight_keys;
        }
        self.fleet.telemetry.queue_keys.set(plan.queued_keys as f64);
        // Renewals ride along with any round: the fleet's leases stay aligned.
        if !plan.flush.is_empty() || !plan.renew.is_empty() {
            plan.renew.append(&mut plan.renew_soon);
        }
        plan
    }

    async fn sleep(&self, until: Option<Instant>) {
        let wake = self.fleet.wake.notified();
        match until {
            Some(until) => {
                tokio::select! {
                    () = wake => {}
                    () = tokio::time::sleep_until(until.into()) => {}
                }
            }
            None => wake.await,
        }
    }

    async fn execute(&mut self, plan: Plan) {
        if !plan.flush.is_empty() {
            self.flush(plan.flush, plan.renew).await;
        } else if !plan.renew.is_empty() {
            self.renew(plan.renew).await;
        }
        if !plan.release.is_empty() {
            self.release(plan.release).await;
        }
    }

    fn context(&self) -> Context<'_> {
        let fleet = &self.fleet;
        Context {
            statements: &fleet.fleet_statements,
            limits: &fleet.limits,
            ttl_ms: round::ttl_ms(fleet.timings.lease_ttl),
            statement_rows: fleet.options.account.statement_rows,
        }
    }

    /// The accounts of `due` this round takes, up to `fleet_batch_keys` rows, starting at the
    /// cursor; the others wait for the next round.
    fn choose(&mut self, mut due: Vec<usize>) -> Vec<(usize, Pending)> {
        let n = self.slots.len().max(1);
        let cursor = self.cursor;
        due.sort_by_key(|&i| (i + n - cursor % n) % n);
        let limit = self.fleet.options.fleet_batch_keys;
        let mut taken = Vec::new();
        let mut rows = 0;
        for i in due {
            if rows >= limit {
                break;
            }
            let work = self.slots[i].take_work();
            rows += work.len();
            self.cursor = i + 1;
            taken.push((i, work));
        }
        taken
    }

    async fn flush(&mut self, due: Vec<usize>, renew: Vec<usize>) {
        let taken = self.choose(due);
        let started = self.started(taken.iter().map(|(i, _)| *i).chain(renew.iter().copied()));
        let verdicts = {
            let mut accounts: Vec<Account<'_>> = taken
                .iter()
                .map(|(i, work)| self.slots[*i].account(Some(work)))
                .collect();
            accounts.extend(renew.iter().map(|&i| self.slots[i].account(None)));
            let cx = self.context();
            let timeout = self.fleet.timings.operation_timeout;
            lend(&self.fleet.pool, timeout, async |client| {
                round::flush(client, &cx, &accounts).await
            })
            .await
        };
        let rows: usize = taken.iter().map(|(_, work)| work.len()).sum();
        let mut outcomes: Vec<(usize, Option<Pending>)> =
            taken.into_iter().map(|(i, work)| (i, Some(work))).collect();
        outcomes.extend(renew.into_iter().map(|i| (i, None)));
        match verdicts {
            Ok(verdicts) => {
                self.record_flush(&outcomes, &verdicts, started);
                for ((i, work), verdict) in outcomes.into_iter().zip(verdicts) {
                    self.settle(i, work, verdict, started);
                }
            }
            Err(error) => self.round_failed("flush", outcomes, &error, rows),
        }
    }

    /// Records a flush round's figures, before any waiter learns that its work is durable.
    fn record_flush(
        &self,
        outcomes: &[(usize, Option<Pending>)],
        verdicts: &[Verdict],
        started: Instant,
    ) {
        let (mut rows, mut accounts) = (0, 0);
        for ((_, work), verdict) in outcomes.iter().zip(verdicts) {
            if let (Verdict::Confirmed, Some(work)) = (verdict, work) {
                rows += work.len();
                accounts += 1;
            }
        }
        let took = started.elapsed();
        if accounts > 0 {
            self.fleet.telemetry.flushed(took, rows, accounts);
        }
        debug!(fleet = %self.fleet.options.name, rows, accounts, elapsed_us = took.as_micros() as u64, "flushed");
    }

    async fn renew(&mut self, due: Vec<usize>) {
        let started = self.started(due.iter().copied());
        let verdicts = {
            let accounts: Vec<Account<'_>> =
                due.iter().map(|&i| self.slots[i].account(None)).collect();
            let cx = self.context();
            let timeout = self.fleet.timings.operation_timeout;
            lend(&self.fleet.pool, timeout, async |client| {
                round::renew(client, &cx, &accounts).await
            })
            .await
        };
        let telemetry = &self.fleet.telemetry;
        telemetry.lease_renewal_statements.increment(1);
        let outcomes: Vec<(usize, Option<Pending>)> = due.into_iter().map(|i| (i, None)).collect();
        match verdicts {
            Ok(verdicts) => {
                let renewed = verdicts
                    .iter()
                    .filter(|v| **v == Verdict::Confirmed)
                    .count();
                telemetry.lease_renewals.increment(renewed as u64);
                for ((i, _), verdict) in outcomes.into_iter().zip(verdicts) {
                    if verdict == Verdict::Confirmed {
                        Counters::add(&self.slots[i].shared.counters.lease_renewals, 1);
                    }
                    self.settle(i, None, verdict, started);
                }
            }
            Err(error) => self.round_failed("lease renewal", outcomes, &error, 0),
        }
    }

    /// Marks a round over the accounts `indices` as started now (for their health).
    fn started(&self, indices: impl Iterator<Item = usize>) -> Instant {
        let started = Instant::now();
        for i in indices {
            self.slots[i]
                .shared
                .status
                .send_if_modified(|status| status.health.started(started));
        }
        started
    }

    /// Applies one account's verdict of a round that started at `started`.
    fn settle(&mut self, i: usize, work: Option<Pending>, verdict: Verdict, started: Instant) {
        let slot = &mut self.slots[i];
        match verdict {
            Verdict::Confirmed => {
                succeeded(&slot.shared, started);
                match &work {
                    Some(work) => slot.flushed(work),
                    None => {
                        slot.backoff.reset();
                        slot.renew_retry_at = None;
                    }
                }
            }
            Verdict::Fenced(reason) => fenced(&slot.shared, reason),
            Verdict::Locked => {
                let reason = "the lease row is locked by another transaction";
                slot.failed(work, Instant::now(), reason);
            }
        }
    }

    /// A round failed as a whole: every account in it keeps its work for a retry.
    fn round_failed(
        &mut self,
        what: &str,
        outcomes: Vec<(usize, Option<Pending>)>,
        error: &RoundError,
        rows: usize,
    ) {
        let reason = match error {
            RoundError::Transient(reason) | RoundError::Fenced(reason) => reason.clone(),
        };
        let fleet = &self.fleet;
        fleet.telemetry.retries.increment(1);
        warn!(fleet = %fleet.options.name, accounts = outcomes.len(), rows, error = %reason, "{what} failed; will retry");
        let now = Instant::now();
        for (i, work) in outcomes {
            self.slots[i].failed(work, now, &reason);
        }
    }

    /// Releases the leases of the accounts `due` (closing, nothing left to write) and stops
    /// them.
    async fn release(&mut self, due: Vec<usize>) {
        let released = {
            let accounts: Vec<Account<'_>> =
                due.iter().map(|&i| self.slots[i].account(None)).collect();
            let cx = self.context();
            let timeout = self.fleet.timings.operation_timeout;
            lend(&self.fleet.pool, timeout, async |client| {
                round::release(client, &cx, &accounts)
                    .await
                    .map_err(RoundError::from)
            })
            .await
        };
        for i in due {
            let shared = &self.slots[i].shared;
            let (instance, epoch) = (&shared.options.instance_id, shared.epoch);
            match &released {
                Ok(ours) if ours.contains(instance) => {
                    info!(%instance, epoch, "closed; lease released");
                }
                Ok(_) => warn!(%instance, epoch, "closed; the lease was no longer ours"),
                Err(RoundError::Transient(reason) | RoundError::Fenced(reason)) => warn!(
                    %instance,
                    error = %reason,
                    "closed; could not release the lease (it will expire)"
                ),
            }
            shared.status.send_modify(|status| status.stopped = true);
            shared.space.notify_waiters();
        }
    }
}
