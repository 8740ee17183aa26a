//! A replica serving many accounts: `PostgresFleet` (one flusher, flush transactions carrying
//! many accounts) against one `PostgresStore` per account (a flusher each, today's design), in
//! the same run, on the same cluster and pool.
//!
//! 1. Seeds `WA_BENCH_ACCOUNTS` (default 1,000) accounts with a realistic key mix (see
//!    [`MIX`]) directly in SQL, with values encoded by the store's own codec.
//! 2. Cold start: time until every account is open and serving, in load-all mode and in
//!    budgeted mode (`FleetOptions::memory_budget`, `WA_BENCH_BUDGET_MB`, default 48 MiB),
//!    with the memory the fleet counts per account and the process's RSS.
//! 3. Paced load: an aggregate `WA_BENCH_RATE` (default 2,000) commits/s spread over the
//!    accounts for `WA_BENCH_SECONDS` (default 10), every commit awaited to durability
//!    (`commit` then `flush`). Each commit first reads the key it replaces (as a client reads
//!    a session before encrypting): mostly one session update + one pre-key deletion; some
//!    sender keys, LID mappings and device lists. Reports p50/p99 durable latency, flush
//!    transactions per second (the server's `xact_commit`), keys flushed per second, the
//!    replica's CPU and resident memory.
//! 4. Saturation: every account commits and flushes back to back for 5 s: keys flushed/s.
//!
//! `WA_BENCH_MODES` (default `budgeted,fleet,single`) picks the modes and their order: the
//! allocator keeps what a mode freed, so for RSS figures run one mode per process. Each mode
//! starts after a `CHECKPOINT`, so that none pays for the writes of the seeding or of the mode
//! before it; a line after each phase gives its WAL rate and checkpoints.
//!
//! `cargo bench -p wa-store-postgres --bench fleet_load` (or `cargo xtask bench fleet_load`);
//! `WA_BENCH_FLUSH_ROUNDS` sets the fleet's `flush_rounds` (default: the fleet's own, half the
//! pool up to 4); `WA_BENCH_STATEMENT_ROWS` the accounts' `statement_rows` (a flush round whose writes
//! do not fit in one statement of each kind takes two round trips instead of one). After each
//! phase a line tells when its slowest 1 % of commits started.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use wa_auth::codec::encode_json;
use wa_auth::{KeyId, KeyKind, KeyValue, Persistence, WriteBatch, sample};
use wa_store_postgres::tokio_postgres::{self, NoTls};
use wa_store_postgres::{
    FleetOptions, Pool, PostgresFleet, PostgresStore, PostgresStoreOptions, connect_pool,
};

/// Keys per seeded account, by kind.
const MIX: &[(&str, usize)] = &[
    ("session", 40),
    ("pre-key", 100),
    ("sender-key", 5),
    ("lid-mapping", 30),
    ("device-list", 30),
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn account_id(mode: &str, i: usize) -> String {
    format!("bench-{mode}-{i}")
}

/// The stored JSON text of a sample value of `kind`.
fn sample_text(kind: &str) -> String {
    let value = match kind {
        "session" => KeyValue::Session(support::session_of_size(1, 2200)),
        "sender-key" => KeyValue::SenderKey(sample::sender_key(3)),
        "lid-mapping" => KeyValue::LidMapping("123456789012345".into()),
        "device-list" => KeyValue::DeviceList(vec!["0".into(), "12".into(), "31".into()]),
        _ => {
            let (_, _, value) = sample::one_of_every_kind()
                .into_iter()
                .find(|(k, _, _)| k.as_str() == kind)
                .expect("a sample of the kind");
            value
        }
    };
    encode_json(&value).to_string()
}

/// Seeds `accounts` accounts of `mode` in SQL (leases free, creds present).
async fn seed(connection: &str, mode: &str, accounts: usize) {
    let (client, conn) = tokio_postgres::connect(connection, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let ids: Vec<String> = (0..accounts).map(|i| account_id(mode, i)).collect();
    for (kind, count) in MIX {
        let text = sample_text(kind);
        client
            .execute(
                "INSERT INTO wa_auth.keys (instance_id, kind, key_id, data)
                 SELECT a, $2, n::text, $3::text::jsonb
                 FROM unnest($1::text[]) AS a, generate_series(1, $4::int) AS n",
                &[&ids, kind, &text, &(*count as i32)],
            )
            .await
            .expect("seed keys");
    }
    let creds = serde_json::to_string(&wa_auth::AuthCreds::generate()).expect("creds");
    client
        .execute(
            "INSERT INTO wa_auth.creds (instance_id, data) SELECT a, $2::text::jsonb FROM unnest($1::text[]) AS a",
            &[&ids, &creds],
        )
        .await
        .expect("seed creds");
}

fn options() -> PostgresStoreOptions {
    support::options("template")
}

/// The store under test: one per account, of a fleet or on its own.
type Stores = Vec<Arc<PostgresStore>>;

async fn open_fleet(
    pool: &Pool,
    mode: &str,
    accounts: usize,
    budget: Option<usize>,
) -> (PostgresFleet, Stores, Duration) {
    let started = Instant::now();
    let mut fleet_options = FleetOptions::new().account(options());
    if let Some(rounds) = std::env::var("WA_BENCH_FLUSH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        fleet_options = fleet_options.flush_rounds(rounds);
    }
    fleet_options.memory_budget = budget;
    let fleet = PostgresFleet::open(pool.clone(), fleet_options)
        .await
        .expect("fleet");
    let fleet_ref = &fleet;
    let stores: Stores = futures::stream::iter(0..accounts)
        .map(|i| async move {
            let id = account_id(mode, i);
            Arc::new(fleet_ref.open_account(&id).await.expect("open account"))
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let took = started.elapsed();
    (fleet, stores, took)
}

async fn open_standalone(pool: &Pool, accounts: usize) -> (Stores, Duration) {
    let started = Instant::now();
    let stores: Stores = futures::stream::iter(0..accounts)
        .map(|i| async move {
            let mut options = options();
            options.instance_id = account_id("single", i);
            Arc::new(
                PostgresStore::open(pool.clone(), options)
                    .await
                    .expect("open"),
            )
        })
        .buffer_unordered(8)
        .collect()
        .await;
    (stores, started.elapsed())
}

/// The key commit `n` of an account replaces, read before the commit.
fn read_before(n: u64) -> (KeyKind, KeyId) {
    match n % 20 {
        0 | 1 => (KeyKind::SenderKey, KeyId::new(format!("{}", n % 5 + 1))),
        2 => (KeyKind::LidMapping, KeyId::new(format!("{}", n % 30 + 1))),
        3 => (KeyKind::DeviceList, KeyId::new(format!("{}", n % 30 + 1))),
        _ => (KeyKind::Session, KeyId::new(format!("{}", n % 40 + 1))),
    }
}

/// Commit `n` of an account: the realistic mix.
fn batch(n: u64, session: &KeyValue, sender: &KeyValue) -> WriteBatch {
    let mut batch = WriteBatch::new();
    match n % 20 {
        0 | 1 => {
            batch.put(KeyKind::SenderKey, format!("{}", n % 5 + 1), sender.clone());
        }
        2 => {
            batch.put(
                KeyKind::LidMapping,
                format!("{}", n % 30 + 1),
                KeyValue::LidMapping(n.to_string()),
            );
        }
        3 => {
            batch.put(
                KeyKind::DeviceList,
                format!("{}", n % 30 + 1),
                KeyValue::DeviceList(vec!["0".into(), n.to_string()]),
            );
        }
        _ => {
            batch.put(KeyKind::Session, format!("{}", n % 40 + 1), session.clone());
            batch.delete(KeyKind::PreKey, format!("{}", n % 100 + 1));
        }
    }
    batch
}

/// Process CPU time (user + system) so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .expect("stat")
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// Writes out what earlier modes (and the seeding) left dirty on the server, so that every
/// mode starts from the same server state instead of paying for its predecessor's checkpoint.
async fn checkpoint(connection: &str) {
    let (client, conn) = tokio_postgres::connect(connection, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute("CHECKPOINT")
        .await
        .expect("checkpoint");
}

/// The server's committed transactions, bytes of WAL written and checkpoints so far.
async fn commits_in_db(connection: &str) -> (i64, i64, i64) {
    let (client, conn) = tokio_postgres::connect(connection, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT xact_commit, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8,
                (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)
            FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .expect("stats");
    (row.get(0), row.get(1), row.get(2))
}

/// Drives `stores` at `rate` commits/s in total (0: back to back) for `seconds`; returns the
/// durable latencies (ns), each with when it started (ns after the load began).
async fn drive(stores: &Stores, rate: usize, seconds: u64) -> Vec<(u64, u64)> {
    let session = KeyValue::Session(support::session_of_size(2, 2200));
    let sender = KeyValue::SenderKey(sample::sender_key(4));
    let per_account = if rate == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(stores.len() as f64 / rate as f64)
    };
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (a, store) in stores.iter().enumerate() {
        let (store, session, sender) = (store.clone(), session.clone(), sender.clone());
        let offset = per_account.mul_f64(a as f64 / stores.len() as f64);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut next = start + offset;
            for n in 0u64.. {
                if rate > 0 {
                    tokio::time::sleep_until(next).await;
                    next += per_account;
                }
                if tokio::time::Instant::now() >= end {
                    break;
                }
                let t = Instant::now();
                let at = t.duration_since(start.into_std()).as_nanos() as u64;
                let (kind, id) = read_before(n);
                let read = store.get(&kind, &[id]).await.expect("read");
                assert_eq!(read.len(), 1, "the key read exists");
                store
                    .commit(batch(n, &session, &sender))
                    .await
                    .expect("commit");
                store.flush().await.expect("flush");
                samples.push((at, t.elapsed().as_nanos() as u64));
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("driver"));
    }
    all
}

/// One measured phase; prints a Markdown row.
async fn phase(label: &str, connection: &str, stores: &Stores, rate: usize, seconds: u64) {
    let keys_before: u64 = stores.iter().map(|s| s.metrics().flushed_keys).sum();
    let (tx_before, wal_before, checkpoints_before) = commits_in_db(connection).await;
    let cpu_before = cpu_time();
    let started = Instant::now();
    let timed = drive(stores, rate, seconds).await;
    let mut samples: Vec<u64> = timed.iter().map(|(_, latency)| *latency).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu_before).as_secs_f64();
    let (tx_after, wal_after, checkpoints_after) = commits_in_db(connection).await;
    let (tx, wal) = (tx_after - tx_before, wal_after - wal_before);
    let checkpoints = checkpoints_after - checkpoints_before;
    let keys: u64 = stores.iter().map(|s| s.metrics().flushed_keys).sum::<u64>() - keys_before;
    let commits = samples.len();
    let s = support::summarize(&mut samples);
    println!(
        "| {label} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} % | {:.0} |",
        commits as f64 / elapsed,
        s.p50 / 1000.0,
        s.p99 / 1000.0,
        s.max / 1000.0,
        tx as f64 / elapsed,
        keys as f64 / elapsed,
        cpu / elapsed * 100.0,
        rss_mib(),
    );
    println!(
        "  {label}: WAL {:.1} MB/s, {checkpoints} checkpoint(s) counted in pg_stat_bgwriter; {}",
        wal as f64 / elapsed / 1e6,
        tail_windows(timed)
    );
}

/// Where the slowest 1 % of `timed` commits started: spread over the run (the machine) or
/// bunched in a few windows (something periodic: a checkpoint, a renewal, a vacuum).
fn tail_windows(mut timed: Vec<(u64, u64)>) -> String {
    const WINDOW_NS: u64 = 250_000_000;
    timed.sort_unstable_by_key(|(_, latency)| std::cmp::Reverse(*latency));
    let slowest = &timed[..timed.len().div_ceil(100)];
    let mut windows = std::collections::BTreeMap::<u64, usize>::new();
    for (at, _) in slowest {
        *windows.entry(at / WINDOW_NS).or_default() += 1;
    }
    let mut busiest: Vec<(u64, usize)> = windows.iter().map(|(w, n)| (*w, *n)).collect();
    busiest.sort_unstable_by_key(|(_, n)| std::cmp::Reverse(*n));
    let top: Vec<String> = busiest
        .iter()
        .take(4)
        .map(|(w, n)| format!("{n} at {:.2} s", (w * WINDOW_NS) as f64 / 1e9))
        .collect();
    format!(
        "slowest 1 % ({} commits, from {:.1} ms) started in {} windows of 250 ms; busiest: {}",
        slowest.len(),
        slowest.last().map_or(0.0, |(_, l)| *l as f64 / 1e6),
        windows.len(),
        top.join(", ")
    )
}

/// The cold start of `mode` (`fleet` or `budgeted`), its load phases, and what it held.
async fn run_fleet(
    pool: &Pool,
    connection: &str,
    mode: &str,
    accounts: usize,
    rate: usize,
    seconds: u64,
    budget: Option<usize>,
) {
    checkpoint(connection).await;
    let rss0 = rss_mib();
    let (fleet, stores, took) = open_fleet(pool, mode, accounts, budget).await;
    let rss = rss_mib();
    let memory = fleet.memory();
    let rounds = fleet.options().flush_rounds.map_or_else(
        || "default (half the pool, at most 4)".to_owned(),
        |n| n.to_string(),
    );
    println!("{mode}: flush_rounds {rounds}");
    let label = match budget {
        None => "fleet, load-all".to_owned(),
        Some(b) => format!("fleet, budget {} MiB", b >> 20),
    };
    println!(
        "\n| mode | cold start of {accounts} accounts (s) | RSS after (MiB) | RSS per account | counted per account after open |\n|---|---|---|---|---|"
    );
    println!(
        "| {label} | {:.2} | {rss:.0} (+{:.0}) | {:.0} KB | {:.1} KB |",
        took.as_secs_f64(),
        rss - rss0,
        (rss - rss0) * 1024.0 * 1024.0 / 1000.0 / accounts as f64,
        memory.resident_bytes as f64 / 1000.0 / accounts as f64,
    );
    println!(
        "\n| mode | commits/s | p50 durable (ms) | p99 durable (ms) | max (ms) | flush tx/s | keys/s | replica CPU | RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|"
    );
    phase(
        &format!("{label}, paced"),
        connection,
        &stores,
        rate,
        seconds,
    )
    .await;
    let after_paced = fleet.memory();
    phase(&format!("{label}, saturation"), connection, &stores, 0, 5).await;
    let after = fleet.memory();
    println!(
        "\n| {label}: memory counted by the fleet | resident | pinned | cached | cached keys | loaded on first use | evicted |\n|---|---|---|---|---|---|---|"
    );
    for (when, m) in [
        ("after open", &memory),
        ("after paced", &after_paced),
        ("after saturation", &after),
    ] {
        println!(
            "| {when} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} | {} | {} |",
            m.resident_bytes as f64 / 1048576.0,
            m.pinned_bytes as f64 / 1048576.0,
            m.cached_bytes as f64 / 1048576.0,
            m.cached_keys,
            m.cache_loads,
            m.evictions,
        );
    }
    fleet.close().await.expect("close fleet");
    drop(stores);
}

fn main() {
    support::init_tracing();
    let accounts = env("WA_BENCH_ACCOUNTS", 1000);
    let rate = env("WA_BENCH_RATE", 2000);
    let seconds = env("WA_BENCH_SECONDS", 10) as u64;
    let budget = env("WA_BENCH_BUDGET_MB", 48) << 20;
    let modes =
        std::env::var("WA_BENCH_MODES").unwrap_or_else(|_| "budgeted,fleet,single".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = support::durable_cluster();
    let connection = cluster.connection_string();
    let pool = connect_pool(&connection, 16).expect("pool");
    runtime.block_on(async {
        wa_store_postgres::migrate(&pool, &Default::default())
            .await
            .expect("migrate");
        let modes: Vec<&str> = modes.split(',').map(str::trim).collect();
        for mode in &modes {
            seed(&connection, mode, accounts).await;
        }
        let keys: usize = MIX.iter().map(|(_, n)| n).sum();
        println!("{accounts} accounts of {keys} keys each ({MIX:?}); {rate} commits/s for {seconds} s; modes {modes:?}; RSS before open {:.0} MiB", rss_mib());
        for mode in modes {
            match mode {
                "fleet" => run_fleet(&pool, &connection, mode, accounts, rate, seconds, None).await,
                "budgeted" => run_fleet(&pool, &connection, mode, accounts, rate, seconds, Some(budget)).await,
                "single" => run_single(&pool, &connection, accounts, rate, seconds).await,
                other => panic!("unknown mode {other}"),
            }
        }
    });
}

async fn run_single(pool: &Pool, connection: &str, accounts: usize, rate: usize, seconds: u64) {
    checkpoint(connection).await;
    let rss1 = rss_mib();
    let (single_stores, took) = open_standalone(pool, accounts).await;
    let rss_single = rss_mib();
    println!(
        "\n| mode | commits/s | p50 durable (ms) | p99 durable (ms) | max (ms) | flush tx/s | keys/s | replica CPU | RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|"
    );
    phase(
        "store per account, paced",
        connection,
        &single_stores,
        rate,
        seconds,
    )
    .await;
    phase(
        "store per account, saturation",
        connection,
        &single_stores,
        0,
        5,
    )
    .await;
    println!(
        "\n| store per account, load-all | cold start {:.2} s | RSS {rss_single:.0} (+{:.0}) MiB |",
        took.as_secs_f64(),
        rss_single - rss1
    );
    for store in &single_stores {
        store.close().await.expect("close");
    }
}
