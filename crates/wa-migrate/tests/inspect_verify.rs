//! `inspect` and `verify` on every fixture folder, on the corrupt cases, and on folders
//! tampered with in the ways `verify` exists to catch.

mod common;

use std::path::Path;

use common::{compat_snapshot, copy_dir};
use serde_json::Value;
use wa_migrate::{Location, inspect, verify};
use wa_testkit::fixtures::{ReaderBehaviour, baileys_auth_folders, corrupt_manifests};

fn edit_creds(auth: &Path, edit: impl FnOnce(&mut Value)) {
    let path = auth.join("creds.json");
    let mut creds: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut creds);
    std::fs::write(&path, serde_json::to_vec(&creds).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_folder_inspects_and_verifies_clean() {
    for (name, auth) in baileys_auth_folders() {
        let location = Location::Compat(auth.clone());
        let snapshot = compat_snapshot(&auth).await;
        let creds = snapshot.creds.as_ref().expect("creds");

        let inspection = inspect(&location)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(inspection.backend, "compat");
        assert!(
            inspection.warnings.is_empty(),
            "{name}: {:?}",
            inspection.warnings
        );
        let account = inspection.account.as_ref().expect("account");
        assert_eq!(account.registration_id, creds.registration_id, "{name}");
        assert_eq!(
            account.signed_pre_key_id, creds.signed_pre_key.key_id,
            "{name}"
        );
        assert_eq!(
            account.me.as_ref().map(|m| m.id.clone()),
            creds.me.as_ref().map(|m| m.id.clone())
        );
        let counts: std::collections::BTreeMap<String, usize> = snapshot
            .counts()
            .into_iter()
            .map(|(kind, n)| (kind.to_string(), n))
            .collect();
        assert_eq!(inspection.keys, counts, "{name}");

        let report = verify(&location)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.is_ok(), "{name}: {report}");
        assert_eq!(report.checked, counts, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cases_are_inspected_with_warnings_and_fail_verification_where_broken() {
    // The expectations come from each case's manifest entry (see wa_testkit::fixtures).
    for manifest in corrupt_manifests() {
        for case in &manifest.cases {
            let name = &case.label;
            let location = Location::Compat(case.auth.clone());
            let inspection = inspect(&location)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let report = verify(&location)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let warned = |file: &str| inspection.warnings.iter().any(|w| w.contains(file));
            let creds_changed = case.changed.iter().any(|f| f == "creds.json");
            match case.behaviour {
                ReaderBehaviour::NamedError | ReaderBehaviour::NamedErrorOrSkipped => {
                    assert_eq!(inspection.account.is_none(), creds_changed, "{name}");
                    for file in &case.changed {
                        assert!(warned(file), "{name}: {:?}", inspection.warnings);
                    }
                    assert!(!report.is_ok(), "{name}: {report}");
                    assert_eq!(
                        report.problems.len(),
                        case.changed.len(),
                        "{name}: {report}"
                    );
                }
                ReaderBehaviour::Ignored => {
                    for entry in case.changed_entries() {
                        assert!(warned(&entry), "{name}: {entry}: {:?}", inspection.warnings);
                    }
                    assert!(report.is_ok(), "{name}: {report}");
                    assert!(!report.warnings.is_empty(), "{name}: files not mentioned");
                }
                ReaderBehaviour::Accepted => {
                    assert!(inspection.account.is_some(), "{name}");
                    assert!(
                        inspection.warnings.is_empty(),
                        "{name}: {:?}",
                        inspection.warnings
                    );
                    assert!(report.is_ok(), "{name}: {report}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_a_bad_signature_and_inconsistent_counters() {
    let (name, auth) = baileys_auth_folders()
        .into_iter()
        .find(|(name, _)| name.ends_with("paired-with-sessions"))
        .expect("a paired folder");
    let tmp = tempfile::tempdir().unwrap();

    let bad_signature = tmp.path().join("signature");
    copy_dir(&auth, &bad_signature);
    edit_creds(&bad_signature, |creds| {
        let signature = creds["signedPreKey"]["signature"]["data"]
            .as_str()
            .unwrap()
            .to_owned();
        // Flip one character of the base64 signature (staying valid base64).
        let mut chars: Vec<char> = signature.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        creds["signedPreKey"]["signature"]["data"] = Value::String(chars.into_iter().collect());
    });
    let report = verify(&Location::Compat(bad_signature)).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("signedPreKey.signature")),
        "{name}: {report}"
    );

    let behind = tmp.path().join("counters");
    copy_dir(&auth, &behind);
    edit_creds(&behind, |creds| {
        creds["nextPreKeyId"] = Value::from(2);
        creds["firstUnuploadedPreKeyId"] = Value::from(5);
    });
    let report = verify(&Location::Compat(behind)).await.unwrap();
    let whats: Vec<&str> = report.problems.iter().map(|p| p.what.as_str()).collect();
    assert!(whats.contains(&"creds nextPreKeyId"), "{report}");
    assert!(whats.contains(&"creds firstUnuploadedPreKeyId"), "{report}");
}
