//! [`NativeStoreOptions`]: how a store is opened, with documented defaults.

/// When a commit counts as done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `commit` returns once the batch is on stable storage (`fdatasync` of the log; concurrent
    /// commits share one). Survives process crashes, kernel panics and power loss. The default.
    #[default]
    Full,
    /// `commit` returns once the batch is written to the operating system, without syncing;
    /// [`Persistence::flush`](wa_auth::Persistence::flush) syncs. Survives a process crash, not
    /// an operating-system crash or power loss: after one, recent commits may be lost, and a log
    /// whose unsynced part reached the disk out of order is reported as corrupt. For tests, and
    /// for throwaway data.
    NoSync,
}

/// Options of a [`NativeStore`](crate::NativeStore). Build them from the defaults:
///
/// ```
/// use wa_store_native::{Durability, NativeStoreOptions};
///
/// let options = NativeStoreOptions::default()
///     .durability(Durability::Full)
///     .compact_min_log_bytes(16 << 20);
/// assert!(options.create);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NativeStoreOptions {
    /// When a commit counts as done (default [`Durability::Full`]).
    pub durability: Durability,
    /// The log is compacted into a new snapshot once it is larger than both this many bytes
    /// and [`compact_log_ratio`](Self::compact_log_ratio) times the snapshot (default 8 MiB).
    pub compact_min_log_bytes: u64,
    /// See [`compact_min_log_bytes`](Self::compact_min_log_bytes) (default 1.0: compact once
    /// the log is as large as the snapshot, which bounds the files to about twice the live
    /// data and the write amplification to about two).
    pub compact_log_ratio: f64,
    /// Create the directory and an empty store when there is none (default `true`). With
    /// `false`, opening a directory that holds no store is [`AuthError::NotFound`](wa_auth::AuthError::NotFound).
    pub create: bool,
    /// Set by [`NativeReader`](crate::NativeReader), the read-only view.
    pub(crate) read_only: bool,
}

impl Default for NativeStoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            compact_min_log_bytes: 8 << 20,
            compact_log_ratio: 1.0,
            create: true,
            read_only: false,
        }
    }
}

impl NativeStoreOptions {
    /// Sets [`durability`](Self::durability).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`compact_min_log_bytes`](Self::compact_min_log_bytes).
    pub fn compact_min_log_bytes(mut self, bytes: u64) -> Self {
        self.compact_min_log_bytes = bytes;
        self
    }

    /// Sets [`compact_log_ratio`](Self::compact_log_ratio).
    pub fn compact_log_ratio(mut self, ratio: f64) -> Self {
        self.compact_log_ratio = ratio;
        self
    }

    /// Sets [`create`](Self::create).
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// The log size past which a log with a snapshot of `snapshot_len` bytes is compacted.
    pub(crate) fn compaction_threshold(&self, snapshot_len: u64) -> u64 {
        let ratio = if self.compact_log_ratio.is_finite() && self.compact_log_ratio > 0.0 {
            self.compact_log_ratio
        } else {
            1.0
        };
        self.compact_min_log_bytes
            .max((snapshot_len as f64 * ratio) as u64)
    }
}
