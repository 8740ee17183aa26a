//! Every case of every version's `corrupt/` folder (driven by its `manifest.json`) behaves as
//! its MANIFEST says, in strict and in lenient mode; and no case changes any file.

mod common;

use std::path::Path;

use common::{read_json, temp_copy, tree};
use serde_json::Value;
use wa_auth::{AuthError, KeyKind, Persistence, PersistenceExt};
use wa_store_compat::layout::{FileClass, Names};
use wa_store_compat::{CompatStore, CompatStoreOptions, ReadMode, use_multi_file_auth_state};

/// The file a `changed` line of the manifest is about (its first word).
fn changed_file(line: &str) -> String {
    line.split(' ')
        .next()
        .unwrap_or_default()
        .trim_end_matches(':')
        .to_owned()
}

fn own_files_removed(
    mut t: std::collections::BTreeMap<String, Option<Vec<u8>>>,
) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    t.retain(|name, _| !name.starts_with(".wa-store-compat"));
    t
}

fn corrupt_error_names(err: &AuthError, file: &str) -> bool {
    matches!(err, AuthError::Corrupt { what, .. } if what.ends_with(file))
}

/// Every base file other than `except` reads in strict mode.
async fn base_files_load(case: &str, store: &CompatStore, base: &[String], except: &[String]) {
    let names = Names::default();
    for file in base.iter().filter(|f| !except.contains(f)) {
        match names.classify(file) {
            FileClass::Creds => {
                let creds = store
                    .load_creds()
                    .await
                    .unwrap_or_else(|e| panic!("{case}: {e}"));
                assert!(creds.is_some(), "{case}: creds");
            }
            FileClass::Key { kind, id } => {
                let value = store
                    .get_one(&kind, &id)
                    .await
                    .unwrap_or_else(|e| panic!("{case}: {file}: {e}"));
                assert!(value.is_some(), "{case}: {file} did not load");
            }
            other => panic!("{case}: base file {file} is {other:?}"),
        }
    }
}

async fn run_case(version: &str, case: &Value, case_dir: &Path, base: &[String], reg_id: u64) {
    let name = format!("{version}/{}", case["name"].as_str().expect("case name"));
    let changed: Vec<String> = case["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .map(|l| changed_file(l.as_str().expect("line")))
        .collect();
    let (_tmp, auth) = temp_copy(&case_dir.join("auth"));
    let before = tree(&auth);
    for mode in [ReadMode::Strict, ReadMode::Lenient] {
        let store = CompatStore::open_with(&auth, CompatStoreOptions::default().mode(mode))
            .await
            .unwrap_or_else(|e| panic!("{name} {mode:?}: open: {e}"));
        match case["name"].as_str().unwrap() {
            "truncated-creds" => {
                // Always an error naming creds.json with the byte offset; never fresh creds.
                let err = store
                    .load_creds()
                    .await
                    .expect_err("truncated creds must fail");
                assert!(corrupt_error_names(&err, "creds.json"), "{name}: {err}");
                assert!(err.to_string().contains("at byte"), "{name}: {err}");
                println!("{name}: {err}");
                base_files_load(&name, &store, base, &changed).await;
                drop(store);
                let err = use_multi_file_auth_state(&auth)
                    .await
                    .expect_err("no auth state over unreadable creds");
                assert!(corrupt_error_names(&err, "creds.json"), "{name}: {err}");
            }
            "session-invalid-json" | "zero-byte-pre-key" => {
                let bad = &changed[0];
                let FileClass::Key { kind, id } = Names::default().classify(bad) else {
                    panic!("{name}: {bad} is not a key file");
                };
                base_files_load(&name, &store, base, &changed).await;
                let creds = store.load_creds().await.unwrap().expect("creds");
                assert_eq!(u64::from(creds.registration_id), reg_id, "{name}");
                match mode {
                    ReadMode::Strict => {
                        let err = store.get_one(&kind, &id).await.expect_err("strict");
                        assert!(corrupt_error_names(&err, bad), "{name}: {err}");
                        println!("{name}: {err}");
                        let err = store.load_all().await.expect_err("strict load_all");
                        assert!(corrupt_error_names(&err, bad), "{name}: {err}");
                        if bad.starts_with("pre-key") {
                            assert!(err.to_string().contains("empty"), "{name}: {err}");
                        }
                    }
                    _ => {
                        assert_eq!(store.get_one(&kind, &id).await.unwrap(), None, "{name}");
                        let all = store.load_all().await.expect("lenient load_all");
                        assert_eq!(all.key_count(), base.len() - 2, "{name}");
                        let report = store.report();
                        assert_eq!(report.skipped.len(), 1, "{name}: {report}");
                        assert_eq!(&report.skipped[0].file, bad);
                    }
                }
                // A migration tool sees it either way.
                let scan = store.scan().await.unwrap();
                assert_eq!(scan.skipped.len(), 1, "{name}: {scan}");
                assert!(scan.unrecognised.is_empty());
            }
            "unexpected-escaping" | "unknown-extra-files" => {
                base_files_load(&name, &store, base, &[]).await;
                let report = store.report();
                let mut unrecognised: Vec<String> =
                    report.unrecognised.iter().map(|u| u.file.clone()).collect();
                unrecognised.sort();
                let mut expected: Vec<String> = changed
                    .iter()
                    .map(|f| match f.split_once('/') {
                        Some((dir, _)) => format!("{dir}/"),
                        None => f.clone(),
                    })
                    .collect();
                expected.sort();
                assert_eq!(unrecognised, expected, "{name}: {report}");
                // They shadow nothing: exactly the base keys are there.
                let all = store.load_all().await.expect("load_all");
                assert_eq!(all.key_count(), base.len() - 1, "{name}");
                for kind in [KeyKind::SenderKey, KeyKind::AppStateSyncKey] {
                    for id in store.list(&kind).await.unwrap() {
                        assert!(!id.as_str().contains('%'), "{name}: {id}");
                    }
                }
            }
            "legacy-buffer-encoding" => {
                let creds = store.load_creds().await.unwrap().expect("creds");
                let base_creds = CompatStore::open_with(
                    case_dir.join("../../paired-with-sessions/auth"),
                    CompatStoreOptions::default().read_only(true),
                )
                .await
                .unwrap()
                .load_creds()
                .await
                .unwrap()
                .expect("base creds");
                assert_eq!(creds, base_creds, "{name}: same bytes as the base64 form");
                assert!(
                    creds
                        .signed_pre_key
                        .verify(&creds.signed_identity_key.public)
                );
                base_files_load(&name, &store, base, &[]).await;
            }
            other => panic!("{name}: no expectation written for corrupt case {other:?}"),
        }
        println!("{name} {mode:?}: as the manifest says");
    }
    assert_eq!(
        own_files_removed(tree(&auth)),
        before,
        "{name}: a file of the folder was changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corrupt_case_behaves_as_its_manifest_says() {
    let mut cases = 0;
    for version in wa_testkit::fixtures::baileys_versions() {
        let corrupt = version.join("corrupt");
        if !corrupt.join("manifest.json").is_file() {
            continue;
        }
        let manifest = read_json(&corrupt.join("manifest.json"));
        let vname = version.file_name().unwrap().to_string_lossy().into_owned();
        let base: Vec<String> = manifest["base_files"]
            .as_array()
            .expect("base_files")
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        let reg_id = manifest["creds_registration_id"].as_u64().expect("reg id");
        for case in manifest["cases"].as_array().expect("cases") {
            let dir = corrupt.join(case["name"].as_str().unwrap());
            run_case(&vname, case, &dir, &base, reg_id).await;
            cases += 1;
        }
    }
    assert!(cases > 0, "no corrupt case found");
}
