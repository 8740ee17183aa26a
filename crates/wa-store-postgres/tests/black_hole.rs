//! PostgreSQL behind a black hole: a TCP proxy in front of the cluster stops forwarding in the
//! middle of a flush transaction, without closing or resetting anything — a dead node, a cut
//! network or a hung server, as each side sees it.
//!
//! - The owner behind the hole refuses writes (`Unhealthy`) **before** its lease expires on the
//!   server, and a hung round counts towards `unhealthy_after` from the moment it started.
//! - A second replica, connected directly, takes the account over within
//!   `lease_ttl + lease_wait + a few seconds` (the server ends the dead flush transaction that
//!   holds the lease row), and `lease_wait` is honoured while that row is locked.
//! - Every flushed batch is there; nothing the first owner committed later is ever written.
//!
//! Timing assertions are correctness bounds (without the fixes these waits last for hours), with
//! seconds of slack for a loaded machine.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::black_hole::BlackHoleProxy;
use support::stream_batch;
use tokio::task::JoinHandle;
use wa_auth::{
    AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch,
};
use wa_store_postgres::tokio_postgres::Client;
use wa_store_postgres::{PostgresStore, PostgresStoreOptions, Takeover, connect_pool};
use wa_testkit::postgres::Cluster;

/// Batches flushed (acknowledged durable) before the black hole opens.
const FLUSHED_BATCHES: u64 = 20;

/// An owner whose every connection goes through a [`BlackHoleProxy`].
struct Owner {
    proxy: BlackHoleProxy,
    store: Arc<PostgresStore>,
    instance: String,
    creds: AuthCreds,
}

/// Opens a new instance through a new proxy with `options` and flushes batches
/// `0..FLUSHED_BATCHES` of the test stream.
async fn owner_behind_proxy(
    cluster: &Cluster,
    options: impl FnOnce(&str) -> PostgresStoreOptions,
) -> Owner {
    support::init_tracing();
    let proxy = BlackHoleProxy::start(cluster.port()).await;
    let pool = connect_pool(&proxy.connection_string(), 4).expect("pool");
    let instance = support::unique("black-hole");
    let store = PostgresStore::open(pool, options(&instance).owner_id("owner-a"))
        .await
        .expect("open through the proxy");
    let mut creds = AuthCreds::generate();
    for i in 0..FLUSHED_BATCHES {
        store
            .commit(stream_batch(i, &mut creds))
            .await
            .expect("commit");
    }
    store.flush().await.expect("flush before the black hole");
    Owner {
        proxy,
        store: Arc::new(store),
        instance,
        creds,
    }
}

/// A flush that ran into the black hole: when it returned and with what.
type HungFlush = JoinHandle<(Instant, wa_auth::Result<()>)>;

/// Commits the next batch of the stream with a marker key and flushes it; the proxy forwards
/// that flush's statements (so the server runs them and holds the lease row) and then nothing
/// more. Returns the flush (still waiting) and when the hole opened.
async fn black_hole_mid_flush(owner: &mut Owner) -> (HungFlush, Instant, String) {
    let marker = support::unique("marker");
    owner.proxy.black_hole_on(marker.as_bytes());
    let mut batch = stream_batch(FLUSHED_BATCHES, &mut owner.creds);
    batch.put(
        KeyKind::LidMapping,
        marker.as_str(),
        KeyValue::LidMapping("never durable".into()),
    );
    owner
        .store
        .commit(batch)
        .await
        .expect("commit the marked batch");
    let store = owner.store.clone();
    let flush = tokio::spawn(async move {
        let result = store.flush().await;
        (Instant::now(), result)
    });
    owner
        .proxy
        .wait_for_black_hole(Duration::from_secs(10))
        .await;
    (flush, Instant::now(), marker)
}

/// When the lease expires by the server's clock (what a takeover goes by), as a local instant.
async fn server_lease_expiry(client: &Client, instance: &str) -> Instant {
    let remaining_ms: f64 = client
        .query_one(
            "SELECT (extract(epoch FROM expires_at - now()) * 1000)::float8
             FROM wa_auth.leases WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("lease row")
        .get(0);
    let now = Instant::now();
    if remaining_ms >= 0.0 {
        now + Duration::from_secs_f64(remaining_ms / 1000.0)
    } else {
        now - Duration::from_secs_f64(-remaining_ms / 1000.0)
    }
}

/// Commits a small batch every 20 ms until one is refused or `until` passes. Returns the first
/// refusal (when it was seen, the error) and the key ids of the commits that were accepted.
async fn commit_until_refused(
    store: &PostgresStore,
    until: Instant,
) -> (Option<(Instant, AuthError)>, Vec<String>) {
    let mut accepted = Vec::new();
    for n in 0.. {
        if Instant::now() > until {
            break;
        }
        let id = format!("late-{n}");
        let mut batch = WriteBatch::new();
        batch.put(
            KeyKind::LidMapping,
            id.as_str(),
            KeyValue::LidMapping(n.to_string()),
        );
        match tokio::time::timeout(Duration::from_secs(30), store.commit(batch))
            .await
            .expect("a commit never hangs")
        {
            Ok(()) => accepted.push(id),
            Err(err) => return (Some((Instant::now(), err)), accepted),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (None, accepted)
}

fn is_refusal(err: &AuthError) -> bool {
    matches!(
        err,
        AuthError::Unhealthy { .. } | AuthError::OwnershipLost { .. }
    )
}

/// Waits for the hung flush to return, within `within`.
async fn hung_flush_result(flush: HungFlush, within: Duration) -> (Instant, wa_auth::Result<()>) {
    tokio::time::timeout(within, flush)
        .await
        .expect("the flush caught in the black hole returns")
        .expect("flush task")
}

/// Defect 4: the database hangs (rather than refusing connections) mid-flush. The owner must
/// stop acknowledging commits and flushes before its lease can have expired on the server —
/// `unhealthy_after` is set far beyond the lease here, so only the lease's own expiry can
/// stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_mid_flush_refuses_writes_before_the_lease_expires() {
    // The test puts a proxy in front of the server's own port.
    let Some(cluster) = support::cluster(
        "black_hole::black_hole_mid_flush_refuses_writes_before_the_lease_expires",
    ) else {
        return;
    };
    let ttl = Duration::from_secs(5);
    let mut owner = owner_behind_proxy(cluster, |instance| {
        PostgresStoreOptions::new(instance)
            .lease_ttl(ttl)
            .lease_renew_interval(Duration::from_millis(500))
            // Room for a loaded machine between the refusal and the test seeing it.
            .lease_safety_margin(Duration::from_secs(1))
            .unhealthy_after(Duration::from_secs(600))
    })
    .await;
    let (flush, _, _) = black_hole_mid_flush(&mut owner).await;
    let client = support::client_on(cluster).await;
    let expiry = server_lease_expiry(&client, &owner.instance).await;

    let (refusal, _) = commit_until_refused(&owner.store, expiry + Duration::from_secs(5)).await;
    let (refused_at, err) = refusal.expect("commits are refused once the lease may have expired");
    assert!(is_refusal(&err), "{err}");
    eprintln!(
        "refused {:?} before the server-side expiry: {err}",
        expiry.saturating_duration_since(refused_at)
    );
    assert!(
        refused_at < expiry,
        "commits were acknowledged until {:?} after the lease expired on the server",
        refused_at - expiry
    );
    let (returned_at, result) = hung_flush_result(flush, ttl + Duration::from_secs(10)).await;
    let err = result.expect_err("a flush that never reached the database is not acknowledged");
    assert!(is_refusal(&err), "{err}");
    assert!(
        returned_at < expiry,
        "the flush returned {:?} after the lease expired",
        returned_at.saturating_duration_since(expiry)
    );
    assert!(!owner.store.is_healthy());
    let err = tokio::time::timeout(ttl * 2, owner.store.flush())
        .await
        .expect("a flush never hangs")
        .expect_err("still no lease");
    assert!(is_refusal(&err), "{err}");
}

/// Part of defect 4: a round that hangs counts towards `unhealthy_after` from when it started,
/// not from when it finally fails (here: `operation_timeout`, far beyond `unhealthy_after`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_round_makes_the_store_unhealthy_from_its_start() {
    // The test puts a proxy in front of the server's own port.
    let Some(cluster) =
        support::cluster("black_hole::a_hung_round_makes_the_store_unhealthy_from_its_start")
    else {
        return;
    };
    let operation_timeout = Duration::from_secs(8);
    let mut owner = owner_behind_proxy(cluster, |instance| {
        PostgresStoreOptions::new(instance)
            .lease_ttl(Duration::from_secs(120))
            .unhealthy_after(Duration::from_secs(1))
            .operation_timeout(operation_timeout)
    })
    .await;
    let (flush, hole_opened, _) = black_hole_mid_flush(&mut owner).await;
    let hung_round_ends = hole_opened + operation_timeout;

    let (refusal, _) = commit_until_refused(&owner.store, hung_round_ends).await;
    let (refused_at, err) = refusal.expect("commits are refused while the round hangs");
    assert!(matches!(err, AuthError::Unhealthy { .. }), "{err}");
    eprintln!(
        "refused {:?} after the round hung: {err}",
        refused_at - hole_opened
    );
    assert!(refused_at < hung_round_ends);
    let (returned_at, result) = hung_flush_result(flush, Duration::from_secs(30)).await;
    assert!(
        matches!(result, Err(AuthError::Unhealthy { .. })),
        "{result:?}"
    );
    assert!(
        returned_at < hung_round_ends,
        "the flush waited for the hung round to time out"
    );
}

/// Defect 3: the owner's node goes silent mid-flush, holding the lease row's lock in an open
/// transaction. A replica connected directly honours its `lease_wait` while the row is locked,
/// and takes the account over within `lease_ttl + lease_wait + a few seconds`, finding every
/// flushed batch; the old owner, once it can reach the database again, is fenced and writes
/// nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_owner_is_taken_over_within_ttl_plus_lease_wait() {
    // The test puts a proxy in front of the server's own port.
    let Some(cluster) =
        support::cluster("black_hole::black_holed_owner_is_taken_over_within_ttl_plus_lease_wait")
    else {
        return;
    };
    let ttl = Duration::from_secs(3);
    let mut owner = owner_behind_proxy(cluster, |instance| {
        PostgresStoreOptions::new(instance)
            .lease_ttl(ttl)
            .lease_renew_interval(Duration::from_millis(500))
    })
    .await;
    let (flush, hole_opened, marker) = black_hole_mid_flush(&mut owner).await;
    // Commits accepted after the hole opened (while the lease is still valid) stay in memory.
    let (_, late) =
        commit_until_refused(&owner.store, Instant::now() + Duration::from_millis(200)).await;
    let direct = support::pool_on(cluster);
    // Configured like the owner, as replicas of one deployment are.
    let replica = |wait: Duration| {
        PostgresStoreOptions::new(&owner.instance)
            .owner_id("replica-b")
            .lease_ttl(ttl)
            .takeover(Takeover::AfterExpiry)
            .lease_wait(wait)
    };

    // The lease is live (and its row locked by the dead flush): refused after lease_wait.
    let short_wait = Duration::from_millis(500);
    let err = tokio::time::timeout(
        short_wait + Duration::from_secs(10),
        PostgresStore::open(direct.clone(), replica(short_wait)),
    )
    .await
    .expect("open honours lease_wait while the lease row is locked")
    .expect_err("the lease is still live");
    assert!(matches!(err, AuthError::AlreadyOwned { .. }), "{err}");

    let lease_wait = ttl + Duration::from_secs(2);
    let bound = ttl + lease_wait + Duration::from_secs(5);
    let taken = tokio::time::timeout(bound, PostgresStore::open(direct, replica(lease_wait)))
        .await
        .expect("takeover within lease_ttl + lease_wait + a few seconds")
        .expect("takeover of the expired lease");
    eprintln!(
        "taken over {:?} after the black hole opened (bound {bound:?})",
        hole_opened.elapsed()
    );
    assert!(hole_opened.elapsed() < bound);
    assert_eq!(taken.epoch(), owner.store.epoch() + 1);
    let last = FLUSHED_BATCHES - 1;
    assert_eq!(
        taken
            .get_one(&KeyKind::LidMapping, &KeyId::new("counter"))
            .await
            .expect("get"),
        Some(KeyValue::LidMapping(last.to_string())),
        "every flushed batch, and nothing of the black-holed flush"
    );

    // The network heals: the old owner learns it was fenced, and writes nothing.
    owner.proxy.heal();
    let (_, result) = hung_flush_result(flush, Duration::from_secs(60)).await;
    assert!(
        result.is_err(),
        "the black-holed flush is never acknowledged"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !owner.store.metrics().fenced {
        assert!(Instant::now() < deadline, "the old owner never noticed");
        let _ = owner.store.flush().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(
        owner.store.commit(stream_batch(99, &mut owner.creds)).await,
        Err(AuthError::OwnershipLost { .. })
    ));
    let client = support::client_on(cluster).await;
    assert_only_flushed_batches(&client, &owner.instance, &marker, &late).await;
    taken.close().await.expect("close");
}

/// The database holds exactly batches `0..FLUSHED_BATCHES`: no marked batch, no late commit.
async fn assert_only_flushed_batches(
    client: &Client,
    instance: &str,
    marker: &str,
    late: &[String],
) {
    support::assert_stream_present(client, instance, FLUSHED_BATCHES).await;
    let mut unwanted: Vec<&str> = late.iter().map(String::as_str).collect();
    unwanted.push(marker);
    let written: i64 = client
        .query_one(
            "SELECT count(*) FROM wa_auth.keys WHERE instance_id = $1 AND key_id = ANY($2)",
            &[&instance, &unwanted],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        written, 0,
        "nothing committed after the black hole was written"
    );
}
