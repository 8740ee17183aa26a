//! Helpers for the tests that SIGKILL a child process at random moments.

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
pub fn run_and_kill(
    mut command: std::process::Command,
    delay: std::time::Duration,
    what: &str,
) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the crash test's child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    std::thread::sleep(delay);
    if let Ok(Some(status)) = child.try_wait() {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut stderr).ok();
        }
        panic!("the child exited by itself ({status}) before {what}:\n{stderr}");
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("wait for the killed child");
    reader.join().expect("the child's stdout reader")
}
