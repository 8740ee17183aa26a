//! Whether a store may acknowledge writes: its local view of its lease ([`LeaseClock`]) and of
//! its database rounds ([`RoundHealth`]), both on the monotonic clock.
//!
//! Pure bookkeeping — no I/O, the time is passed in — so that one store, or a flusher serving
//! many accounts with batched lease renewals, keeps one of each per account and asks
//! [`write_refusal`] before acknowledging anything.
//!
//! The two rules:
//! - **The lease's own expiry.** A renewal (or flush) sent at `t` and confirmed by the server
//!   made the lease valid until at least `t + lease_ttl` by the server's clock (the server
//!   computes the expiry from its `now()`, which is later than `t`). The store counts it valid
//!   until `t + lease_ttl - lease_safety_margin` on its own monotonic clock, the margin covering
//!   a difference in clock rates. Past that, another replica may hold the lease: no write is
//!   acknowledged until a renewal succeeds.
//! - **`unhealthy_after`.** Rounds that keep failing — or one that hangs, counted from its
//!   start, not from when it finally times out — make the store unhealthy.

use std::time::{Duration, Instant};

/// The lease as this replica knows it: valid for `valid_for` after the last confirmed renewal
/// was sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaseClock {
    valid_for: Duration,
    confirmed_sent: Instant,
}

impl LeaseClock {
    /// A lease confirmed by a statement sent at `sent`, surely valid for `valid_for` after it
    /// (`lease_ttl - lease_safety_margin`).
    pub(crate) fn new(valid_for: Duration, sent: Instant) -> Self {
        Self {
            valid_for,
            confirmed_sent: sent,
        }
    }

    /// The server confirmed the lease in a round sent at `sent`; an older confirmation than
    /// the one known changes nothing.
    pub(crate) fn confirm(&mut self, sent: Instant) {
        self.confirmed_sent = self.confirmed_sent.max(sent);
    }

    /// Until when the lease is surely ours.
    pub(crate) fn valid_until(&self) -> Instant {
        self.confirmed_sent + self.valid_for
    }

    /// Whether the lease is surely ours at `now`.
    pub(crate) fn is_valid(&self, now: Instant) -> bool {
        now < self.valid_until()
    }

    /// How long the lease is surely ours from `now`.
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.valid_until().saturating_duration_since(now)
    }

    /// When an idle store renews: `interval` after the last confirmed renewal was sent.
    pub(crate) fn renewal_due(&self, interval: Duration) -> Instant {
        self.confirmed_sent + interval
    }
}

/// Database rounds (flushes and lease renewals) as the `unhealthy_after` rule sees them.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundHealth {
    /// When the oldest round not followed by a success started (None: the last round
    /// succeeded and no other has started since).
    unconfirmed_since: Option<Instant>,
    /// The last failure, until the next success.
    last_error: Option<String>,
    /// Rounds finished, successful or not.
    rounds: u64,
}

impl RoundHealth {
    /// A round starts at `at`. Returns whether that changed anything (it is the first round
    /// since the last success), so that waiters can recompute their deadlines.
    pub(crate) fn started(&mut self, at: Instant) -> bool {
        if self.unconfirmed_since.is_some() {
            return false;
        }
        self.unconfirmed_since = Some(at);
        true
    }

    /// A round succeeded. Returns whether rounds had been failing before.
    pub(crate) fn succeeded(&mut self) -> bool {
        self.rounds += 1;
        self.unconfirmed_since = None;
        self.last_error.take().is_some()
    }

    /// A round failed with `reason`.
    pub(crate) fn failed(&mut self, at: Instant, reason: String) {
        self.rounds += 1;
        self.unconfirmed_since.get_or_insert(at);
        self.last_error = Some(reason);
    }

    /// Rounds finished so far.
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds
    }

    /// The last failure, until the next success.
    pub(crate) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// When rounds started going without success, if they are.
    pub(crate) fn unconfirmed_since(&self) -> Option<Instant> {
        self.unconfirmed_since
    }
}

/// Why a write may not be acknowledged at `now`, if it may not: the lease may have expired, or
/// no round has succeeded for `unhealthy_after`.
pub(crate) fn write_refusal(
    lease: &LeaseClock,
    health: &RoundHealth,
    unhealthy_after: Duration,
    now: Instant,
) -> Option<String> {
    let last_error = || match health.last_error() {
        Some(error) => format!("last error: {error}"),
        None => "a database round is still waiting for an answer".to_owned(),
    };
    if !lease.is_valid(now) {
        return Some(format!(
            "the lease may have expired: no renewal confirmed for {:.1} s (it is counted valid \
             for {:.1} s after one); writes are refused until a renewal succeeds, and another \
             replica may take the account over; {}",
            now.saturating_duration_since(lease.confirmed_sent)
                .as_secs_f64(),
            lease.valid_for.as_secs_f64(),
            last_error()
        ));
    }
    let since = health.unconfirmed_since()?;
    let failing_for = now.saturating_duration_since(since);
    (failing_for >= unhealthy_after).then(|| {
        format!(
            "no successful database round for {:.1} s; {}",
            failing_for.as_secs_f64(),
            last_error()
        )
    })
}

/// When [`write_refusal`] starts refusing if nothing changes in between.
pub(crate) fn refusal_deadline(
    lease: &LeaseClock,
    health: &RoundHealth,
    unhealthy_after: Duration,
) -> Instant {
    let lease_end = lease.valid_until();
    match health.unconfirmed_since() {
        Some(since) => lease_end.min(since + unhealthy_after),
        None => lease_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn the_lease_is_valid_for_its_ttl_less_the_margin_after_the_confirmed_send() {
        let t0 = Instant::now();
        let mut lease = LeaseClock::new(9 * SEC, t0);
        assert!(lease.is_valid(t0 + 8 * SEC));
        assert!(!lease.is_valid(t0 + 9 * SEC));
        assert_eq!(lease.remaining(t0 + 4 * SEC), 5 * SEC);
        lease.confirm(t0 + 5 * SEC);
        assert!(lease.is_valid(t0 + 13 * SEC));
        // A late answer to an older round does not move the lease back.
        lease.confirm(t0 + SEC);
        assert_eq!(lease.valid_until(), t0 + 14 * SEC);
        assert_eq!(lease.renewal_due(3 * SEC), t0 + 8 * SEC);
    }

    #[test]
    fn writes_are_refused_once_the_lease_may_have_expired_whatever_the_rounds() {
        let t0 = Instant::now();
        let lease = LeaseClock::new(9 * SEC, t0);
        let health = RoundHealth::default();
        let long = 600 * SEC;
        assert_eq!(write_refusal(&lease, &health, long, t0 + 8 * SEC), None);
        let reason = write_refusal(&lease, &health, long, t0 + 9 * SEC).expect("refused");
        assert!(reason.contains("lease may have expired"), "{reason}");
        assert_eq!(refusal_deadline(&lease, &health, long), t0 + 9 * SEC);
    }

    #[test]
    fn a_hung_round_counts_from_its_start() {
        let t0 = Instant::now();
        let lease = LeaseClock::new(100 * SEC, t0);
        let mut health = RoundHealth::default();
        assert!(health.started(t0 + SEC));
        assert!(!health.started(t0 + 2 * SEC), "the first start counts");
        // Still running, no answer: unhealthy `unhealthy_after` after it started.
        assert_eq!(write_refusal(&lease, &health, 2 * SEC, t0 + 2 * SEC), None);
        assert_eq!(refusal_deadline(&lease, &health, 2 * SEC), t0 + 3 * SEC);
        let reason = write_refusal(&lease, &health, 2 * SEC, t0 + 3 * SEC).expect("refused");
        assert!(reason.contains("still waiting"), "{reason}");
        health.failed(t0 + 4 * SEC, "timed out".into());
        assert_eq!(health.unconfirmed_since(), Some(t0 + SEC));
        assert!(health.succeeded(), "it had been failing");
        assert_eq!(health.rounds(), 2);
        assert_eq!(write_refusal(&lease, &health, 2 * SEC, t0 + 10 * SEC), None);
        assert!(!health.succeeded());
    }
}
