//! [`DirLock`]: exclusive ownership of a store folder, for file-based backends (the built-in
//! native and compat stores, and third-party ones). An OS file lock (`flock`) on a lock file in
//! the folder, which also holds the owner's pid so a second opener can say who holds it. The
//! kernel drops the lock when the process dies, so a crash never leaves a stale lock.
//!
//! The lock file is opened without following a symbolic link, and must be a regular file with
//! no other hard link: a link planted under its name never gets its target overwritten.
//!
//! A store dropped inside an async runtime must not wait there for its writer thread, so its
//! lock may outlive the handle by the time the writer needs to finish. The store then calls
//! [`DirLock::notice`]'s [`ReleaseNotice::releasing`], and an opener in this process that finds
//! the lock held waits (on its blocking thread) for that release instead of failing.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{AuthError, Result};

/// How long an opener waits for a lock this process is releasing.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// The state of a lock held in this process, shared with its [`ReleaseNotice`]s.
#[derive(Debug, Default)]
struct Held {
    /// (releasing, released)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

/// A lock file's (device, inode).
type FileKey = (u64, u64);

/// Locks held in this process, by their lock file.
static HELD: Mutex<Option<HashMap<FileKey, Arc<Held>>>> = Mutex::new(None);

fn held_entry(key: (u64, u64)) -> Option<Arc<Held>> {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|map| map.get(&key).cloned())
}

/// Held while a store is open for writing; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    key: (u64, u64),
    held: Arc<Held>,
}

/// Lets a store say that its lock is about to be released (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct ReleaseNotice(Arc<Held>);

impl ReleaseNotice {
    /// Says the lock will be released shortly without anyone having to ask (its holder is
    /// finishing queued work): openers in this process wait for it instead of failing.
    pub fn releasing(&self) {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner()).0 = true;
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Unlocked before waiters are told, so the one woken finds the lock free.
        let _ = self.file.unlock();
        // Only this lock's own entry goes: once unlocked, a new holder in this process may
        // have taken the lock and registered its entry under the same key already, and
        // removing that one would leave its openers unable to wait for its release.
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = held.as_mut()
            && map
                .get(&self.key)
                .is_some_and(|entry| Arc::ptr_eq(entry, &self.held))
        {
            map.remove(&self.key);
        }
        drop(held);
        self.held.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.held.changed.notify_all();
    }
}

impl DirLock {
    /// Takes the lock file `file_name` of `dir` (created 0600 when missing), or fails with
    /// [`AuthError::AlreadyOwned`] naming the holder's pid when another handle (in this process
    /// or another) holds it. A lock file that is a symbolic link, not a regular file, or has
    /// other hard links is refused with [`AuthError::Io`] naming it, and left untouched.
    ///
    /// When the holder is a store of this process that is being released (see
    /// [`ReleaseNotice::releasing`]), waits for the release first (blocking the calling thread:
    /// call it from a blocking one).
    pub fn acquire(dir: &Path, file_name: &str) -> Result<Self> {
        let path = dir.join(file_name);
        let mut file = open_lock_file(&path)?;
        let meta = file.metadata().map_err(|e| AuthError::io(&path, e))?;
        let key = (meta.dev(), meta.ino());
        let mut locked = file.try_lock();
        if matches!(locked, Err(std::fs::TryLockError::WouldBlock)) {
            // No entry: the holder is another process, or released the lock just now.
            let retry = held_entry(key).is_none_or(|held| wait_for_release(&held));
            if retry {
                locked = file.try_lock();
            }
        }
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse::<u32>().ok())
                    .map(|pid| format!("pid {pid}"));
                return Err(AuthError::AlreadyOwned {
                    resource: dir.display().to_string(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(AuthError::io(&path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
            .map_err(|e| AuthError::io(&path, e))?;
        let held = Arc::new(Held::default());
        HELD.lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(key, held.clone());
        Ok(Self { file, key, held })
    }

    /// A handle for saying the lock is being released.
    pub fn notice(&self) -> ReleaseNotice {
        ReleaseNotice(self.held.clone())
    }
}

/// Waits (up to [`RELEASE_WAIT`]) for a lock this process is releasing; false at once when its
/// holder is not releasing it.
fn wait_for_release(held: &Held) -> bool {
    let deadline = Instant::now() + RELEASE_WAIT;
    let mut state = held.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let (releasing, released) = *state;
        if released {
            return true;
        }
        let now = Instant::now();
        if !releasing || now >= deadline {
            return false;
        }
        state = held
            .changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Opens (creating it 0600) the lock file at `path` without following a symbolic link, and
/// checks that it is a regular file of its own before anything is written to it.
fn open_lock_file(path: &Path) -> Result<File> {
    let refuse = |why: &str| {
        AuthError::io(
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the lock file {why}; refusing to use it (remove it, then open again)"),
            ),
        )
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse("is a symbolic link"),
            _ => AuthError::io(path, e),
        })?;
    let meta = file.metadata().map_err(|e| AuthError::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse("is not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(refuse("has other hard links"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_owns_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "lock").unwrap();
        match DirLock::acquire(dir.path(), "lock") {
            Err(AuthError::AlreadyOwned { holder, .. }) => {
                assert_eq!(holder, Some(format!("pid {}", std::process::id())));
            }
            other => panic!("expected AlreadyOwned, got {other:?}"),
        }
        drop(first);
        DirLock::acquire(dir.path(), "lock").unwrap();
    }

    #[test]
    fn an_opener_waits_for_a_lock_this_process_is_releasing() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "lock").unwrap();
        first.notice().releasing();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        let started = Instant::now();
        let second = DirLock::acquire(dir.path(), "lock").expect("waits for the release");
        assert!(started.elapsed() >= Duration::from_millis(150));
        holder.join().unwrap();
        drop(second);
        DirLock::acquire(dir.path(), "lock").expect("released again");
    }

    /// A lock dropped late (its holder released asynchronously) must not take the entry of
    /// the holder that took the lock once it was unlocked: that holder's own release would
    /// then go unseen, and an opener in this process would fail with `AlreadyOwned` naming
    /// this very process instead of waiting (the compat fault-injection flake).
    #[test]
    fn a_late_drop_keeps_the_next_holders_release_visible() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "lock").unwrap();
        // The moment inside `first`'s drop between its unlock and its entry's removal.
        first.file.unlock().unwrap();
        let second = DirLock::acquire(dir.path(), "lock").expect("the lock is free");
        drop(first);
        second.notice().releasing();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(second);
        });
        let third = DirLock::acquire(dir.path(), "lock");
        holder.join().unwrap();
        third.expect("waits for the second holder's release");
    }

    /// Taking the lock of `dir` fails with an error saying `what`, and `target` keeps its bytes.
    fn assert_refused_and_untouched(dir: &Path, target: &Path, what: &str) {
        let before = std::fs::read(target).unwrap();
        let err = DirLock::acquire(dir, "lock").expect_err("a planted lock file must be refused");
        let text = err.to_string();
        assert!(matches!(err, AuthError::Io { .. }), "{text}");
        assert!(text.contains(what) && text.contains("lock"), "{text}");
        assert_eq!(
            std::fs::read(target).unwrap(),
            before,
            "the target was changed"
        );
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"do not truncate me").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("lock")).unwrap();
        assert_refused_and_untouched(dir.path(), &target, "symbolic link");
        // A dangling link is refused too, and nothing is created where it points.
        let dangling = dir.path().join("nowhere");
        std::fs::remove_file(dir.path().join("lock")).unwrap();
        std::os::unix::fs::symlink(&dangling, dir.path().join("lock")).unwrap();
        assert!(DirLock::acquire(dir.path(), "lock").is_err());
        assert!(!dangling.exists());
    }

    #[test]
    fn a_hard_linked_or_special_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"do not truncate me").unwrap();
        std::fs::hard_link(&target, dir.path().join("lock")).unwrap();
        assert_refused_and_untouched(dir.path(), &target, "hard links");
        std::fs::remove_file(dir.path().join("lock")).unwrap();
        std::fs::create_dir(dir.path().join("lock")).unwrap();
        assert!(DirLock::acquire(dir.path(), "lock").is_err());
    }
}
