//! A fleet runs several flush rounds at once over disjoint sets of accounts: a round stalled
//! on one account (a row locked by another transaction) holds up no other account's durable
//! commits, and an account's batches still land in order although its successive flushes go
//! out in different rounds, next to rounds in flight for other accounts.

mod support;

use std::time::{Duration, Instant};

use support::{lid_batch, open_accounts};
use wa_auth::{AuthError, KeyKind, KeyValue, Persistence};
use wa_store_postgres::{FleetOptions, PostgresFleet, PostgresStoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_round_does_not_delay_another_account_s_durable_commits() {
    if !support::has_database(
        "flush_rounds::a_stalled_round_does_not_delay_another_account_s_durable_commits",
    ) {
        return;
    }
    support::init_tracing();
    // Long bounds: A's round waits for the locked row for as long as the test holds it.
    let account = PostgresStoreOptions::new("template")
        .lease_ttl(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(20))
        .lock_timeout(Duration::from_secs(15));
    let options = FleetOptions::new().account(account).flush_rounds(4);
    let fleet = PostgresFleet::open(support::pool(), options)
        .await
        .expect("open fleet");
    let stores = open_accounts(&fleet, "rounds-stall", 2).await;
    let (a, b) = (stores[0].clone(), stores[1].clone());
    a.commit(lid_batch("k", "1")).await.expect("commit");
    a.flush().await.expect("flush");

    // Another transaction holds A's key row: A's next round stalls on it.
    let client = support::client().await;
    let locker = support::client().await;
    locker.batch_execute("BEGIN").await.expect("begin");
    locker
        .execute(
            "SELECT 1 FROM wa_auth.keys WHERE instance_id = $1 AND key_id = 'k' FOR UPDATE",
            &[&a.instance_id()],
        )
        .await
        .expect("lock");
    a.commit(lid_batch("k", "2")).await.expect("commit");
    let a_flush = tokio::spawn({
        let a = a.clone();
        async move { a.flush().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a_flush.is_finished(), "A's round waits for the locked row");

    // B's commits become durable while A's round is stalled, many times over.
    let started = Instant::now();
    for i in 0..20 {
        b.commit(lid_batch("k", &i.to_string()))
            .await
            .expect("commit");
        b.flush()
            .await
            .expect("B flushes while A's round is stalled");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "20 durable commits of B took {took:?}"
    );
    assert!(!a_flush.is_finished(), "A's round still waits");
    assert_eq!(
        support::stored_lid(&client, b.instance_id(), "k")
            .await
            .as_deref(),
        Some("19")
    );
    assert_eq!(
        support::stored_lid(&client, a.instance_id(), "k")
            .await
            .as_deref(),
        Some("1")
    );

    locker.batch_execute("ROLLBACK").await.expect("unlock");
    tokio::time::timeout(Duration::from_secs(20), a_flush)
        .await
        .expect("A's round ends once the row is free")
        .expect("task")
        .expect("A's flush succeeds");
    assert_eq!(
        support::stored_lid(&client, a.instance_id(), "k")
            .await
            .as_deref(),
        Some("2")
    );
    assert!(a.metrics().healthy && b.metrics().healthy);
    fleet.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_s_batches_land_in_order_across_concurrent_rounds() {
    if !support::has_database(
        "flush_rounds::each_account_s_batches_land_in_order_across_concurrent_rounds",
    ) {
        return;
    }
    support::init_tracing();
    // One account per round (one row), four rounds at once, no gathering: each account's
    // successive flushes go out in different rounds, beside other accounts' rounds.
    let account = PostgresStoreOptions::new("template").flush_interval(Duration::ZERO);
    let options = FleetOptions::new()
        .account(account)
        .fleet_batch_keys(1)
        .flush_rounds(4);
    let fleet = PostgresFleet::open(support::pool(), options)
        .await
        .expect("open fleet");
    let stores = open_accounts(&fleet, "rounds-order", 6).await;
    let batches = 120u32;
    let mut tasks = Vec::new();
    for store in &stores {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..batches {
                // The same key rewritten by every batch: a batch landing after a newer one
                // would leave an older value behind.
                let mut batch = lid_batch("latest", &i.to_string());
                batch.put(
                    KeyKind::LidMapping,
                    format!("seen-{i}"),
                    KeyValue::LidMapping(i.to_string()),
                );
                store.commit(batch).await?;
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
                if i % 30 == 29 {
                    store.flush().await?;
                }
            }
            store.flush().await?;
            Ok::<_, AuthError>(store.metrics().flushes)
        }));
    }
    let mut flushes = 0;
    for task in tasks {
        flushes += task
            .await
            .expect("task")
            .expect("commits and flushes succeed");
    }
    assert!(flushes > stores.len() as u64, "{flushes} flushes");
    let client = support::client().await;
    for store in &stores {
        let id = store.instance_id();
        let last = (batches - 1).to_string();
        assert_eq!(
            support::stored_lid(&client, id, "latest").await.as_deref(),
            Some(last.as_str()),
            "{id}"
        );
        let seen: i64 = client
            .query_one(
                "SELECT count(*) FROM wa_auth.keys WHERE instance_id = $1 AND key_id LIKE 'seen-%'",
                &[&id],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(seen, i64::from(batches), "{id}");
    }
    fleet.close().await.expect("close");
}

#[tokio::test]
async fn zero_flush_rounds_is_refused() {
    if !support::has_database("flush_rounds::zero_flush_rounds_is_refused") {
        return;
    }
    let options = FleetOptions::new().flush_rounds(0);
    match PostgresFleet::open(support::pool(), options).await {
        Err(AuthError::Invalid { what, .. }) => assert!(what.contains("flush_rounds"), "{what}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
