//! What is flushed survives: restarts (drop or close, then reopen) give identical state, a
//! large snapshot of every kind (unknown kinds and unknown creds fields included) reads back
//! identical, AuthState flushes before sending, instances sharing a database stay apart,
//! unreadable rows are reported (never treated as absent) and values PostgreSQL cannot hold are
//! refused before they are queued.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use wa_auth::codec::encode_json;
use wa_auth::creds::Contact;
use wa_auth::sample;
use wa_auth::{
    AuthCreds, AuthError, AuthState, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt,
    Snapshot, Transaction, WriteBatch,
};
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord};
use wa_store_postgres::PostgresStore;

async fn open(instance: &str) -> PostgresStore {
    PostgresStore::open(support::pool(), support::options(instance))
        .await
        .expect("open")
}

fn creds_with_unknown_fields() -> AuthCreds {
    let mut creds = AuthCreds::generate();
    creds.me = Some(Contact {
        id: "15550100001:17@s.whatsapp.net".into(),
        lid: Some("100000000000001:17@lid".into()),
        name: Some("Ünïcødé ✓".into()),
        extra: [("imgUrl".to_owned(), json!("https://example.invalid/x.jpg"))].into(),
        ..Default::default()
    });
    creds.extra.insert(
        "fieldFromTheFuture".into(),
        json!({"nested": [1, "two", {"three": 3.5}], "big": 18446744073709551615u64, "neg": -9007199254740993i64}),
    );
    creds.extra.insert("anotherNewField".into(), json!(null));
    creds.routing_info = Some(vec![8, 5, 8, 8]);
    creds.next_pre_key_id = 812;
    creds.first_unuploaded_pre_key_id = 801;
    creds
}

/// A snapshot of `per_kind` keys of every known kind plus three unknown kinds.
fn large_snapshot(per_kind: usize) -> Snapshot {
    let templates = sample::one_of_every_kind();
    let sessions: Vec<_> = (0..8u8).map(sample::session).collect();
    let sender_keys: Vec<_> = (0..8u8).map(sample::sender_key).collect();
    let mut keys: BTreeMap<KeyKind, BTreeMap<KeyId, KeyValue>> = BTreeMap::new();
    for (kind, _, template) in &templates {
        let entries = keys.entry(kind.clone()).or_default();
        for i in 0..per_kind {
            let (id, value) = match kind {
                KeyKind::PreKey => (
                    i.to_string(),
                    KeyValue::PreKey(PreKeyRecord {
                        id: PreKeyId(i as u32),
                        key_pair: KeyPair::generate(&mut wa_auth::SystemProvider::new()),
                    }),
                ),
                KeyKind::Session => (
                    format!("{}.{}", 4915100000000u64 + i as u64, i % 5),
                    KeyValue::Session(sessions[i % sessions.len()].clone()),
                ),
                KeyKind::SenderKey => (
                    format!("1203630{i}@g.us::1555010{i}::{}", i % 3),
                    KeyValue::SenderKey(sender_keys[i % sender_keys.len()].clone()),
                ),
                KeyKind::LidMapping => (
                    format!("1555010{i:05}"),
                    KeyValue::LidMapping(format!("1000000{i:08}")),
                ),
                KeyKind::IdentityKey => (
                    format!("1000000{i:08}_1.{}", i % 4),
                    KeyValue::IdentityKey(
                        KeyPair::generate(&mut wa_auth::SystemProvider::new()).public,
                    ),
                ),
                KeyKind::DeviceList => (
                    format!("user{i}"),
                    KeyValue::DeviceList((0..(i % 4)).map(|d| d.to_string()).collect()),
                ),
                _ => (format!("{kind}-{i}"), template.clone()),
            };
            entries.insert(KeyId::new(id), value);
        }
    }
    for name in ["future-kind", "another_kind-2", "x"] {
        let kind = KeyKind::from_name(name).expect("kind");
        let entries = keys.entry(kind).or_default();
        for i in 0..per_kind / 4 {
            let value = json!({
                "i": i,
                "float": 0.1 + i as f64,
                "text": format!("line\nbreak \"quoted\" \\ émoji 🙂 {i}"),
                "list": [null, true, false, [], {}, {"deep": {"deeper": [i, -1]}}],
                "big": u64::MAX,
                "small": i64::MIN,
            });
            entries.insert(KeyId::new(format!("{name}/{i}:ü")), KeyValue::Other(value));
        }
    }
    Snapshot {
        creds: Some(creds_with_unknown_fields()),
        keys,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_gives_identical_state() {
    if !support::has_database("durability::restart_gives_identical_state") {
        return;
    }
    support::init_tracing();
    let instance = support::unique("restart");
    let expected = {
        let store = open(&instance).await;
        let mut batch = WriteBatch::new();
        batch.set_creds(creds_with_unknown_fields());
        for (kind, id, value) in sample::one_of_every_kind() {
            batch.put(kind, id, value);
        }
        store.commit(batch).await.expect("commit");
        let mut second = WriteBatch::new();
        second.delete(KeyKind::LidMapping, "15550100001");
        second.put(
            KeyKind::DeviceList,
            "15550100001",
            KeyValue::DeviceList(vec!["0".into(), "3".into()]),
        );
        store.commit(second).await.expect("commit");
        store.flush().await.expect("flush");
        let snapshot = store.load_all().await.expect("load_all");
        store.close().await.expect("close");
        assert!(matches!(store.load_all().await, Err(AuthError::Closed)));
        assert!(matches!(
            store.commit(WriteBatch::new()).await,
            Err(AuthError::Closed)
        ));
        snapshot
    };
    // Reopen after close (lease released at once), then after a plain drop.
    let reopened = open(&instance).await;
    assert_eq!(reopened.load_all().await.expect("load_all"), expected);
    drop(reopened);
    let again = open(&instance).await;
    assert_eq!(again.load_all().await.expect("load_all"), expected);
    again.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_snapshot_of_every_kind_reads_back_identical() {
    if !support::has_database("durability::large_snapshot_of_every_kind_reads_back_identical") {
        return;
    }
    support::init_tracing();
    let instance = support::unique("snapshot");
    let snapshot = large_snapshot(1500);
    assert!(snapshot.key_count() > 15_000);
    let store = open(&instance).await;
    // In several batches, as a migration would write it.
    let mut batch = WriteBatch::new();
    batch.set_creds(snapshot.creds.clone().expect("creds"));
    for (kind, entries) in &snapshot.keys {
        for (id, value) in entries {
            batch.put(kind.clone(), id.clone(), value.clone());
            if batch.key_count() == 3000 {
                store
                    .commit(std::mem::take(&mut batch))
                    .await
                    .expect("commit");
            }
        }
    }
    store.commit(batch).await.expect("commit");
    assert_eq!(store.load_all().await.expect("from memory"), snapshot);
    store.flush().await.expect("flush");
    let metrics = store.metrics();
    assert_eq!(metrics.queued_keys, 0);
    assert_eq!(metrics.queued_batches, 0);
    assert_eq!(metrics.flushed_batches, metrics.committed_batches);
    store.close().await.expect("close");

    let reopened = open(&instance).await;
    let loaded = reopened.load_all().await.expect("load_all");
    assert_eq!(loaded.counts(), snapshot.counts());
    assert_eq!(loaded, snapshot, "the snapshot must read back identical");

    // One row per key, counted by the database itself.
    let client = support::client().await;
    assert_eq!(
        support::key_rows(&client, &instance).await,
        snapshot.key_count() as u64
    );
    reopened.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_have_the_documented_json_shapes() {
    if !support::has_database("durability::rows_have_the_documented_json_shapes") {
        return;
    }
    let instance = support::unique("shapes");
    let store = open(&instance).await;
    let creds = creds_with_unknown_fields();
    let mut batch = WriteBatch::new();
    batch.set_creds(creds.clone());
    let samples = sample::one_of_every_kind();
    for (kind, id, value) in &samples {
        batch.put(kind.clone(), id.clone(), value.clone());
    }
    store.commit(batch).await.expect("commit");
    store.flush().await.expect("flush");
    let client = support::client().await;
    for (kind, id, value) in &samples {
        let row = client
            .query_one(
                "SELECT data::text, written_epoch FROM wa_auth.keys
                 WHERE instance_id = $1 AND kind = $2 AND key_id = $3",
                &[&instance, &kind.as_str(), &id.as_str()],
            )
            .await
            .expect("row");
        let data: serde_json::Value =
            serde_json::from_str(row.get::<_, &str>(0)).expect("stored JSON");
        assert_eq!(
            data,
            encode_json(value),
            "{kind} is stored in its canonical JSON"
        );
        assert_eq!(row.get::<_, Option<i64>>(1), Some(store.epoch()));
        match kind {
            KeyKind::PreKey => assert!(data["public"].is_string() && data["private"].is_string()),
            KeyKind::Session | KeyKind::SenderKey | KeyKind::IdentityKey => {
                assert!(data.is_string(), "{kind} is a base64 string")
            }
            KeyKind::LidMapping => assert_eq!(data, json!("100000000000001")),
            KeyKind::DeviceList => assert_eq!(data, json!(["0", "17"])),
            KeyKind::AppStateSyncKey => {
                assert!(data["keyData"].is_string() && data["fingerprint"]["rawId"].is_number())
            }
            KeyKind::AppStateSyncVersion => {
                assert!(data["hash"].is_string() && data["indexValueMap"].is_object())
            }
            KeyKind::TcToken => assert!(data["token"].is_string()),
            KeyKind::SenderKeyMemory => assert!(data.is_object()),
            KeyKind::Other(_) => assert_eq!(data["n"], json!(-5)),
        }
    }
    let stored: serde_json::Value = serde_json::from_str(
        client
            .query_one(
                "SELECT data::text FROM wa_auth.creds WHERE instance_id = $1",
                &[&instance],
            )
            .await
            .expect("creds row")
            .get::<_, &str>(0),
    )
    .expect("creds JSON");
    assert_eq!(stored, serde_json::to_value(&creds).expect("creds JSON"));
    for field in [
        "noiseKey",
        "signedIdentityKey",
        "signedPreKey",
        "registrationId",
        "advSecretKey",
        "fieldFromTheFuture",
    ] {
        assert!(stored.get(field).is_some(), "creds JSON has {field}");
    }
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_state_flushes_before_send() {
    if !support::has_database("durability::auth_state_flushes_before_send") {
        return;
    }
    let instance = support::unique("authstate");
    let store = Arc::new(open(&instance).await);
    assert_eq!(
        store.capabilities().durability,
        wa_auth::Durability::OnFlush
    );
    assert!(!store.capabilities().read_only);
    assert!(store.capabilities().atomic_commit);
    assert!(store.capabilities().persistent);
    let state = AuthState::load(store.clone()).await.expect("fresh creds");
    state
        .transaction("4915112345678.0", async |tx: &mut Transaction<'_>| {
            tx.put(
                KeyKind::Session,
                "4915112345678.0",
                KeyValue::Session(sample::session(9)),
            );
            tx.require_flush_before_send();
            Ok::<_, AuthError>(())
        })
        .await
        .expect("transaction");
    // No explicit flush: the transaction's flush rule made it durable before returning.
    let client = support::client().await;
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM wa_auth.keys WHERE instance_id = $1 AND kind = 'session'",
            &[&instance],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        rows, 1,
        "the session must be in the database when the transaction returns"
    );
    let creds_rows: i64 = client
        .query_one(
            "SELECT count(*) FROM wa_auth.creds WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        creds_rows, 1,
        "fresh creds went out in the same or an earlier flush"
    );
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_database_stay_apart() {
    if !support::has_database("durability::instances_sharing_a_database_stay_apart") {
        return;
    }
    let (a_id, b_id) = (support::unique("tenant-a"), support::unique("tenant-b"));
    let a = open(&a_id).await;
    let b = open(&b_id).await;
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "same-id",
        KeyValue::LidMapping("a".into()),
    );
    a.commit(batch).await.expect("commit a");
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "same-id",
        KeyValue::LidMapping("b".into()),
    );
    batch.put(
        KeyKind::LidMapping,
        "only-b",
        KeyValue::LidMapping("b".into()),
    );
    b.commit(batch).await.expect("commit b");
    a.flush().await.expect("flush");
    b.flush().await.expect("flush");
    a.close().await.expect("close");
    b.close().await.expect("close");
    let a = open(&a_id).await;
    let b = open(&b_id).await;
    let id = KeyId::new("same-id");
    assert_eq!(
        a.get_one(&KeyKind::LidMapping, &id).await.expect("get"),
        Some(KeyValue::LidMapping("a".into()))
    );
    assert_eq!(
        b.get_one(&KeyKind::LidMapping, &id).await.expect("get"),
        Some(KeyValue::LidMapping("b".into()))
    );
    assert_eq!(a.list(&KeyKind::LidMapping).await.expect("list").len(), 1);
    assert_eq!(b.list(&KeyKind::LidMapping).await.expect("list").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_rows_are_errors_never_absent() {
    if !support::has_database("durability::unreadable_rows_are_errors_never_absent") {
        return;
    }
    let instance = support::unique("corrupt");
    let store = open(&instance).await;
    let mut batch = WriteBatch::new();
    batch.set_creds(AuthCreds::generate());
    batch.put(
        KeyKind::LidMapping,
        "fine",
        KeyValue::LidMapping("1".into()),
    );
    store.commit(batch).await.expect("commit");
    store.close().await.expect("close");

    let client = support::client().await;
    for (kind, id, data) in [
        ("session", "4915112345678.0", r#""not base64!""#),
        ("pre-key", "7", r#"{"public": 1}"#),
        ("device-list", "u1", r#"{"not": "a list"}"#),
    ] {
        client
            .execute(
                "INSERT INTO wa_auth.keys (instance_id, kind, key_id, data) VALUES ($1, $2, $3, $4::text::jsonb)",
                &[&instance, &kind, &id, &data],
            )
            .await
            .expect("insert corrupt row");
    }
    client
        .execute(
            "UPDATE wa_auth.creds SET data = '{\"noiseKey\": 5}' WHERE instance_id = $1",
            &[&instance],
        )
        .await
        .expect("corrupt creds");

    let store = Arc::new(open(&instance).await);
    let err = store
        .get_one(&KeyKind::Session, &KeyId::new("4915112345678.0"))
        .await
        .expect_err("a corrupt session is an error");
    assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("4915112345678.0"), "{err}");
    assert!(matches!(
        store.get_one(&KeyKind::PreKey, &KeyId::new("7")).await,
        Err(AuthError::Corrupt { .. })
    ));
    assert!(matches!(
        store.get_one(&KeyKind::DeviceList, &KeyId::new("u1")).await,
        Err(AuthError::Corrupt { .. })
    ));
    assert!(
        store
            .list(&KeyKind::Session)
            .await
            .expect("list")
            .contains(&KeyId::new("4915112345678.0")),
        "a corrupt key is still listed"
    );
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &KeyId::new("fine"))
            .await
            .expect("other keys are readable"),
        Some(KeyValue::LidMapping("1".into()))
    );
    assert!(matches!(
        store.load_creds().await,
        Err(AuthError::Corrupt { .. })
    ));
    assert!(
        AuthState::load(store.clone()).await.is_err(),
        "unreadable creds must never lead to fresh ones"
    );
    // Writing other keys leaves the unreadable rows exactly as they were.
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "more",
        KeyValue::LidMapping("2".into()),
    );
    store.commit(batch).await.expect("commit");
    store.flush().await.expect("flush");
    let kept: String = client
        .query_one(
            "SELECT data::text FROM wa_auth.keys WHERE instance_id = $1 AND kind = 'session'",
            &[&instance],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(kept, r#""not base64!""#);
    store.close().await.expect("close");

    // A kind name no writer produces fails the open, naming the row; the lease stays free.
    client
        .execute(
            "INSERT INTO wa_auth.keys (instance_id, kind, key_id, data) VALUES ($1, 'Bad Kind', 'k', '1')",
            &[&instance],
        )
        .await
        .expect("insert");
    let err = PostgresStore::open(support::pool(), support::options(&instance))
        .await
        .expect_err("an impossible kind fails the open");
    assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("Bad Kind"), "{err}");
    let err = PostgresStore::open(
        support::pool(),
        support::options(&instance).lease_wait(std::time::Duration::ZERO),
    )
    .await
    .expect_err("still corrupt");
    assert!(
        matches!(err, AuthError::Corrupt { .. }),
        "the failed open released its lease: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_postgres_cannot_hold_are_refused_before_queueing() {
    if !support::has_database("durability::values_postgres_cannot_hold_are_refused_before_queueing")
    {
        return;
    }
    let instance = support::unique("nul");
    let store = open(&instance).await;
    let kind = KeyKind::from_name("future-kind").expect("kind");
    let mut batch = WriteBatch::new();
    batch.put(kind.clone(), "ok", KeyValue::Other(json!("fine")));
    batch.put(
        kind.clone(),
        "bad",
        KeyValue::Other(json!({"a": "nul \u{0} here"})),
    );
    let err = store.commit(batch).await.expect_err("NUL is refused");
    assert!(matches!(err, AuthError::Invalid { .. }), "{err}");
    assert_eq!(store.list(&kind).await.expect("list"), Vec::<KeyId>::new());
    let mut creds = AuthCreds::generate();
    creds.extra.insert("x".into(), json!("\u{0}"));
    assert!(matches!(
        store.save_creds(&creds).await,
        Err(AuthError::Invalid { .. })
    ));
    assert_eq!(store.load_creds().await.expect("load"), None);
    // The store is unharmed.
    store.flush().await.expect("flush");
    assert!(store.is_healthy());
    store.close().await.expect("close");
}
