//! The client process is killed (SIGKILL) at random points while it commits and flushes in a
//! loop: the reopened instance holds every batch the child saw flushed, and exactly the state
//! after a prefix of its batches — never part of a batch.
//!
//! The child is this test binary started again with `WA_PG_CRASH_CHILD` set, running only
//! [`crash_child_process`].

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::stream_batch;
use tokio::io::{AsyncBufReadExt, BufReader};
use wa_auth::{AuthCreds, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt};
use wa_store_postgres::{PostgresStore, PostgresStoreOptions, Takeover, connect_pool};

const CHILD_CONNECTION: &str = "WA_PG_CRASH_CHILD";
const CHILD_INSTANCE: &str = "WA_PG_CRASH_INSTANCE";
/// Batches between two flushes in the child.
const FLUSH_EVERY: u64 = 5;

/// The child process's body, not a check of its own: it does nothing unless started by
/// [`client_killed_mid_stream_leaves_a_prefix_of_whole_batches`] (which sets
/// `WA_PG_CRASH_CHILD`). Commits forever, flushing every few batches and printing
/// `FLUSHED <n>` once batch `n` is durable, until it is killed.
#[test]
fn crash_child_process() {
    let Ok(connection) = std::env::var(CHILD_CONNECTION) else {
        return;
    };
    let instance = std::env::var(CHILD_INSTANCE).expect("instance id");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let pool = connect_pool(&connection, 4).expect("pool");
        let store = PostgresStore::open(
            pool,
            PostgresStoreOptions::new(&instance)
                .owner_id("crash-child")
                .lease_ttl(Duration::from_secs(2))
                .lease_renew_interval(Duration::from_millis(250)),
        )
        .await
        .expect("child open");
        let mut creds = AuthCreds::generate();
        for i in 0.. {
            let batch = stream_batch(i, &mut creds);
            until_healthy(|| store.commit(batch.clone())).await;
            // Paced, so that the background flusher also writes between explicit flushes
            // and a kill can land in either.
            if i % 2 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
                until_healthy(|| store.flush()).await;
                println!("FLUSHED {i}");
            }
        }
    });
}

/// Runs `operation` until it succeeds, as an application does while the store is briefly
/// `Unhealthy` (on a loaded machine a round can take longer than the short lease allows). Any
/// other error ends the child.
async fn until_healthy<F: Future<Output = wa_auth::Result<()>>>(mut operation: impl FnMut() -> F) {
    loop {
        match operation().await {
            Ok(()) => return,
            Err(wa_auth::AuthError::Unhealthy { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("child: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_stream_leaves_a_prefix_of_whole_batches() {
    if !support::has_database(
        "crash_recovery::client_killed_mid_stream_leaves_a_prefix_of_whole_batches",
    ) {
        return;
    }
    support::init_tracing();
    let exe = std::env::current_exe().expect("test binary");
    for round in 0..3 {
        let instance = support::unique("crash");
        let kill_after_flushes = 2 + rand::random::<u64>() % 20;
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "crash_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_CONNECTION, support::connection_string())
            .env(CHILD_INSTANCE, &instance)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the child");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut acked = None;
        let mut flushes = 0;
        while flushes < kill_after_flushes {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the child makes progress")
                .expect("read the child's output")
                .expect("the child ended before it was killed");
            if let Some(n) = line.strip_prefix("FLUSHED ") {
                acked = Some(n.trim().parse::<u64>().expect("batch number"));
                flushes += 1;
            }
        }
        // Kill somewhere within the following commits and flushes.
        tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 20_000)).await;
        child.kill().await.expect("SIGKILL the child");
        // Everything acknowledged up to the kill counts.
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(n) = line.strip_prefix("FLUSHED ") {
                acked = Some(n.trim().parse::<u64>().expect("batch number"));
            }
        }
        let acked = acked.expect("at least one flush was acknowledged");

        // The child's lease is never released; take it over once it expires.
        let store = PostgresStore::open(
            support::pool(),
            PostgresStoreOptions::new(&instance)
                .takeover(Takeover::AfterExpiry)
                .lease_wait(Duration::from_secs(30)),
        )
        .await
        .expect("reopen after the crash");
        let counter = match store
            .get_one(&KeyKind::LidMapping, &KeyId::new("counter"))
            .await
            .expect("get")
        {
            Some(KeyValue::LidMapping(n)) => n.parse::<u64>().expect("counter"),
            other => panic!("no counter after the crash: {other:?}"),
        };
        assert!(
            counter >= acked,
            "round {round}: batch {acked} was acknowledged by flush but the store holds only up to {counter}"
        );
        let lids = store.list(&KeyKind::LidMapping).await.expect("list");
        let devices = store.list(&KeyKind::DeviceList).await.expect("list");
        let own_a = lids
            .iter()
            .filter(|id| id.as_str().starts_with("s-"))
            .count() as u64;
        let tmps: Vec<&KeyId> = lids
            .iter()
            .filter(|id| id.as_str().starts_with("tmp-"))
            .collect();
        assert_eq!(
            own_a,
            counter + 1,
            "round {round}: exactly batches 0..={counter}"
        );
        assert_eq!(
            devices.len() as u64,
            counter + 1,
            "round {round}: exactly batches 0..={counter}"
        );
        assert_eq!(
            tmps,
            vec![&KeyId::new(format!("tmp-{counter}"))],
            "round {round}: deletes of the same batches"
        );
        for i in 0..=counter {
            assert_eq!(
                store
                    .get_one(&KeyKind::LidMapping, &KeyId::new(format!("s-{i}-a")))
                    .await
                    .expect("get"),
                Some(KeyValue::LidMapping(i.to_string()))
            );
            assert_eq!(
                store
                    .get_one(&KeyKind::DeviceList, &KeyId::new(format!("s-{i}-b")))
                    .await
                    .expect("get"),
                Some(KeyValue::DeviceList(vec![i.to_string()]))
            );
        }
        let creds = store
            .load_creds()
            .await
            .expect("creds")
            .expect("creds were committed");
        assert_eq!(
            u64::from(creds.next_pre_key_id),
            counter,
            "round {round}: the creds belong to the same batch as the keys"
        );
        eprintln!(
            "round {round}: killed after flush of batch {acked}; the store holds batches 0..={counter}"
        );
        store.close().await.expect("close");
    }
}
