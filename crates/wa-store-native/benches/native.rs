//! Benchmarks of the native store, each side by side in one run (single commits taking turns
//! with their baselines, bulk runs alternating) with a raw `write + fdatasync`
//! baseline and a minimal per-key-file store (temp file + fsync + rename per key, what
//! BaileysEx's file persistence does), printed as a Markdown table for `docs/benchmarks.md`.
//!
//! `cargo bench -p wa-store-native` runs everything (about a minute, most of it the per-key-file
//! bulk write). `WA_BENCH_QUICK=1` shrinks the per-key-file bulk write to 1,000 sessions;
//! `WA_BENCH_ONLY=bulk` (or `single`, `concurrent`, `open`, comma-separated) runs only those
//! benchmarks (the concurrent row needs `single` for its ratio); `WA_BENCH_BULK_RUNS=N` makes
//! the bulk row's median one of N runs instead of 5.
//!
//! Cold opens run in a child process (this binary again, with `WA_BENCH_CHILD` set), so that
//! resident memory is measured in a process that did nothing else.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wa_auth::codec::encode_binary;
use wa_auth::{KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_store_fs::write::{WRITEBACK_PIECE, write_all_with_writeback};
use wa_store_native::layout::{LOG_FILE, SNAPSHOT_FILE};
use wa_store_native::{Durability, NativeStore, NativeStoreOptions};

const CHILD_ENV: &str = "WA_BENCH_CHILD";
const SINGLE_COMMITS: usize = 200;
const COMMITTERS: usize = 64;
const COMMITS_PER_COMMITTER: usize = 20;
const BULK_SESSIONS: usize = 10_000;
const BULK_RUNS: usize = 5;
/// Overrides [`BULK_RUNS`] (more runs make the medians steadier on a busy machine).
const BULK_RUNS_ENV: &str = "WA_BENCH_BULK_RUNS";
const OPEN_SESSIONS: usize = 10_000;
const OPEN_PRE_KEYS: usize = 1_000;
const OPEN_OTHERS: usize = 5_000;
const OPEN_RUNS: usize = 5;

fn main() {
    if let Ok(what) = std::env::var(CHILD_ENV) {
        cold_open_child(&what);
        return;
    }
    // `cargo bench` passes `--bench`; any other filter argument is ignored.
    let quick = std::env::var("WA_BENCH_QUICK").is_ok();
    let tmp = tempfile::tempdir_in(
        std::env::var("WA_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from),
    )
    .expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let only = std::env::var("WA_BENCH_ONLY").unwrap_or_default();
    let runs = |name: &str| only.is_empty() || only.split(',').any(|o| o.trim() == name);
    let mut rows = Vec::new();
    runtime.block_on(async {
        if runs("single") {
            single_commit(tmp.path(), &mut rows).await;
        }
        if runs("concurrent") {
            concurrent_commits(tmp.path(), &mut rows).await;
        }
        if runs("bulk") {
            bulk_write(tmp.path(), quick, &mut rows).await;
        }
        if runs("open") {
            cold_open(tmp.path(), &mut rows).await;
        }
    });
    println!();
    println!(
        "| benchmark | native store | raw write + fdatasync | per-key files (temp+fsync+rename) | target |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    println!("Where the time goes (same run; medians):");
    println!();
    for line in BREAKDOWN.lock().expect("breakdown").iter() {
        println!("- {line}");
    }
}

/// Lines of the time breakdown printed after the table.
static BREAKDOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn breakdown(line: String) {
    BREAKDOWN.lock().expect("breakdown").push(line);
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len() as u32
}

/// A minimal per-key-file store: one file per key, each write through a temp file, fsync and
/// rename (no directory fsync), deletes by unlink.
struct PerKeyFiles {
    dir: PathBuf,
}

impl PerKeyFiles {
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).expect("mkdir");
        Self { dir }
    }

    fn path(&self, kind: &KeyKind, id: &KeyId) -> PathBuf {
        self.dir
            .join(format!("{kind}-{}.bin", id.as_str().replace('/', "__")))
    }

    fn put(&self, kind: &KeyKind, id: &KeyId, value: &KeyValue) {
        let path = self.path(kind, id);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("{unique}.tmp"));
        let mut file = File::create(&tmp).expect("create");
        file.write_all(&encode_binary(value)).expect("write");
        file.sync_all().expect("fsync");
        fs::rename(&tmp, &path).expect("rename");
    }

    fn delete(&self, kind: &KeyKind, id: &KeyId) {
        match fs::remove_file(self.path(kind, id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{e}"),
        }
    }

    fn commit(&self, batch: &WriteBatch) {
        for (kind, id, value) in batch.entries() {
            match value {
                Some(value) => self.put(kind, id, value),
                None => self.delete(kind, id),
            }
        }
    }
}

/// The typical receive commit: a session update and the consumed pre-key's delete.
fn receive_batch(rng: &mut rand::rngs::StdRng, n: usize) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::Session,
        format!("49151{:07}.0", n % 500),
        KeyValue::Session(common::session(rng)),
    );
    batch.delete(KeyKind::PreKey, (n + 1).to_string());
    batch
}

fn raw_append(path: &Path, bytes: &[u8], times: usize, sync: bool) -> Vec<Duration> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    (0..times)
        .map(|_| {
            let started = Instant::now();
            file.write_all(bytes).expect("write");
            if sync {
                file.sync_data().expect("fdatasync");
            }
            started.elapsed()
        })
        .collect()
}

/// Median latency of committing `batches` one after the other to a new store at `dir`.
async fn commit_latency(
    dir: &Path,
    options: NativeStoreOptions,
    batches: &[WriteBatch],
) -> Duration {
    let store = NativeStore::open_with(dir, options).await.expect("open");
    let mut samples = Vec::new();
    for batch in batches {
        let batch = batch.clone();
        let started = Instant::now();
        store.commit(batch).await.expect("commit");
        samples.push(started.elapsed());
    }
    store.close().await.expect("close");
    median(samples)
}

async fn single_commit(root: &Path, rows: &mut Vec<String>) {
    let mut rng = common::rng(1, 1);
    let batches: Vec<WriteBatch> = (0..SINGLE_COMMITS + 20)
        .map(|n| receive_batch(&mut rng, n))
        .collect();
    let store = NativeStore::open(root.join("single")).await.expect("open");
    let log = root.join("single").join(LOG_FILE);
    let start = fs::metadata(&log).expect("log").len();
    for batch in &batches[..20] {
        store.commit(batch.clone()).await.expect("warm-up");
    }
    let per_commit = (fs::metadata(&log).expect("log").len() - start) as usize / 20;
    // The three contenders take turns, one commit each, so that all of them see the disk in
    // the same mood (sync times here swing between 0.2 ms and 4 ms within minutes).
    let mut raw_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("raw-single"))
        .expect("open");
    let raw_bytes = vec![0x5a; per_commit];
    let files = PerKeyFiles::new(root.join("perkey-single"));
    let (mut native, mut raw, mut per_key) = (Vec::new(), Vec::new(), Vec::new());
    // The order rotates: a sync also commits what the previous contender left in the file
    // system's journal (the per-key store's renames), which no contender should always pay.
    for (i, batch) in batches[20..].iter().enumerate() {
        for turn in 0..3 {
            let started = Instant::now();
            match (i + turn) % 3 {
                0 => {
                    store.commit(batch.clone()).await.expect("commit");
                    native.push(started.elapsed());
                }
                1 => {
                    raw_file.write_all(&raw_bytes).expect("write");
                    raw_file.sync_data().expect("fdatasync");
                    raw.push(started.elapsed());
                }
                _ => {
                    files.commit(batch);
                    per_key.push(started.elapsed());
                }
            }
        }
    }
    drop(store);
    let raw_write = median(raw_append(
        &root.join("raw-single-write"),
        &vec![0x5a; per_commit],
        SINGLE_COMMITS,
        false,
    ));
    let no_sync = NativeStoreOptions::default().durability(Durability::NoSync);
    let native_write = commit_latency(&root.join("single-nosync"), no_sync, &batches[20..]).await;
    let encode = {
        let mut samples = Vec::new();
        for batch in &batches[20..] {
            let started = Instant::now();
            for (_, _, value) in batch.entries() {
                if let Some(value) = value {
                    std::hint::black_box(encode_binary(value));
                }
            }
            samples.push(started.elapsed());
        }
        median(samples)
    };
    breakdown(format!(
        "one commit: the store without the sync (`Durability::NoSync`: encode, join the group, checksum, write, apply) {} against a raw `write` of the same bytes {}: the store's fixed cost is {:.0} µs, of which encoding the session {:.0} µs; the durable commit adds the `fdatasync` (raw write + fdatasync {})",
        ms(native_write),
        ms(raw_write),
        native_write.saturating_sub(raw_write).as_secs_f64() * 1e6,
        encode.as_secs_f64() * 1e6,
        ms(median(raw.clone())),
    ));
    let (n, r, p) = (median(native.clone()), median(raw), median(per_key));
    rows.push(format!(
        "| one durable commit (2.2 KB session + pre-key delete; {per_commit} B in the log), median of {SINGLE_COMMITS} | {} (mean {}) | {} | {} | ≤ 1.3× raw: **{:.2}×** |",
        ms(n),
        ms(mean(&native)),
        ms(r),
        ms(p),
        n.as_secs_f64() / r.as_secs_f64()
    ));
    SINGLE_RATE.set(1.0 / mean(&native).as_secs_f64()).ok();
}

static SINGLE_RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

async fn concurrent_commits(root: &Path, rows: &mut Vec<String>) {
    let store: Arc<dyn Persistence> = Arc::new(
        NativeStore::open_with(root.join("concurrent"), NativeStoreOptions::default())
            .await
            .expect("open"),
    );
    let mut rng = common::rng(2, 2);
    let work: Vec<Vec<WriteBatch>> = (0..COMMITTERS)
        .map(|t| {
            (0..COMMITS_PER_COMMITTER)
                .map(|i| receive_batch(&mut rng, t * 1000 + i))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let store = store.clone();
            tokio::spawn(async move {
                for batch in batches {
                    store.commit(batch).await.expect("commit");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let elapsed = started.elapsed();
    let total = COMMITTERS * COMMITS_PER_COMMITTER;
    let frames = wa_store_native::inspect::inspect_dir(root.join("concurrent"))
        .expect("inspect")
        .frames;
    drop(store);
    let rate = total as f64 / elapsed.as_secs_f64();
    let single = SINGLE_RATE.get().copied().unwrap_or(f64::NAN);

    // Per-key files: 64 threads each committing on its own (no shared sync possible).
    let files = Arc::new(PerKeyFiles::new(root.join("perkey-concurrent")));
    let mut rng = common::rng(3, 3);
    let work: Vec<Vec<WriteBatch>> = (0..COMMITTERS)
        .map(|t| {
            (0..COMMITS_PER_COMMITTER / 4)
                .map(|i| receive_batch(&mut rng, t * 1000 + i))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let threads: Vec<_> = work
        .into_iter()
        .map(|batches| {
            let files = files.clone();
            std::thread::spawn(move || batches.iter().for_each(|b| files.commit(b)))
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let per_key_rate =
        (COMMITTERS * COMMITS_PER_COMMITTER / 4) as f64 / started.elapsed().as_secs_f64();
    rows.push(format!(
        "| {COMMITTERS} concurrent committers, {total} commits ({frames} frames, i.e. syncs) | {rate:.0} commits/s = {:.1}× the single committer ({single:.0}/s) | — | {per_key_rate:.0} commits/s ({COMMITTERS} threads) | ≥ 5× single: **{:.1}×** |",
        rate / single,
        rate / single
    ));
}

async fn bulk_write(root: &Path, quick: bool, rows: &mut Vec<String>) {
    let mut rng = common::rng(4, 4);
    let sessions: Vec<(String, KeyValue)> = (0..BULK_SESSIONS)
        .map(|i| {
            (
                format!("4915{i:08}.0"),
                KeyValue::Session(common::session(&mut rng)),
            )
        })
        .collect();
    let value_bytes: usize = sessions.iter().map(|(_, v)| encode_binary(v).len()).sum();
    let mut batch = WriteBatch::new();
    for (id, value) in &sessions {
        batch.put(KeyKind::Session, id.as_str(), value.clone());
    }
    // Alternating runs into fresh files; the medians are reported (fsync times vary here).
    let mut native = Vec::new();
    let mut raw = Vec::new();
    let mut raw_write = Vec::new();
    let mut raw_early = Vec::new();
    let mut encode_times = Vec::new();
    let mut no_sync_times = Vec::new();
    let mut written = 0;
    let bulk_runs = std::env::var(BULK_RUNS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(BULK_RUNS);
    for run in 0..bulk_runs {
        let dir = root.join(format!("bulk-{run}"));
        let store = NativeStore::open(&dir).await.expect("open");
        let before = fs::metadata(dir.join(LOG_FILE)).expect("log").len();
        let batch_copy = batch.clone();
        let started = Instant::now();
        store.commit(batch_copy).await.expect("bulk commit");
        native.push(started.elapsed());
        written = (fs::metadata(dir.join(LOG_FILE)).expect("log").len() - before) as usize;
        store.close().await.expect("close");
        drop(store);
        fs::remove_dir_all(&dir).expect("clean");

        let started = Instant::now();
        let halves: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let (a, b) = sessions.split_at(sessions.len() / 2);
            let threads: Vec<_> = [a, b]
                .into_iter()
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(_, v)| encode_binary(v).len() as u8)
                            .collect()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("encode"))
                .collect()
        });
        std::hint::black_box(halves);
        encode_times.push(started.elapsed());

        let dir = root.join(format!("bulk-nosync-{run}"));
        let options = NativeStoreOptions::default().durability(Durability::NoSync);
        let store = NativeStore::open_with(&dir, options).await.expect("open");
        let batch_copy = batch.clone();
        let started = Instant::now();
        store.commit(batch_copy).await.expect("bulk commit");
        no_sync_times.push(started.elapsed());
        store.close().await.expect("close");
        drop(store);
        fs::remove_dir_all(&dir).expect("clean");

        let bytes = vec![0xa5u8; written];
        let path = root.join(format!("raw-bulk-{run}"));
        let started = Instant::now();
        let mut file = File::create(&path).expect("create");
        file.write_all(&bytes).expect("write");
        raw_write.push(started.elapsed());
        file.sync_data().expect("fdatasync");
        raw.push(started.elapsed());
        fs::remove_file(&path).expect("clean");

        // The same bytes written as the store writes a big frame: writeback started piece
        // by piece, then one fdatasync.
        let started = Instant::now();
        let mut file = File::create(&path).expect("create");
        let mut slices = [std::io::IoSlice::new(&bytes)];
        write_all_with_writeback(&mut file, 0, &mut slices).expect("write");
        file.sync_data().expect("fdatasync");
        raw_early.push(started.elapsed());
        fs::remove_file(&path).expect("clean");
    }
    let fastest = |d: &[Duration]| ms(d.iter().copied().min().unwrap_or_default());
    breakdown(format!(
        "bulk commit of {BULK_SESSIONS} sessions: encoding them on 2 threads alone {} (fastest {}); the store without the sync (validate, encode in segments on threads while the ready ones are written, apply) {} (fastest {}); raw `write` of the same bytes {} (fastest {}), raw write + fdatasync {}; raw write with the store's early writeback (every {} MiB) + fdatasync {}",
        ms(median(encode_times.clone())),
        fastest(&encode_times),
        ms(median(no_sync_times.clone())),
        fastest(&no_sync_times),
        ms(median(raw_write.clone())),
        fastest(&raw_write),
        ms(median(raw.clone())),
        WRITEBACK_PIECE >> 20,
        ms(median(raw_early)),
    ));
    let native_all = native.clone();
    let raw_all = raw.clone();
    let (native, raw) = (median(native), median(raw));

    let per_key_count = if quick { 1_000 } else { BULK_SESSIONS };
    let files = PerKeyFiles::new(root.join("perkey-bulk"));
    let started = Instant::now();
    for (id, value) in &sessions[..per_key_count] {
        files.put(&KeyKind::Session, &KeyId::new(id.as_str()), value);
    }
    let per_key = started.elapsed();
    let per_key_note = if per_key_count == BULK_SESSIONS {
        ms(per_key)
    } else {
        format!(
            "{} for {per_key_count} (≈ {} for {BULK_SESSIONS})",
            ms(per_key),
            ms(per_key * (BULK_SESSIONS / per_key_count) as u32)
        )
    };
    rows.push(format!(
        "| durable bulk write of {BULK_SESSIONS} sessions ({:.1} MB of values, {:.1} MB in the log), one commit, median of {bulk_runs} | {} (runs: {}) | {} (runs: {}) | {per_key_note} | ≤ 2× raw: **{:.2}×** |",
        value_bytes as f64 / 1e6,
        written as f64 / 1e6,
        ms(native),
        native_all.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(", "),
        ms(raw),
        raw_all.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(", "),
        native.as_secs_f64() / raw.as_secs_f64()
    ));
}

/// Builds the cold-open data set: 10,000 sessions, 1,000 pre-keys, 5,000 other keys.
fn open_data_set() -> (WriteBatch, usize) {
    let mut rng = common::rng(5, 5);
    let mut batch = WriteBatch::new();
    let mut live = 0;
    let mut put = |batch: &mut WriteBatch, kind: KeyKind, id: String, value: KeyValue| {
        live += encode_binary(&value).len() + id.len();
        batch.put(kind, id, value);
    };
    for i in 0..OPEN_SESSIONS {
        let value = KeyValue::Session(common::session(&mut rng));
        put(&mut batch, KeyKind::Session, format!("4915{i:08}.0"), value);
    }
    for i in 1..=OPEN_PRE_KEYS {
        let id = i.to_string();
        let value = common::value(&KeyKind::PreKey, &id, &mut rng);
        put(&mut batch, KeyKind::PreKey, id, value);
    }
    let others = [
        KeyKind::SenderKeyMemory,
        KeyKind::AppStateSyncKey,
        KeyKind::LidMapping,
        KeyKind::DeviceList,
        KeyKind::TcToken,
        KeyKind::IdentityKey,
    ];
    for i in 0..OPEN_OTHERS {
        let kind = others[i % others.len()].clone();
        let id = format!("4915{i:08}");
        let value = common::value(&kind, &id, &mut rng);
        put(&mut batch, kind, id, value);
    }
    (batch, live)
}

async fn cold_open(root: &Path, rows: &mut Vec<String>) {
    let (batch, live) = open_data_set();
    let dir = root.join("open");
    let store = NativeStore::open(&dir).await.expect("open");
    store.commit(batch.clone()).await.expect("commit");
    store.compact().await.expect("compact");
    store.close().await.expect("close");
    drop(store);
    let files = PerKeyFiles::new(root.join("perkey-open"));
    for (kind, id, value) in batch.entries() {
        if let Some(value) = value {
            let path = files.path(kind, id);
            fs::write(path, encode_binary(value)).expect("write");
        }
    }
    let run = |what: &str, dir: &Path| -> Vec<(f64, f64, f64, f64)> {
        (0..OPEN_RUNS)
            .map(|_| {
                let out = Command::new(std::env::current_exe().expect("exe"))
                    .env(CHILD_ENV, what)
                    .env("WA_BENCH_OPEN_DIR", dir)
                    .output()
                    .expect("child");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8_lossy(&out.stdout);
                let v: Vec<f64> = text
                    .split_whitespace()
                    .map(|x| x.parse().expect("number"))
                    .collect();
                (v[0], v[1], v[2], v[3])
            })
            .collect()
    };
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let native = run("native", &dir);
    let per_key = run("perkey", &root.join("perkey-open"));
    let (open, load, rss, base) = (
        med(native.iter().map(|r| r.0).collect()),
        med(native.iter().map(|r| r.1).collect()),
        med(native.iter().map(|r| r.2).collect()),
        med(native.iter().map(|r| r.3).collect()),
    );
    let (p_open, p_load, p_rss) = (
        med(per_key.iter().map(|r| r.0).collect()),
        med(per_key.iter().map(|r| r.1).collect()),
        med(per_key.iter().map(|r| r.2).collect()),
    );
    let snapshot = fs::metadata(dir.join(SNAPSHOT_FILE))
        .expect("snapshot")
        .len();
    rows.push(format!(
        "| cold open of {OPEN_SESSIONS} sessions + {OPEN_PRE_KEYS} pre-keys + {OPEN_OTHERS} other keys ({:.1} MB live, {:.1} MB snapshot), median of {OPEN_RUNS} child processes | open {open:.1} ms; open + decode every value {:.1} ms | — | list + read every file {p_open:.1} ms; + decode {:.1} ms | < 100 ms: **{open:.1} ms** |",
        live as f64 / 1e6,
        snapshot as f64 / 1e6,
        open + load,
        p_open + p_load,
    ));
    rows.push(format!(
        "| resident memory after that open (VmRSS; the process before opening: {base:.1} MB) | {rss:.1} MB = {:.2}× live data ({:.2}× counting only the growth) | — | {p_rss:.1} MB | < 2× live: **{:.2}×** |",
        rss * 1e6 / live as f64,
        (rss - base) * 1e6 / live as f64,
        rss * 1e6 / live as f64,
    ));
}

fn rss_mb() -> f64 {
    let status = fs::read_to_string("/proc/self/status").expect("status");
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// In a child: open (native store, or read every per-key file), then decode every value.
/// Prints open ms, decode ms, RSS MB after the open, RSS MB before.
fn cold_open_child(what: &str) {
    let dir = PathBuf::from(std::env::var("WA_BENCH_OPEN_DIR").expect("dir"));
    let base = rss_mb();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    if what == "native" {
        let started = Instant::now();
        let store = wa_store_native::NativeReader::open_blocking(&dir).expect("open");
        let open = started.elapsed();
        let rss = rss_mb();
        let started = Instant::now();
        let all = runtime.block_on(store.load_all()).expect("load");
        let load = started.elapsed();
        assert_eq!(all.key_count(), OPEN_SESSIONS + OPEN_PRE_KEYS + OPEN_OTHERS);
        println!(
            "{} {} {rss} {base}",
            open.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3
        );
    } else {
        let started = Instant::now();
        let mut raw = Vec::new();
        for entry in fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            raw.push((entry.file_name(), fs::read(entry.path()).expect("read")));
        }
        let open = started.elapsed();
        let rss = rss_mb();
        let started = Instant::now();
        let mut count = 0;
        for (name, bytes) in &raw {
            let name = name.to_string_lossy();
            let (kind, id) = KeyKind::KNOWN
                .iter()
                .filter_map(|k| {
                    name.strip_prefix(k.as_str())
                        .and_then(|rest| rest.strip_prefix('-'))
                        .map(|rest| (k.clone(), rest.trim_end_matches(".bin")))
                })
                .max_by_key(|(k, _)| k.as_str().len())
                .expect("kind");
            wa_auth::codec::decode_binary(&kind, &KeyId::new(id), bytes).expect("decode");
            count += 1;
        }
        assert_eq!(count, OPEN_SESSIONS + OPEN_PRE_KEYS + OPEN_OTHERS);
        let load = started.elapsed();
        println!(
            "{} {} {rss} {base}",
            open.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3
        );
    }
}
