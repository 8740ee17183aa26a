//! Flush throughput: distinct ~2.2 KB sessions committed in batches of 100 and made durable
//! (commit to the end of the final `flush`), against one INSERT statement per key (all in one
//! transaction, so the baseline pays one commit, not one per key).
//!
//! `cargo bench -p wa-store-postgres --bench flush_throughput`

mod support;

use std::time::Instant;

use wa_auth::codec::encode_json;
use wa_auth::{KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::PostgresStore;

const KEYS: usize = 50_000;
const BATCH: usize = 100;
const BASELINE_KEYS: usize = 10_000;

fn main() {
    support::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = support::durable_cluster();
    let pool = support::pool(&cluster);
    let session = support::session_of_size(2, 2200);
    let (binary, json) = support::sizes(&session);
    let session = KeyValue::Session(session);
    println!("session value: {binary} bytes binary, {json} bytes JSON");
    runtime.block_on(async {
        let mut runs = Vec::new();
        for run in 0..3 {
            let store = PostgresStore::open(pool.clone(), support::options(&format!("bench-flush-{run}")))
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
        let (median, flushes) = runs[runs.len() / 2];
        let write_behind = KEYS as f64 / median.as_secs_f64();

        // Baseline: one statement (one round trip) per key.
        let mut client = pool.get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        let upsert = tx
            .prepare(
                "INSERT INTO wa_auth.keys (instance_id, kind, key_id, data) VALUES ($1, $2, $3, $4::text::jsonb)
                 ON CONFLICT (instance_id, kind, key_id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()",
            )
            .await
            .expect("prepare");
        let started = Instant::now();
        for k in 0..BASELINE_KEYS {
            let id = format!("4915{k:09}.0");
            let data = encode_json(&session).to_string();
            tx.execute(&upsert, &[&"bench-per-key", &"session", &id, &data])
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
        let per_key = BASELINE_KEYS as f64 / started.elapsed().as_secs_f64();

        println!();
        println!("| write path | keys | keys/s |");
        println!("|---|---:|---:|");
        println!(
            "| write-behind flush (multi-row `unnest`, median of 3) | {KEYS} | {write_behind:.0} |"
        );
        println!("| one INSERT statement per key (one transaction) | {BASELINE_KEYS} | {per_key:.0} |");
        println!();
        println!(
            "write-behind median run: {:.2} s, {flushes} flush transactions; target >= 20,000 keys/s: {}",
            median.as_secs_f64(),
            if write_behind >= 20_000.0 { "met" } else { "NOT met" }
        );
    });
}
