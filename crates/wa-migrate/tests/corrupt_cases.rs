//! Every corrupt fixture case (driven by each version's `corrupt/manifest.json`) migrates, or
//! fails, as its MANIFEST says — strict and lenient — and a failed migration publishes
//! nothing and changes nothing.

mod common;

use std::path::Path;

use common::{compat_snapshot, native_snapshot, tree};
use wa_auth::AuthError;
use wa_migrate::{MigrateError, MigrateOptions, Summary, migrate_compat_json_to_native};
use wa_testkit::fixtures::{baileys_versions, read_json};

/// The file a `changed` line is about (its first word), as the folder names it.
fn changed_file(line: &str) -> String {
    let file = line
        .split(' ')
        .next()
        .unwrap_or_default()
        .trim_end_matches(':');
    match file.split_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => file.to_owned(),
    }
}

async fn migrate(auth: &Path, dest: &Path, lenient: bool) -> Result<Summary, MigrateError> {
    migrate_compat_json_to_native(auth, dest, &MigrateOptions::default().lenient(lenient)).await
}

fn names_file(err: &MigrateError, file: &str) -> bool {
    matches!(err, MigrateError::Source { source: AuthError::Corrupt { what, .. }, .. } if what.ends_with(file))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cases_behave_as_their_manifest_says() {
    let mut cases = 0;
    for version in baileys_versions() {
        let vname = version.file_name().unwrap().to_string_lossy().into_owned();
        let manifest_path = format!("baileys/{vname}/corrupt/manifest.json");
        if !version.join("corrupt/manifest.json").is_file() {
            continue;
        }
        let manifest = read_json(&manifest_path);
        // Base files other than creds.json are keys.
        let base_keys = manifest["base_files"].as_array().unwrap().len() - 1;
        let intact = compat_snapshot(&version.join("paired-with-sessions/auth")).await;
        for case in manifest["cases"].as_array().expect("cases") {
            cases += 1;
            let cname = case["name"].as_str().unwrap();
            let name = format!("{vname}/{cname}");
            let auth = version.join("corrupt").join(cname).join("auth");
            let changed: Vec<String> = case["changed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| changed_file(l.as_str().unwrap()))
                .collect();
            let before = tree(&auth);
            for lenient in [false, true] {
                let tmp = tempfile::tempdir().unwrap();
                let dest = tmp.path().join("native");
                let outcome = migrate(&auth, &dest, lenient).await;
                let label = format!("{name} (lenient: {lenient})");
                assert_eq!(tree(&auth), before, "{label}: the source changed");
                check_case(
                    cname, &label, &changed, base_keys, &intact, outcome, lenient, &dest,
                )
                .await;
                let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("staging") || n.contains("backup"))
                    .collect();
                assert!(leftovers.is_empty(), "{label}: left {leftovers:?}");
            }
        }
    }
    assert!(cases > 0, "no corrupt cases found");
}

#[allow(clippy::too_many_arguments)]
async fn check_case(
    case: &str,
    label: &str,
    changed: &[String],
    base_keys: usize,
    intact: &wa_auth::Snapshot,
    outcome: Result<Summary, MigrateError>,
    lenient: bool,
    dest: &Path,
) {
    match case {
        "truncated-creds" => {
            // Always an error naming creds.json; never fresh creds, nothing published.
            let err = outcome.expect_err("truncated creds must fail");
            assert!(names_file(&err, "creds.json"), "{label}: {err}");
            assert!(err.hint().is_some(), "{label}: no hint");
            assert!(!dest.exists(), "{label}: published");
        }
        "session-invalid-json" | "zero-byte-pre-key" => {
            let file = &changed[0];
            if lenient {
                let summary = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
                assert!(summary.published, "{label}");
                assert_eq!(summary.total_keys, base_keys - 1, "{label}: {summary}");
                assert!(
                    summary.skipped.iter().any(|s| &s.what == file),
                    "{label}: {file} not listed as skipped: {summary}"
                );
                let migrated = native_snapshot(dest).await;
                assert!(migrated.creds == intact.creds, "{label}: creds");
            } else {
                let err = outcome.expect_err("strict must fail");
                assert!(names_file(&err, file), "{label}: {err}");
                assert!(!dest.exists(), "{label}: published");
            }
        }
        "unexpected-escaping" | "unknown-extra-files" => {
            let summary = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(summary.total_keys, base_keys, "{label}: {summary}");
            let mut listed: Vec<&str> = summary
                .unrecognised
                .iter()
                .map(|u| u.what.as_str())
                .collect();
            listed.sort_unstable();
            let mut expected: Vec<&str> = changed.iter().map(String::as_str).collect();
            expected.sort_unstable();
            assert_eq!(listed, expected, "{label}: unrecognised files");
            // The misnamed copies did not shadow the canonical keys.
            let migrated = native_snapshot(dest).await;
            for (kind, ids) in &migrated.keys {
                for (id, value) in ids {
                    assert!(
                        intact.keys.get(kind).and_then(|i| i.get(id)) == Some(value),
                        "{label}: {kind} {id} differs from the intact folder"
                    );
                }
            }
        }
        "legacy-buffer-encoding" => {
            let summary = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert!(summary.creds_migrated, "{label}");
            let migrated = native_snapshot(dest).await;
            assert!(
                migrated.creds == intact.creds,
                "{label}: creds differ from the base64-encoded original"
            );
        }
        other => panic!("{label}: corrupt case {other} has no expectations here; add them"),
    }
}
