//! Faults of the database: the server stops (a failover or restart) during a stream of commits
//! and comes back; it crashes (SIGKILL) after a flush; it stays away until the store reports
//! unhealthy. After `flush`, every committed batch is present exactly once; nothing
//! acknowledged is lost; nothing is dropped silently.
//! Each test runs its own cluster, since it stops it.

mod support;

use std::sync::Arc;

use std::time::{Duration, Instant};
use support::stream_batch;

use wa_auth::{
    AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch,
};
use wa_store_postgres::{PostgresStore, PostgresStoreOptions};
use wa_testkit::postgres::Cluster;

fn patient(instance: &str) -> PostgresStoreOptions {
    PostgresStoreOptions::new(instance)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(250))
        .unhealthy_after(Duration::from_secs(60))
        .lease_ttl(Duration::from_secs(120))
        .lease_wait(Duration::from_secs(20))
}

async fn blocking(cluster: &Arc<Cluster>, f: fn(&Cluster)) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || f(&cluster))
        .await
        .expect("cluster control");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_during_a_server_restart_and_crash_all_land_once() {
    if !support::can_start_clusters(
        "failover::commits_during_a_server_restart_and_crash_all_land_once",
    ) {
        return;
    }
    support::init_tracing();
    let cluster = Arc::new(Cluster::start());
    let pool = support::pool_on(&cluster);
    let instance = support::unique("failover");
    let store = Arc::new(
        PostgresStore::open(pool.clone(), patient(&instance))
            .await
            .expect("open"),
    );
    let mut creds = AuthCreds::generate();

    // A stream of commits; the server goes down a third of the way in and comes back.
    let total = 600;
    let mut outage = None;
    for i in 0..total {
        store
            .commit(stream_batch(i, &mut creds))
            .await
            .expect("commits are accepted during the outage");
        if i == total / 3 {
            blocking(&cluster, Cluster::stop).await;
            outage = Some(Instant::now());
        }
        if outage.is_some_and(|t| t.elapsed() > Duration::from_millis(800)) {
            blocking(&cluster, Cluster::start_again).await;
            outage = None;
        }
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    if outage.is_some() {
        blocking(&cluster, Cluster::start_again).await;
    }
    store.flush().await.expect("flush after the server is back");
    let metrics = store.metrics();
    assert!(metrics.retries > 0, "the outage was seen: {metrics:?}");
    assert!(metrics.healthy && metrics.last_error.is_none());
    assert_eq!(metrics.flushed_batches, total);
    let client = support::client_on(&cluster).await;
    support::assert_stream_present(&client, &instance, total).await;
    drop(client);

    // Acknowledged by flush, then the server crashes: still there after crash recovery.
    blocking(&cluster, Cluster::kill).await;
    blocking(&cluster, Cluster::start_again).await;
    let client = support::client_on(&cluster).await;
    support::assert_stream_present(&client, &instance, total).await;

    // The store carries on over the crash (its pooled connections died with the server).
    for i in total..total + 50 {
        store
            .commit(stream_batch(i, &mut creds))
            .await
            .expect("commit");
    }
    store.flush().await.expect("flush after the crash");
    support::assert_stream_present(&client, &instance, total + 50).await;
    store.close().await.expect("close");

    // And a reopened store holds the same.
    let reopened = PostgresStore::open(pool, patient(&instance))
        .await
        .expect("reopen");
    assert_eq!(
        reopened
            .get_one(&KeyKind::LidMapping, &KeyId::new("counter"))
            .await
            .expect("get"),
        Some(KeyValue::LidMapping((total + 49).to_string()))
    );
    assert_eq!(
        reopened
            .list(&KeyKind::DeviceList)
            .await
            .expect("list")
            .len() as u64,
        total + 50
    );
    reopened.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_turns_unhealthy_and_recovers() {
    if !support::can_start_clusters("failover::unreachable_database_turns_unhealthy_and_recovers") {
        return;
    }
    support::init_tracing();
    let cluster = Arc::new(Cluster::start());
    let pool = support::pool_on(&cluster);
    let instance = support::unique("unhealthy");
    let store = PostgresStore::open(
        pool,
        PostgresStoreOptions::new(&instance)
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .unhealthy_after(Duration::from_millis(700))
            .queue_capacity(64),
    )
    .await
    .expect("open");
    blocking(&cluster, Cluster::stop).await;

    let mut queued = WriteBatch::new();
    for i in 0..60 {
        queued.put(
            KeyKind::LidMapping,
            format!("q-{i}"),
            KeyValue::LidMapping(i.to_string()),
        );
    }
    store.commit(queued).await.expect("queued while healthy");

    // The queue is full: the next commit waits for room, which never comes; once the store is
    // unhealthy the commit fails instead of dropping anything or growing the queue.
    let mut overflow = WriteBatch::new();
    for i in 0..10 {
        overflow.put(
            KeyKind::LidMapping,
            format!("o-{i}"),
            KeyValue::LidMapping(i.to_string()),
        );
    }
    let err = store
        .commit(overflow)
        .await
        .expect_err("no room, then unhealthy");
    assert!(matches!(err, AuthError::Unhealthy { .. }), "{err}");
    let err = store.flush().await.expect_err("not durable");
    assert!(matches!(err, AuthError::Unhealthy { .. }), "{err}");
    let metrics = store.metrics();
    assert!(!metrics.healthy);
    assert!(metrics.last_error.is_some());
    assert_eq!(
        metrics.queued_keys, 60,
        "everything accepted is still queued"
    );
    assert_eq!(metrics.queued_batches, 1);
    assert!(
        store
            .list(&KeyKind::LidMapping)
            .await
            .expect("list")
            .iter()
            .all(|id| id.as_str().starts_with("q-")),
        "the refused batch is not in memory either"
    );

    blocking(&cluster, Cluster::start_again).await;
    store
        .flush()
        .await
        .expect("durable once the database is back");
    assert!(store.is_healthy());
    let client = support::client_on(&cluster).await;
    assert_eq!(support::key_rows(&client, &instance).await, 60);
    let mut after = WriteBatch::new();
    after.put(
        KeyKind::LidMapping,
        "after",
        KeyValue::LidMapping("1".into()),
    );
    store.commit(after).await.expect("commits work again");
    store.close().await.expect("close");
}
