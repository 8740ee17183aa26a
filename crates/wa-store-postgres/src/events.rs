//! Ownership events: what an account's store can do right now, pushed to the application the
//! moment it changes, so that it can drop the WhatsApp connection of an account it no longer
//! owns instead of learning it from the next failed commit.
//!
//! Each store keeps its [`Ownership`] in a `tokio::sync::watch` channel
//! ([`PostgresStore::ownership`](crate::PostgresStore::ownership)); a fleet also sends every
//! change of every account on one `tokio::sync::broadcast` channel
//! ([`PostgresFleet::events`](crate::PostgresFleet::events)). The state is derived from the
//! store's status (fenced, stopped) and from its lease and round clocks, which move with time
//! alone: a monitor re-evaluates it after every database round and at the next instant a clock
//! runs out.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Notify, broadcast};
use tracing::debug;

use crate::health;
use crate::store::{Shared, Status};

/// What an account's store can do, as its ownership events report it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ownership {
    /// The lease is ours and confirmed, database rounds succeed: commits are acknowledged.
    Serving,
    /// The lease may have expired: no renewal was confirmed for `lease_ttl -
    /// lease_safety_margin`. Commits and flushes are refused; another replica may take the
    /// account over. Back to [`Ownership::Serving`] if a renewal succeeds first.
    LeaseLost {
        /// Why, for logs (never key material).
        reason: String,
    },
    /// Database rounds have gone without success for `unhealthy_after`: commits and flushes
    /// are refused until one succeeds.
    Unhealthy {
        /// Why, for logs.
        reason: String,
    },
    /// Another owner holds the lease: the store is fenced for good and writes nothing more.
    /// Drop the account's connection and stop using the store.
    TakenOver {
        /// Who holds the lease now, as far as the database said.
        reason: String,
    },
    /// The store was closed (its lease released) or its flusher stopped.
    Closed,
}

impl Ownership {
    /// Whether commits are acknowledged in this state.
    pub fn is_serving(&self) -> bool {
        matches!(self, Ownership::Serving)
    }
}

/// One change of one account's [`Ownership`], as a fleet broadcasts it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnershipEvent {
    /// The account (instance id).
    pub instance_id: String,
    /// Its state from now on.
    pub ownership: Ownership,
}

/// The state `status` stands for at `now`.
fn state_of(shared: &Shared, status: &Status, now: Instant) -> Ownership {
    if let Some(reason) = &status.fenced {
        return Ownership::TakenOver {
            reason: reason.clone(),
        };
    }
    if status.stopped {
        return Ownership::Closed;
    }
    let unhealthy_after = shared.timings.unhealthy_after;
    match health::write_refusal(&status.lease, &status.health, unhealthy_after, now) {
        None => Ownership::Serving,
        Some(reason) if !status.lease.is_valid(now) => Ownership::LeaseLost { reason },
        Some(reason) => Ownership::Unhealthy { reason },
    }
}

/// Re-evaluates the ownership of `shared` at `now`, publishing a change. Returns when it must
/// be evaluated again if nothing else happens (None: the state is final).
pub(crate) fn observe(shared: &Shared, now: Instant) -> Option<Instant> {
    let (state, next) = {
        let status = shared.status.borrow();
        let state = state_of(shared, &status, now);
        let next = match state {
            Ownership::TakenOver { .. } | Ownership::Closed => None,
            Ownership::Serving => Some(shared.unhealthy_deadline(&status)),
            // Refusing already: only a round (which wakes the monitor) changes that.
            Ownership::LeaseLost { .. } | Ownership::Unhealthy { .. } => {
                Some(now + shared.timings.lease_renew_interval)
            }
        };
        (state, next)
    };
    let changed = shared.ownership.send_if_modified(|current| {
        if *current == state {
            return false;
        }
        *current = state.clone();
        true
    });
    if changed {
        let instance = &shared.options.instance_id;
        debug!(%instance, ownership = ?state, "ownership changed");
        shared.telemetry.ownership_changed(&state);
        if let Some(events) = &shared.events {
            // No receiver is fine: nobody listens.
            let _ = events.send(OwnershipEvent {
                instance_id: instance.clone(),
                ownership: state,
            });
        }
    }
    next
}

/// Publishes the ownership of the accounts `accounts()` returns, whenever `wake` is notified
/// and whenever one of their clocks runs out; ends when `done()` says so.
pub(crate) async fn monitor(
    accounts: impl Fn() -> Vec<Arc<Shared>>,
    wake: Arc<Notify>,
    done: impl Fn() -> bool,
) {
    loop {
        let now = Instant::now();
        let next = accounts()
            .iter()
            .filter_map(|shared| observe(shared, now))
            .min();
        if done() {
            return;
        }
        match next {
            Some(at) => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// A fleet's broadcast channel of events.
pub(crate) fn channel(capacity: usize) -> broadcast::Sender<OwnershipEvent> {
    broadcast::channel(capacity.max(16)).0
}

/// Publishes the ownership of one store (with a flusher of its own) until it is final.
pub(crate) async fn watch_store(shared: Arc<Shared>) {
    let mut status = shared.status.subscribe();
    while let Some(at) = observe(&shared, Instant::now()) {
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(at.into()) => {}
        }
    }
}
