//! Caller-side commit latency: the write-behind store's `commit` (validate, encode, apply to
//! memory, queue) against a synchronous store that upserts each commit in its own database
//! transaction. Each commit is what decrypting one message produces: a ~2.2 KB session update
//! and a consumed pre-key deleted.
//!
//! `cargo bench -p wa-store-postgres --bench commit_latency`

mod support;

use std::time::Instant;

use wa_auth::codec::encode_json;
use wa_auth::{KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::PostgresStore;

const SESSIONS: usize = 1000;
const WRITE_BEHIND_COMMITS: usize = 50_000;
const SYNC_COMMITS: usize = 2_000;

fn batch(i: usize, session: &KeyValue) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::Session,
        format!("49151{:08}.0", i % SESSIONS),
        session.clone(),
    );
    batch.delete(KeyKind::PreKey, (i % 5000).to_string());
    batch
}

fn main() {
    support::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = support::durable_cluster();
    let pool = support::pool(&cluster);
    let session = support::session_of_size(1, 2200);
    let (binary, json) = support::sizes(&session);
    let session = KeyValue::Session(session);
    println!("session value: {binary} bytes binary, {json} bytes JSON");
    runtime.block_on(async {
        // Write-behind.
        let store = PostgresStore::open(pool.clone(), support::options("bench-commit"))
            .await
            .expect("open");
        for i in 0..2000 {
            store.commit(batch(i, &session)).await.expect("warm-up");
        }
        store.flush().await.expect("flush");
        let mut samples = Vec::with_capacity(WRITE_BEHIND_COMMITS);
        let started = Instant::now();
        for i in 0..WRITE_BEHIND_COMMITS {
            let batch = batch(i, &session);
            let t = Instant::now();
            store.commit(batch).await.expect("commit");
            samples.push(t.elapsed().as_nanos() as u64);
        }
        store.flush().await.expect("flush");
        let total = started.elapsed();
        let metrics = store.metrics();
        store.close().await.expect("close");
        let wb = support::summarize(&mut samples);

        // Synchronous: one upsert statement (autocommit, one round trip, durable) per commit.
        let client = pool.get().await.expect("connection");
        let upsert = client
            .prepare(
                "INSERT INTO wa_auth.keys (instance_id, kind, key_id, data) VALUES ($1, $2, $3, $4::text::jsonb)
                 ON CONFLICT (instance_id, kind, key_id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()",
            )
            .await
            .expect("prepare");
        let mut samples = Vec::with_capacity(SYNC_COMMITS);
        for i in 0..SYNC_COMMITS {
            let id = format!("49151{:08}.0", i % SESSIONS);
            let value = session.clone();
            let t = Instant::now();
            let data = encode_json(&value).to_string();
            client
                .execute(&upsert, &[&"bench-sync", &"session", &id, &data])
                .await
                .expect("upsert");
            samples.push(t.elapsed().as_nanos() as u64);
        }
        let sync = support::summarize(&mut samples);

        println!();
        println!("| commit path | commits | p50 | p90 | p99 | p99.9 | max | mean |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (name, n, s) in [
            ("write-behind `commit`", WRITE_BEHIND_COMMITS, &wb),
            ("synchronous upsert per commit", SYNC_COMMITS, &sync),
        ] {
            println!(
                "| {name} | {n} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
                s.p50, s.p90, s.p99, s.p999, s.max, s.mean
            );
        }
        println!();
        println!(
            "write-behind: {WRITE_BEHIND_COMMITS} commits + final flush in {:.2} s; {} flushes wrote {} rows (coalesced over {SESSIONS} sessions); target p99 < 50 µs: {}",
            total.as_secs_f64(),
            metrics.flushes,
            metrics.flushed_keys,
            if wb.p99 < 50.0 { "met" } else { "NOT met" }
        );
    });
}
