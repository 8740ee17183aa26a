//! Flush throughput: distinct session keys committed in batches of 100 and made durable
//! (from the first commit to the end of the final `flush`), for sessions of ~2.4 KB and
//! ~3.2 KB as stored JSON, against one INSERT statement per key (all in one transaction, so the
//! baseline pays one commit, not one per key).
//!
//! `cargo bench -p wa-store-postgres --bench flush_throughput`

mod support;

use std::time::{Duration, Instant};

use wa_auth::codec::encode_json;
use wa_auth::{KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::{Pool, PostgresStore};

const KEYS: usize = 50_000;
const BATCH: usize = 100;
const BASELINE_KEYS: usize = 10_000;

/// Median duration and flush count of three runs writing `KEYS` sessions.
async fn write_behind(pool: &Pool, session: &KeyValue, label: &str) -> (Duration, u64) {
    let mut runs = Vec::new();
    for run in 0..3 {
        let store = PostgresStore::open(
            pool.clone(),
            support::options(&format!("bench-flush-{label}-{run}")),
        )
        .await
        .expect("open");
        let batches: Vec<WriteBatch> = (0..KEYS / BATCH)
            .map(|b| {
                let mut batch = WriteBatch::new();
                for k in 0..BATCH {
                    batch.put(
                        KeyKind::Session,
                        format!("4915{:09}.0", b * BATCH + k),
                        session.clone(),
                    );
                }
                batch
            })
            .collect();
        let started = Instant::now();
        for batch in batches {
            store.commit(batch).await.expect("commit");
        }
        store.flush().await.expect("flush");
        let elapsed = started.elapsed();
        let metrics = store.metrics();
        store.close().await.expect("close");
        runs.push((elapsed, metrics.flushes));
    }
    runs.sort();
    runs[runs.len() / 2]
}

/// Keys per second writing `BASELINE_KEYS` sessions with one statement each.
async fn per_key(pool: &Pool, session: &KeyValue, label: &str) -> f64 {
    let mut client = pool.get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    let upsert = tx
        .prepare(
            "INSERT INTO wa_auth.keys (instance_id, kind, key_id, data) VALUES ($1, $2, $3, $4::text::jsonb)
             ON CONFLICT (instance_id, kind, key_id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()",
        )
        .await
        .expect("prepare");
    let instance = format!("bench-per-key-{label}");
    let started = Instant::now();
    for k in 0..BASELINE_KEYS {
        let id = format!("4915{k:09}.0");
        let data = encode_json(session).to_string();
        tx.execute(&upsert, &[&instance, &"session", &id, &data])
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    BASELINE_KEYS as f64 / started.elapsed().as_secs_f64()
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
    let mut rows = Vec::new();
    for (label, min_binary) in [("small", 1650), ("large", 2200)] {
        let session = support::session_of_size(2, min_binary);
        let (binary, json) = support::sizes(&session);
        let session = KeyValue::Session(session);
        let (median, flushes) = runtime.block_on(write_behind(&pool, &session, label));
        let baseline = runtime.block_on(per_key(&pool, &session, label));
        rows.push((
            binary,
            json,
            KEYS as f64 / median.as_secs_f64(),
            median,
            flushes,
            baseline,
        ));
    }

    println!();
    println!(
        "| session value (binary / stored JSON) | write-behind flush, multi-row `unnest` (50,000 keys, median of 3) | one INSERT per key (10,000 keys, one transaction) |"
    );
    println!("|---|---:|---:|");
    for (binary, json, keys_per_s, median, flushes, baseline) in &rows {
        println!(
            "| {binary} B / {json} B | {keys_per_s:.0} keys/s ({:.2} s, {flushes} flush transactions) | {baseline:.0} keys/s |",
            median.as_secs_f64()
        );
    }
    println!();
    for (binary, json, keys_per_s, ..) in &rows {
        println!(
            "target >= 20,000 keys/s with {binary} B / {json} B sessions: {}",
            if *keys_per_s >= 20_000.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
