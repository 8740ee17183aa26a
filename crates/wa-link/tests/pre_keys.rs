//! One-time pre-keys: the upload stanza is Baileys' (`$WA_FIXTURES/wire/client-payloads.json`),
//! counters end where Baileys' do after an acknowledged upload, generation and counter advance
//! are one commit, ids wrap at 24 bits, and unacknowledged keys are re-sent, never re-minted.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use wa_auth::{
    AuthCreds, AuthState, KeyId, KeyKind, MemoryStore, Persistence, PersistenceExt, codec,
};
use wa_link::pre_keys::{self, INITIAL_UPLOAD_COUNT, upload_node};
use wa_signal::keys::MAX_PRE_KEY_ID;
use wa_signal::provider::TestProvider;
use wa_signal::{PreKeyId, PreKeyRecord};
use wa_testkit::fixtures;
use wa_testkit::vectors::{b64, debufferize, node_from_json};

fn upload_vectors() -> Vec<(String, Value)> {
    let vectors = fixtures::read_json("wire/client-payloads.json");
    let found: Vec<(String, Value)> = vectors["versions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(version, data)| (version.clone(), data["pre_key_upload"].clone()))
        .collect();
    assert!(!found.is_empty(), "no pre-key upload vectors");
    found
}

fn creds_of(vector: &Value) -> AuthCreds {
    serde_json::from_value(debufferize(fixtures::read_json(
        vector["creds_source"].as_str().unwrap(),
    )))
    .unwrap()
}

/// Tags of a node tree (the shape), ignoring byte contents.
fn shape(node: &wa_proto::Node) -> String {
    let children: Vec<String> = node.children().iter().map(shape).collect();
    format!(
        "{}{:?}[{}]",
        node.tag,
        node.attrs.iter().collect::<Vec<_>>(),
        children.join(",")
    )
}

#[test]
fn the_upload_stanza_is_baileys_for_the_same_keys() {
    for (version, vector) in upload_vectors() {
        let creds = creds_of(&vector);
        let mut keys: Vec<PreKeyRecord> = vector["pre_key_files"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(file, json)| {
                let id = file
                    .trim_start_matches("pre-key-")
                    .trim_end_matches(".json");
                match codec::decode_json(
                    &KeyKind::PreKey,
                    &KeyId::new(id),
                    &debufferize(json.clone()),
                )
                .unwrap()
                {
                    wa_auth::KeyValue::PreKey(record) => record,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        keys.sort_by_key(|k| k.id);
        let node = upload_node(&creds, &keys);
        assert_eq!(
            node,
            node_from_json(&vector["node"]),
            "{version}: upload node"
        );
        if version.starts_with("v7") {
            // Baileys 6 encodes with its older token dictionary; compare bytes for version 3.
            assert_eq!(
                node.encode().unwrap(),
                b64(&vector["encoded_b64"]),
                "{version}: encoded upload node"
            );
        }
    }
}

#[tokio::test]
async fn an_acknowledged_upload_leaves_baileys_counters() {
    let rng = &mut TestProvider::new(1);
    for (version, vector) in upload_vectors() {
        let store = Arc::new(MemoryStore::new());
        store.save_creds(&creds_of(&vector)).await.unwrap();
        let state = AuthState::load(store.clone()).await.unwrap();
        let count = vector["count"].as_u64().unwrap() as u32;
        let upload = pre_keys::prepare_upload(&state, rng, count).await.unwrap();
        assert_eq!(
            shape(&upload.node),
            shape(&node_from_json(&vector["node"])),
            "{version}: node shape"
        );
        // Generated and counted in one commit; not yet acknowledged.
        let stored = store.load_creds().await.unwrap().unwrap();
        assert_eq!(
            stored.next_pre_key_id,
            vector["creds_update"]["nextPreKeyId"].as_u64().unwrap() as u32
        );
        assert_eq!(
            stored.first_unuploaded_pre_key_id, 1,
            "{version}: not uploaded until acknowledged"
        );
        assert_eq!(
            store.list(&KeyKind::PreKey).await.unwrap().len(),
            count as usize
        );
        pre_keys::mark_uploaded(&state, &upload).await.unwrap();
        let stored = store.load_creds().await.unwrap().unwrap();
        assert_eq!(
            (stored.next_pre_key_id, stored.first_unuploaded_pre_key_id),
            (
                vector["creds_update"]["nextPreKeyId"].as_u64().unwrap() as u32,
                vector["creds_update"]["firstUnuploadedPreKeyId"]
                    .as_u64()
                    .unwrap() as u32
            ),
            "{version}: counters after the acknowledgement"
        );
        // Every uploaded key is stored with the public key the stanza carries.
        let list = upload.node.child("list").unwrap();
        for (key_node, id) in list.children().iter().zip(&upload.ids) {
            let Some(wa_auth::KeyValue::PreKey(record)) = store
                .get_one(&KeyKind::PreKey, &KeyId::new(id.0.to_string()))
                .await
                .unwrap()
            else {
                panic!("{version}: pre-key {} not stored", id.0)
            };
            assert_eq!(
                key_node.child("value").unwrap().content_bytes(),
                Some(&record.key_pair.public.as_bytes()[..])
            );
        }
    }
}

#[tokio::test]
async fn unacknowledged_keys_are_resent_after_a_restart_never_reminted() {
    let rng = &mut TestProvider::new(2);
    let store = Arc::new(MemoryStore::new());
    let state = AuthState::load(store.clone()).await.unwrap();
    let first = pre_keys::prepare_upload(&state, rng, 5).await.unwrap();
    drop(state); // the process "crashes" before the server acknowledges

    let state = AuthState::load(store.clone()).await.unwrap();
    let again = pre_keys::prepare_upload(&state, rng, 5).await.unwrap();
    assert_eq!(again.ids, first.ids, "the same keys are uploaded again");
    assert_eq!(again.node, first.node);
    assert_eq!(state.creds().next_pre_key_id, 6, "nothing new was minted");

    let more = pre_keys::prepare_upload(&state, rng, 8).await.unwrap();
    assert_eq!(
        more.ids.iter().map(|i| i.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    pre_keys::mark_uploaded(&state, &more).await.unwrap();
    let fresh = pre_keys::prepare_upload(&state, rng, 3).await.unwrap();
    assert_eq!(
        fresh.ids.iter().map(|i| i.0).collect::<Vec<_>>(),
        vec![9, 10, 11]
    );
    // Acknowledging the old upload again never moves the counter back.
    pre_keys::mark_uploaded(&state, &first).await.unwrap();
    assert_eq!(state.creds().first_unuploaded_pre_key_id, 9);
}

#[tokio::test]
async fn ids_wrap_at_24_bits_without_reuse() {
    let rng = &mut TestProvider::new(3);
    let store = Arc::new(MemoryStore::new());
    let mut creds = AuthCreds::generate_with(rng);
    creds.next_pre_key_id = MAX_PRE_KEY_ID - 1;
    creds.first_unuploaded_pre_key_id = MAX_PRE_KEY_ID - 1;
    store.save_creds(&creds).await.unwrap();
    let state = AuthState::load(store.clone()).await.unwrap();
    let keys = pre_keys::generate(&state, rng, 4).await.unwrap();
    let ids: Vec<u32> = keys.iter().map(|k| k.id.0).collect();
    assert_eq!(ids, vec![MAX_PRE_KEY_ID - 1, MAX_PRE_KEY_ID, 1, 2]);
    assert_eq!(state.creds().next_pre_key_id, 3);
    let upload = pre_keys::prepare_upload(&state, rng, 6).await.unwrap();
    assert_eq!(
        upload.ids.iter().map(|i| i.0).collect::<Vec<_>>(),
        vec![MAX_PRE_KEY_ID - 1, MAX_PRE_KEY_ID, 1, 2, 3, 4]
    );
    pre_keys::mark_uploaded(&state, &upload).await.unwrap();
    assert_eq!(state.creds().first_unuploaded_pre_key_id, 5);
}

#[tokio::test]
async fn top_up_only_when_the_server_runs_low() {
    let rng = &mut TestProvider::new(4);
    let state = AuthState::load(Arc::new(MemoryStore::new())).await.unwrap();
    assert!(pre_keys::top_up(&state, rng, 10).await.unwrap().is_none());
    let upload = pre_keys::top_up(&state, rng, 2)
        .await
        .unwrap()
        .expect("an upload");
    assert_eq!(upload.ids.len() as u32, INITIAL_UPLOAD_COUNT - 2);
    let unique: BTreeSet<PreKeyId> = upload.ids.iter().copied().collect();
    assert_eq!(unique.len(), upload.ids.len());
}
