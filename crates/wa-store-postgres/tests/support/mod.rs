//! Helpers shared by this crate's integration tests: the gates that decide whether a test can
//! run (see `wa_testkit::postgres`), unique instance ids, and a direct client for looking at
//! the rows.
//!
//! A test that needs only a database starts with
//! `if !support::has_database("binary::test") { return; }` and then uses [`pool`] and
//! [`client`] (`$WA_TEST_DATABASE_URL` when set, else the shared throwaway cluster). A test that
//! needs the server itself (its port, files or configuration) starts with
//! `let Some(cluster) = support::cluster("binary::test") else { return };` and uses
//! [`pool_on`] and [`client_on`] with it; one that starts clusters of its own first checks
//! [`can_start_clusters`]. Each gate prints one line and returns `false`/`None` when
//! PostgreSQL is missing (a panic instead under `WA_REQUIRE_POSTGRES=1`).

#![allow(dead_code)] // each test binary uses its own subset

pub mod black_hole;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use wa_auth::{AuthCreds, KeyKind, KeyValue, WriteBatch};
use wa_store_postgres::tokio_postgres::{self, Client, NoTls};
use wa_store_postgres::{Pool, PostgresStoreOptions, connect_pool};
use wa_testkit::postgres::{self, Cluster};

/// Whether `test`, which needs only a database, can run (see the module docs).
pub fn has_database(test: &str) -> bool {
    postgres::database(test).is_some()
}

/// The shared throwaway cluster for `test`, which needs the server itself; `None` when it
/// must be skipped (see the module docs).
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    postgres::cluster(test)
}

/// Whether `test`, which starts clusters of its own, can run (see the module docs).
pub fn can_start_clusters(test: &str) -> bool {
    postgres::can_start_clusters(test)
}

/// The connection string of the database of a test that passed [`has_database`].
pub fn connection_string() -> String {
    postgres::database("a test past its gate")
        .expect("the test checked has_database first")
        .connection_string()
}

/// A pool on `cluster`.
pub fn pool_on(cluster: &Cluster) -> Pool {
    connect_pool(&cluster.connection_string(), 8).expect("pool")
}

/// A pool on the database of a test that passed [`has_database`].
pub fn pool() -> Pool {
    connect_pool(&connection_string(), 8).expect("pool")
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
    client_for(&cluster.connection_string()).await
}

/// A plain client on the database of a test that passed [`has_database`].
pub async fn client() -> Client {
    client_for(&connection_string()).await
}

async fn client_for(connection: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(connection, NoTls)
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

/// A batch that puts LID mapping `id` = `value`.
pub fn lid_batch(id: &str, value: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, id, KeyValue::LidMapping(value.into()));
    batch
}

/// The stored value of LID mapping `id` of `instance`, if any.
pub async fn stored_lid(client: &Client, instance: &str, id: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT data #>> '{}' FROM wa_auth.keys WHERE instance_id = $1 AND kind = 'lid-mapping' AND key_id = $2",
            &[&instance, &id],
        )
        .await
        .expect("query")
        .map(|row| row.get(0))
}

/// Opens `n` new accounts (ids from `prefix`) on `fleet`.
pub async fn open_accounts(
    fleet: &wa_store_postgres::PostgresFleet,
    prefix: &str,
    n: usize,
) -> Vec<std::sync::Arc<wa_store_postgres::PostgresStore>> {
    let mut stores = Vec::new();
    for _ in 0..n {
        let id = unique(prefix);
        stores.push(std::sync::Arc::new(
            fleet.open_account(&id).await.expect("open account"),
        ));
    }
    stores
}

/// How many key rows `instance` has, counted by the database itself.
pub async fn key_rows(client: &Client, instance: &str) -> u64 {
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM wa_auth.keys WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("count")
        .get(0);
    rows as u64
}

/// Checks, in the database itself, that batches `0..n` are all there exactly once.
pub async fn assert_stream_present(client: &Client, instance: &str, n: u64) {
    // Two keys per batch, the counter and one tmp key.
    assert_eq!(
        key_rows(client, instance).await,
        2 * n + 2,
        "exactly the stream's rows, each once"
    );
    let missing: i64 = client
        .query_one(
            "SELECT count(*) FROM generate_series(0, $2::bigint - 1) AS i
             WHERE NOT EXISTS (SELECT 1 FROM wa_auth.keys k WHERE k.instance_id = $1
                                 AND k.kind = 'lid-mapping' AND k.key_id = 's-' || i || '-a'
                                 AND k.data = to_jsonb(i::text))
                OR NOT EXISTS (SELECT 1 FROM wa_auth.keys k WHERE k.instance_id = $1
                                 AND k.kind = 'device-list' AND k.key_id = 's-' || i || '-b'
                                 AND k.data = jsonb_build_array(i::text))",
            &[&instance, &(n as i64)],
        )
        .await
        .expect("missing")
        .get(0);
    assert_eq!(
        missing, 0,
        "every batch's keys are present with their values"
    );
    let last = (n - 1).to_string();
    let row = client
        .query_one(
            "SELECT (SELECT data #>> '{}' FROM wa_auth.keys WHERE instance_id = $1 AND key_id = 'counter'),
                    (SELECT key_id FROM wa_auth.keys WHERE instance_id = $1 AND key_id LIKE 'tmp-%'),
                    (SELECT (data ->> 'nextPreKeyId') FROM wa_auth.creds WHERE instance_id = $1)",
            &[&instance],
        )
        .await
        .expect("last batch");
    let (counter, tmp, creds): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(counter, last);
    assert_eq!(tmp, format!("tmp-{last}"));
    assert_eq!(creds, last);
}
