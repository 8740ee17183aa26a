//! Crash recovery: a child process (this test binary, re-run with `WA_NATIVE_CRASH_CHILD` set)
//! commits seeded random batches in a loop and prints each acknowledged commit; the parent
//! SIGKILLs it at random moments. After every kill the parent reopens the store (running
//! recovery) and checks that it holds EXACTLY the state after a prefix of the commits that
//! includes every acknowledged one, replaying the same seeded sequence in memory.
//!
//! The store carries on across kills, so kills also land during recovery, torn-tail truncation
//! and compaction (the child compacts very often).
//!
//! Three scenarios:
//! - `sequential`: one committer; the prefix is `acknowledged` or `acknowledged + 1` batches,
//!   creds included.
//! - `concurrent`: 8 committer tasks, each with its own key namespace and sequence, sharing
//!   group commits; every namespace must hold exactly a prefix of its own sequence including
//!   every acknowledged batch.
//! - `bulk`: one committer of 2,600-session batches (about 6 MB each, written in parts while
//!   threads encode them, each part's writeback started as it is written); kills land between
//!   parts, while a part is half copied, on its way to the disk, or synced.
//!
//! Environment: `WA_NATIVE_CRASH_SEED` (default fixed), `WA_NATIVE_CRASH_KILLS` (kills per
//! scenario, default 100 sequential, 50 concurrent and 15 bulk).
//!
//! This file has its own `main` (`harness = false` in Cargo.toml), so the same binary can act
//! as the child.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use wa_auth::{AuthCreds, Persistence, PersistenceExt, Snapshot, WriteBatch};
use wa_store_native::{NativeStore, NativeStoreOptions};

const CHILD_ENV: &str = "WA_NATIVE_CRASH_CHILD";
const TASKS: usize = 8;

fn options() -> NativeStoreOptions {
    // Compact as often as every ~64 KB of log so that kills land in compaction too.
    NativeStoreOptions::default()
        .compact_min_log_bytes(64 << 10)
        .compact_log_ratio(0.25)
}

fn creds_file(dir: &Path) -> PathBuf {
    dir.join("creds.json")
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

fn prefix(task: usize) -> String {
    format!("t{task}-")
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child(&mode);
        return;
    }
    let seed = std::env::var("WA_NATIVE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let kills: Option<usize> = std::env::var("WA_NATIVE_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok());
    println!("crash_recovery: seed {seed} (set WA_NATIVE_CRASH_SEED to change)");
    let started = Instant::now();
    let sequential = run_scenario("sequential", seed, kills.unwrap_or(100));
    let concurrent = run_scenario("concurrent", seed ^ 0xc0c0, kills.unwrap_or(50));
    let bulk = run_scenario("bulk", seed ^ 0xb01c, kills.unwrap_or(15));
    println!(
        "crash_recovery: {} kills, {} acknowledged commits verified in {:.1} s",
        sequential.kills + concurrent.kills + bulk.kills,
        sequential.acked + concurrent.acked + bulk.acked,
        started.elapsed().as_secs_f64()
    );
    println!("3 passed, 0 failed");
}

/// The child: commit batches until killed, printing `ACK <task> <index>` after each commit.
fn child(mode: &str) {
    let dir = PathBuf::from(std::env::var("WA_NATIVE_CRASH_DIR").expect("dir"));
    let seed: u64 = std::env::var("WA_NATIVE_CRASH_CHILD_SEED")
        .expect("seed")
        .parse()
        .expect("seed");
    let creds: Vec<AuthCreds> =
        serde_json::from_slice(&std::fs::read(creds_file(&dir)).expect("creds file"))
            .expect("creds json");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = NativeStore::open_with(store_dir(&dir), options())
            .await
            .expect("child open");
        let store: Arc<dyn Persistence> = Arc::new(store);
        let current = store.load_all().await.expect("child load");
        let tasks = if mode == "concurrent" { TASKS } else { 1 };
        let mut handles = Vec::new();
        for task in 0..tasks {
            let (store, mode) = (store.clone(), mode.to_owned());
            let prefix = prefix(task);
            let start = common::counter(&current, &prefix);
            let creds = if tasks == 1 {
                creds.clone()
            } else {
                Vec::new()
            };
            handles.push(tokio::spawn(async move {
                for index in start + 1.. {
                    let batch = batch(&mode, seed ^ task as u64, &prefix, index, &creds);
                    store.commit(batch).await.expect("child commit");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {task} {index}").expect("stdout");
                    out.flush().expect("stdout");
                }
            }));
        }
        for handle in handles {
            handle.await.expect("committer");
        }
    });
}

/// Batch number `index` of `mode`'s committer in namespace `prefix`.
fn batch(mode: &str, seed: u64, prefix: &str, index: u64, creds: &[AuthCreds]) -> WriteBatch {
    match mode {
        "bulk" => common::bulk_batch(seed, prefix, index),
        _ => common::batch(seed, prefix, index, creds),
    }
}

#[derive(Default)]
struct Seen {
    torn_tails: usize,
    interrupted_compactions: usize,
    orphans: usize,
}

struct Outcome {
    kills: usize,
    acked: u64,
}

fn child_command(mode: &str, dir: &Path, seed: u64) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current exe"));
    command
        .env(CHILD_ENV, mode)
        .env("WA_NATIVE_CRASH_DIR", dir)
        .env("WA_NATIVE_CRASH_CHILD_SEED", seed.to_string());
    command
}

fn run_scenario(mode: &str, seed: u64, kills: usize) -> Outcome {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let tasks = if mode == "concurrent" { TASKS } else { 1 };
    let creds: Vec<AuthCreds> = (0..3).map(|_| AuthCreds::generate()).collect();
    std::fs::write(creds_file(dir), serde_json::to_vec(&creds).expect("json")).expect("write");
    // The child's creds went through JSON: use the same in the model.
    let creds: Vec<AuthCreds> =
        serde_json::from_slice(&std::fs::read(creds_file(dir)).expect("read")).expect("json");
    let child_creds = if tasks == 1 {
        creds.clone()
    } else {
        Vec::new()
    };

    // The model of each namespace, advanced as far as the store has been seen to get.
    let mut models: Vec<(u64, Snapshot)> = vec![(0, Snapshot::default()); tasks];
    let mut acked_total = 0u64;
    let mut timing = common::rng(seed, u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut seen = Seen::default();
    for kill in 0..kills {
        // A random moment: sometimes during start-up and recovery, mostly while committing.
        // (A bulk batch takes a few hundred milliseconds to make and commit in a debug build.)
        let longest = if mode == "bulk" { 900_000 } else { 90_000 };
        let delay = Duration::from_micros(timing.random_range(1_000..longest));
        let lines = wa_testkit::crash::run_and_kill(
            child_command(mode, dir, seed),
            delay,
            &format!("{mode} kill {kill}"),
        );

        // The highest acknowledged index of each task.
        let mut acked = vec![0u64; tasks];
        for line in &lines {
            let mut parts = line.split_whitespace();
            if parts.next() == Some("ACK") {
                acked_total += 1;
                let task: usize = parts.next().and_then(|t| t.parse().ok()).expect("task");
                let index: u64 = parts.next().and_then(|i| i.parse().ok()).expect("index");
                acked[task] = acked[task].max(index);
            }
        }

        // What recovery is about to face (read-only, as the files are).
        let before = wa_store_native::inspect::inspect_dir(store_dir(dir))
            .unwrap_or_else(|e| panic!("{mode}: inspect after kill {kill} failed: {e}"));
        seen.torn_tails += usize::from(before.torn_tail.is_some());
        seen.interrupted_compactions += usize::from(
            before
                .log_base
                .is_some_and(|base| base < before.snapshot_seq),
        );
        seen.orphans += ["snapshot.tmp", "log.tmp"]
            .iter()
            .filter(|name| store_dir(dir).join(name).exists())
            .count();
        let store = NativeStore::open_blocking(store_dir(dir), options())
            .unwrap_or_else(|e| panic!("{mode}: reopen after kill {kill} failed: {e}"));
        let loaded = runtime
            .block_on(store.load_all())
            .unwrap_or_else(|e| panic!("{mode}: load after kill {kill} failed: {e}"));
        drop(store);
        for (task, (model_index, model)) in models.iter_mut().enumerate() {
            let prefix = prefix(task);
            let got = common::counter(&loaded, &prefix);
            assert!(
                got >= acked[task],
                "{mode}: kill {kill}: task {task} acknowledged batch {} but the store holds only {got}",
                acked[task]
            );
            assert!(
                got >= *model_index,
                "{mode}: kill {kill}: task {task} went back from {model_index} to {got}"
            );
            assert!(
                got <= acked[task].max(*model_index) + 1,
                "{mode}: kill {kill}: task {task} holds {got} batches; at most one past {} can be in flight",
                acked[task].max(*model_index)
            );
            for index in *model_index + 1..=got {
                common::apply(
                    model,
                    &batch(mode, seed ^ task as u64, &prefix, index, &child_creds),
                );
            }
            *model_index = got;
            assert_eq!(
                common::namespace(&loaded, &prefix),
                model.keys,
                "{mode}: kill {kill}: task {task}: the store is not exactly the state after {got} batches"
            );
            if tasks == 1 {
                assert_eq!(
                    loaded.creds, model.creds,
                    "{mode}: kill {kill}: creds differ"
                );
            }
        }
        // Recovery cleaned up: only the store's own files remain.
        let mut files: Vec<String> = std::fs::read_dir(store_dir(dir))
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["lock", "log", "snapshot"], "{mode}: kill {kill}");
    }
    let total: u64 = models.iter().map(|(i, _)| *i).sum();
    println!(
        "crash_recovery: {mode}: {kills} kills, {total} batches landed in the end; recovery met {} torn tails, {} interrupted compactions, {} orphan temp files; {:.1} s",
        seen.torn_tails,
        seen.interrupted_compactions,
        seen.orphans,
        started.elapsed().as_secs_f64()
    );
    assert!(
        total > kills as u64,
        "{mode}: too few commits to mean anything"
    );
    Outcome {
        kills,
        acked: acked_total,
    }
}
