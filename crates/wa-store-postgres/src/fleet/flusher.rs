//! The fleet's flusher: one task for every account of the replica, running several database
//! rounds at once over disjoint sets of accounts.
//!
//! Each turn it looks at every account not in a round ([`FlushState::step`], the same rules
//! as a store's own flusher: gather commits for `flush_interval`, flush at once when
//! `flush_batch_keys` wait, a caller waits in `flush`, or the account closes; renew the lease
//! when due) and, while fewer than `flush_rounds` rounds are in flight, starts a flush round
//! carrying accounts due (up to `fleet_batch_keys` rows; the lease checks of the accounts whose
//! renewal is due ride along), or else one renewal round for every lease due soon, and one
//! release round for the accounts closing. A round runs on a pooled connection of its own; a
//! new round starts as soon as work is queued and a round slot is free, without waiting for
//! the rounds in flight. An account is in at most one round at a time, so its batches land in
//! order, and an account whose round is stalled (a locked row, a slow disk) holds up only the
//! accounts of that round. Renewals are aligned: when one is due, every lease due within half
//! an interval is renewed with it, so a steady fleet sends one renewal statement per interval.
//!
//! Failures are per account: a round that fails (connection lost, timeout) puts every
//! account's work back, to be retried after that account's backoff; an account whose lease
//! row was locked is retried alone; a fenced account stops, the others carry on.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tracing::{debug, error, warn};

use super::FleetShared;
use super::round::{self, Account, Context, Verdict};
use crate::error::RoundError;
use crate::events;
use crate::flusher::{FlushState, Need, closed, crashed, fenced, lend, panic_reason, succeeded};
use crate::metrics::Counters;
use crate::queue::Pending;
use crate::store::Shared;

/// An account's number in the flusher, in the order the accounts were opened.
type Id = u64;

/// One account as the flusher tracks it.
struct Slot {
    state: FlushState,
    /// In a round now: not planned again until that round ends.
    busy: bool,
}

/// What a round does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flush,
    Renew,
    Release,
}

/// One account of a round in flight: what it carries.
struct Member {
    id: Id,
    shared: Arc<Shared>,
    work: Option<Pending>,
}

/// What a round found.
enum Outcome {
    Verdicts(Result<Vec<Verdict>, RoundError>),
    /// The instances whose lease was still ours and is now released.
    Released(Result<HashSet<String>, RoundError>),
}

/// A round that ended.
struct Done {
    kind: Kind,
    members: Vec<Member>,
    started: Instant,
    outcome: Outcome,
}

/// The accounts of one turn.
#[derive(Default)]
struct Plan {
    flush: Vec<Id>,
    renew: Vec<Id>,
    renew_soon: Vec<Id>,
    release: Vec<Id>,
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
        let reason = panic_reason(panic.as_ref());
        error!(fleet = %fleet.options.name, %reason, "the fleet's flusher panicked");
        let mut accounts = fleet.snapshot();
        accounts.extend(fleet.added.lock().drain(..));
        for shared in accounts {
            crashed(&shared, reason.clone());
        }
        fleet.monitor_wake.notify_one();
    }
}

async fn run(fleet: Arc<FleetShared>) {
    let mut flusher = Flusher {
        rounds_limit: fleet.flush_rounds,
        fleet,
        slots: BTreeMap::new(),
        next_id: 0,
        cursor: 0,
        rounds: FuturesUnordered::new(),
    };
    loop {
        flusher.adopt();
        let next = flusher.launch(Instant::now());
        if flusher.rounds.is_empty() && flusher.finished() {
            return;
        }
        flusher.wait(next).await;
    }
}

struct Flusher {
    fleet: Arc<FleetShared>,
    slots: BTreeMap<Id, Slot>,
    next_id: Id,
    /// Where the next flush round starts taking accounts (fairness when one round cannot
    /// carry every account due).
    cursor: Id,
    /// The rounds in flight.
    rounds: FuturesUnordered<BoxFuture<'static, Done>>,
    /// How many rounds may be in flight at once.
    rounds_limit: usize,
}

impl Flusher {
    /// Takes over the accounts opened since the last turn.
    fn adopt(&mut self) {
        let added = std::mem::take(&mut *self.fleet.added.lock());
        if added.is_empty() {
            return;
        }
        for shared in added {
            let slot = Slot {
                state: FlushState::new(shared),
                busy: false,
            };
            self.slots.insert(self.next_id, slot);
            self.next_id += 1;
        }
        self.gauges();
    }

    /// Forgets the accounts that stopped (released or fenced) and are in no round, after
    /// publishing their final ownership.
    fn retire(&mut self) {
        let before = self.slots.len();
        let now = Instant::now();
        let fleet = &self.fleet;
        self.slots.retain(|_, slot| {
            if slot.busy || !slot.state.stopped() {
                return true;
            }
            let shared = &slot.state.shared;
            events::observe(shared, now);
            let instance = &shared.options.instance_id;
            let mut accounts = fleet.accounts.lock();
            if accounts
                .get(instance)
                .is_some_and(|a| Arc::ptr_eq(a, shared))
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
        let bytes: usize = self
            .slots
            .values()
            .map(|s| s.state.shared.resident_bytes())
            .sum();
        telemetry.resident_bytes.set(bytes as f64);
    }

    /// Whether the fleet is closed and every account released.
    fn finished(&self) -> bool {
        self.fleet.is_closing() && self.slots.is_empty() && self.fleet.added.lock().is_empty()
    }

    /// Starts the rounds due while round slots are free; returns when the flusher should look
    /// again at the latest (None: on a wake-up or when a round ends).
    fn launch(&mut self, now: Instant) -> Option<Instant> {
        if self.rounds.len() >= self.rounds_limit {
            return None;
        }
        let mut plan = self.plan(now);
        let mut renew = std::mem::take(&mut plan.renew);
        while !plan.flush.is_empty() && self.rounds.len() < self.rounds_limit {
            let mut members = self.choose(&mut plan.flush);
            // The renewals due ride along with the first flush round.
            members.extend(renew.drain(..).map(|id| self.member(id, None)));
            self.start(Kind::Flush, members);
        }
        if !renew.is_empty() && self.rounds.len() < self.rounds_limit {
            let members = renew.into_iter().map(|id| self.member(id, None)).collect();
            self.start(Kind::Renew, members);
        }
        if !plan.release.is_empty() && self.rounds.len() < self.rounds_limit {
            let members = plan
                .release
                .into_iter()
                .map(|id| self.member(id, None))
                .collect();
            self.start(Kind::Release, members);
        }
        plan.next
    }

    fn plan(&mut self, now: Instant) -> Plan {
        let mut plan = Plan::default();
        let horizon = now + self.fleet.timings.lease_renew_interval / 2;
        let earliest = |at: Instant, plan: &mut Plan| {
            plan.next = Some(plan.next.map_or(at, |next| next.min(at)));
        };
        for (&id, slot) in &self.slots {
            if slot.busy || slot.state.stopped() {
                let queue = slot.state.shared.queue.lock();
                plan.queued_keys += queue.pending.len() + queue.in_flight_keys;
                continue;
            }
            match slot.state.step(now, horizon, &mut plan.queued_keys) {
                Need::Flush => plan.flush.push(id),
                Need::Renew => plan.renew.push(id),
                Need::RenewSoon(at) => {
                    plan.renew_soon.push(id);
                    earliest(at, &mut plan);
                }
                Need::Release => plan.release.push(id),
                Need::Wait(at) => earliest(at, &mut plan),
            }
        }
        self.fleet.telemetry.queue_keys.set(plan.queued_keys as f64);
        // Renewals ride along with any round: the fleet's leases stay aligned.
        if !plan.flush.is_empty() || !plan.renew.is_empty() {
            plan.renew.append(&mut plan.renew_soon);
        }
        plan
    }

    /// Takes the accounts of `due` the next flush round carries, up to `fleet_batch_keys`
    /// rows, starting at the cursor; the others stay in `due`.
    fn choose(&mut self, due: &mut Vec<Id>) -> Vec<Member> {
        let cursor = self.cursor;
        due.sort_by_key(|&id| (id < cursor, id));
        let limit = self.fleet.options.fleet_batch_keys;
        let mut taken = Vec::new();
        let mut rows = 0;
        let mut used = 0;
        for &id in due.iter() {
            if rows >= limit {
                break;
            }
            let slot = self.slots.get_mut(&id).expect("a planned account");
            let work = slot.state.take_work();
            rows += work.len();
            used += 1;
            self.cursor = id + 1;
            taken.push(self.member(id, Some(work)));
        }
        due.drain(..used);
        taken
    }

    /// Account `id` joins a round, carrying `work`.
    fn member(&mut self, id: Id, work: Option<Pending>) -> Member {
        let slot = self.slots.get_mut(&id).expect("a planned account");
        slot.busy = true;
        Member {
            id,
            shared: slot.state.shared.clone(),
            work,
        }
    }

    /// Starts a round over `members` on a connection of its own.
    fn start(&mut self, kind: Kind, members: Vec<Member>) {
        let started = Instant::now();
        if kind != Kind::Release {
            for member in &members {
                let status = &member.shared.status;
                status.send_if_modified(|status| status.health.started(started));
            }
        }
        let fleet = self.fleet.clone();
        self.rounds.push(Box::pin(async move {
            let outcome = execute(&fleet, kind, &members).await;
            Done {
                kind,
                members,
                started,
                outcome,
            }
        }));
    }

    /// Waits for a round to end (and applies its outcome), a wake-up, or `until`.
    async fn wait(&mut self, until: Option<Instant>) {
        let wake = self.fleet.wake.notified();
        let sleep = async {
            match until {
                Some(until) => tokio::time::sleep_until(until.into()).await,
                None => std::future::pending().await,
            }
        };
        let done = tokio::select! {
            done = self.rounds.next(), if !self.rounds.is_empty() => done,
            () = wake => None,
            () = sleep => None,
        };
        let Some(done) = done else { return };
        self.apply(done);
        // Rounds that ended meanwhile.
        while let Some(Some(done)) = self.rounds.next().now_or_never() {
            self.apply(done);
        }
        self.retire();
        self.fleet.monitor_wake.notify_one();
    }

    /// Applies the outcome of a round to its accounts, which leave it.
    fn apply(&mut self, done: Done) {
        let Done {
            kind,
            members,
            started,
            outcome,
        } = done;
        for member in &members {
            if let Some(slot) = self.slots.get_mut(&member.id) {
                slot.busy = false;
            }
        }
        match outcome {
            Outcome::Released(released) => {
                for member in &members {
                    closed(&member.shared, &released);
                }
            }
            Outcome::Verdicts(Ok(verdicts)) => {
                if kind == Kind::Flush {
                    self.record_flush(&members, &verdicts, started);
                } else {
                    self.record_renewal(&verdicts);
                }
                for (member, verdict) in members.into_iter().zip(verdicts) {
                    self.settle(kind, member, verdict, started);
                }
            }
            Outcome::Verdicts(Err(error)) => self.round_failed(kind, members, &error),
        }
    }

    /// Records a flush round's figures, before any waiter learns that its work is durable.
    fn record_flush(&self, members: &[Member], verdicts: &[Verdict], started: Instant) {
        let (mut rows, mut accounts) = (0, 0);
        for (member, verdict) in members.iter().zip(verdicts) {
            if let (Verdict::Confirmed, Some(work)) = (verdict, &member.work) {
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

    fn record_renewal(&self, verdicts: &[Verdict]) {
        let telemetry = &self.fleet.telemetry;
        telemetry.lease_renewal_statements.increment(1);
        let renewed = verdicts
            .iter()
            .filter(|v| **v == Verdict::Confirmed)
            .count();
        telemetry.lease_renewals.increment(renewed as u64);
    }

    /// Applies one account's verdict of a round that started at `started`.
    fn settle(&mut self, kind: Kind, member: Member, verdict: Verdict, started: Instant) {
        let Some(slot) = self.slots.get_mut(&member.id) else {
            return;
        };
        let state = &mut slot.state;
        match verdict {
            Verdict::Confirmed => {
                succeeded(&state.shared, started);
                match &member.work {
                    Some(work) => state.flushed(work),
                    None => {
                        if kind == Kind::Renew {
                            Counters::add(&state.shared.counters.lease_renewals, 1);
                        }
                        state.renewed();
                    }
                }
            }
            Verdict::Fenced(error) => fenced(&state.shared, &error),
            Verdict::Locked => {
                state.failed(member.work, Instant::now(), &RoundError::LeaseLocked);
            }
        }
    }

    /// A round failed as a whole: every account in it keeps its work for a retry.
    fn round_failed(&mut self, kind: Kind, members: Vec<Member>, error: &RoundError) {
        let fleet = &self.fleet;
        fleet.telemetry.retries.increment(1);
        let rows: usize = members
            .iter()
            .filter_map(|m| m.work.as_ref())
            .map(Pending::len)
            .sum();
        let what = if kind == Kind::Flush {
            "flush"
        } else {
            "lease renewal"
        };
        warn!(fleet = %fleet.options.name, accounts = members.len(), rows, %error, sqlstate = error.sqlstate(), "{what} failed; will retry");
        let now = Instant::now();
        for member in members {
            if let Some(slot) = self.slots.get_mut(&member.id) {
                slot.state.failed(member.work, now, error);
            }
        }
    }
}

/// Runs one round over `members` on a pooled connection, within `operation_timeout`.
async fn execute(fleet: &FleetShared, kind: Kind, members: &[Member]) -> Outcome {
    let accounts: Vec<Account<'_>> = members
        .iter()
        .map(|m| Account {
            instance: &m.shared.options.instance_id,
            owner: &m.shared.options.owner_id,
            epoch: m.shared.epoch,
            work: m.work.as_ref(),
        })
        .collect();
    let cx = Context {
        statements: &fleet.fleet_statements,
        limits: &fleet.limits,
        ttl_ms: round::ttl_ms(fleet.timings.lease_ttl),
        statement_rows: fleet.options.account.statement_rows,
    };
    let (pool, timeout) = (&fleet.pool, fleet.timings.operation_timeout);
    match kind {
        Kind::Flush => Outcome::Verdicts(
            lend(pool, timeout, async |client| {
                round::flush(client, &cx, &accounts).await
            })
            .await,
        ),
        Kind::Renew => Outcome::Verdicts(
            lend(pool, timeout, async |client| {
                round::renew(client, &cx, &accounts).await
            })
            .await,
        ),
        Kind::Release => Outcome::Released(
            lend(pool, timeout, async |client| {
                round::release(client, &cx, &accounts).await
            })
            .await,
        ),
    }
}
