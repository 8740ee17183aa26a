//! The metrics a fleet exports through the `metrics` facade, read back from a recorder
//! installed for this test binary; and the ownership events of a database outage (unhealthy
//! or lease lost, then serving again).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use wa_auth::{AuthCreds, KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::telemetry;
use wa_store_postgres::{FleetOptions, Ownership, PostgresFleet, PostgresStoreOptions};
use wa_testkit::postgres::Cluster;

/// Every value recorded, by series (`name{label=value,...}`).
#[derive(Default)]
struct Recorded {
    series: Mutex<HashMap<String, Vec<f64>>>,
}

impl Recorded {
    /// The values of every series of metric `name` whose labels include all of `labels`.
    fn values(&self, name: &str, labels: &[&str]) -> Vec<f64> {
        let series = self.series.lock().unwrap();
        series
            .iter()
            .filter(|(key, _)| {
                key.split('{').next() == Some(name) && labels.iter().all(|l| key.contains(l))
            })
            .flat_map(|(_, values)| values.iter().copied())
            .collect()
    }

    fn total(&self, name: &str, labels: &[&str]) -> f64 {
        self.values(name, labels).iter().sum()
    }

    fn last(&self, name: &str, labels: &[&str]) -> Option<f64> {
        self.values(name, labels).last().copied()
    }
}

struct Series {
    key: String,
    recorded: &'static Recorded,
}

impl Series {
    fn push(&self, value: f64, replace: bool) {
        let mut series = self.recorded.series.lock().unwrap();
        let values = series.entry(self.key.clone()).or_default();
        if replace {
            values.clear();
        }
        values.push(value);
    }
}

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        self.push(value as f64, false);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64, true);
    }
}

impl GaugeFn for Series {
    fn increment(&self, value: f64) {
        self.push(value, false);
    }
    fn decrement(&self, value: f64) {
        self.push(-value, false);
    }
    fn set(&self, value: f64) {
        self.push(value, true);
    }
}

impl HistogramFn for Series {
    fn record(&self, value: f64) {
        self.push(value, false);
    }
}

static RECORDED: LazyLock<Recorded> = LazyLock::new(Recorded::default);

struct TestRecorder;

impl TestRecorder {
    fn series(key: &Key) -> Arc<Series> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Series {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            recorded: &RECORDED,
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Self::series(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Self::series(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Self::series(key))
    }
}

fn install() {
    let _ = metrics::set_global_recorder(TestRecorder);
}

fn lid_batch(id: &str, value: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, id, KeyValue::LidMapping(value.into()));
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_reports_latencies_flushes_renewals_and_losses_with_bounded_labels() {
    if !support::has_database(
        "fleet_metrics::a_fleet_reports_latencies_flushes_renewals_and_losses_with_bounded_labels",
    ) {
        return;
    }
    support::init_tracing();
    install();
    let name = support::unique("metrics");
    let fleet_label = format!("fleet={name}");
    let account = PostgresStoreOptions::new("t")
        .lease_ttl(Duration::from_secs(3))
        .lease_renew_interval(Duration::from_millis(500));
    let options = FleetOptions::new()
        .name(&name)
        .account(account)
        .account_labels(2);
    let fleet = PostgresFleet::open(support::pool(), options)
        .await
        .expect("fleet");
    let mut stores = Vec::new();
    for _ in 0..6 {
        let id = support::unique("metrics-account");
        stores.push(fleet.open_account(&id).await.expect("open"));
    }
    let mut creds = AuthCreds::generate();
    for round in 0..5u64 {
        for store in &stores {
            store
                .commit(support::stream_batch(round, &mut creds))
                .await
                .expect("commit");
        }
        let flushes = stores.iter().map(|s| s.flush());
        for result in futures::future::join_all(flushes).await {
            result.expect("flush");
        }
    }
    let r = &*RECORDED;
    let f = fleet_label.as_str();
    // Every commit and flush timed, whatever its label.
    assert_eq!(r.values(telemetry::COMMIT_SECONDS, &[f]).len(), 30);
    assert_eq!(r.values(telemetry::DURABLE_SECONDS, &[f]).len(), 30);
    // Two accounts have their own label, the others share `other`.
    let own = format!("instance={}", stores[0].instance_id());
    assert_eq!(r.values(telemetry::COMMIT_SECONDS, &[f, &own]).len(), 5);
    assert_eq!(
        r.values(telemetry::COMMIT_SECONDS, &[f, "instance=other"])
            .len(),
        20
    );
    let flushes = r.total(telemetry::FLUSHES, &[f]);
    let per_flush = r.values(telemetry::FLUSH_ACCOUNTS, &[f]);
    assert!(flushes >= 5.0, "{flushes}");
    assert_eq!(per_flush.len() as f64, flushes);
    assert!(per_flush.iter().any(|&n| n > 1.0), "{per_flush:?}");
    // 5 keys + creds per batch.
    // Per account: 4 keys and the creds in batch 0, then 5 keys and the creds.
    assert_eq!(
        r.total(telemetry::FLUSHED_KEYS, &[f]),
        6.0 * (5.0 + 4.0 * 6.0)
    );
    assert_eq!(r.last(telemetry::ACCOUNTS, &[f]), Some(6.0));
    assert!(r.last(telemetry::RESIDENT_BYTES, &[f]).is_some());
    assert!(r.last(telemetry::QUEUE_KEYS, &[f]).is_some());

    // Idle: renewals, many leases per statement.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let statements = r.total(telemetry::LEASE_RENEWAL_STATEMENTS, &[f]);
    let renewals = r.total(telemetry::LEASE_RENEWALS, &[f]);
    assert!(statements >= 1.0, "{statements}");
    assert!(
        renewals >= 3.0 * statements,
        "many leases per statement: {statements} {renewals}"
    );

    // A lease lost to another owner.
    let client = support::client().await;
    client
        .execute(
            "UPDATE wa_auth.leases SET owner_id = 'thief', epoch = epoch + 1 WHERE instance_id = $1",
            &[&stores[5].instance_id()],
        )
        .await
        .expect("take over");
    stores[5].commit(lid_batch("x", "1")).await.expect("queued");
    assert!(stores[5].flush().await.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.total(telemetry::LEASE_LOSSES, &[f]), 1.0);
    assert_eq!(
        r.total(telemetry::OWNERSHIP_CHANGES, &[f, "state=taken_over"]),
        1.0
    );
    fleet.close().await.expect("close");
    assert_eq!(r.last(telemetry::ACCOUNTS, &[f]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_reported_as_it_happens_and_its_end_too() {
    if !support::can_start_clusters(
        "fleet_metrics::an_outage_is_reported_as_it_happens_and_its_end_too",
    ) {
        return;
    }
    support::init_tracing();
    let cluster = Arc::new(Cluster::start());
    let account = PostgresStoreOptions::new("t")
        .lease_ttl(Duration::from_secs(4))
        .unhealthy_after(Duration::from_millis(800))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let fleet = PostgresFleet::open(
        support::pool_on(&cluster),
        FleetOptions::new().account(account),
    )
    .await
    .expect("fleet");
    let store = fleet
        .open_account(&support::unique("outage"))
        .await
        .expect("open");
    let mut events = fleet.events();
    let mut ownership = store.ownership();
    assert_eq!(*ownership.borrow(), Ownership::Serving);

    let stopper = cluster.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .expect("stop");
    store.commit(lid_batch("k", "1")).await.expect("queued");
    // The flusher's rounds fail: refused within `unhealthy_after` (or once the lease may have
    // expired), announced without anyone calling the store.
    tokio::time::timeout(
        Duration::from_secs(6),
        ownership.wait_for(|o| !o.is_serving()),
    )
    .await
    .expect("announced in time")
    .expect("watch");
    let event = tokio::time::timeout(Duration::from_secs(1), events.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(event.instance_id, store.instance_id());
    assert!(
        matches!(
            event.ownership,
            Ownership::Unhealthy { .. } | Ownership::LeaseLost { .. }
        ),
        "{event:?}"
    );
    assert!(store.commit(lid_batch("k", "2")).await.is_err());

    let starter = cluster.clone();
    tokio::task::spawn_blocking(move || starter.start_again())
        .await
        .expect("start");
    tokio::time::timeout(
        Duration::from_secs(15),
        ownership.wait_for(|o| o.is_serving()),
    )
    .await
    .expect("serving again in time")
    .expect("watch");
    store.commit(lid_batch("k", "3")).await.expect("commit");
    store.flush().await.expect("flush");
    fleet.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budgeted_fleet_reports_resident_bytes_loads_and_evictions() {
    if !support::has_database(
        "fleet_metrics::a_budgeted_fleet_reports_resident_bytes_loads_and_evictions",
    ) {
        return;
    }
    support::init_tracing();
    install();
    let name = support::unique("budget-metrics");
    let fleet_label = format!("fleet={name}");
    let budget = 8 * 1024;
    let options = FleetOptions::new()
        .name(&name)
        .account(PostgresStoreOptions::new("t"))
        .account_labels(1)
        .memory_budget(budget);
    let fleet = PostgresFleet::open(support::pool(), options)
        .await
        .expect("fleet");
    let mut stores = Vec::new();
    for _ in 0..2 {
        let id = support::unique("budget-metrics-account");
        stores.push(fleet.open_account(&id).await.expect("open"));
    }
    let ids: Vec<wa_auth::KeyId> = (0..20)
        .map(|i| wa_auth::KeyId::new(format!("4915400000000.{i}")))
        .collect();
    for store in &stores {
        let mut batch = WriteBatch::new();
        for id in &ids {
            batch.put(
                KeyKind::Session,
                id.clone(),
                KeyValue::Session(wa_auth::sample::session(5)),
            );
        }
        store.commit(batch).await.expect("commit");
        store.flush().await.expect("flush");
    }
    // Both accounts' sessions do not fit: reading them in turn loads and evicts.
    for _ in 0..2 {
        for store in &stores {
            let got = store.get(&KeyKind::Session, &ids).await.expect("get");
            assert_eq!(got.len(), ids.len());
        }
    }
    let memory = fleet.memory();
    assert!(memory.evictions > 0 && memory.cache_loads > 0, "{memory:?}");
    let r = &*RECORDED;
    let f = fleet_label.as_str();
    assert_eq!(r.total(telemetry::EVICTIONS, &[f]), memory.evictions as f64);
    assert_eq!(
        r.total(telemetry::CACHE_LOADS, &[f]),
        memory.cache_loads as f64
    );
    // The labelled account's share is reported under its own label.
    let own = format!("instance={}", stores[0].instance_id());
    assert_eq!(
        r.total(telemetry::EVICTIONS, &[f, &own]),
        stores[0].metrics().evictions as f64
    );
    let resident = r.last(telemetry::RESIDENT_BYTES, &[f, "instance=other"]);
    assert!(
        resident.is_some_and(|bytes| bytes > 0.0 && bytes <= budget as f64),
        "{resident:?} for a budget of {budget}"
    );
    fleet.close().await.expect("close");
    assert_eq!(
        r.last(telemetry::RESIDENT_BYTES, &[f, "instance=other"]),
        Some(0.0),
        "closed accounts hold nothing"
    );
}
