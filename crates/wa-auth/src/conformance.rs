//! The backend conformance suite (feature `conformance`): public async test functions every
//! [`Persistence`] must pass. Each takes a [`Harness`] that opens the store under test.
//!
//! Third-party backends run the whole suite with one macro in a test file:
//!
//! ```text
//! // tests/conformance.rs of a store crate (dev-dependency: wa-auth with feature "conformance")
//! wa_auth::conformance_tests!(my_store::testing::Harness::new());
//! ```
//!
//! and each test also runs through `Box<dyn Persistence>`, since the harness hands out trait
//! objects. Tests panic with a message naming the broken rule.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::batch::WriteBatch;
use crate::creds::{AuthCreds, Contact};
use crate::key::{KeyId, KeyKind, KeyValue};
use crate::persistence::{Persistence, PersistenceExt};
use crate::sample;

/// Opens the store under test. One harness per test; every call to [`Harness::open`] after the
/// previous handle was dropped must open the same data (for the reopen test).
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens (or reopens) the store. A new harness starts from an empty store.
    async fn open(&self) -> Arc<dyn Persistence>;

    /// Makes what was committed durable before a reopen (write-behind backends flush); the
    /// default calls [`Persistence::flush`].
    async fn settle(&self, store: &dyn Persistence) {
        store.flush().await.expect("flush must succeed");
    }
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

/// A value of every known kind and of an unknown kind round-trips; `list` and `kinds` see them.
pub async fn round_trip_every_kind(harness: &dyn Harness) {
    let store = harness.open().await;
    let samples = sample::one_of_every_kind();
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

/// Deletes remove keys; deleting a missing key is fine; within a batch the last change wins;
/// `get` returns only existing ids, once each.
pub async fn delete_and_get_semantics(harness: &dyn Harness) {
    let store = harness.open().await;
    let kind = KeyKind::LidMapping;
    let mut batch = WriteBatch::new();
    for i in 0..10 {
        batch.put(
            kind.clone(),
            format!("del-{i}"),
            KeyValue::LidMapping(format!("v{i}")),
        );
    }
    store.commit(batch).await.expect("puts");

    let mut batch = WriteBatch::new();
    batch.delete(kind.clone(), "del-0");
    batch.delete(kind.clone(), "never-existed");
    batch.put(kind.clone(), "del-1", KeyValue::LidMapping("x".into()));
    batch.delete(kind.clone(), "del-1");
    batch.delete(kind.clone(), "del-2");
    batch.put(kind.clone(), "del-2", KeyValue::LidMapping("back".into()));
    batch.put(
        kind.clone(),
        "del-3",
        KeyValue::LidMapping("overwritten".into()),
    );
    store.commit(batch).await.expect("mixed batch");

    let ids: Vec<KeyId> = [
        "del-0",
        "del-1",
        "del-2",
        "del-3",
        "del-4",
        "never-existed",
        "del-4",
    ]
    .into_iter()
    .map(KeyId::from)
    .collect();
    let mut got = store.get(&kind, &ids).await.expect("get");
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("del-2".into(), KeyValue::LidMapping("back".into())),
            ("del-3".into(), KeyValue::LidMapping("overwritten".into())),
            ("del-4".into(), KeyValue::LidMapping("v4".into())),
        ],
        "get must return exactly the existing ids, once each, with the last value written"
    );
    let listed: BTreeSet<KeyId> = store.list(&kind).await.expect("list").into_iter().collect();
    assert!(!listed.contains(&KeyId::from("del-0")) && !listed.contains(&KeyId::from("del-1")));
    assert!(listed.contains(&KeyId::from("del-9")));
    assert!(
        store
            .get(&KeyKind::Session, &[])
            .await
            .expect("get nothing")
            .is_empty()
    );
    store
        .commit(WriteBatch::new())
        .await
        .expect("an empty batch commits");
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

/// What was committed is there after the store is dropped and reopened.
pub async fn reopen_after_drop(harness: &dyn Harness) {
    let expected = {
        let store = harness.open().await;
        let mut batch = WriteBatch::new();
        batch.set_creds(creds_with_unknown_fields());
        for (kind, id, value) in sample::one_of_every_kind() {
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
        harness.settle(&*store).await;
        store.load_all().await.expect("load_all before reopen")
    };
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
    harness.settle(&*store).await;
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
    delete_and_get_semantics(&new_harness()).await;
    many_keys_and_unusual_ids(&new_harness()).await;
    reopen_after_drop(&new_harness()).await;
    concurrent_commits(&new_harness()).await;
}

/// Expands to one `#[tokio::test]` per conformance test, each with a fresh harness from
/// `$harness` (an expression evaluated per test). Needs `tokio` (macros, rt-multi-thread) as a
/// dev-dependency of the calling crate.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@tests $harness;
            creds_round_trip, round_trip_every_kind, batch_is_atomic, delete_and_get_semantics,
            many_keys_and_unusual_ids, reopen_after_drop, concurrent_commits);
    };
    (@tests $harness:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::conformance::$name(&harness).await;
            }
        )+
    };
}
