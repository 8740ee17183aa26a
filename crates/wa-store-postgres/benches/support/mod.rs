//! Shared by the benchmarks: a durable throwaway cluster, a realistic session value, and
//! percentile summaries. Each benchmark prints Markdown table rows.

#![allow(dead_code)] // each benchmark uses its own subset

use std::time::Duration;

use wa_auth::KeyValue;
use wa_auth::sample;
use wa_signal::SessionRecord;
use wa_store_postgres::{Pool, PostgresStoreOptions, connect_pool};
use wa_testkit::postgres::{Cluster, ClusterOptions};

/// A cluster with fsync on (benchmarks measure durable writes).
pub fn durable_cluster() -> Cluster {
    Cluster::start_with(ClusterOptions {
        fsync: true,
        settings: Vec::new(),
    })
}

/// A pool on `cluster`.
pub fn pool(cluster: &Cluster) -> Pool {
    connect_pool(&cluster.connection_string(), 8).expect("pool")
}

/// Store options for benchmarks: defaults, plus a generous lease wait.
pub fn options(instance: &str) -> PostgresStoreOptions {
    let options = PostgresStoreOptions::new(instance).lease_wait(Duration::from_secs(30));
    match std::env::var("WA_BENCH_STATEMENT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(rows) => options.statement_rows(rows),
        None => options,
    }
}

/// A session record of at least `min_bytes` (binary): an open session and enough previous
/// sessions, like a contact with a few re-established sessions.
pub fn session_of_size(seed: u8, min_bytes: usize) -> SessionRecord {
    let mut record = sample::session(seed);
    let mut extra = seed.wrapping_add(50);
    while record.encode().len() < min_bytes {
        let more = sample::session(extra);
        record.previous_mut().extend(more.current().cloned());
        extra = extra.wrapping_add(1);
    }
    record
}

/// The binary and JSON sizes of a session value.
pub fn sizes(session: &SessionRecord) -> (usize, usize) {
    let json = wa_auth::codec::encode_json(&KeyValue::Session(session.clone())).to_string();
    (session.encode().len(), json.len())
}

/// Percentiles of `samples` (nanoseconds), as µs.
pub struct Summary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn summarize(samples: &mut [u64]) -> Summary {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i] as f64 / 1000.0
    };
    let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1000.0;
    Summary {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
        mean,
    }
}

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=wa_store_postgres=debug` shows every
/// flush with its size and duration).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}
