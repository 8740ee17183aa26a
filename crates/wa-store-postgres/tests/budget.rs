//! A budgeted fleet (`FleetOptions::memory_budget`): sessions and sender keys read on first
//! use and evicted least recently used. The conformance suite with a tiny budget (eviction
//! after every operation), with the default cached kinds and with every kind cached; dirty
//! values never evicted; reads always current (checked against a model) while the resident
//! bytes stay within the budget plus the dirty entries; LRU order across accounts; a budgeted
//! cold start loads only the resident kinds.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wa_auth::conformance::Harness;
use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Persistence, WriteBatch, sample};
use wa_store_postgres::{
    FleetOptions, Pool, PostgresFleet, PostgresReader, PostgresStore, PostgresStoreOptions,
    SchemaName,
};

/// Opens one account of one budgeted fleet; reopening waits until the fleet let the previous
/// handle go (closed, or dropped and released in the background).
struct BudgetHarness {
    pool: Pool,
    fleet: PostgresFleet,
    instance: String,
}

impl BudgetHarness {
    /// A harness on a fleet whose budget is one byte, or `None` when there is no PostgreSQL.
    async fn new(cached_kinds: Option<Vec<KeyKind>>) -> Option<Self> {
        if !support::has_database("budget::conformance") {
            return None;
        }
        support::init_tracing();
        let pool = support::pool();
        let mut options = FleetOptions::new()
            .account(support::options("template"))
            .memory_budget(1);
        if let Some(kinds) = cached_kinds {
            options = options.cached_kinds(kinds);
        }
        let fleet = PostgresFleet::open(pool.clone(), options)
            .await
            .expect("open the fleet");
        Some(Self {
            pool,
            fleet,
            instance: support::unique("budget-conformance"),
        })
    }
}

/// Every kind the conformance suite writes, known or not.
fn every_kind() -> Vec<KeyKind> {
    let mut kinds = KeyKind::KNOWN.to_vec();
    for name in ["kind-from-the-future", "another-unknown-kind"] {
        kinds.push(KeyKind::from_name(name).expect("kind"));
    }
    kinds
}

#[async_trait]
impl Harness for BudgetHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        Arc::new(open_account(&self.fleet, &self.instance).await)
    }

    async fn open_read_only(&self) -> Option<Arc<dyn Persistence>> {
        let reader = PostgresReader::open(&self.pool, &SchemaName::default(), &self.instance)
            .await
            .expect("open a PostgresReader");
        Some(Arc::new(reader))
    }
}

/// Opens `instance` on `fleet`, waiting (up to 20 s) for a previous handle of it to be
/// released.
async fn open_account(fleet: &PostgresFleet, instance: &str) -> PostgresStore {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match fleet.open_account(instance).await {
            Ok(store) => return store,
            Err(AuthError::AlreadyOwned { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("open account {instance}: {err}"),
        }
    }
}

wa_auth::conformance_tests!(
    tiny_budget,
    match BudgetHarness::new(None).await {
        Some(harness) => harness,
        None => return,
    }
);
wa_auth::conformance_tests!(
    tiny_budget_every_kind_cached,
    match BudgetHarness::new(Some(every_kind())).await {
        Some(harness) => harness,
        None => return,
    }
);

/// Session number `n` (`sample::session` draws fresh keys on every call: one value per `n`,
/// made once).
fn session(n: u8) -> KeyValue {
    static MADE: LazyLock<Mutex<HashMap<u8, KeyValue>>> = LazyLock::new(Default::default);
    MADE.lock()
        .unwrap()
        .entry(n)
        .or_insert_with(|| KeyValue::Session(sample::session(n)))
        .clone()
}

/// Asserts `got == want` naming only the ids (values are long).
fn same(got: &[(KeyId, KeyValue)], want: &[(KeyId, KeyValue)], what: &str) {
    let names = |v: &[(KeyId, KeyValue)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}: ids");
    for ((id, a), (_, b)) in got.iter().zip(want) {
        assert!(a == b, "{what}: the value of {id} differs");
    }
}

fn put_sessions(ids: impl IntoIterator<Item = String>, seed: u8) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for id in ids {
        batch.put(KeyKind::Session, id, session(seed));
    }
    batch
}

fn ids(prefix: &str, n: usize) -> Vec<KeyId> {
    (0..n)
        .map(|i| KeyId::new(format!("{prefix}.{i}")))
        .collect()
}

async fn budgeted_fleet(budget: usize, account: PostgresStoreOptions) -> PostgresFleet {
    let options = FleetOptions::new().account(account).memory_budget(budget);
    PostgresFleet::open(support::pool(), options)
        .await
        .expect("open the fleet")
}

/// Options whose flusher writes nothing until asked (`flush`), so commits stay dirty.
fn lazy_account() -> PostgresStoreOptions {
    support::options("template").flush_interval(Duration::from_secs(3600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_never_drops_a_dirty_value() {
    if !support::has_database("budget::eviction_never_drops_a_dirty_value") {
        return;
    }
    support::init_tracing();
    let budget = 4 * 1024;
    let fleet = budgeted_fleet(budget, lazy_account()).await;
    let dirty = open_account(&fleet, &support::unique("budget-dirty")).await;
    let busy = open_account(&fleet, &support::unique("budget-busy")).await;
    // Committed, not flushed: far above the budget on its own.
    let dirty_ids = ids("4915100000001", 30);
    let names = || dirty_ids.iter().map(|id| id.as_str().to_owned());
    dirty
        .commit(put_sessions(names(), 7))
        .await
        .expect("commit");
    let mut deletes = WriteBatch::new();
    deletes.delete(KeyKind::Session, dirty_ids[0].clone());
    dirty.commit(deletes).await.expect("commit a delete");
    let client = support::client().await;
    assert_eq!(
        support::key_rows(&client, dirty.instance_id()).await,
        0,
        "nothing flushed yet"
    );
    // Pressure: another account writes, flushes and reads back many sessions.
    for round in 0..4 {
        let busy_ids = ids(&format!("4915200000{round}"), 20);
        let names = busy_ids.iter().map(|id| id.as_str().to_owned());
        busy.commit(put_sessions(names, 9)).await.expect("commit");
        busy.flush().await.expect("flush");
        let got = busy.get(&KeyKind::Session, &busy_ids).await.expect("get");
        assert_eq!(got.len(), busy_ids.len());
    }
    let memory = fleet.memory();
    assert!(memory.evictions > 0, "{memory:?}");
    assert!(busy.metrics().evictions > 0);
    assert_eq!(
        dirty.metrics().evictions,
        0,
        "dirty entries are never evicted"
    );
    assert_eq!(dirty.metrics().cached_keys, 30);
    assert!(memory.dirty_bytes > budget, "{memory:?}");
    assert!(
        memory.resident_bytes > budget,
        "the dirty entries stay over the budget"
    );
    // Read back from memory: every value, and the delete.
    let got = dirty.get(&KeyKind::Session, &dirty_ids).await.expect("get");
    let expected: Vec<(KeyId, KeyValue)> = dirty_ids[1..]
        .iter()
        .map(|id| (id.clone(), session(7)))
        .collect();
    same(&got, &expected, "read back before the flush");
    let listed = dirty.list(&KeyKind::Session).await.expect("list");
    assert_eq!(listed.len(), 29);
    assert!(!listed.contains(&dirty_ids[0]));
    assert_eq!(
        dirty.metrics().cache_loads,
        0,
        "no read went to the database"
    );

    // Durable, then evictable: written exactly, read back from another fleet.
    dirty.flush().await.expect("flush");
    assert!(
        dirty.metrics().evictions > 0,
        "clean now, and over the budget"
    );
    let instance = dirty.instance_id().to_owned();
    fleet.close().await.expect("close");
    drop((dirty, busy));
    for budget in [None, Some(1)] {
        let mut options = FleetOptions::new().account(support::options("template"));
        options.memory_budget = budget;
        let other = PostgresFleet::open(support::pool(), options)
            .await
            .expect("another fleet");
        let reopened = open_account(&other, &instance).await;
        let got = reopened
            .get(&KeyKind::Session, &dirty_ids)
            .await
            .expect("get");
        same(&got, &expected, &format!("reopened with budget {budget:?}"));
        other.close().await.expect("close");
    }
}

/// A deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_current_and_memory_within_budget_under_a_workload() {
    if !support::has_database(
        "budget::reads_stay_current_and_memory_within_budget_under_a_workload",
    ) {
        return;
    }
    support::init_tracing();
    let budget = 24 * 1024;
    let fleet = budgeted_fleet(budget, lazy_account()).await;
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(open_account(&fleet, &support::unique("budget-workload")).await);
    }
    // What each account must hold: session id -> seed.
    let mut model: Vec<BTreeMap<String, u8>> = vec![BTreeMap::new(); stores.len()];
    let mut rng = Rng(17);
    let mut peak = 0;
    for step in 0..400u32 {
        let a = rng.next(stores.len() as u64) as usize;
        let (store, expected) = (&stores[a], &mut model[a]);
        let id = format!("4915{}.{}", a, rng.next(24));
        match rng.next(10) {
            0..=2 => {
                let seed = (step % 200) as u8;
                store
                    .commit(put_sessions([id.clone()], seed))
                    .await
                    .expect("put");
                expected.insert(id, seed);
            }
            3 => {
                let mut batch = WriteBatch::new();
                batch.delete(KeyKind::Session, id.clone());
                store.commit(batch).await.expect("delete");
                expected.remove(&id);
            }
            4 => store.flush().await.expect("flush"),
            5 => {
                let listed = store.list(&KeyKind::Session).await.expect("list");
                let want: Vec<KeyId> = expected.keys().map(|k| KeyId::new(k.clone())).collect();
                assert_eq!(listed, want, "step {step}: list of account {a}");
            }
            _ => {
                // Some ids twice, some missing.
                let ask: Vec<KeyId> = (0..6)
                    .map(|_| KeyId::new(format!("4915{}.{}", a, rng.next(24))))
                    .collect();
                let got = store.get(&KeyKind::Session, &ask).await.expect("get");
                let mut seen = BTreeSet::new();
                let want: Vec<(KeyId, KeyValue)> = ask
                    .iter()
                    .filter(|id| seen.insert((*id).clone()))
                    .filter_map(|id| expected.get(id.as_str()).map(|s| (id.clone(), session(*s))))
                    .collect();
                same(&got, &want, &format!("step {step}: get of account {a}"));
            }
        }
        let memory = fleet.memory();
        peak = peak.max(memory.resident_bytes);
        assert!(
            memory.resident_bytes <= budget + memory.dirty_bytes,
            "step {step}: {memory:?}"
        );
    }
    let memory = fleet.memory();
    assert!(memory.evictions > 0 && memory.cache_loads > 0, "{memory:?}");
    println!("peak resident {peak} B for a budget of {budget} B: {memory:?}");
    // Everything lands as the model says.
    for store in &stores {
        store.flush().await.expect("flush");
    }
    let instances: Vec<String> = stores.iter().map(|s| s.instance_id().to_owned()).collect();
    fleet.close().await.expect("close");
    drop(stores);
    for (instance, expected) in instances.iter().zip(&model) {
        let reader = PostgresReader::open(&support::pool(), &SchemaName::default(), instance)
            .await
            .expect("reader");
        let listed = reader.list(&KeyKind::Session).await.expect("list");
        let want: Vec<KeyId> = expected.keys().map(|k| KeyId::new(k.clone())).collect();
        assert_eq!(listed, want);
        let got = reader.get(&KeyKind::Session, &want).await.expect("get");
        let values: Vec<(KeyId, KeyValue)> = expected
            .iter()
            .map(|(id, s)| (KeyId::new(id.clone()), session(*s)))
            .collect();
        same(&got, &values, instance);
    }
}

/// Seeds `n` accounts of `sessions` sessions each (and one LID mapping), through a load-all
/// fleet; returns their ids.
async fn seed_accounts(prefix: &str, n: usize, sessions: usize) -> Vec<String> {
    let fleet = PostgresFleet::open(
        support::pool(),
        FleetOptions::new().account(support::options("template")),
    )
    .await
    .expect("seeding fleet");
    let mut instances = Vec::new();
    for _ in 0..n {
        let instance = support::unique(prefix);
        let store = open_account(&fleet, &instance).await;
        let names = ids("4915300000000", sessions)
            .into_iter()
            .map(|id| id.as_str().to_owned());
        let mut batch = put_sessions(names, 3);
        batch.put(
            KeyKind::LidMapping,
            "4915300000000",
            KeyValue::LidMapping("1".into()),
        );
        store.commit(batch).await.expect("seed");
        instances.push(instance);
    }
    fleet.close().await.expect("close the seeding fleet");
    instances
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_recently_used_accounts_are_evicted_first() {
    if !support::has_database("budget::the_least_recently_used_accounts_are_evicted_first") {
        return;
    }
    support::init_tracing();
    let instances = seed_accounts("budget-lru", 3, 10).await;
    let all = ids("4915300000000", 10);
    // The cost of one account's sessions, measured on a fleet without eviction.
    let per_account = {
        let probe = budgeted_fleet(usize::MAX, support::options("template")).await;
        let store = open_account(&probe, &instances[0]).await;
        store.get(&KeyKind::Session, &all).await.expect("get");
        let cost = probe.memory().cached_bytes;
        probe.close().await.expect("close");
        cost
    };
    assert!(per_account > 10 * 1000, "{per_account}");
    // Room for two accounts and a quarter: reading a third one evicts down to 90 % of the
    // budget, i.e. one account's worth: the coldest one.
    let budget = per_account * 9 / 4;
    let fleet = budgeted_fleet(budget, support::options("template")).await;
    let mut stores = Vec::new();
    for instance in &instances {
        stores.push(open_account(&fleet, instance).await);
    }
    let (cold, hot, new) = (&stores[0], &stores[1], &stores[2]);
    cold.get(&KeyKind::Session, &all).await.expect("get");
    hot.get(&KeyKind::Session, &all).await.expect("get");
    // The cold account was read before the hot one, the hot one again since.
    hot.get(&KeyKind::Session, &all[..5]).await.expect("get");
    hot.get(&KeyKind::Session, &all[5..]).await.expect("get");
    assert_eq!(fleet.memory().evictions, 0);
    new.get(&KeyKind::Session, &all).await.expect("get");
    let memory = fleet.memory();
    assert!(memory.resident_bytes <= budget, "{memory:?}");
    assert_eq!(cold.metrics().evictions, 10, "the cold account goes first");
    assert_eq!(cold.metrics().cached_keys, 0);
    assert_eq!(hot.metrics().evictions, 0);
    assert_eq!(hot.metrics().cached_keys, 10);
    assert_eq!(new.metrics().cached_keys, 10);
    // Read again: from the database, the same values.
    let got = cold.get(&KeyKind::Session, &all).await.expect("get");
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(_, v)| *v == session(3)));
    assert_eq!(cold.metrics().cache_loads, 20);
    fleet.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budgeted_cold_start_loads_only_the_resident_kinds() {
    if !support::has_database("budget::a_budgeted_cold_start_loads_only_the_resident_kinds") {
        return;
    }
    support::init_tracing();
    let instances = seed_accounts("budget-cold", 2, 20).await;
    let open = |budget: Option<usize>| async move {
        let mut options = FleetOptions::new().account(support::options("template"));
        options.memory_budget = budget;
        PostgresFleet::open(support::pool(), options)
            .await
            .expect("fleet")
    };
    let load_all = open(None).await;
    let budgeted = open(Some(1 << 30)).await;
    let full = open_account(&load_all, &instances[0]).await;
    let lean = open_account(&budgeted, &instances[1]).await;
    let (full_memory, lean_memory) = (load_all.memory(), budgeted.memory());
    assert_eq!(full_memory.budget, None);
    assert_eq!(lean_memory.budget, Some(1 << 30));
    assert_eq!(lean_memory.cached_keys, 0, "nothing cached before a read");
    // The same data; the budgeted open loaded the LID mapping only.
    assert!(
        lean_memory.pinned_bytes * 20 < full_memory.pinned_bytes,
        "{lean_memory:?} {full_memory:?}"
    );
    assert_eq!(full.metrics().resident_bytes, full_memory.resident_bytes);
    assert_eq!(
        lean.get(&KeyKind::LidMapping, &["4915300000000".into()])
            .await
            .expect("get")
            .len(),
        1
    );
    assert_eq!(lean.metrics().cache_loads, 0, "LID mappings are resident");
    let kinds = lean.kinds().await.expect("kinds");
    assert_eq!(kinds, vec![KeyKind::Session, KeyKind::LidMapping]);
    assert_eq!(kinds, full.kinds().await.expect("kinds"));
    load_all.close().await.expect("close");
    budgeted.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_reads_never_replace_a_concurrent_commit() {
    if !support::has_database("budget::database_reads_never_replace_a_concurrent_commit") {
        return;
    }
    support::init_tracing();
    // Every entry evicted as soon as it is clean: most reads go to the database while the
    // writer commits and flushes the same keys.
    let options = FleetOptions::new()
        .account(support::options("template").flush_interval(Duration::from_millis(1)))
        .memory_budget(1)
        .cached_kinds([KeyKind::LidMapping]);
    let fleet = PostgresFleet::open(support::pool(), options)
        .await
        .expect("fleet");
    let store = Arc::new(open_account(&fleet, &support::unique("budget-race")).await);
    let keys: Vec<KeyId> = (0..4).map(|k| KeyId::new(format!("race-{k}"))).collect();
    // The number of the newest change committed per key (0: none). Change `i` of key
    // `i % 4` puts the value `i`, or deletes the key when `i` is a multiple of 5.
    let committed: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new(keys.iter().map(|_| Default::default()).collect());
    let writer = {
        let (store, keys, committed) = (store.clone(), keys.clone(), committed.clone());
        tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            for i in 1..=600u64 {
                let k = (i % keys.len() as u64) as usize;
                let mut batch = WriteBatch::new();
                // Every fifth change of a key deletes it.
                if i % 5 == 0 {
                    batch.delete(KeyKind::LidMapping, keys[k].clone());
                } else {
                    let value = KeyValue::LidMapping(i.to_string());
                    batch.put(KeyKind::LidMapping, keys[k].clone(), value);
                }
                store.commit(batch).await.expect("commit");
                committed[k].store(i, Ordering::SeqCst);
                if i % 7 == 0 {
                    store.flush().await.expect("flush");
                } else {
                    // Flushed and evicted meanwhile, now and then.
                    tokio::time::sleep(Duration::from_micros(300 * (i % 3))).await;
                }
            }
        })
    };
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..3 {
        let (store, keys, committed) = (store.clone(), keys.clone(), committed.clone());
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            let mut reads = 0u64;
            for n in 0usize.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
                let k = (n + r) % keys.len();
                // What any read that starts now must see at least.
                let floor = committed[k].load(Ordering::SeqCst);
                let got = store
                    .get(&KeyKind::LidMapping, std::slice::from_ref(&keys[k]))
                    .await
                    .expect("get");
                let seen = match got.first() {
                    Some((_, KeyValue::LidMapping(v))) => v.parse::<u64>().expect("a number"),
                    None => 0,
                    Some(other) => panic!("unexpected {other:?}"),
                };
                // The writer records a change once its commit returned: the change after the
                // newest recorded one may already be visible.
                let now = committed
                    .iter()
                    .map(|c| c.load(Ordering::SeqCst))
                    .max()
                    .unwrap_or(0)
                    + 1;
                // Current: the state after one of the changes made while the read ran (from
                // the newest one before it on).
                let during = |i: u64| i >= floor && i <= now && (i == 0 || i % 4 == k as u64);
                let legal = if seen == 0 {
                    floor == 0 || (floor..=now).any(|i| during(i) && i % 5 == 0)
                } else {
                    during(seen) && seen % 5 != 0
                };
                assert!(
                    legal,
                    "key {k}: read {seen}, newest change {floor} before the read, {now} after"
                );
                reads += 1;
            }
            reads
        }));
    }
    writer.await.expect("writer");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        assert!(reader.await.expect("reader") > 100);
    }
    store.flush().await.expect("flush");
    assert!(store.metrics().cache_loads > 100, "{:?}", store.metrics());
    assert!(store.metrics().evictions > 100);
    fleet.close().await.expect("close");
}
