//! A fleet: many accounts on one replica with one flusher. Every account's commits land as a
//! store of its own would write them; flushes carry many accounts; a fenced account, or one
//! whose lease row is locked, holds up and poisons no other; leases are renewed together;
//! close flushes and releases everything; ownership events fire.

mod support;

use std::time::{Duration, Instant};

use support::{lid_batch, open_accounts, stream_batch};
use wa_auth::{AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Persistence};
use wa_store_postgres::{
    FleetOptions, Ownership, OwnershipEvent, PostgresFleet, PostgresStoreOptions,
};

fn account_options() -> PostgresStoreOptions {
    PostgresStoreOptions::new("template").lease_wait(Duration::from_secs(20))
}

async fn open_fleet(account: PostgresStoreOptions) -> PostgresFleet {
    PostgresFleet::open(support::pool(), FleetOptions::new().account(account))
        .await
        .expect("open fleet")
}

async fn lease_row(instance: &str) -> (Option<String>, i64) {
    let client = support::client().await;
    let row = client
        .query_one(
            "SELECT owner_id, epoch FROM wa_auth.leases WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("lease row");
    (row.get(0), row.get(1))
}

async fn stored_lid(instance: &str, id: &str) -> Option<String> {
    support::stored_lid(&support::client().await, instance, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_accounts_land_exactly_and_share_flush_transactions() {
    if !support::has_database("fleet::many_accounts_land_exactly_and_share_flush_transactions") {
        return;
    }
    support::init_tracing();
    let fleet = open_fleet(account_options()).await;
    let stores = open_accounts(&fleet, "fleet-many", 24).await;
    let batches = 40u64;
    let mut tasks = Vec::new();
    for store in &stores {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut creds = AuthCreds::generate();
            for i in 0..batches {
                store.commit(stream_batch(i, &mut creds)).await?;
                if i % 10 == 9 {
                    store.flush().await?;
                }
            }
            store.flush().await
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("every commit and flush succeeds");
    }
    let client = support::client().await;
    let mut flushes = 0;
    for store in &stores {
        support::assert_stream_present(&client, store.instance_id(), batches).await;
        let metrics = store.metrics();
        assert_eq!(metrics.flushed_batches, batches, "{metrics:?}");
        assert!(metrics.healthy && !metrics.fenced);
        flushes += metrics.flushes;
    }
    // One flush transaction carries many accounts: the accounts' flushes outnumber the
    // transactions, which `last_flush_at` tells apart (one `now()` per transaction).
    let ids: Vec<String> = stores.iter().map(|s| s.instance_id().to_owned()).collect();
    let shared: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT last_flush_at FROM wa_auth.leases
               WHERE instance_id = ANY($1) GROUP BY last_flush_at HAVING count(*) > 1) AS t",
            &[&ids],
        )
        .await
        .expect("shared flushes")
        .get(0);
    assert!(flushes >= stores.len() as u64 * 4, "{flushes}");
    assert!(
        shared >= 1,
        "the last flush of several accounts was one transaction"
    );

    // Close: every lease released; the accounts reopen on another fleet with their keys.
    fleet.close().await.expect("close");
    for id in &ids {
        assert_eq!(lease_row(id).await.0, None, "released");
    }
    let again = open_fleet(account_options()).await;
    let store = again.open_account(&ids[3]).await.expect("reopen");
    let counter = store
        .get(&KeyKind::LidMapping, &[KeyId::new("counter")])
        .await
        .expect("get");
    assert_eq!(
        counter,
        vec![(
            KeyId::new("counter"),
            KeyValue::LidMapping((batches - 1).to_string())
        )]
    );
    assert!(matches!(
        again.open_account(&ids[3]).await,
        Err(AuthError::AlreadyOwned { .. })
    ));
    again.close().await.expect("close");
    assert!(matches!(
        store.commit(lid_batch("x", "1")).await,
        Err(AuthError::Closed)
    ));
    assert!(matches!(
        again.open_account(&ids[4]).await,
        Err(AuthError::Closed)
    ));
}

/// A batch of two LID mappings, `id` and `id-2`: with `statement_rows(1)` no round of it fits
/// in one statement of each kind, so the round takes its two round trips (check, then writes).
fn two_lids(id: &str, value: &str) -> wa_auth::WriteBatch {
    let mut batch = lid_batch(id, value);
    batch.put(
        KeyKind::LidMapping,
        format!("{id}-2"),
        KeyValue::LidMapping(value.into()),
    );
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_account_neither_blocks_nor_poisons_the_others() {
    if !support::has_database("fleet::a_fenced_account_neither_blocks_nor_poisons_the_others") {
        return;
    }
    fenced_account_scenario(account_options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_account_neither_blocks_nor_poisons_the_others_in_two_round_trips() {
    if !support::has_database(
        "fleet::a_fenced_account_neither_blocks_nor_poisons_the_others_in_two_round_trips",
    ) {
        return;
    }
    fenced_account_scenario(account_options().statement_rows(1)).await;
}

async fn fenced_account_scenario(account: PostgresStoreOptions) {
    support::init_tracing();
    let fleet = open_fleet(account).await;
    let mut events = fleet.events();
    let stores = open_accounts(&fleet, "fleet-fenced", 3).await;
    let (a, b, c) = (&stores[0], &stores[1], &stores[2]);
    let mut b_ownership = b.ownership();
    for store in &stores {
        store
            .commit(lid_batch("before", "1"))
            .await
            .expect("commit");
        store.flush().await.expect("flush");
    }
    // Another owner takes B over (as a replica after expiry would).
    let client = support::client().await;
    client
        .execute(
            "UPDATE wa_auth.leases SET owner_id = 'thief', epoch = epoch + 1 WHERE instance_id = $1",
            &[&b.instance_id()],
        )
        .await
        .expect("take over");
    // All three commit; one flush round carries them.
    for store in &stores {
        store
            .commit(two_lids("after", "2"))
            .await
            .expect("commit is queued");
    }
    let (ra, rb, rc) = tokio::join!(a.flush(), b.flush(), c.flush());
    ra.expect("A is unaffected");
    rc.expect("C is unaffected");
    assert!(matches!(rb, Err(AuthError::OwnershipLost { .. })), "{rb:?}");
    assert_eq!(
        stored_lid(a.instance_id(), "after").await.as_deref(),
        Some("2")
    );
    assert_eq!(
        stored_lid(c.instance_id(), "after").await.as_deref(),
        Some("2")
    );
    for id in ["after", "after-2"] {
        assert_eq!(
            stored_lid(b.instance_id(), id).await,
            None,
            "B wrote nothing"
        );
    }
    for store in [a, c] {
        let stored = stored_lid(store.instance_id(), "after-2").await;
        assert_eq!(stored.as_deref(), Some("2"));
    }
    assert_eq!(lease_row(b.instance_id()).await.0.as_deref(), Some("thief"));

    // B's own watch and the fleet's channel both said so.
    tokio::time::timeout(
        Duration::from_secs(5),
        b_ownership.wait_for(|o| matches!(o, Ownership::TakenOver { .. })),
    )
    .await
    .expect("in time")
    .expect("watch");
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event: OwnershipEvent = events.recv().await.expect("event");
            if event.instance_id == b.instance_id() {
                return event;
            }
        }
    })
    .await
    .expect("event in time");
    assert!(
        matches!(event.ownership, Ownership::TakenOver { .. }),
        "{event:?}"
    );
    // The others keep going.
    for store in [a, c] {
        store.commit(lid_batch("later", "3")).await.expect("commit");
        store.flush().await.expect("flush");
        assert!(store.is_healthy());
    }
    assert!(matches!(
        b.commit(lid_batch("x", "1")).await,
        Err(AuthError::OwnershipLost { .. })
    ));
    fleet
        .close()
        .await
        .expect("a fenced account does not fail close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_lease_row_delays_only_its_own_account() {
    if !support::has_database("fleet::a_locked_lease_row_delays_only_its_own_account") {
        return;
    }
    locked_row_scenario(account_options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_lease_row_delays_only_its_own_account_in_two_round_trips() {
    if !support::has_database(
        "fleet::a_locked_lease_row_delays_only_its_own_account_in_two_round_trips",
    ) {
        return;
    }
    locked_row_scenario(account_options().statement_rows(1)).await;
}

async fn locked_row_scenario(account: PostgresStoreOptions) {
    support::init_tracing();
    let fleet = open_fleet(account).await;
    let stores = open_accounts(&fleet, "fleet-locked", 2).await;
    let (a, b) = (&stores[0], &stores[1]);
    // Another transaction (a takeover attempt, an administrator) holds B's lease row.
    let locker = support::client().await;
    locker.batch_execute("BEGIN").await.expect("begin");
    locker
        .execute(
            "SELECT 1 FROM wa_auth.leases WHERE instance_id = $1 FOR UPDATE",
            &[&b.instance_id()],
        )
        .await
        .expect("lock");
    a.commit(two_lids("k", "a")).await.expect("commit");
    b.commit(two_lids("k", "b")).await.expect("commit");
    let b_flush = {
        let b = b.clone();
        tokio::spawn(async move { b.flush().await })
    };
    let started = Instant::now();
    a.flush().await.expect("A flushes while B's row is locked");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stored_lid(a.instance_id(), "k").await.as_deref(), Some("a"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b_flush.is_finished(), "B waits for its row");
    assert_eq!(stored_lid(b.instance_id(), "k").await, None);
    assert_eq!(stored_lid(b.instance_id(), "k-2").await, None);
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    tokio::time::timeout(Duration::from_secs(10), b_flush)
        .await
        .expect("B flushes once its row is free")
        .expect("task")
        .expect("flush");
    assert_eq!(stored_lid(b.instance_id(), "k").await.as_deref(), Some("b"));
    assert_eq!(
        stored_lid(b.instance_id(), "k-2").await.as_deref(),
        Some("b")
    );
    assert!(b.metrics().retries > 0);
    fleet.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_leases_are_renewed_together_in_one_statement() {
    if !support::has_database("fleet::idle_leases_are_renewed_together_in_one_statement") {
        return;
    }
    support::init_tracing();
    let account = account_options()
        .lease_ttl(Duration::from_secs(3))
        .lease_renew_interval(Duration::from_millis(600));
    let fleet = open_fleet(account).await;
    let stores = open_accounts(&fleet, "fleet-renew", 12).await;
    let ids: Vec<String> = stores.iter().map(|s| s.instance_id().to_owned()).collect();
    let opened = lease_renewed_at(&ids).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let renewed = lease_renewed_at(&ids).await;
    assert_eq!(
        renewed.len(),
        1,
        "every lease renewed by the same statement: {renewed:?}"
    );
    assert!(opened.len() > 1, "opened one by one");
    for store in &stores {
        let metrics = store.metrics();
        assert!(metrics.lease_renewals >= 2, "{metrics:?}");
        assert!(metrics.healthy);
    }
    // Still ours long after the first lease would have expired.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for store in &stores {
        store.commit(lid_batch("k", "v")).await.expect("commit");
        store.flush().await.expect("flush");
    }
    fleet.close().await.expect("close");
}

/// The distinct `renewed_at` of `ids`' leases.
async fn lease_renewed_at(ids: &[String]) -> Vec<String> {
    let client = support::client().await;
    client
        .query(
            "SELECT DISTINCT renewed_at::text FROM wa_auth.leases WHERE instance_id = ANY($1)",
            &[&ids],
        )
        .await
        .expect("renewed_at")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_and_releases_every_account_and_a_dropped_store_frees_its_own() {
    if !support::has_database(
        "fleet::close_flushes_and_releases_every_account_and_a_dropped_store_frees_its_own",
    ) {
        return;
    }
    support::init_tracing();
    let account = account_options().flush_interval(Duration::from_secs(3600));
    let fleet = open_fleet(account).await;
    let mut stores = open_accounts(&fleet, "fleet-close", 10).await;
    for (i, store) in stores.iter().enumerate() {
        store
            .commit(lid_batch("k", &i.to_string()))
            .await
            .expect("commit");
    }
    // Nothing written yet (an hour's flush interval), until close.
    assert_eq!(stored_lid(stores[0].instance_id(), "k").await, None);

    // A store dropped alone releases its account; the fleet can open it again.
    let last = stores.pop().expect("ten stores");
    let dropped = last.instance_id().to_owned();
    let ids: Vec<String> = stores.iter().map(|s| s.instance_id().to_owned()).collect();
    drop(last);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lease_row(&dropped).await.0.is_some() {
        assert!(Instant::now() < deadline, "the dropped account is released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_lid(&dropped, "k").await.as_deref(), Some("9"));
    let reopened = fleet.open_account(&dropped).await.expect("reopen");
    reopened
        .commit(lid_batch("k", "again"))
        .await
        .expect("commit");
    fleet.close().await.expect("close");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(stored_lid(id, "k").await, Some(i.to_string()));
        assert_eq!(lease_row(id).await.0, None, "released");
    }
    assert_eq!(stored_lid(&dropped, "k").await.as_deref(), Some("again"));
    assert_eq!(lease_row(&dropped).await.0, None);
}
