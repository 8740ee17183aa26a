//! Helpers shared by this crate's integration tests: one throwaway cluster per test binary,
//! unique instance ids, and a direct client for looking at the rows.

#![allow(dead_code)] // each test binary uses its own subset

pub mod black_hole;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use wa_auth::{AuthCreds, KeyKind, KeyValue, WriteBatch};
use wa_store_postgres::tokio_postgres::{self, Client, NoTls};
use wa_store_postgres::{Pool, PostgresStoreOptions, connect_pool};
use wa_testkit::postgres::Cluster;

/// The cluster shared by the tests of this binary.
pub fn cluster() -> &'static Cluster {
    Cluster::shared()
}

/// A pool on `cluster`.
pub fn pool_on(cluster: &Cluster) -> Pool {
    connect_pool(&cluster.connection_string(), 8).expect("pool")
}

/// A pool on the shared cluster.
pub fn pool() -> Pool {
    pool_on(cluster())
}

/// An id no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Options for `instance` that wait for a lease being released by a dropped store.
pub fn options(instance: &str) -> PostgresStoreOptions {
    PostgresStoreOptions::new(instance).lease_wait(Duration::from_secs(20))
}

/// A plain client on `cluster`, for looking at rows directly.
pub async fn client_on(cluster: &Cluster) -> Client {
    let (client, connection) = tokio_postgres::connect(&cluster.connection_string(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Batch `i` of a test stream: two keys of its own (`s-<i>-a`, `s-<i>-b`), a running
/// `counter`, a `tmp-<i>` key replacing the previous batch's (a delete and a put), and creds
/// whose `next_pre_key_id` is `i`. After any prefix `0..=m` of the stream the state is fully
/// determined by `m`, so a partial batch cannot go unnoticed.
pub fn stream_batch(i: u64, creds: &mut AuthCreds) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        format!("s-{i}-a"),
        KeyValue::LidMapping(i.to_string()),
    );
    batch.put(
        KeyKind::DeviceList,
        format!("s-{i}-b"),
        KeyValue::DeviceList(vec![i.to_string()]),
    );
    batch.put(
        KeyKind::LidMapping,
        "counter",
        KeyValue::LidMapping(i.to_string()),
    );
    if i > 0 {
        batch.delete(KeyKind::LidMapping, format!("tmp-{}", i - 1));
    }
    batch.put(
        KeyKind::LidMapping,
        format!("tmp-{i}"),
        KeyValue::LidMapping(i.to_string()),
    );
    creds.next_pre_key_id = i as u32;
    batch.set_creds(creds.clone());
    batch
}
