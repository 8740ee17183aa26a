//! Per-key FIFO async locks and canonical lock keys.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use tokio::sync::{Mutex, OwnedMutexGuard};

/// The name of a transaction lock. Transactions on the same key run one after another, in
/// arrival order; transactions on different keys run in parallel.
///
/// Use [`AuthState::lock_key_for`](crate::AuthState::lock_key_for) for a Signal address, so a
/// user known by phone number and by LID maps to one lock.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(String);

impl LockKey {
    /// A lock key with an arbitrary name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The lock that serialises creds updates.
    pub fn creds() -> Self {
        Self::new("creds")
    }

    /// The lock of a group's sender keys.
    pub fn group(group_id: &str) -> Self {
        Self(format!("group:{group_id}"))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockKey({:?})", self.0)
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for LockKey {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for LockKey {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// A held lock; released on drop.
pub(crate) type LockGuard = OwnedMutexGuard<()>;

/// The lock table. Entries live as long as someone holds or waits for them (weak references in
/// the table), and dead entries are purged as the table grows.
#[derive(Default)]
pub(crate) struct KeyLocks {
    table: parking_lot::Mutex<Table>,
}

#[derive(Default)]
struct Table {
    locks: HashMap<LockKey, Weak<Mutex<()>>>,
    purge_at: usize,
}

impl KeyLocks {
    /// Waits for `key` (FIFO: tokio's mutex is fair) and returns its guard.
    pub(crate) async fn acquire(&self, key: &LockKey) -> LockGuard {
        let mutex = {
            let mut table = self.table.lock();
            let existing = table.locks.get(key).and_then(Weak::upgrade);
            match existing {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(Mutex::new(()));
                    table.locks.insert(key.clone(), Arc::downgrade(&mutex));
                    if table.locks.len() > table.purge_at {
                        table.locks.retain(|_, weak| weak.strong_count() > 0);
                        table.purge_at = (table.locks.len() * 2).max(1024);
                    }
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.lock().locks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_is_exclusive_and_fifo() {
        let locks = Arc::new(KeyLocks::default());
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let first = locks.acquire(&LockKey::new("a")).await;
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (locks, order) = (locks.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _guard = locks.acquire(&LockKey::new("a")).await;
                order.lock().push(i);
            }));
            // Let each waiter enqueue before the next one.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            order.lock().is_empty(),
            "nobody may enter while the lock is held"
        );
        // Another key is not blocked.
        let _other = locks.acquire(&LockKey::new("b")).await;
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn dead_entries_are_purged() {
        let locks = KeyLocks::default();
        for i in 0..5000 {
            drop(locks.acquire(&LockKey::new(format!("k{i}"))).await);
        }
        assert!(
            locks.len() < 3000,
            "table kept {} dead entries",
            locks.len()
        );
    }
}
