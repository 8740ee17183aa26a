//! Helpers for the tests that SIGKILL a child process at random moments: the one kill loop
//! step ([`run_and_kill`], or [`run_and_kill_when_ready`] for a child that first reports it is
//! ready) every crash test uses.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The seed of a crash test's random kill times: `$WA_CRASH_SEED`, or `default`. Tests print
/// it on failure so a run can be replayed.
pub fn seed(default: u64) -> u64 {
    std::env::var("WA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A multi-threaded tokio runtime for the parent side of a crash test (2 workers, like CI).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Starts `command` (stdin closed, stdout and stderr piped), lets the child work for `delay`,
/// SIGKILLs it and returns the lines it printed on stdout. Panics with the child's stderr when
/// it exited by itself before the kill (`what` names the kill in that message): a crash test
/// whose child stops on its own proves nothing.
pub fn run_and_kill(command: Command, delay: Duration, what: &str) -> Vec<String> {
    Victim::spawn(command).kill_after(delay, what)
}

/// [`run_and_kill`] for a child that prints `ready` on a line of its own once it is set up
/// (opened its store, say): waits up to `timeout` for that line, then lets the child work for
/// `delay`, SIGKILLs it and returns the lines it printed on stdout after `ready`. Panics with
/// the child's stderr when the line does not come in time (the child is killed first) or the
/// child exits by itself, before or after it.
pub fn run_and_kill_when_ready(
    command: Command,
    ready: &str,
    timeout: Duration,
    delay: Duration,
    what: &str,
) -> Vec<String> {
    let mut victim = Victim::spawn(command);
    victim.wait_for(ready, timeout, what);
    victim.kill_after(delay, what)
}

/// A crash test's child, its stdout read line by line and its stderr kept for messages (both
/// drained by threads, so a chatty child never blocks on a full pipe).
struct Victim {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Victim {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the crash test's child");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("the child's stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            err.read_to_string(&mut text).ok();
            text
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Waits for the line `ready`, dropping the lines before it.
    fn wait_for(&mut self, ready: &str, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == ready => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    let stderr = self.stderr();
                    panic!(
                        "the child did not print {ready:?} within {timeout:?} (before {what}); its stderr:\n{stderr}"
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait for the child");
                    let stderr = self.stderr();
                    panic!(
                        "the child exited ({status}) before printing {ready:?} (before {what}); its stderr:\n{stderr}"
                    );
                }
            }
        }
    }

    /// Lets the child work for `delay`, SIGKILLs it, returns the lines it printed since.
    fn kill_after(mut self, delay: Duration, what: &str) -> Vec<String> {
        std::thread::sleep(delay);
        if let Ok(Some(status)) = self.child.try_wait() {
            let stderr = self.stderr();
            panic!("the child exited by itself ({status}) before {what}:\n{stderr}");
        }
        self.kill();
        // The reader ends at the end of the killed child's stdout.
        self.lines.iter().collect()
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the child");
        self.child.wait().expect("wait for the killed child");
    }

    /// What the child wrote on stderr (it has ended, or was killed).
    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}
