//! SIGKILL during migrations: a child process migrates two accounts' Baileys folders, in turn,
//! over the same native destination (with `overwrite`), and is killed at random moments.
//! After every kill the destination, once what the killed migration left is cleaned up, is
//! absent (before the first publish) or complete: exactly one of the two accounts, every key
//! intact. A backup that recovery keeps (a kill between the swap and the deletion of the
//! replaced state) is complete too. Seeded (`WA_CRASH_SEED`), so a failure can be replayed.
//!
//! Runs with its own `main` (harness = false): the same binary is the child when
//! `WA_MIGRATE_CHILD` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use wa_auth::Snapshot;
use wa_migrate::{Location, MigrateOptions, migrate_compat_json_to_native, recover_interrupted};
use wa_testkit::fixtures::baileys_auth_folders;

const CHILD: &str = "WA_MIGRATE_CHILD";
const ITERATIONS: usize = 20;

fn sources() -> (PathBuf, PathBuf) {
    let folders: Vec<PathBuf> = baileys_auth_folders()
        .into_iter()
        .filter(|(name, _)| name.ends_with("paired-with-sessions"))
        .map(|(_, path)| path)
        .collect();
    assert!(folders.len() >= 2, "need two paired-with-sessions folders");
    (folders[0].clone(), folders[1].clone())
}

fn child(dest: &str) {
    let (a, b) = sources();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("ready");
        for round in 0u64.. {
            let source = if round % 2 == 0 { &a } else { &b };
            migrate_compat_json_to_native(source, dest, &MigrateOptions::default().overwrite(true))
                .await
                .expect("migrate");
            println!("published {round}");
        }
    });
}

fn which(state: &Snapshot, a: &Snapshot, b: &Snapshot) -> Option<char> {
    let same = |x: &Snapshot| x.creds == state.creds && x.keys == state.keys;
    if same(a) {
        Some('A')
    } else if same(b) {
        Some('B')
    } else {
        None
    }
}

/// What an interrupted migration leaves for recovery to handle.
fn leftovers(parent: &Path) -> usize {
    std::fs::read_dir(parent)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.contains("staging") || name.contains("trash") || name.ends_with("backup")
        })
        .count()
}

/// Backups recovery kept under a new name.
fn kept_backups(parent: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("wa-migrate-backup-"))
        .collect()
}

/// Runs the child over `dest`, kills it at a random moment once it is ready, and returns how
/// many migrations it said it published.
fn migrate_until_killed(exe: &Path, dest: &Path, rng: &mut rand::rngs::StdRng) -> usize {
    let mut command = Command::new(exe);
    command.env(CHILD, dest);
    let delay = Duration::from_millis(rng.random_range(0..700));
    wa_testkit::crash::run_and_kill_when_ready(
        command,
        "ready",
        Duration::from_secs(30),
        delay,
        "the kill",
    )
    .iter()
    .filter(|l| l.starts_with("published"))
    .count()
}

fn main() {
    if let Ok(dest) = std::env::var(CHILD) {
        child(&dest);
        return;
    }
    let seed = wa_testkit::crash::seed(0x0d15_ea5e);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let runtime = wa_testkit::crash::runtime();
    let (a_dir, b_dir) = sources();
    let (a, b) = runtime.block_on(async {
        (
            common::compat_snapshot(&a_dir).await,
            common::compat_snapshot(&b_dir).await,
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("device");
    let exe = std::env::current_exe().unwrap();
    let (mut seen_a, mut seen_b, mut interrupted, mut kept) = (0, 0, 0, 0);

    for iteration in 0..ITERATIONS {
        let published = migrate_until_killed(&exe, &dest, &mut rng);

        if leftovers(tmp.path()) > 0 {
            interrupted += 1;
        }
        let done = recover_interrupted(&dest).expect("recover");
        assert_eq!(leftovers(tmp.path()), 0, "iteration {iteration}: {done:?}");
        for backup in kept_backups(tmp.path()) {
            let state = runtime.block_on(common::native_snapshot(&backup));
            assert!(
                which(&state, &a, &b).is_some(),
                "{iteration}: a kept backup is incomplete"
            );
            kept += 1;
            std::fs::remove_dir_all(&backup).unwrap();
        }
        if !dest.exists() {
            assert!(
                iteration == 0 && published == 0,
                "iteration {iteration} (seed {seed}): destination missing after {published} publishes"
            );
            continue;
        }
        let state = runtime.block_on(common::native_snapshot(&dest));
        match which(&state, &a, &b) {
            Some('A') => seen_a += 1,
            Some(_) => seen_b += 1,
            None => {
                panic!("iteration {iteration} (seed {seed}): the destination is neither account")
            }
        }
        let report = runtime
            .block_on(wa_migrate::verify(&Location::Native(dest.clone())))
            .expect("verify");
        assert!(report.is_ok(), "iteration {iteration}: {report}");
    }
    println!(
        "kill_during_migration: {ITERATIONS} kills (seed {seed}): destination complete every time \
         (account A {seen_a}, account B {seen_b}); {interrupted} kills left a staging copy or backup to clean up, \
         {kept} backups kept (complete)"
    );
    assert!(
        interrupted > 0,
        "no kill landed mid-migration; the test proves nothing"
    );
}
