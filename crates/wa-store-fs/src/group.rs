//! Leader/follower group commit on the committers' own threads.
//!
//! A committer prepares its item (encodes it) first, then joins the open group. When no group
//! is being written, the committer that finds the queue free becomes the leader: it takes the
//! oldest group (its own and every item queued behind it), writes and syncs it through the
//! [`GroupWriter`] once for all of them, publishes the group's outcome and wakes the followers.
//! While it syncs, new commits gather in the next group, whose first waiter to wake leads it.
//! This is the write path of RocksDB and of PostgreSQL's WAL: a lone committer pays one write
//! and one sync and no hop to another thread; N concurrent committers share a sync.
//!
//! Nothing is allocated per commit beyond the item itself: a group's outcome slot is shared
//! by its members, and waiting uses a condition variable (blocking callers) or a
//! [`tokio::sync::Notify`] (async callers). The leader's write runs through
//! [`crate::blocking::run`], so a tokio worker is never blocked by a sync.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;
use wa_auth::{AuthError, Result};

/// What a [`GroupCommit`] writes groups with.
pub trait GroupWriter: Send + Sync + 'static {
    /// One committer's prepared (encoded) work.
    type Item: Send + 'static;
    /// The backend's name, for errors.
    const BACKEND: &'static str;
    /// Most items in one group.
    const MAX_ITEMS: usize;
    /// A group stops taking items once it weighs this much (see [`GroupWriter::weight`]).
    const MAX_WEIGHT: usize;

    /// The item's weight (its size in bytes, say) for [`GroupWriter::MAX_WEIGHT`].
    fn weight(item: &Self::Item) -> usize;

    /// Writes a group, all or nothing, and makes it as durable as the store promises. Called
    /// by one leader at a time, in the order the groups formed. On failure every member of
    /// the group returns a clone of the same error.
    fn write_group(&self, items: Vec<Self::Item>) -> Result<()>;
}

/// Leader/follower group commit over a [`GroupWriter`] (see the module docs).
pub struct GroupCommit<W: GroupWriter> {
    writer: W,
    queue: Mutex<Queue<W>>,
    /// Wakes blocking waiters when a group is done.
    cond: Condvar,
    /// Wakes async waiters when a group is done.
    notify: Notify,
}

enum Outcome {
    Done,
    Failed(AuthError),
    /// The writer panicked (or its blocking task was cancelled) before finishing the group.
    Abandoned,
}

/// A group's outcome, shared by its members.
struct Slot {
    outcome: OnceLock<Outcome>,
}

struct Group<W: GroupWriter> {
    items: Vec<W::Item>,
    weight: usize,
    slot: Arc<Slot>,
}

struct Queue<W: GroupWriter> {
    /// Groups not yet taken by a leader, oldest first; only the last one takes new items.
    groups: VecDeque<Group<W>>,
    /// A leader is writing a group.
    leading: bool,
    closed: bool,
}

impl<W: GroupWriter> Queue<W> {
    /// Takes the oldest group to lead it, when no one leads.
    fn take_lead(&mut self) -> Option<Group<W>> {
        if self.leading {
            return None;
        }
        let group = self.groups.pop_front()?;
        self.leading = true;
        Some(group)
    }
}

/// A group being led. Dropping it unfinished (a panic, a cancelled blocking task) marks the
/// group abandoned and frees the queue for the next leader.
struct Lead<W: GroupWriter> {
    commit: Arc<GroupCommit<W>>,
    group: Option<Group<W>>,
    slot: Arc<Slot>,
}

impl<W: GroupWriter> Lead<W> {
    fn new(commit: &Arc<GroupCommit<W>>, group: Group<W>) -> Self {
        Self {
            commit: commit.clone(),
            slot: group.slot.clone(),
            group: Some(group),
        }
    }

    fn run(mut self) {
        if let Some(group) = self.group.take() {
            let outcome = match self.commit.writer.write_group(group.items) {
                Ok(()) => Outcome::Done,
                Err(error) => Outcome::Failed(error),
            };
            let _ = self.slot.outcome.set(outcome);
        }
    }
}

impl<W: GroupWriter> Drop for Lead<W> {
    fn drop(&mut self) {
        let _ = self.slot.outcome.set(Outcome::Abandoned);
        self.commit.queue.lock().leading = false;
        self.commit.cond.notify_all();
        self.commit.notify.notify_waiters();
    }
}

impl<W: GroupWriter> GroupCommit<W> {
    /// A group commit writing through `writer`.
    pub fn new(writer: W) -> Self {
        Self {
            writer,
            queue: Mutex::new(Queue {
                groups: VecDeque::new(),
                leading: false,
                closed: false,
            }),
            cond: Condvar::new(),
            notify: Notify::new(),
        }
    }

    /// The writer.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// Commits `item` as part of a group, from async code: returns once its group is written
    /// (or failed). The leader's write never blocks a tokio worker (see [`crate::blocking`]).
    /// A commit whose future is dropped after this was first polled may still be written.
    pub async fn commit(self: &Arc<Self>, item: W::Item) -> Result<()> {
        let slot = self.join(item)?;
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if let Some(result) = self.result(&slot) {
                return result;
            }
            let group = self.queue.lock().take_lead();
            match group {
                Some(group) => {
                    let lead = Lead::new(self, group);
                    // A group whose blocking task panicked or was cancelled is marked
                    // abandoned (by `Lead`'s drop); this commit's own outcome is read above.
                    let _ = crate::blocking::run(W::BACKEND, move || lead.run()).await;
                }
                None => notified.await,
            }
        }
    }

    /// [`GroupCommit::commit`] for blocking code: waits on the calling thread.
    pub fn commit_blocking(self: &Arc<Self>, item: W::Item) -> Result<()> {
        let slot = self.join(item)?;
        let mut queue = self.queue.lock();
        loop {
            if let Some(result) = self.result(&slot) {
                return result;
            }
            if let Some(group) = queue.take_lead() {
                drop(queue);
                Lead::new(self, group).run();
                queue = self.queue.lock();
                continue;
            }
            self.cond.wait(&mut queue);
        }
    }

    /// Refuses further items ([`AuthError::Closed`]), then writes every group already queued
    /// (leading them on this thread when needed) and returns once none is being written.
    pub fn close_blocking(self: &Arc<Self>) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        loop {
            if let Some(group) = queue.take_lead() {
                drop(queue);
                Lead::new(self, group).run();
                queue = self.queue.lock();
                continue;
            }
            if !queue.leading {
                return;
            }
            self.cond.wait(&mut queue);
        }
    }

    /// Whether [`GroupCommit::close_blocking`] was called.
    pub fn is_closed(&self) -> bool {
        self.queue.lock().closed
    }

    /// Runs `work` while no group is being written and none can start (for maintenance that
    /// needs the writer's state still, such as a final sync).
    pub fn exclusive<T>(&self, work: impl FnOnce(&W) -> T) -> T {
        let mut queue = self.queue.lock();
        while queue.leading {
            self.cond.wait(&mut queue);
        }
        work(&self.writer)
    }

    /// Adds `item` to the open group (starting one when the last is full) and returns the
    /// group's slot.
    fn join(&self, item: W::Item) -> Result<Arc<Slot>> {
        let weight = W::weight(&item);
        let mut queue = self.queue.lock();
        if queue.closed {
            return Err(AuthError::Closed);
        }
        let fits = queue.groups.back().is_some_and(|g| {
            g.items.len() < W::MAX_ITEMS && g.weight.saturating_add(weight) <= W::MAX_WEIGHT
        });
        if !fits {
            queue.groups.push_back(Group {
                items: Vec::new(),
                weight: 0,
                slot: Arc::new(Slot {
                    outcome: OnceLock::new(),
                }),
            });
        }
        let group = queue.groups.back_mut().expect("a group was just ensured");
        group.items.push(item);
        group.weight = group.weight.saturating_add(weight);
        Ok(group.slot.clone())
    }

    fn result(&self, slot: &Slot) -> Option<Result<()>> {
        Some(match slot.outcome.get()? {
            Outcome::Done => Ok(()),
            Outcome::Failed(error) => Err(error.clone()),
            Outcome::Abandoned => Err(AuthError::backend(
                W::BACKEND,
                "the commit's group was abandoned by its writer (a panic); reopen the store to learn whether it was written",
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Records the groups it writes; fails items equal to 13 (the whole group).
    #[derive(Default)]
    struct Recorder {
        groups: Mutex<Vec<Vec<u32>>>,
        writing: AtomicUsize,
    }

    impl GroupWriter for Recorder {
        type Item = u32;
        const BACKEND: &'static str = "test";
        const MAX_ITEMS: usize = 4;
        const MAX_WEIGHT: usize = 100;

        fn weight(item: &u32) -> usize {
            *item as usize
        }

        fn write_group(&self, items: Vec<u32>) -> Result<()> {
            assert_eq!(
                self.writing.fetch_add(1, Ordering::SeqCst),
                0,
                "one leader at a time"
            );
            std::thread::sleep(Duration::from_millis(2));
            self.writing.fetch_sub(1, Ordering::SeqCst);
            let failed = items.contains(&13);
            self.groups.lock().push(items);
            if failed {
                Err(AuthError::Unhealthy {
                    backend: "test",
                    reason: "unlucky".into(),
                })
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_committers_share_groups_and_each_item_is_written_once() {
        let commit = Arc::new(GroupCommit::new(Recorder::default()));
        let tasks: Vec<_> = (0..40u32)
            .map(|i| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.commit(i + 20).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let groups = commit.writer().groups.lock().clone();
        let mut all: Vec<u32> = groups.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (20..60).collect::<Vec<_>>());
        assert!(groups.len() < 40, "no group was shared: {groups:?}");
        for group in &groups {
            assert!(group.len() <= Recorder::MAX_ITEMS, "{group:?}");
            let weight: u32 = group.iter().sum();
            assert!(
                weight as usize <= Recorder::MAX_WEIGHT || group.len() == 1,
                "{group:?}"
            );
        }
    }

    #[test]
    fn a_failed_group_fails_its_members_only_and_close_refuses_new_items() {
        let commit = Arc::new(GroupCommit::new(Recorder::default()));
        commit.commit_blocking(1).unwrap();
        assert!(matches!(
            commit.commit_blocking(13),
            Err(AuthError::Unhealthy { reason, .. }) if reason == "unlucky"
        ));
        commit.commit_blocking(2).unwrap();
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                let commit = commit.clone();
                std::thread::spawn(move || commit.commit_blocking(30 + i))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        commit.close_blocking();
        assert!(matches!(commit.commit_blocking(3), Err(AuthError::Closed)));
        let written: usize = commit.writer().groups.lock().iter().map(Vec::len).sum();
        assert_eq!(written, 11);
    }

    #[test]
    fn current_thread_runtimes_and_plain_threads_commit_too() {
        let commit = Arc::new(GroupCommit::new(Recorder::default()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let a = commit.commit(5);
            let b = commit.commit(6);
            let (a, b) = tokio::join!(a, b);
            a.unwrap();
            b.unwrap();
        });
        assert_eq!(commit.writer().groups.lock().concat(), vec![5, 6]);
    }
}
