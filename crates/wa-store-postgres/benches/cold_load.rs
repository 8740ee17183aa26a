//! Cold load: `PostgresStore::open` (schema check, lease, one streamed query taking every key
//! into memory) of an instance with 100,000 keys, the first time right after a server restart
//! (empty PostgreSQL buffer cache; the OS page cache stays warm). Keys are kept in their stored
//! form and decoded when read, so the benchmark also reports decoding every key once
//! (`load_all`), which a running client spreads over its first reads. Two instances: all
//! ~2.2 KB sessions (the worst case), and a realistic mix.
//!
//! `cargo bench -p wa-store-postgres --bench cold_load`

mod support;

use std::time::{Duration, Instant};

use wa_auth::sample;
use wa_auth::{KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord};
use wa_store_postgres::{Pool, PostgresStore};

const KEYS: usize = 100_000;

/// `(kind, id, value)` number `i` of the realistic mix: 50 % sessions, 20 % pre-keys,
/// 10 % sender keys, 10 % LID mappings, 10 % device lists.
fn mixed(
    i: usize,
    session: &KeyValue,
    sender_key: &KeyValue,
    pre_key: &KeyPair,
) -> (KeyKind, String, KeyValue) {
    match i % 10 {
        0..5 => (KeyKind::Session, format!("4915{i:09}.0"), session.clone()),
        5 | 6 => (
            KeyKind::PreKey,
            i.to_string(),
            KeyValue::PreKey(PreKeyRecord {
                id: PreKeyId(i as u32),
                key_pair: pre_key.clone(),
            }),
        ),
        7 => (
            KeyKind::SenderKey,
            format!("1203630{i}@g.us::4915{i}::0"),
            sender_key.clone(),
        ),
        8 => (
            KeyKind::LidMapping,
            format!("4915{i:09}"),
            KeyValue::LidMapping(format!("1000{i:011}")),
        ),
        _ => (
            KeyKind::DeviceList,
            format!("4915{i:09}"),
            KeyValue::DeviceList(vec!["0".into(), "2".into()]),
        ),
    }
}

async fn fill(pool: &Pool, instance: &str, entry: impl Fn(usize) -> (KeyKind, String, KeyValue)) {
    let store = PostgresStore::open(pool.clone(), support::options(instance))
        .await
        .expect("open");
    let mut batch = WriteBatch::new();
    for i in 0..KEYS {
        let (kind, id, value) = entry(i);
        batch.put(kind, id, value);
        if batch.key_count() == 1000 {
            store
                .commit(std::mem::take(&mut batch))
                .await
                .expect("commit");
        }
    }
    store.commit(batch).await.expect("commit");
    store.flush().await.expect("flush");
    store.close().await.expect("close");
}

/// The time to open, and to decode every key afterwards.
async fn time_open(pool: &Pool, instance: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let store = PostgresStore::open(pool.clone(), support::options(instance))
        .await
        .expect("open");
    let opened = started.elapsed();
    let started = Instant::now();
    let all = store.load_all().await.expect("decode every key");
    let decoded = started.elapsed();
    assert_eq!(all.key_count(), KEYS);
    store.close().await.expect("close");
    (opened, decoded)
}

fn main() {
    support::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = support::durable_cluster();
    let session = support::session_of_size(3, 2200);
    let (binary, json) = support::sizes(&session);
    let session = KeyValue::Session(session);
    let sender_key = KeyValue::SenderKey(sample::sender_key(4));
    let pre_key = KeyPair::generate(&mut wa_auth::SystemProvider::new());
    println!("session value: {binary} bytes binary, {json} bytes JSON");

    let pool = support::pool(&cluster);
    runtime.block_on(async {
        fill(&pool, "bench-load-sessions", |i| {
            (KeyKind::Session, format!("4915{i:09}.0"), session.clone())
        })
        .await;
        fill(&pool, "bench-load-mixed", |i| {
            mixed(i, &session, &sender_key, &pre_key)
        })
        .await;
    });
    drop(pool);
    let sizes = cluster.psql(
        "SELECT instance_id, pg_size_pretty(sum(pg_column_size(data))::bigint) FROM wa_auth.keys GROUP BY 1 ORDER BY 1",
    );

    let mut rows = Vec::new();
    for instance in ["bench-load-sessions", "bench-load-mixed"] {
        let mut times = Vec::new();
        for run in 0..3 {
            if run == 0 {
                cluster.restart();
            }
            let pool = support::pool(&cluster);
            times.push(runtime.block_on(time_open(&pool, instance)));
        }
        rows.push((instance, times));
    }

    println!();
    println!("stored JSONB sizes:\n{sizes}");
    println!();
    println!(
        "| instance (100,000 keys) | open, first after server restart | open, 2nd | open, 3rd | then decoding every key (`load_all`), median |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (instance, times) in &rows {
        let mut decode: Vec<Duration> = times.iter().map(|t| t.1).collect();
        decode.sort();
        println!(
            "| {instance} | {:.2} s | {:.2} s | {:.2} s | {:.2} s |",
            times[0].0.as_secs_f64(),
            times[1].0.as_secs_f64(),
            times[2].0.as_secs_f64(),
            decode[1].as_secs_f64()
        );
    }
    let worst = rows
        .iter()
        .flat_map(|(_, t)| t.iter().map(|t| t.0))
        .max()
        .unwrap_or_default();
    println!();
    println!(
        "target < 2 s (open): {}",
        if worst < Duration::from_secs(2) {
            "met"
        } else {
            "NOT met"
        }
    );
}
