//! One owner at a time: a second replica gets `AlreadyOwned`; a takeover after expiry fences
//! the old owner, whose later flush fails and writes nothing; renewals keep a live lease;
//! close releases the lease at once.

mod support;

use std::time::{Duration, Instant};

use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_store_postgres::{PostgresStore, PostgresStoreOptions, Takeover};

fn lid_batch(id: &str, value: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, id, KeyValue::LidMapping(value.into()));
    batch
}

async fn open(options: PostgresStoreOptions) -> Result<PostgresStore, AuthError> {
    PostgresStore::open(support::pool(), options).await
}

/// Options of an owner that will not renew during the test (its lease lasts a minute), so
/// that [`expire_lease`] decides when its lease is over.
fn quiet_owner(instance: &str, owner: &str) -> PostgresStoreOptions {
    PostgresStoreOptions::new(instance)
        .owner_id(owner)
        .lease_ttl(Duration::from_secs(60))
        .lease_renew_interval(Duration::from_secs(50))
}

/// Ends the lease on the server, as time does for a stalled or partitioned owner (or a server
/// clock that jumped): the owner itself still counts it as valid.
async fn expire_lease(instance: &str) {
    let client = support::client().await;
    let rows = client
        .execute(
            "UPDATE wa_auth.leases SET expires_at = now() - interval '1 second' WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("expire");
    assert_eq!(rows, 1);
}

async fn stored_value(instance: &str, id: &str) -> Option<String> {
    let client = support::client().await;
    client
        .query_opt(
            "SELECT data::text FROM wa_auth.keys WHERE instance_id = $1 AND kind = 'lid-mapping' AND key_id = $2",
            &[&instance, &id],
        )
        .await
        .expect("query")
        .map(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_replica_gets_already_owned() {
    if !support::has_database("lease_fencing::second_replica_gets_already_owned") {
        return;
    }
    support::init_tracing();
    let instance = support::unique("lease-two");
    let first = open(PostgresStoreOptions::new(&instance).owner_id("replica-a"))
        .await
        .expect("first owner");
    let err = open(PostgresStoreOptions::new(&instance).owner_id("replica-b"))
        .await
        .expect_err("the instance is owned");
    match &err {
        AuthError::AlreadyOwned { resource, holder } => {
            assert!(resource.contains(&instance));
            assert!(
                holder.as_deref().is_some_and(|h| h.contains("replica-a")),
                "{holder:?}"
            );
        }
        other => panic!("expected AlreadyOwned, got {other}"),
    }
    // Even when asked to take over: the lease has not expired.
    let err = open(
        PostgresStoreOptions::new(&instance)
            .owner_id("replica-c")
            .takeover(Takeover::AfterExpiry),
    )
    .await
    .expect_err("a live lease is never taken over");
    assert!(matches!(err, AuthError::AlreadyOwned { .. }), "{err}");
    // The owner is unaffected.
    first.commit(lid_batch("k", "v")).await.expect("commit");
    first.flush().await.expect("flush");
    first.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_after_expiry_fences_the_old_owner() {
    if !support::has_database("lease_fencing::takeover_after_expiry_fences_the_old_owner") {
        return;
    }
    support::init_tracing();
    let instance = support::unique("lease-takeover");
    // The old owner's lease ends on the server while the owner still counts it as valid.
    let old = open(quiet_owner(&instance, "old-owner"))
        .await
        .expect("old owner");
    old.commit(lid_batch("before", "old"))
        .await
        .expect("commit");
    old.flush().await.expect("flush");
    expire_lease(&instance).await;

    let new = open(
        PostgresStoreOptions::new(&instance)
            .owner_id("new-owner")
            .takeover(Takeover::AfterExpiry)
            .lease_wait(Duration::from_secs(30)),
    )
    .await
    .expect("takeover after expiry");
    assert_eq!(new.epoch(), old.epoch() + 1, "a takeover bumps the epoch");
    assert_eq!(
        new.get_one(&KeyKind::LidMapping, &KeyId::new("before"))
            .await
            .expect("get"),
        Some(KeyValue::LidMapping("old".into())),
        "the new owner sees what the old one flushed"
    );

    // The old owner does not know yet: its commit is queued, but its flush is fenced.
    old.commit(lid_batch("stale", "old")).await.expect("queued");
    let err = old.flush().await.expect_err("fenced");
    match &err {
        AuthError::OwnershipLost { resource, reason } => {
            assert!(resource.contains(&instance));
            assert!(reason.contains("new-owner"), "{reason}");
        }
        other => panic!("expected OwnershipLost, got {other}"),
    }
    assert_eq!(
        stored_value(&instance, "stale").await,
        None,
        "a fenced flush writes nothing"
    );
    // And it stops: every operation now fails clearly.
    assert!(matches!(
        old.commit(lid_batch("later", "old")).await,
        Err(AuthError::OwnershipLost { .. })
    ));
    assert!(matches!(
        old.get_one(&KeyKind::LidMapping, &KeyId::new("before"))
            .await,
        Err(AuthError::OwnershipLost { .. })
    ));
    assert!(old.metrics().fenced);
    assert!(!old.is_healthy());
    assert!(matches!(
        old.close().await,
        Err(AuthError::OwnershipLost { .. })
    ));

    // The new owner works, and the old owner's close did not release its lease.
    new.commit(lid_batch("after", "new")).await.expect("commit");
    new.flush().await.expect("flush");
    assert_eq!(
        stored_value(&instance, "after").await.as_deref(),
        Some("\"new\"")
    );
    assert!(matches!(
        open(PostgresStoreOptions::new(&instance)).await,
        Err(AuthError::AlreadyOwned { .. })
    ));
    new.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_not_taken_unless_asked() {
    if !support::has_database("lease_fencing::expired_lease_is_not_taken_unless_asked") {
        return;
    }
    let instance = support::unique("lease-never");
    let old = open(quiet_owner(&instance, "crashed-owner"))
        .await
        .expect("old owner");
    expire_lease(&instance).await;
    let err = open(PostgresStoreOptions::new(&instance))
        .await
        .expect_err("Takeover::Never is the default");
    match &err {
        AuthError::AlreadyOwned { holder, .. } => {
            let holder = holder.as_deref().unwrap_or_default();
            assert!(
                holder.contains("crashed-owner") && holder.contains("expired"),
                "{holder}"
            );
        }
        other => panic!("expected AlreadyOwned, got {other}"),
    }
    drop(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_keeps_a_live_lease() {
    if !support::has_database("lease_fencing::renewal_keeps_a_live_lease") {
        return;
    }
    let instance = support::unique("lease-renew");
    let owner = open(
        PostgresStoreOptions::new(&instance)
            .owner_id("renewing-owner")
            .lease_ttl(Duration::from_secs(3))
            .lease_renew_interval(Duration::from_millis(200)),
    )
    .await
    .expect("owner");
    // Idle for longer than the lease: only renewals keep it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let err = open(PostgresStoreOptions::new(&instance).takeover(Takeover::AfterExpiry))
        .await
        .expect_err("a renewed lease is live");
    assert!(matches!(err, AuthError::AlreadyOwned { .. }), "{err}");
    assert!(owner.metrics().lease_renewals > 0);
    owner.commit(lid_batch("k", "v")).await.expect("commit");
    owner.flush().await.expect("flush");
    owner.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_lease_is_noticed_by_renewal() {
    if !support::has_database("lease_fencing::a_stolen_lease_is_noticed_by_renewal") {
        return;
    }
    let instance = support::unique("lease-stolen");
    let owner = open(
        PostgresStoreOptions::new(&instance)
            .owner_id("victim")
            .lease_renew_interval(Duration::from_millis(100)),
    )
    .await
    .expect("owner");
    // An operator (or a buggy tool) moves the lease without going through a store.
    let client = support::client().await;
    client
        .execute(
            "UPDATE wa_auth.leases SET owner_id = 'operator', epoch = epoch + 1 WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("steal");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !owner.metrics().fenced {
        assert!(Instant::now() < deadline, "the renewal never noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = owner.commit(lid_batch("k", "v")).await.expect_err("fenced");
    match err {
        AuthError::OwnershipLost { reason, .. } => assert!(reason.contains("operator"), "{reason}"),
        other => panic!("expected OwnershipLost, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_the_lease_at_once() {
    if !support::has_database("lease_fencing::close_releases_the_lease_at_once") {
        return;
    }
    let instance = support::unique("lease-release");
    let first = open(PostgresStoreOptions::new(&instance).owner_id("first"))
        .await
        .expect("first");
    first.commit(lid_batch("k", "1")).await.expect("commit");
    first.close().await.expect("close flushes and releases");
    let second = open(PostgresStoreOptions::new(&instance).owner_id("second"))
        .await
        .expect("a released lease is free at once, with no takeover option");
    assert_eq!(second.epoch(), first.epoch() + 1);
    assert_eq!(
        second
            .get_one(&KeyKind::LidMapping, &KeyId::new("k"))
            .await
            .expect("get"),
        Some(KeyValue::LidMapping("1".into())),
        "close flushed before releasing"
    );
    assert!(matches!(
        first.commit(lid_batch("x", "y")).await,
        Err(AuthError::Closed)
    ));
    // A dropped store releases in the background; a replica waiting for the lease gets it.
    drop(second);
    let third = open(
        PostgresStoreOptions::new(&instance)
            .owner_id("third")
            .lease_wait(Duration::from_secs(20)),
    )
    .await
    .expect("released after drop");
    third.close().await.expect("close");
}
