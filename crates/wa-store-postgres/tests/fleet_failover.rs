//! Failover of a whole fleet. Replica A — a separate process (this test binary started again
//! with `WA_PG_FLEET_CHILD` set, running only [`fleet_replica_child`]) — serves many accounts
//! under load, then is SIGKILLed, or has its network black-holed. Replica B takes over every
//! account within `lease_ttl + lease_wait + 5 s`; every commit A acknowledged as durable is
//! there, account by account, as a prefix of whole batches; A's in-flight transactions are
//! rolled back and land neither then nor later; a black-holed A stops acknowledging before B
//! takes over.
//!
//! `WA_PG_FLEET_FAILOVER_ACCOUNTS` sets how many accounts A serves (default 16, for `cargo
//! test`); the figures in docs/benchmarks.md come from 1,000 accounts in release mode. A holds
//! its aggregate load near 2,000 commits/s beyond 16 accounts (each account pauses
//! `accounts / 2` ms between batches; up to 16, 4 ms).

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::black_hole::BlackHoleProxy;
use support::stream_batch;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use wa_auth::{AuthCreds, AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt};
use wa_store_postgres::tokio_postgres::Client;
use wa_store_postgres::{
    FleetOptions, Pool, PostgresFleet, PostgresStore, PostgresStoreOptions, Takeover, connect_pool,
};

const CHILD_CONNECTION: &str = "WA_PG_FLEET_CHILD";
const CHILD_PREFIX: &str = "WA_PG_FLEET_PREFIX";
const CHILD_ACCOUNTS: &str = "WA_PG_FLEET_ACCOUNTS";
const ACCOUNTS_VAR: &str = "WA_PG_FLEET_FAILOVER_ACCOUNTS";

/// How many accounts replica A serves: `WA_PG_FLEET_FAILOVER_ACCOUNTS`, default 16.
fn accounts() -> usize {
    std::env::var(ACCOUNTS_VAR).map_or(16, |n| n.parse().expect("a number of accounts"))
}

/// The pause between two batches of one account in A: 4 ms for a few accounts (as fast as
/// they go), else `accounts / 2` ms, about 2,000 commits/s in all.
fn pause(accounts: usize) -> Duration {
    if accounts <= 16 {
        Duration::from_millis(4)
    } else {
        Duration::from_micros(500 * accounts as u64)
    }
}

/// How long A runs under load before it is killed or cut off.
fn load_time(accounts: usize) -> Duration {
    Duration::from_millis(1500).max(Duration::from_millis(5 * accounts as u64))
}
/// The two failover tests load the machine: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const LEASE_TTL: Duration = Duration::from_secs(3);
const LEASE_WAIT: Duration = Duration::from_secs(10);

fn replica_options(owner: &str) -> PostgresStoreOptions {
    PostgresStoreOptions::new("template")
        .owner_id(owner)
        .lease_ttl(LEASE_TTL)
        .lease_renew_interval(Duration::from_millis(500))
        .takeover(Takeover::AfterExpiry)
        .lease_wait(LEASE_WAIT)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// Replica A's body, not a check of its own: it does nothing unless started by one of the
/// tests below. Opens a fleet of `WA_PG_FLEET_ACCOUNTS` accounts and commits to every one of
/// them forever, printing `DURABLE <account> <batch> <unix ms>` whenever a flush made batch
/// `<batch>` of that account durable, until it is killed.
#[test]
fn fleet_replica_child() {
    let Ok(connection) = std::env::var(CHILD_CONNECTION) else {
        return;
    };
    let prefix = std::env::var(CHILD_PREFIX).expect("prefix");
    let accounts: usize = std::env::var(CHILD_ACCOUNTS)
        .expect("accounts")
        .parse()
        .expect("a number");
    support::init_tracing();
    let runtime = wa_testkit::crash::runtime();
    runtime.block_on(async move {
        let pool = connect_pool(&connection, 4).expect("pool");
        let options = FleetOptions::new().account(replica_options("replica-a"));
        let fleet = PostgresFleet::open(pool, options).await.expect("fleet");
        // Opened concurrently: the fleet bounds the opens in flight to half its pool.
        let opening = (0..accounts).map(|account| {
            let (fleet, prefix) = (&fleet, &prefix);
            async move {
                let id = format!("{prefix}-{account}");
                fleet.open_account(&id).await.expect("open account")
            }
        });
        let stores = futures::future::join_all(opening).await;
        let pause = pause(accounts);
        let tasks: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(account, store)| tokio::spawn(serve(account, store, pause)))
            .collect();
        println!("READY");
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// One account's load in replica A: commits, a flush every third batch.
async fn serve(account: usize, store: PostgresStore, pause: Duration) {
    let mut creds = AuthCreds::generate();
    for i in 0u64.. {
        let batch = stream_batch(i, &mut creds);
        loop {
            match store.commit(batch.clone()).await {
                Ok(()) => break,
                Err(AuthError::Unhealthy { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => return,
            }
        }
        if i % 3 == 2 {
            match store.flush().await {
                Ok(()) => println!("DURABLE {account} {i} {}", now_ms()),
                Err(AuthError::Unhealthy { .. }) => {}
                Err(_) => return,
            }
        }
        tokio::time::sleep(pause).await;
    }
}

fn start_child(connection: &str, prefix: &str) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    tokio::process::Command::new(exe)
        .args([
            "fleet_replica_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONNECTION, connection)
        .env(CHILD_PREFIX, prefix)
        .env(CHILD_ACCOUNTS, accounts().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start replica A")
}

/// What replica A acknowledged: per account, the newest durable batch and when.
#[derive(Default)]
struct Acked(HashMap<usize, (u64, u64)>);

impl Acked {
    fn read(&mut self, line: &str) {
        // Anywhere in the line: the first may follow the harness's own output.
        let Some(at) = line.find("DURABLE ") else {
            return;
        };
        let rest = &line[at + "DURABLE ".len()..];
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().expect("number"))
            .collect();
        let (account, batch, at) = (fields[0] as usize, fields[1], fields[2]);
        let entry = self.0.entry(account).or_insert((batch, at));
        *entry = (entry.0.max(batch), entry.1.max(at));
    }
}

/// Waits for `READY`, then reads A's acknowledgements for `load`.
async fn run_under_load(lines: &mut Lines<BufReader<ChildStdout>>, load: Duration) -> Acked {
    let mut acked = Acked::default();
    loop {
        // A opens every account first.
        let start = Duration::from_secs(45) + Duration::from_millis(50 * accounts() as u64);
        let line = tokio::time::timeout(start, lines.next_line())
            .await
            .expect("replica A starts")
            .expect("read")
            .expect("replica A ended early");
        // The test harness prints `test fleet_replica_child ... ` without a newline before
        // running it: the child's first line may follow it.
        if line.ends_with("READY") {
            break;
        }
        acked.read(&line);
    }
    let until = tokio::time::Instant::now() + load;
    // The deadline is checked on every line: while A writes lines faster than they are read,
    // `next_line` is always ready and a timeout around it alone would never fire.
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout_at(until, lines.next_line()).await {
            Ok(line) => acked.read(&line.expect("read").expect("replica A ended early")),
            Err(_) => break,
        }
    }
    acked
}

/// Replica B takes every account over; returns its stores and how long it took.
async fn take_over(pool: Pool, prefix: &str) -> (PostgresFleet, Vec<PostgresStore>, Duration) {
    let started = Instant::now();
    let fleet = PostgresFleet::open(
        pool,
        FleetOptions::new().account(replica_options("replica-b")),
    )
    .await
    .expect("fleet B");
    let opening = (0..accounts()).map(|a| {
        let id = format!("{prefix}-{a}");
        let fleet = &fleet;
        async move {
            fleet
                .open_account(&id)
                .await
                .expect("B takes the account over")
        }
    });
    let stores = futures::future::join_all(opening).await;
    (fleet, stores, started.elapsed())
}

async fn counter(store: &PostgresStore) -> u64 {
    match store
        .get_one(&KeyKind::LidMapping, &KeyId::new("counter"))
        .await
        .expect("get")
    {
        Some(KeyValue::LidMapping(n)) => n.parse().expect("counter"),
        other => panic!("no counter in {}: {other:?}", store.instance_id()),
    }
}

/// Every acknowledged batch is there, as a prefix of whole batches; the rows do not change
/// afterwards (A's in-flight transactions never land); B owns and writes every account.
async fn check_accounts(client: &Client, stores: &[PostgresStore], acked: &Acked) -> Vec<u64> {
    let mut counters = Vec::new();
    for (account, store) in stores.iter().enumerate() {
        let counter = counter(store).await;
        if let Some((batch, _)) = acked.0.get(&account) {
            assert!(
                counter >= *batch,
                "account {account}: batch {batch} was acknowledged, only {counter} is there"
            );
        }
        support::assert_stream_present(client, store.instance_id(), counter + 1).await;
        counters.push(counter);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (account, store) in stores.iter().enumerate() {
        support::assert_stream_present(client, store.instance_id(), counters[account] + 1).await;
        let mut batch = wa_auth::WriteBatch::new();
        batch.put(
            KeyKind::LidMapping,
            "b-was-here",
            KeyValue::LidMapping("1".into()),
        );
        store.commit(batch).await.expect("B commits");
        store.flush().await.expect("B flushes");
    }
    counters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_accounts_are_all_taken_over_with_every_durable_commit() {
    support::init_tracing();
    if !support::has_database(
        "fleet_failover::a_killed_replica_s_accounts_are_all_taken_over_with_every_durable_commit",
    ) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let prefix = support::unique("fleet-kill");
    let mut child = start_child(&support::connection_string(), &prefix);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acked = run_under_load(&mut lines, load_time(accounts())).await;
    child.kill().await.expect("SIGKILL replica A");
    let killed = Instant::now();
    while let Ok(Some(line)) = lines.next_line().await {
        acked.read(&line);
    }
    assert!(
        acked.0.len() >= accounts() / 2,
        "A acknowledged flushes of most accounts"
    );

    let (fleet, stores, _) = take_over(support::pool(), &prefix).await;
    let took = killed.elapsed();
    let bound = LEASE_TTL + LEASE_WAIT + Duration::from_secs(5);
    assert!(took < bound, "took over in {took:?}, bound {bound:?}");
    let client = support::client().await;
    let counters = check_accounts(&client, &stores, &acked).await;
    report("killed", took, &counters, &acked);
    fleet.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_replica_stops_acknowledging_before_its_accounts_are_taken_over() {
    support::init_tracing();
    // The test puts a proxy in front of the server's own port.
    let Some(cluster) = support::cluster(
        "fleet_failover::a_black_holed_replica_stops_acknowledging_before_its_accounts_are_taken_over",
    ) else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let proxy = BlackHoleProxy::start(cluster.port()).await;
    let prefix = support::unique("fleet-hole");
    let mut child = start_child(&proxy.connection_string(), &prefix);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acked = run_under_load(&mut lines, load_time(accounts())).await;
    // The network to A is cut, likely in the middle of a flush: the server keeps that
    // transaction (and the lease rows it locked) until its idle timeout ends it.
    proxy.black_hole_now();
    let cut = Instant::now();
    let reader = tokio::spawn(async move {
        let mut acked_after = Acked::default();
        while let Ok(Some(line)) = lines.next_line().await {
            acked_after.read(&line);
        }
        acked_after
    });

    let (fleet, stores, _) = take_over(support::pool_on(cluster), &prefix).await;
    let took = cut.elapsed();
    let bound = LEASE_TTL + LEASE_WAIT + Duration::from_secs(5);
    assert!(took < bound, "took over in {took:?}, bound {bound:?}");
    // A is still running: give it time to (wrongly) acknowledge anything, then stop it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.kill().await.expect("stop replica A");
    let late = reader.await.expect("reader");
    let client = support::client_on(cluster).await;
    for (account, (batch, at)) in &late.0 {
        let acquired = acquired_ms(&client, &format!("{prefix}-{account}")).await;
        assert!(
            *at < acquired,
            "account {account}: A acknowledged batch {batch} at {at}, after B took over at {acquired}"
        );
    }
    for (account, entry) in late.0 {
        let known = acked.0.entry(account).or_insert(entry);
        *known = (known.0.max(entry.0), known.1.max(entry.1));
    }
    let counters = check_accounts(&client, &stores, &acked).await;
    report("black-holed", took, &counters, &acked);
    fleet.close().await.expect("close");
    drop(proxy);
}

/// Prints the takeover time, how many accounts A had acknowledged durable batches of, and how
/// many batches the accounts hold.
fn report(how: &str, took: Duration, counters: &[u64], acked: &Acked) {
    let batches: u64 = counters.iter().map(|c| c + 1).sum();
    eprintln!(
        "{how} replica: took over {} accounts in {took:?} (bound {:?}); {} accounts with \
         acknowledged batches, {batches} batches present",
        counters.len(),
        LEASE_TTL + LEASE_WAIT + Duration::from_secs(5),
        acked.0.len(),
    );
}

/// When B's lease on `instance` was acquired, by the server's clock (this machine's).
async fn acquired_ms(client: &Client, instance: &str) -> u64 {
    let ms: f64 = client
        .query_one(
            "SELECT (extract(epoch FROM acquired_at) * 1000)::float8 FROM wa_auth.leases WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("acquired_at")
        .get(0);
    ms as u64
}
