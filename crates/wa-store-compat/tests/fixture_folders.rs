//! Every fixture folder (v6 and v7 accounts and their peers) opens through the store: creds
//! match `expected/vectors.json`, every file of the vectors' index maps to its kind and id,
//! every value decodes, nothing is unrecognised, the flavour is detected, and opening and
//! reading changes no file.

mod common;

use std::collections::BTreeSet;

use common::{all_auth_folders, read_json, temp_copy, tree, vector_scenarios};
use serde_json::Value;
use wa_auth::{KeyId, KeyKind, Persistence, PersistenceExt};
use wa_store_compat::layout::{FileClass, Names};
use wa_store_compat::{CompatReader, CompatStore, Flavour, FlavourSource};
use wa_testkit::vectors::b64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creds_match_the_vectors_and_every_indexed_file_maps_to_its_kind_and_id() {
    let mut checked_files = 0;
    for (name, version, dir) in vector_scenarios() {
        let vectors = read_json(&dir.join("expected/vectors.json"));
        let (_tmp, auth) = temp_copy(&dir.join("auth"));
        let before = tree(&auth);
        let store = CompatStore::open(&auth).await.expect("open");
        let creds = store
            .load_creds()
            .await
            .expect("creds")
            .expect("creds exist");
        let account = &vectors["account"];
        assert_eq!(
            u64::from(creds.registration_id),
            account["registration_id"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            creds.signed_identity_key.public.as_bytes().to_vec(),
            b64(&account["identity_key_public_b64"]),
            "{name}"
        );
        assert_eq!(
            creds.signed_identity_key.public.serialize().to_vec(),
            b64(&account["identity_key_signal_b64"]),
            "{name}"
        );
        assert_eq!(
            u64::from(creds.signed_pre_key.key_id),
            account["signed_pre_key_id"].as_u64().unwrap()
        );
        assert_eq!(
            creds.signed_pre_key.key_pair.public.as_bytes().to_vec(),
            b64(&account["signed_pre_key_public_b64"])
        );
        assert_eq!(
            creds.signed_pre_key.signature.to_vec(),
            b64(&account["signed_pre_key_signature_b64"])
        );
        assert!(
            creds
                .signed_pre_key
                .verify(&creds.signed_identity_key.public)
        );
        assert_eq!(
            creds.noise_key.public.as_bytes().to_vec(),
            b64(&account["noise_key_public_b64"])
        );
        assert_eq!(
            creds.adv_secret_key.0,
            account["adv_secret_key"].as_str().unwrap()
        );
        assert_eq!(
            u64::from(creds.next_pre_key_id),
            account["next_pre_key_id"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(creds.first_unuploaded_pre_key_id),
            account["first_unuploaded_pre_key_id"].as_u64().unwrap()
        );
        assert_eq!(creds.registered, account["registered"].as_bool().unwrap());
        assert_eq!(creds.platform.as_deref(), account["platform"].as_str());
        assert_eq!(
            creds.my_app_state_key_id.as_deref(),
            account["my_app_state_key_id"].as_str()
        );
        match account["me"].as_object() {
            Some(me) => {
                let ours = creds.me.as_ref().expect("me");
                assert_eq!(Some(ours.id.as_str()), me["id"].as_str());
                assert_eq!(ours.lid.as_deref(), me.get("lid").and_then(Value::as_str));
                assert_eq!(ours.name.as_deref(), me.get("name").and_then(Value::as_str));
            }
            None => assert!(creds.me.is_none(), "{name}: unpaired"),
        }

        // Every file of the index: its kind and id, listed, readable.
        let names = Names::default();
        let mut expected_files = BTreeSet::new();
        for file in vectors["files"].as_array().expect("files") {
            let file_name = file["file"].as_str().unwrap();
            expected_files.insert(file_name.to_owned());
            let kind = file["type"].as_str().unwrap();
            if kind == "creds" {
                assert_eq!(names.classify(file_name), FileClass::Creds);
                continue;
            }
            let kind = KeyKind::from_name(kind).unwrap();
            let id = KeyId::new(file["id"].as_str().unwrap());
            assert_eq!(
                names.classify(file_name),
                FileClass::Key {
                    kind: kind.clone(),
                    id: id.clone()
                },
                "{name}: {file_name}"
            );
            assert!(
                store.list(&kind).await.unwrap().contains(&id),
                "{name}: {kind} {id} not listed"
            );
            assert!(
                store
                    .get_one(&kind, &id)
                    .await
                    .expect("strict read")
                    .is_some(),
                "{name}: {kind} {id} not read"
            );
            checked_files += 1;
        }
        let on_disk: BTreeSet<String> = common::folder_files(&auth).into_keys().collect();
        assert_eq!(
            on_disk, expected_files,
            "{name}: the index lists every file"
        );
        let report = store.report();
        assert!(report.is_clean(), "{name}: {report}");
        let snapshot = store.load_all().await.expect("load all");
        assert_eq!(snapshot.key_count() + 1, expected_files.len(), "{name}");

        let flavour = if version.starts_with("v6") {
            Flavour::Baileys6
        } else {
            Flavour::Baileys7
        };
        if name.ends_with("paired-with-sessions") {
            assert_eq!(store.flavour(), flavour, "{name}");
            assert_eq!(
                report.flavour_source,
                FlavourSource::SenderKeyFiles,
                "{name}"
            );
        }
        drop(store);
        let mut after = tree(&auth);
        after.retain(|file, _| !file.starts_with(".wa-store-compat"));
        assert_eq!(
            after, before,
            "{name}: opening and reading changed the folder"
        );
        println!(
            "{name}: creds match, {} files indexed",
            expected_files.len()
        );
    }
    assert!(checked_files > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_folder_and_every_peer_folder_loads_read_only() {
    let mut folders = 0;
    for (name, version, auth) in all_auth_folders() {
        let before = tree(&auth);
        let store = CompatReader::open(&auth)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let snapshot = store
            .load_all()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(snapshot.creds.is_some(), "{name}");
        let report = store.scan().await.expect("scan");
        assert!(report.is_clean(), "{name}: {report}");
        if snapshot.keys.contains_key(&KeyKind::SenderKey) {
            let expected = if version.starts_with("v6") {
                Flavour::Baileys6
            } else {
                Flavour::Baileys7
            };
            assert_eq!(store.flavour(), expected, "{name}");
        }
        drop(store);
        assert_eq!(
            tree(&auth),
            before,
            "{name}: a read-only open wrote to the fixtures"
        );
        folders += 1;
        println!("{name}: {} keys", snapshot.key_count());
    }
    assert!(folders > 0);
}
