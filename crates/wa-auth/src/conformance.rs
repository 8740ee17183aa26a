//! The backend conformance suite (feature `conformance`): public async test functions, one per
//! rule of [`Persistence`] (each test is named in the rule it checks), that every backend
//! passes. Each takes a [`Harness`] that opens the store under test.
//!
//! Tests adapt to what the store declares in its [`Capabilities`] (as OpenDAL's behaviour
//! tests do): the durability test checks the declared [`Durability`], and tests of a feature
//! the store does not have (a read-only view, persistence) pass without checking anything,
//! saying so on stderr.
//!
//! A backend runs the whole suite with one macro in a test file; each use names a module, so
//! one file can run it for several configurations:
//!
//! ```text
//! // tests/conformance.rs of a store crate (dev-dependency: wa-auth with feature "conformance")
//! wa_auth::conformance_tests!(default_options, my_store::testing::Harness::new());
//! wa_auth::conformance_tests!(without_sync, my_store::testing::Harness::without_sync());
//! ```
//!
//! Tests panic with a message naming the broken rule.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::batch::WriteBatch;
use crate::creds::{AuthCreds, Contact};
use crate::error::AuthError;
use crate::key::{KeyId, KeyKind, KeyValue};
use crate::persistence::{Capabilities, Durability, Persistence, PersistenceExt, Snapshot};
use crate::sample;

/// Opens the store under test: the factory the reopen, durability and read-only tests use.
/// One harness per test; a new harness starts from an empty store, and every later
/// [`open`](Harness::open) opens the same data again.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens (or reopens) the store for writing. Called again after the previous handle was
    /// closed or dropped.
    async fn open(&self) -> Arc<dyn Persistence>;

    /// Opens a read-only view of the same data, for backends that offer one (the default:
    /// none, and the read-only test checks nothing).
    async fn open_read_only(&self) -> Option<Arc<dyn Persistence>> {
        None
    }
}

/// Says on stderr that `test` checked nothing for a store without `feature`.
fn skipped(test: &str, capabilities: &Capabilities, feature: &str) {
    eprintln!(
        "conformance {test}: skipped for the {} backend ({feature})",
        capabilities.backend
    );
}

fn creds_with_unknown_fields() -> AuthCreds {
    let mut creds = AuthCreds::generate();
    creds.me = Some(Contact {
        id: "15550100001:17@s.whatsapp.net".into(),
        lid: Some("100000000000001:17@lid".into()),
        name: Some("Conformance".into()),
        extra: [("imgUrl".to_owned(), json!("changed"))].into(),
        ..Default::default()
    });
    creds.extra.insert(
        "fieldFromTheFuture".into(),
        json!({"nested": [1, "two", {"three": 3.5}], "flag": true}),
    );
    creds.additional_data = Some(json!({"anything": ["goes", 1]}));
    creds.routing_info = Some(vec![8, 5, 8, 8]);
    creds.next_pre_key_id = 31;
    creds.first_unuploaded_pre_key_id = 31;
    creds
}

/// A fresh store has no creds and no keys; creds round-trip with unknown fields intact.
pub async fn creds_round_trip(harness: &dyn Harness) {
    let store = harness.open().await;
    assert_eq!(
        store.load_creds().await.expect("load_creds"),
        None,
        "a fresh store must hold no creds"
    );
    assert!(
        store.is_empty().await.expect("is_empty"),
        "a fresh store must be empty"
    );
    let creds = creds_with_unknown_fields();
    store.save_creds(&creds).await.expect("save creds");
    let loaded = store
        .load_creds()
        .await
        .expect("load_creds")
        .expect("creds were saved");
    assert_eq!(
        loaded, creds,
        "creds (with unknown fields) must round-trip unchanged"
    );
    assert_eq!(
        loaded.extra.get("fieldFromTheFuture"),
        creds.extra.get("fieldFromTheFuture")
    );
    let mut updated = creds.clone();
    updated.registered = true;
    updated.next_pre_key_id = 61;
    store.save_creds(&updated).await.expect("save creds again");
    assert_eq!(
        store.load_creds().await.expect("load").expect("creds"),
        updated,
        "creds are replaced as a whole"
    );
}

/// Kinds no build of this crate knows, with values of every JSON shape.
fn unknown_kind_samples() -> Vec<(KeyKind, KeyId, KeyValue)> {
    let kind = |name: &str| KeyKind::from_name(name).expect("a valid kind name");
    vec![
        (
            kind("kind-from-the-future"),
            KeyId::new("nested"),
            KeyValue::Other(json!({"a": [1, 2.5, "three", null], "b": {"c": true}})),
        ),
        (
            kind("kind-from-the-future"),
            KeyId::new("scalar"),
            KeyValue::Other(json!("just a string")),
        ),
        (
            kind("another-unknown-kind"),
            KeyId::new("1"),
            KeyValue::Other(json!([{"deep": [[[]]]}])),
        ),
    ]
}

/// A value of every known kind and of unknown kinds round-trips; `list` and `kinds` see them.
pub async fn round_trip_every_kind(harness: &dyn Harness) {
    let store = harness.open().await;
    let mut samples = sample::one_of_every_kind();
    samples.extend(unknown_kind_samples());
    let mut batch = WriteBatch::new();
    for (kind, id, value) in &samples {
        batch.put(kind.clone(), id.clone(), value.clone());
    }
    store.commit(batch).await.expect("commit one of every kind");
    let kinds: BTreeSet<KeyKind> = store.kinds().await.expect("kinds").into_iter().collect();
    for (kind, id, value) in &samples {
        let got = store
            .get(kind, std::slice::from_ref(id))
            .await
            .expect("get");
        assert_eq!(
            got,
            vec![(id.clone(), value.clone())],
            "{kind} {id} must round-trip"
        );
        assert!(
            store.list(kind).await.expect("list").contains(id),
            "list({kind}) must contain {id}"
        );
        assert!(kinds.contains(kind), "kinds() must contain {kind}");
    }
}

/// A batch that cannot be applied leaves no trace: no creds change, no put, no delete.
pub async fn batch_is_atomic(harness: &dyn Harness) {
    let store = harness.open().await;
    let creds = creds_with_unknown_fields();
    let mut base = WriteBatch::new();
    base.set_creds(creds.clone());
    base.put(
        KeyKind::LidMapping,
        "atomic-keep",
        KeyValue::LidMapping("1".into()),
    );
    store.commit(base).await.expect("base commit");

    let mut changed = creds.clone();
    changed.registration_id = (creds.registration_id + 1) & 0x3fff;
    let mut bad = WriteBatch::new();
    bad.set_creds(changed);
    bad.delete(KeyKind::LidMapping, "atomic-keep");
    for i in 0..50 {
        bad.put(
            KeyKind::DeviceList,
            format!("atomic-new-{i}"),
            KeyValue::DeviceList(vec!["0".into()]),
        );
    }
    // The invalid entry sorts after the valid ones, so a backend that applies entries one by
    // one has already written some when it meets it.
    bad.put(
        KeyKind::TcToken,
        "zz-invalid",
        KeyValue::LidMapping("a lid mapping is not a tctoken".into()),
    );
    let result = store.commit(bad).await;
    assert!(
        result.is_err(),
        "a batch with an invalid entry must be rejected"
    );

    assert_eq!(
        store.load_creds().await.expect("load").as_ref(),
        Some(&creds),
        "creds must be unchanged"
    );
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"atomic-keep".into())
            .await
            .expect("get"),
        Some(KeyValue::LidMapping("1".into())),
        "the delete of a rejected batch must not apply"
    );
    let leaked = store.list(&KeyKind::DeviceList).await.expect("list");
    assert!(
        !leaked
            .iter()
            .any(|id| id.as_str().starts_with("atomic-new-")),
        "puts of a rejected batch leaked: {leaked:?}"
    );
    let mut empty_id = WriteBatch::new();
    empty_id.put(KeyKind::LidMapping, "ok", KeyValue::LidMapping("2".into()));
    empty_id.delete(KeyKind::LidMapping, "");
    assert!(
        store.commit(empty_id).await.is_err(),
        "an empty key id must be rejected"
    );
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"ok".into())
            .await
            .expect("get"),
        None
    );
}

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.into())
}

/// Commits ten `LidMapping` keys `{prefix}-0` .. `{prefix}-9` with values `v0` .. `v9`.
async fn put_ten(store: &dyn Persistence, prefix: &str) {
    let mut batch = WriteBatch::new();
    for i in 0..10 {
        batch.put(
            KeyKind::LidMapping,
            format!("{prefix}-{i}"),
            lid(&format!("v{i}")),
        );
    }
    store.commit(batch).await.expect("puts");
}

/// Deletes remove keys; deleting a missing key is not an error; within a batch the last change
/// to a key wins; an empty batch commits.
pub async fn delete_semantics(harness: &dyn Harness) {
    let store = harness.open().await;
    let kind = KeyKind::LidMapping;
    put_ten(&*store, "del").await;

    let mut batch = WriteBatch::new();
    batch.delete(kind.clone(), "del-0");
    batch.delete(kind.clone(), "never-existed");
    batch.put(kind.clone(), "del-1", lid("x"));
    batch.delete(kind.clone(), "del-1");
    batch.delete(kind.clone(), "del-2");
    batch.put(kind.clone(), "del-2", lid("back"));
    batch.put(kind.clone(), "del-3", lid("overwritten"));
    store.commit(batch).await.expect("mixed batch");

    let ids: Vec<KeyId> = (0..4).map(|i| KeyId::new(format!("del-{i}"))).collect();
    let mut got = store.get(&kind, &ids).await.expect("get");
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("del-2".into(), lid("back")),
            ("del-3".into(), lid("overwritten")),
        ],
        "deleted keys must be gone and the last change in a batch must win"
    );
    let listed: BTreeSet<KeyId> = store.list(&kind).await.expect("list").into_iter().collect();
    for gone in ["del-0", "del-1", "never-existed"] {
        assert!(
            !listed.contains(&KeyId::from(gone)),
            "list must not return the deleted {gone}"
        );
    }
    assert!(listed.contains(&KeyId::from("del-9")));

    let mut missing_only = WriteBatch::new();
    missing_only.delete(KeyKind::Session, "never-existed");
    store
        .commit(missing_only)
        .await
        .expect("deleting only missing keys is not an error");
    store
        .commit(WriteBatch::new())
        .await
        .expect("an empty batch commits");
    assert_eq!(
        store.get_one(&kind, &"del-4".into()).await.expect("get"),
        Some(lid("v4")),
        "keys not touched must be unchanged"
    );
}

/// `get` returns exactly the ids that exist, each once, whatever duplicates and missing ids
/// it is asked for, and nothing for an empty list or an empty kind.
pub async fn get_duplicates_and_missing(harness: &dyn Harness) {
    let store = harness.open().await;
    let kind = KeyKind::LidMapping;
    put_ten(&*store, "get").await;
    let ids: Vec<KeyId> = [
        "get-4",
        "missing",
        "get-1",
        "get-4",
        "get-4",
        "also-missing",
        "get-1",
    ]
    .into_iter()
    .map(KeyId::from)
    .collect();
    let mut got = store.get(&kind, &ids).await.expect("get");
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![("get-1".into(), lid("v1")), ("get-4".into(), lid("v4"))],
        "get must return the existing ids once each, and nothing for missing ones"
    );
    assert!(
        store.get(&kind, &[]).await.expect("get nothing").is_empty(),
        "get of no ids returns nothing"
    );
    assert!(
        store
            .get(&KeyKind::SenderKey, &ids)
            .await
            .expect("get from an empty kind")
            .is_empty(),
        "get from a kind without keys returns nothing"
    );
    assert!(
        store
            .get(&KeyKind::Session, &["get-1".into()])
            .await
            .expect("get under another kind")
            .is_empty(),
        "ids are per kind: an id stored under one kind is absent under another"
    );
}

/// `list` returns every id of a kind once; `kinds` returns every kind holding a key, and not
/// a kind whose keys were all deleted.
pub async fn list_and_kinds(harness: &dyn Harness) {
    let store = harness.open().await;
    assert!(
        store.kinds().await.expect("kinds").is_empty(),
        "a fresh store has no kinds"
    );
    assert!(
        store
            .list(&KeyKind::Session)
            .await
            .expect("list")
            .is_empty()
    );
    put_ten(&*store, "list").await;
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::DeviceList,
        "dl",
        KeyValue::DeviceList(vec!["0".into()]),
    );
    let (other_kind, other_id, other_value) = unknown_kind_samples().remove(0);
    batch.put(other_kind.clone(), other_id.clone(), other_value);
    store.commit(batch).await.expect("commit");

    let listed = store.list(&KeyKind::LidMapping).await.expect("list");
    let unique: BTreeSet<KeyId> = listed.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        unique.len(),
        "list returned an id twice: {listed:?}"
    );
    let expected: BTreeSet<KeyId> = (0..10).map(|i| KeyId::new(format!("list-{i}"))).collect();
    assert_eq!(unique, expected, "list must return exactly the stored ids");
    assert_eq!(
        store.list(&other_kind).await.expect("list"),
        vec![other_id.clone()]
    );

    let kinds: BTreeSet<KeyKind> = store.kinds().await.expect("kinds").into_iter().collect();
    let expected: BTreeSet<KeyKind> =
        [KeyKind::LidMapping, KeyKind::DeviceList, other_kind.clone()].into();
    assert_eq!(
        kinds, expected,
        "kinds must return exactly the kinds holding keys"
    );

    let mut emptied = WriteBatch::new();
    emptied.delete(KeyKind::DeviceList, "dl");
    emptied.delete(other_kind.clone(), other_id);
    store.commit(emptied).await.expect("delete");
    let kinds: BTreeSet<KeyKind> = store.kinds().await.expect("kinds").into_iter().collect();
    assert_eq!(
        kinds,
        [KeyKind::LidMapping].into(),
        "a kind whose keys were all deleted must not be listed"
    );
}

/// Many keys in one batch, and unusual but valid ids, are stored and listed exactly.
pub async fn many_keys_and_unusual_ids(harness: &dyn Harness) {
    let store = harness.open().await;
    let ids = [
        "a/b",
        "c:d",
        "120363@g.us::4915::0",
        "日本語",
        "with space",
        "x".repeat(200).as_str(),
        "..",
        ".",
    ]
    .map(String::from);
    let mut batch = WriteBatch::new();
    for (n, id) in ids.iter().enumerate() {
        batch.put(
            KeyKind::LidMapping,
            id.as_str(),
            KeyValue::LidMapping(n.to_string()),
        );
    }
    for i in 0..1000 {
        batch.put(
            KeyKind::DeviceList,
            format!("bulk-{i:04}"),
            KeyValue::DeviceList(vec![i.to_string()]),
        );
    }
    store.commit(batch).await.expect("bulk commit");
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            store
                .get_one(&KeyKind::LidMapping, &KeyId::new(id.as_str()))
                .await
                .expect("get"),
            Some(KeyValue::LidMapping(n.to_string())),
            "id {id:?} must round-trip"
        );
    }
    let listed = store.list(&KeyKind::DeviceList).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .filter(|id| id.as_str().starts_with("bulk-"))
            .count(),
        1000
    );
    let all = store
        .load_kind(&KeyKind::DeviceList)
        .await
        .expect("load kind");
    assert_eq!(
        all.get(&KeyId::from("bulk-0999")),
        Some(&KeyValue::DeviceList(vec!["999".into()]))
    );
}

/// Commits creds, one value of every kind and a second batch changing some; returns what
/// the store then holds.
async fn commit_everything(store: &dyn Persistence) -> Snapshot {
    let mut batch = WriteBatch::new();
    batch.set_creds(creds_with_unknown_fields());
    for (kind, id, value) in sample::one_of_every_kind()
        .into_iter()
        .chain(unknown_kind_samples())
    {
        batch.put(kind, id, value);
    }
    store.commit(batch).await.expect("commit");
    let mut second = WriteBatch::new();
    second.delete(KeyKind::LidMapping, "15550100001");
    second.put(
        KeyKind::PreKey,
        "18",
        KeyValue::PreKey(wa_signal::PreKeyRecord {
            id: wa_signal::PreKeyId(18),
            key_pair: wa_signal::KeyPair::generate(&mut crate::SystemProvider::new()),
        }),
    );
    store.commit(second).await.expect("second commit");
    store.load_all().await.expect("load_all")
}

/// What was committed is there when the store is closed and opened again.
pub async fn reopen_after_close(harness: &dyn Harness) {
    let store = harness.open().await;
    let expected = commit_everything(&*store).await;
    store.close().await.expect("close");
    drop(store);
    let reopened = harness.open().await;
    let after = reopened.load_all().await.expect("load_all after reopen");
    assert_eq!(
        after, expected,
        "a reopened store must hold exactly what was committed"
    );
    assert!(
        after
            .keys
            .get(&KeyKind::LidMapping)
            .is_none_or(|m| !m.contains_key(&KeyId::from("15550100001")))
    );
    reopened.close().await.expect("close");
}

/// Durability as declared in [`Capabilities::durability`]: `flush` succeeds; a store durable
/// on commit holds every batch when reopened after being dropped without `flush` or `close`;
/// one durable on flush holds every batch flushed before it was dropped.
pub async fn durability_as_declared(harness: &dyn Harness) {
    let store = harness.open().await;
    let capabilities = store.capabilities();
    if !capabilities.persistent {
        store.flush().await.expect("flush must succeed");
        return skipped("durability_as_declared", &capabilities, "not persistent");
    }
    let expected = commit_everything(&*store).await;
    match capabilities.durability {
        Durability::OnCommit => {}
        Durability::OnFlush => store.flush().await.expect("flush must succeed"),
        // Nothing promised beyond the process: close is the only way to be sure.
        _ => store.close().await.expect("close"),
    }
    drop(store);
    let reopened = harness.open().await;
    assert_eq!(
        reopened.load_all().await.expect("load_all after reopen"),
        expected,
        "a store durable {:?} lost committed batches when dropped and reopened",
        capabilities.durability
    );
    reopened.flush().await.expect("flush of a fresh handle");
    reopened.close().await.expect("close");
}

/// A read-only view reads what was committed, says it is read-only, refuses every commit with
/// [`AuthError::ReadOnly`] and changes nothing.
pub async fn read_only_refuses_writes(harness: &dyn Harness) {
    let writer = harness.open().await;
    assert!(
        !writer.capabilities().read_only,
        "a store opened for writing must not declare itself read-only"
    );
    let expected = commit_everything(&*writer).await;
    writer.close().await.expect("close");
    drop(writer);
    let Some(view) = harness.open_read_only().await else {
        let capabilities = harness.open().await.capabilities();
        return skipped(
            "read_only_refuses_writes",
            &capabilities,
            "no read-only view",
        );
    };
    assert!(
        view.capabilities().read_only,
        "a read-only view must say so"
    );
    assert_eq!(view.load_all().await.expect("read"), expected);
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, "read-only", lid("1"));
    let mut creds_only = WriteBatch::new();
    creds_only.set_creds(AuthCreds::generate());
    for batch in [batch, creds_only, WriteBatch::new()] {
        match view.commit(batch).await {
            Err(AuthError::ReadOnly { .. }) => {}
            other => panic!("a read-only view must refuse commits with ReadOnly, got {other:?}"),
        }
    }
    view.close().await.expect("close the view");
    drop(view);
    let reopened = harness.open().await;
    assert_eq!(
        reopened.load_all().await.expect("read"),
        expected,
        "a read-only view changed the store"
    );
    reopened.close().await.expect("close");
}

/// `close` is idempotent, releases the store at once, and every operation after it fails with
/// [`AuthError::Closed`].
pub async fn close_semantics(harness: &dyn Harness) {
    let store = harness.open().await;
    let mut batch = WriteBatch::new();
    batch.set_creds(creds_with_unknown_fields());
    batch.put(KeyKind::LidMapping, "closed", lid("1"));
    store.commit(batch).await.expect("commit");
    let expected = store.load_all().await.expect("load_all");
    store.close().await.expect("close");
    store.close().await.expect("a second close is Ok");
    let closed = |result: Result<(), AuthError>, what: &str| match result {
        Err(AuthError::Closed) => {}
        other => panic!("{what} after close must fail with Closed, got {other:?}"),
    };
    closed(store.load_creds().await.map(drop), "load_creds");
    closed(
        store
            .get(&KeyKind::LidMapping, &["closed".into()])
            .await
            .map(drop),
        "get",
    );
    closed(store.list(&KeyKind::LidMapping).await.map(drop), "list");
    closed(store.kinds().await.map(drop), "kinds");
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, "after-close", lid("2"));
    closed(store.commit(batch).await, "commit");
    closed(store.flush().await, "flush");
    // The closed handle is still alive: the store must be released all the same.
    let reopened = harness.open().await;
    assert_eq!(
        reopened.load_all().await.expect("load_all"),
        expected,
        "close must keep everything committed"
    );
    drop(store);
    reopened.close().await.expect("close");
}

/// Concurrent commits from many tasks all land; concurrent creds saves leave one of them.
pub async fn concurrent_commits(harness: &dyn Harness) {
    let store = harness.open().await;
    let mut tasks = Vec::new();
    let creds: Vec<AuthCreds> = (0..4).map(|_| AuthCreds::generate()).collect();
    for task in 0..16 {
        let store = store.clone();
        let creds = creds[task % creds.len()].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let mut batch = WriteBatch::new();
                batch.put(
                    KeyKind::LidMapping,
                    format!("c-{task}-{i}"),
                    KeyValue::LidMapping(format!("{task}:{i}")),
                );
                batch.put(
                    KeyKind::DeviceList,
                    format!("c-{task}-{i}"),
                    KeyValue::DeviceList(vec![i.to_string()]),
                );
                if i % 5 == 0 {
                    batch.set_creds(creds.clone());
                }
                store.commit(batch).await.expect("concurrent commit");
            }
        }));
    }
    for task in tasks {
        task.await.expect("committer task");
    }
    store.flush().await.expect("flush");
    for task in 0..16 {
        let ids: Vec<KeyId> = (0..10)
            .map(|i| KeyId::new(format!("c-{task}-{i}")))
            .collect();
        assert_eq!(
            store
                .get(&KeyKind::LidMapping, &ids)
                .await
                .expect("get")
                .len(),
            10,
            "task {task} lost commits"
        );
        assert_eq!(
            store
                .get(&KeyKind::DeviceList, &ids)
                .await
                .expect("get")
                .len(),
            10,
            "task {task} lost commits"
        );
    }
    let stored = store.load_creds().await.expect("load").expect("creds");
    assert!(
        creds.contains(&stored),
        "creds must be one of the committed ones, not a mix"
    );
}

/// Runs every test, each with a fresh harness from `new_harness`.
pub async fn run_all<H: Harness>(new_harness: impl Fn() -> H) {
    creds_round_trip(&new_harness()).await;
    round_trip_every_kind(&new_harness()).await;
    batch_is_atomic(&new_harness()).await;
    delete_semantics(&new_harness()).await;
    get_duplicates_and_missing(&new_harness()).await;
    list_and_kinds(&new_harness()).await;
    many_keys_and_unusual_ids(&new_harness()).await;
    concurrent_commits(&new_harness()).await;
    reopen_after_close(&new_harness()).await;
    durability_as_declared(&new_harness()).await;
    read_only_refuses_writes(&new_harness()).await;
    close_semantics(&new_harness()).await;
}

/// Expands to a module `$module` holding one `#[tokio::test]` per conformance test, each with
/// a fresh harness from `$harness` (an expression evaluated per test, in a child module of the
/// caller: the caller's items and imports are in scope). Use it once per configuration; the
/// module names keep the tests apart. Needs `tokio` (macros, rt-multi-thread) as a
/// dev-dependency of the calling crate.
#[macro_export]
macro_rules! conformance_tests {
    ($module:ident, $harness:expr) => {
        $crate::conformance_tests!(@module $module, $harness;
            creds_round_trip, round_trip_every_kind, batch_is_atomic, delete_semantics,
            get_duplicates_and_missing, list_and_kinds, many_keys_and_unusual_ids,
            concurrent_commits, reopen_after_close, durability_as_declared,
            read_only_refuses_writes, close_semantics);
    };
    (@module $module:ident, $harness:expr; $($name:ident),+) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let harness = $harness;
                    $crate::conformance::$name(&harness).await;
                }
            )+
        }
    };
}
