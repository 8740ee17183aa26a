//! A commit whose log write or `fdatasync` fails (fault injection, `wa_auth::fault`), then a
//! SIGKILL and a reopen: the batch is there whole or not at all, and what the committer was
//! told holds. `AuthError::Io` means "not applied, never will be"; only
//! `AuthError::CommitUnknown` (the failed write could not be cut off either) leaves it open,
//! and even then the batch is whole or absent.
//!
//! The child process (this binary, re-run with `WA_NATIVE_FAULT_CHILD` set) commits batch A,
//! arms the scenario's faults, commits batch B, tries batch C, prints what it was told and
//! waits to be killed. Runs with its own `main` (`harness = false`).

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
        faults: &'static [(Op, Option<usize>)],
        told: &'static str,
    }

    /// `(op, Some(n))` fails `n` calls, `(op, None)` every call.
    const SCENARIOS: &[Scenario] = &[
        Scenario {
            name: "fdatasync fails",
            faults: &[(Op::SyncFile, Some(1))],
            told: "io",
        },
        Scenario {
            name: "write fails part-way",
            faults: &[(Op::Write, None)],
            told: "io",
        },
        Scenario {
            name: "fdatasync fails, then the cut-off fails",
            faults: &[(Op::SyncFile, Some(1)), (Op::Truncate, None)],
            told: "unknown",
        },
        Scenario {
            name: "write fails part-way, then the cut-off fails",
            faults: &[(Op::Write, None), (Op::Truncate, None)],
            told: "unknown",
        },
        Scenario {
            name: "fdatasync fails, then syncing the cut-off fails",
            faults: &[(Op::SyncFile, None)],
            told: "unknown",
        },
    ];

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

    fn batch_b() -> WriteBatch {
        let mut batch = WriteBatch::new();
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
                .map(|(op, times)| match times {
                    Some(n) => Fault::new(*op, &log).times(*n),
                    None => Fault::new(*op, &log),
                })
                .collect();
            let b = store.commit(batch_b()).await;
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
    fn batch_b_landed(dir: &Path) -> Option<bool> {
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
        let absent = value("a1").is_some()
            && value("a2") == Some(lid("a2", "1").1)
            && ["b1", "b2", "b3"].iter().all(|id| value(id).is_none())
            && next == 1;
        let whole = value("a1").is_none()
            && value("a2") == Some(lid("a2", "2").1)
            && ["b1", "b2", "b3"].iter().all(|id| value(id).is_some())
            && next == 2;
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
        let outcome = match batch_b_landed(dir) {
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
