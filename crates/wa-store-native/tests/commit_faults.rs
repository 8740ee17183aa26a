//! A commit whose log write or `fdatasync` fails (fault injection, `wa_auth::fault`), then a
//! SIGKILL and a reopen: the batch is there whole or not at all, and what the committer was
//! told holds. `AuthError::Io` means "not applied, never will be"; only
//! `AuthError::CommitUnknown` (the failed write could not be cut off either) leaves it open,
//! and even then the batch is whole or absent.
//!
//! The child process (this binary, re-run with `WA_NATIVE_FAULT_CHILD` set) commits batch A,
//! arms the scenario's faults, commits batch B, tries batch C, prints what it was told and
//! waits to be killed. In the `big` scenarios batch B also holds thousands of sessions, so it
//! is written in parts while it is encoded, and a write can fail after some parts reached the
//! file. Runs with its own `main` (`harness = false`).

#[cfg(debug_assertions)]
fn main() {
    faults::main();
}

/// Fault injection exists only in builds with debug assertions.
#[cfg(not(debug_assertions))]
fn main() {
    println!("commit_faults: skipped (fault injection needs debug assertions)");
}

#[cfg(debug_assertions)]
mod faults {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use wa_auth::fault::{Fault, Op};
    use wa_auth::{
        AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch,
    };
    use wa_store_native::NativeStore;

    const CHILD: &str = "WA_NATIVE_FAULT_CHILD";
    const DIR: &str = "WA_NATIVE_FAULT_DIR";

    /// A scenario: its name, the faults armed on the log for batch B, and what the committer
    /// must be told.
    struct Scenario {
        name: &'static str,
        faults: &'static [Armed],
        told: &'static str,
    }

    /// A fault: the operation, how many calls succeed first, how many then fail (`None`: all).
    type Armed = (Op, usize, Option<usize>);

    /// Sessions added to batch B in the `big` scenarios: enough for several parts.
    const BIG_SESSIONS: usize = 3_000;

    const SCENARIOS: &[Scenario] = &[
        Scenario {
            name: "fdatasync fails",
            faults: &[(Op::SyncFile, 0, Some(1))],
            told: "io",
        },
        Scenario {
            name: "write fails part-way",
            faults: &[(Op::Write, 0, None)],
            told: "io",
        },
        Scenario {
            name: "fdatasync fails, then the cut-off fails",
            faults: &[(Op::SyncFile, 0, Some(1)), (Op::Truncate, 0, None)],
            told: "unknown",
        },
        Scenario {
            name: "write fails part-way, then the cut-off fails",
            faults: &[(Op::Write, 0, None), (Op::Truncate, 0, None)],
            told: "unknown",
        },
        Scenario {
            name: "fdatasync fails, then syncing the cut-off fails",
            faults: &[(Op::SyncFile, 0, None)],
            told: "unknown",
        },
        Scenario {
            name: "big: the third part's write fails",
            faults: &[(Op::Write, 2, None)],
            told: "io",
        },
        Scenario {
            name: "big: the third part's write fails, then the cut-off fails",
            faults: &[(Op::Write, 2, None), (Op::Truncate, 0, None)],
            told: "unknown",
        },
        Scenario {
            name: "big: fdatasync fails",
            faults: &[(Op::SyncFile, 0, Some(1))],
            told: "io",
        },
    ];

    fn big(scenario: &str) -> bool {
        scenario.starts_with("big:")
    }

    fn session_id(i: usize) -> String {
        format!("4915{i:08}.0")
    }

    fn lid(id: &str, value: &str) -> (KeyId, KeyValue) {
        (KeyId::new(id), KeyValue::LidMapping(value.into()))
    }

    fn creds(next_pre_key_id: u32) -> AuthCreds {
        let mut creds = AuthCreds::generate();
        creds.next_pre_key_id = next_pre_key_id;
        creds
    }

    /// A: a1, a2, a3 = "1", creds #1. B: deletes a1, a2 = "2", puts b1..b3, creds #2.
    fn batch_a() -> WriteBatch {
        let mut batch = WriteBatch::new();
        for id in ["a1", "a2", "a3"] {
            let (id, value) = lid(id, "1");
            batch.put(KeyKind::LidMapping, id, value);
        }
        batch.set_creds(creds(1));
        batch
    }

    fn batch_b(big: bool) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for i in (0..BIG_SESSIONS).filter(|_| big) {
            batch.put(
                KeyKind::Session,
                session_id(i),
                KeyValue::Session(Default::default()),
            );
        }
        batch.delete(KeyKind::LidMapping, "a1");
        for id in ["a2", "b1", "b2", "b3"] {
            let (id, value) = lid(id, "2");
            batch.put(KeyKind::LidMapping, id, value);
        }
        batch.set_creds(creds(2));
        batch
    }

    fn told(result: &wa_auth::Result<()>) -> String {
        match result {
            Ok(()) => "ok".into(),
            Err(AuthError::Io { .. }) => "io".into(),
            Err(AuthError::CommitUnknown { .. }) => "unknown".into(),
            Err(AuthError::Unhealthy { .. }) => "unhealthy".into(),
            Err(other) => format!("other {other}"),
        }
    }

    fn child(scenario: &str, dir: &Path) {
        let scenario = SCENARIOS
            .iter()
            .find(|s| s.name == scenario)
            .expect("scenario");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let store = NativeStore::open(dir).await.expect("open");
            store.commit(batch_a()).await.expect("batch A");
            let log = dir.join("log");
            let _armed: Vec<Fault> = scenario
                .faults
                .iter()
                .map(|(op, skip, times)| {
                    let fault = Fault::new(*op, &log).skip(*skip);
                    match times {
                        Some(n) => fault.times(*n),
                        None => fault,
                    }
                })
                .collect();
            let b = store.commit(batch_b(big(scenario.name))).await;
            println!("B {}", told(&b));
            let mut c = WriteBatch::new();
            let (id, value) = lid("c1", "3");
            c.put(KeyKind::LidMapping, id, value);
            println!("C {}", told(&store.commit(c).await));
            println!("READY");
            std::thread::park(); // until killed
        });
    }

    /// Whether batch B is in `dir`'s store whole (`Some(true)`), absent (`Some(false)`), or in
    /// part (`None`).
    fn batch_b_landed(dir: &Path, big: bool) -> Option<bool> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let state = runtime.block_on(async {
            let store = NativeStore::open(dir).await.expect("reopen");
            let state = store.load_all().await.expect("load");
            store.close().await.expect("close");
            state
        });
        let keys = state
            .keys
            .get(&KeyKind::LidMapping)
            .cloned()
            .unwrap_or_default();
        let value = |id: &str| keys.get(&KeyId::new(id)).cloned();
        assert_eq!(value("a3"), Some(lid("a3", "1").1), "batch A lost");
        assert_eq!(value("c1"), None, "batch C was refused yet is there");
        let next = state.creds.as_ref().expect("creds").next_pre_key_id;
        let sessions = state.keys.get(&KeyKind::Session).map_or(0, |s| s.len());
        let big_sessions = if big { BIG_SESSIONS } else { 0 };
        let absent = value("a1").is_some()
            && value("a2") == Some(lid("a2", "1").1)
            && ["b1", "b2", "b3"].iter().all(|id| value(id).is_none())
            && next == 1
            && sessions == 0;
        let whole = value("a1").is_none()
            && value("a2") == Some(lid("a2", "2").1)
            && ["b1", "b2", "b3"].iter().all(|id| value(id).is_some())
            && next == 2
            && sessions == big_sessions;
        match (whole, absent) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }

    fn run(scenario: &Scenario, exe: &Path, dir: &PathBuf) {
        let mut child = Command::new(exe)
            .env(CHILD, scenario.name)
            .env(DIR, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut said = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("child output");
            if line == "READY" {
                break;
            }
            said.push(line);
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let name = scenario.name;
        assert_eq!(said.len(), 2, "{name}: the child said {said:?}");
        let outcome = match batch_b_landed(dir, big(name)) {
            Some(true) => "whole",
            Some(false) => "absent",
            None => panic!("{name}: batch B is in the store in part"),
        };
        assert!(
            said[0] != "B io" || outcome == "absent",
            "{name}: the commit was told Io (not applied), yet B is there after a reopen"
        );
        assert_eq!(said[0], format!("B {}", scenario.told), "{name}");
        assert_eq!(
            said[1], "C unhealthy",
            "{name}: later commits must be refused"
        );
        println!(
            "commit_faults: {name}: told {}, after SIGKILL and reopen B is {outcome}",
            scenario.told
        );
    }

    pub fn main() {
        if let (Ok(scenario), Ok(dir)) = (std::env::var(CHILD), std::env::var(DIR)) {
            child(&scenario, Path::new(&dir));
            return;
        }
        let exe = std::env::current_exe().expect("current exe");
        for scenario in SCENARIOS {
            let tmp = tempfile::tempdir().expect("tmp");
            run(scenario, &exe, &tmp.path().join("store"));
        }
        println!("{} passed, 0 failed", SCENARIOS.len());
    }
}
