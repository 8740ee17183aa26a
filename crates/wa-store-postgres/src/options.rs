//! [`PostgresStoreOptions`]: everything [`PostgresStore::open`](crate::PostgresStore::open)
//! can be told, with documented defaults.

use std::time::Duration;

use wa_auth::{AuthError, Result};

use crate::schema::SchemaName;

/// What a replica does when the instance's lease is held by another owner whose lease has
/// expired (it crashed, or lost the database, without releasing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Takeover {
    /// Never take over: an expired lease of another owner is still
    /// [`AuthError::AlreadyOwned`] (an operator, or a replica configured with
    /// [`Takeover::AfterExpiry`], must take it). The default.
    #[default]
    Never,
    /// Take over a lease whose expiry has passed: the epoch increases, which fences the old
    /// owner (its later flushes are rejected with [`AuthError::OwnershipLost`]).
    AfterExpiry,
}

/// How to open one instance (account) of the PostgreSQL store. Build with
/// [`PostgresStoreOptions::new`] and the chainable setters; every field's default is documented
/// on it.
///
/// ```
/// use std::time::Duration;
/// use wa_store_postgres::{PostgresStoreOptions, Takeover};
///
/// let options = PostgresStoreOptions::new("account-4915112345678")
///     .owner_id("replica-7")
///     .takeover(Takeover::AfterExpiry)
///     .lease_ttl(Duration::from_secs(30))
///     .flush_interval(Duration::from_millis(5));
/// assert_eq!(options.instance_id, "account-4915112345678");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PostgresStoreOptions {
    /// The instance (account) id: the key of all its rows. 1..=256 bytes, no control
    /// characters. Required.
    pub instance_id: String,
    /// Who holds the lease, as shown to a replica that is refused (`AlreadyOwned`) and stored
    /// in the lease row. Default: `<hostname>:<pid>:<random>`, unique per store opened.
    pub owner_id: String,
    /// The PostgreSQL schema holding the tables. Default `wa_auth`.
    pub schema: SchemaName,
    /// Whether to take over an expired lease of another owner. Default [`Takeover::Never`].
    pub takeover: Takeover,
    /// How long a lease lasts without renewal. Default 30 s. The other time bounds default to
    /// fractions of it (see [`Timings`]), so that a shorter lease shortens them all.
    pub lease_ttl: Duration,
    /// How often an idle store renews its lease (every flush renews it too), counted from the
    /// last confirmed renewal. Default (`None`): `lease_ttl / 3` (10 s); it must be shorter than
    /// `lease_ttl - lease_safety_margin`.
    pub lease_renew_interval: Option<Duration>,
    /// How much earlier than the server the store counts its lease as expired: the lease is
    /// taken as valid until `lease_ttl - lease_safety_margin` after the last confirmed renewal
    /// was *sent*, measured on the monotonic clock. Covers clock rate differences between this
    /// host and the database server. Default (`None`): `lease_ttl / 10` (3 s).
    pub lease_safety_margin: Option<Duration>,
    /// How long `open` keeps trying when the lease is held (for a rolling deploy, while the
    /// old replica shuts down and releases, or to take over a crashed owner's lease once it
    /// expires). Default 0: `AlreadyOwned` at once.
    pub lease_wait: Duration,
    /// How long the flusher lets commits gather before writing them. Default 5 ms.
    pub flush_interval: Duration,
    /// Queued keys that trigger a flush at once, without waiting for `flush_interval`.
    /// Default 2,048.
    pub flush_batch_keys: usize,
    /// The most keys (after coalescing) waiting to be written, in the queue and in the flush
    /// under way. A commit that would go beyond waits for room (backpressure) and fails with
    /// [`AuthError::Unhealthy`] once the store is unhealthy. Default 65,536.
    pub queue_capacity: usize,
    /// Most rows per multi-row statement; a flush sends as many statements as it needs, all in
    /// its one transaction, pipelined (the server executes one while the next is sent).
    /// Default 1,024.
    pub statement_rows: usize,
    /// How long database rounds may go without success (a round that hangs counts from its
    /// start) before the store reports unhealthy and `commit`/`flush` return
    /// [`AuthError::Unhealthy`]. Independently of it, writes are refused once the lease may
    /// have expired. Default (`None`): `lease_ttl * 2 / 3` (20 s).
    pub unhealthy_after: Option<Duration>,
    /// The first retry delay after a failed round; it doubles up to `retry_max`, with jitter.
    /// Default 50 ms.
    pub retry_initial: Duration,
    /// The longest retry delay. Default 2 s.
    pub retry_max: Duration,
    /// The longest a single database round (getting a connection included) may take before it
    /// is abandoned as failed and its connection discarded; also the server's
    /// `statement_timeout` for the store's statements. Default (`None`): `lease_ttl / 3` (10 s).
    pub operation_timeout: Option<Duration>,
    /// The server's `lock_timeout` for the store's statements: how long one waits for a row
    /// lock (a takeover attempt waiting for a flush that holds the lease row) before failing
    /// and retrying. Default (`None`): `lease_ttl / 6` (5 s).
    pub lock_timeout: Option<Duration>,
    /// The server's `idle_in_transaction_session_timeout` for the store's transactions: how
    /// long the server keeps a transaction of a client that went silent (a dead node, a cut
    /// network) — and with it the lease row's lock — before it ends the session. Default
    /// (`None`): `lease_ttl / 3` (10 s).
    pub idle_in_transaction_timeout: Option<Duration>,
    /// How long `open` may take beyond `lease_wait`: getting a connection, migrating or
    /// checking the schema, the last lease attempt and loading every key. Default (`None`):
    /// `lease_ttl * 2` (60 s).
    pub open_timeout: Option<Duration>,
    /// Whether `open` applies pending schema migrations. Default `true`; when `false`, a
    /// schema below the latest version is [`AuthError::UnsupportedVersion`].
    pub auto_migrate: bool,
}

/// The time bounds a store works with: [`PostgresStoreOptions`]' explicit values, and the
/// defaults derived from `lease_ttl` for the others (from [`PostgresStoreOptions::timings`]).
///
/// | bound | default | with the default 30 s lease |
/// |---|---|---|
/// | `lease_renew_interval` | `lease_ttl / 3` | 10 s |
/// | `lease_safety_margin` | `lease_ttl / 10` | 3 s |
/// | `unhealthy_after` | `lease_ttl * 2 / 3` | 20 s |
/// | `operation_timeout` (and `statement_timeout`) | `lease_ttl / 3` | 10 s |
/// | `lock_timeout` | `lease_ttl / 6` | 5 s |
/// | `idle_in_transaction_timeout` | `lease_ttl / 3` | 10 s |
/// | `open_timeout` | `lease_ttl * 2` | 60 s |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How often an idle store renews its lease.
    pub lease_renew_interval: Duration,
    /// How much earlier than the server the store counts its lease as expired.
    pub lease_safety_margin: Duration,
    /// How long rounds may go without success before the store is unhealthy.
    pub unhealthy_after: Duration,
    /// The bound on one database round, and the server's `statement_timeout`.
    pub operation_timeout: Duration,
    /// The server's `lock_timeout`.
    pub lock_timeout: Duration,
    /// The server's `idle_in_transaction_session_timeout`.
    pub idle_in_transaction_timeout: Duration,
    /// How long `open` may take beyond `lease_wait`.
    pub open_timeout: Duration,
}

impl Timings {
    /// How long a lease stays surely valid, counted from when the renewal that confirmed it
    /// was sent: `lease_ttl - lease_safety_margin`.
    pub fn lease_valid_for(&self) -> Duration {
        self.lease_ttl.saturating_sub(self.lease_safety_margin)
    }
}

impl PostgresStoreOptions {
    /// Options for instance `instance_id`, every other field at its default.
    pub fn new(instance_id: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            owner_id: default_owner_id(),
            schema: SchemaName::default(),
            takeover: Takeover::Never,
            lease_ttl: Duration::from_secs(30),
            lease_renew_interval: None,
            lease_safety_margin: None,
            lease_wait: Duration::ZERO,
            flush_interval: Duration::from_millis(5),
            flush_batch_keys: 2048,
            queue_capacity: 65_536,
            statement_rows: 1024,
            unhealthy_after: None,
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            operation_timeout: None,
            lock_timeout: None,
            idle_in_transaction_timeout: None,
            open_timeout: None,
            auto_migrate: true,
        }
    }

    /// Sets [`owner_id`](Self::owner_id).
    pub fn owner_id(mut self, owner_id: impl Into<String>) -> Self {
        self.owner_id = owner_id.into();
        self
    }

    /// Sets [`schema`](Self::schema).
    pub fn schema(mut self, schema: SchemaName) -> Self {
        self.schema = schema;
        self
    }

    /// Sets [`takeover`](Self::takeover).
    pub fn takeover(mut self, takeover: Takeover) -> Self {
        self.takeover = takeover;
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets [`lease_renew_interval`](Self::lease_renew_interval).
    pub fn lease_renew_interval(mut self, interval: Duration) -> Self {
        self.lease_renew_interval = Some(interval);
        self
    }

    /// Sets [`lease_safety_margin`](Self::lease_safety_margin).
    pub fn lease_safety_margin(mut self, margin: Duration) -> Self {
        self.lease_safety_margin = Some(margin);
        self
    }

    /// Sets [`lease_wait`](Self::lease_wait).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`flush_batch_keys`](Self::flush_batch_keys).
    pub fn flush_batch_keys(mut self, keys: usize) -> Self {
        self.flush_batch_keys = keys;
        self
    }

    /// Sets [`queue_capacity`](Self::queue_capacity).
    pub fn queue_capacity(mut self, keys: usize) -> Self {
        self.queue_capacity = keys;
        self
    }

    /// Sets [`statement_rows`](Self::statement_rows).
    pub fn statement_rows(mut self, rows: usize) -> Self {
        self.statement_rows = rows;
        self
    }

    /// Sets [`unhealthy_after`](Self::unhealthy_after).
    pub fn unhealthy_after(mut self, after: Duration) -> Self {
        self.unhealthy_after = Some(after);
        self
    }

    /// Sets [`retry_initial`](Self::retry_initial) and [`retry_max`](Self::retry_max).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max;
        self
    }

    /// Sets [`operation_timeout`](Self::operation_timeout).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Sets [`lock_timeout`](Self::lock_timeout).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Sets [`idle_in_transaction_timeout`](Self::idle_in_transaction_timeout).
    pub fn idle_in_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.idle_in_transaction_timeout = Some(timeout);
        self
    }

    /// Sets [`open_timeout`](Self::open_timeout).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = Some(timeout);
        self
    }

    /// The time bounds in effect: the explicit values, and the defaults derived from
    /// [`lease_ttl`](Self::lease_ttl) for the others (see [`Timings`]).
    pub fn timings(&self) -> Timings {
        let ttl = self.lease_ttl;
        Timings {
            lease_ttl: ttl,
            lease_renew_interval: self.lease_renew_interval.unwrap_or(ttl / 3),
            lease_safety_margin: self.lease_safety_margin.unwrap_or(ttl / 10),
            unhealthy_after: self.unhealthy_after.unwrap_or(ttl.saturating_mul(2) / 3),
            operation_timeout: self.operation_timeout.unwrap_or(ttl / 3),
            lock_timeout: self.lock_timeout.unwrap_or(ttl / 6),
            idle_in_transaction_timeout: self.idle_in_transaction_timeout.unwrap_or(ttl / 3),
            open_timeout: self.open_timeout.unwrap_or(ttl.saturating_mul(2)),
        }
    }

    /// Sets [`auto_migrate`](Self::auto_migrate).
    pub fn auto_migrate(mut self, yes: bool) -> Self {
        self.auto_migrate = yes;
        self
    }

    /// Checks the options; `open` calls this first.
    pub fn validate(&self) -> Result<()> {
        check_name("instance id", &self.instance_id)?;
        check_name("owner id", &self.owner_id)?;
        for (name, value) in [
            ("flush_batch_keys", self.flush_batch_keys),
            ("queue_capacity", self.queue_capacity),
            ("statement_rows", self.statement_rows),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be more than zero"));
            }
        }
        if self.retry_initial.is_zero() || self.retry_max.is_zero() {
            return Err(invalid("retry_backoff", "must be more than zero"));
        }
        self.timings().validate()
    }
}

impl Timings {
    /// Every bound is positive; those sent to the server fit its settings (milliseconds in a
    /// 32-bit integer); the lease stays valid between two idle renewals.
    fn validate(&self) -> Result<()> {
        let server = [
            ("operation_timeout", self.operation_timeout),
            ("lock_timeout", self.lock_timeout),
            (
                "idle_in_transaction_timeout",
                self.idle_in_transaction_timeout,
            ),
        ];
        let local = [
            ("lease_ttl", self.lease_ttl),
            ("lease_renew_interval", self.lease_renew_interval),
            ("unhealthy_after", self.unhealthy_after),
            ("open_timeout", self.open_timeout),
        ];
        for (name, value) in server.iter().chain(&local) {
            if value.is_zero() {
                return Err(invalid(name, "must be more than zero"));
            }
        }
        for (name, value) in server {
            if value.as_millis() > i32::MAX as u128 {
                return Err(invalid(name, "is too long (at most 24 days)"));
            }
        }
        if self.lease_ttl.as_millis() > i32::MAX as u128 {
            return Err(invalid("lease_ttl", "is too long (at most 24 days)"));
        }
        if self.lease_safety_margin >= self.lease_ttl {
            return Err(invalid(
                "lease_safety_margin",
                "must be shorter than lease_ttl",
            ));
        }
        if self.lease_renew_interval >= self.lease_valid_for() {
            return Err(invalid(
                "lease_renew_interval",
                "must be shorter than lease_ttl - lease_safety_margin, or an idle store's \
                 lease would lapse between renewals",
            ));
        }
        Ok(())
    }
}

fn invalid(option: &str, reason: &str) -> AuthError {
    AuthError::invalid(format!("option {option}"), reason)
}

fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            format!("{what} {value:?}"),
            "must be 1..=256 bytes without control characters",
        ));
    }
    Ok(())
}

fn default_owner_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown-host".to_owned());
    let host: String = host.chars().filter(|c| !c.is_control()).take(128).collect();
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_owner_ids_unique() {
        let a = PostgresStoreOptions::new("acc");
        let b = PostgresStoreOptions::new("acc");
        assert!(a.validate().is_ok());
        assert_ne!(a.owner_id, b.owner_id);
        let t = a.timings();
        assert_eq!(t.lease_renew_interval, Duration::from_secs(10));
        assert_eq!(t.unhealthy_after, Duration::from_secs(20));
        assert_eq!(t.operation_timeout, Duration::from_secs(10));
        assert_eq!(t.lease_valid_for(), Duration::from_secs(27));
        assert!(t.idle_in_transaction_timeout < t.lease_ttl);
        assert!(t.lock_timeout < t.lease_ttl);
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(PostgresStoreOptions::new("").validate().is_err());
        assert!(PostgresStoreOptions::new("a\nb").validate().is_err());
        assert!(
            PostgresStoreOptions::new("a")
                .queue_capacity(0)
                .validate()
                .is_err()
        );
        assert!(
            PostgresStoreOptions::new("a")
                .lease_ttl(Duration::ZERO)
                .validate()
                .is_err()
        );
        // A lease that would lapse between idle renewals, or that is never valid.
        let short = PostgresStoreOptions::new("a").lease_ttl(Duration::from_secs(1));
        assert!(short.clone().validate().is_ok());
        assert!(
            short
                .clone()
                .lease_renew_interval(Duration::from_millis(900))
                .validate()
                .is_err()
        );
        assert!(
            short
                .clone()
                .lease_safety_margin(Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(short.lock_timeout(Duration::ZERO).validate().is_err());
    }

    #[test]
    fn bounds_follow_the_lease_unless_set() {
        let t = PostgresStoreOptions::new("a")
            .lease_ttl(Duration::from_secs(6))
            .operation_timeout(Duration::from_secs(4))
            .timings();
        assert_eq!(t.lease_renew_interval, Duration::from_secs(2));
        assert_eq!(t.lease_safety_margin, Duration::from_millis(600));
        assert_eq!(t.unhealthy_after, Duration::from_secs(4));
        assert_eq!(t.operation_timeout, Duration::from_secs(4));
        assert_eq!(t.lock_timeout, Duration::from_secs(1));
        assert_eq!(t.idle_in_transaction_timeout, Duration::from_secs(2));
        assert_eq!(t.open_timeout, Duration::from_secs(12));
    }
}
