//! Running blocking file work (a write, an `fdatasync`) from async code.
//!
//! On tokio's multi-thread runtime the work runs on the calling thread inside
//! [`tokio::task::block_in_place`]: the worker's other tasks move to another thread, and the
//! caller pays no hop to a pool thread and back (what a single commit's latency is made of on a
//! fast disk). On a current-thread runtime, where that is impossible, it runs on the blocking
//! pool ([`tokio::task::spawn_blocking`]); outside any runtime, inline.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};
use wa_auth::dir_lock::ReleaseNotice;
use wa_auth::{AuthError, Result};

/// Runs `work` without blocking a tokio worker (see the module docs). `backend` names the store
/// in the error returned when the work panicked on the blocking pool.
pub async fn run<T: Send + 'static>(
    backend: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(work))
        }
        Ok(handle) => pool(backend, handle.spawn_blocking(work)).await,
        Err(_) => Ok(work()),
    }
}

/// Runs `work` on tokio's blocking pool when inside a runtime (for long work such as opening a
/// store, which should not hold a worker even in `block_in_place`), else inline.
pub async fn offload<T: Send + 'static>(
    backend: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match Handle::try_current() {
        Ok(handle) => pool(backend, handle.spawn_blocking(work)).await?,
        Err(_) => work(),
    }
}

/// For a store's `Drop`: runs `close` (the store's blocking closing work: queued commits, final
/// sync, releasing the folder lock) without blocking a runtime thread. Inside a tokio runtime
/// it moves to the blocking pool, after `notice` tells openers in this process to wait for the
/// lock's release instead of failing; outside any runtime it runs here and `drop` waits.
pub fn close_dropped(notice: Option<&ReleaseNotice>, close: impl FnOnce() + Send + 'static) {
    match Handle::try_current() {
        Ok(handle) => {
            if let Some(notice) = notice {
                notice.releasing();
            }
            drop(handle.spawn_blocking(close));
        }
        Err(_) => close(),
    }
}

async fn pool<T>(
    backend: &'static str,
    task: impl Future<Output = std::result::Result<T, tokio::task::JoinError>>,
) -> Result<T> {
    task.await.map_err(|e| AuthError::backend(backend, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_every_context() {
        let outside = futures_lite_block_on(run("test", || 1));
        assert_eq!(outside.unwrap(), 1);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(run("test", || 2)).unwrap(), 2);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let on_worker = multi.block_on(async { tokio::spawn(run("test", || 3)).await.unwrap() });
        assert_eq!(on_worker.unwrap(), 3);
        assert_eq!(multi.block_on(offload("test", || Ok(4))).unwrap(), 4);
    }

    #[test]
    fn a_dropped_store_closes_on_the_pool_inside_a_runtime_and_here_outside() {
        use std::sync::mpsc;
        let (tx, rx) = mpsc::channel();
        let here = std::thread::current().id();
        let sender = tx.clone();
        close_dropped(None, move || {
            sender.send(std::thread::current().id()).unwrap()
        });
        assert_eq!(
            rx.recv().unwrap(),
            here,
            "outside a runtime: on this thread"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lock = wa_auth::dir_lock::DirLock::acquire(dir.path(), "lock").unwrap();
        let notice = lock.notice();
        runtime.block_on(async {
            let (gate, wait) = mpsc::channel::<()>();
            // Returns at once although the work waits for the gate: not on this thread.
            close_dropped(Some(&notice), move || {
                // Run here instead, this would time out and report this thread.
                let _ = wait.recv_timeout(std::time::Duration::from_secs(10));
                tx.send(std::thread::current().id()).unwrap();
                drop(lock);
            });
            // An opener in this process waits for the release instead of failing.
            let opener = std::thread::spawn({
                let dir = dir.path().to_path_buf();
                move || wa_auth::dir_lock::DirLock::acquire(&dir, "lock").map(drop)
            });
            gate.send(()).unwrap();
            assert_ne!(rx.recv().unwrap(), here, "inside a runtime: on the pool");
            opener
                .join()
                .unwrap()
                .expect("the opener waited for the release");
        });
    }

    /// Polls a future to completion outside any runtime (the futures here never wait).
    fn futures_lite_block_on<F: Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}
