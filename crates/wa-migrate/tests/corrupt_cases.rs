//! Every corrupt fixture case migrates, or fails, as its manifest says — strict and lenient —
//! and a failed migration publishes nothing and changes nothing. Each expectation is derived
//! from the case's entry in its version's `corrupt/manifest.json` (parsed by
//! `wa_testkit::fixtures`): a case added to the fixtures is checked, not refused.

mod common;

use std::path::Path;

use common::{native_snapshot, tree};
use wa_auth::{AuthError, PersistenceExt, Snapshot};
use wa_migrate::{MigrateError, MigrateOptions, Summary, migrate_compat_json_to_native};
use wa_store_compat::layout::{FileClass, Names};
use wa_store_compat::{CompatStoreOptions, ReadMode};
use wa_testkit::fixtures::{CorruptCase, CorruptManifest, ReaderBehaviour, corrupt_manifests};

async fn migrate(auth: &Path, dest: &Path, lenient: bool) -> Result<Summary, MigrateError> {
    migrate_compat_json_to_native(auth, dest, &MigrateOptions::default().lenient(lenient)).await
}

fn names_file(err: &MigrateError, file: &str) -> bool {
    matches!(err, MigrateError::Source { source: AuthError::Corrupt { location, .. }, .. } if location.ends_with(file))
}

/// What a Baileys folder holds, read leniently (unreadable keys left out).
async fn lenient_snapshot(auth: &Path) -> Snapshot {
    let options = CompatStoreOptions::default().mode(ReadMode::Lenient);
    let store = wa_store_compat::CompatReader::open_with(auth, options)
        .await
        .expect("open");
    store.load_all().await.expect("lenient load")
}

fn is_creds(file: &str) -> bool {
    Names::default().classify(file) == FileClass::Creds
}

/// The changed files cannot be read: creds fail the migration in every mode; unreadable keys
/// fail it in strict mode and are skipped and listed in lenient mode.
async fn unreadable(case: &CorruptCase, outcome: Result<Summary, MigrateError>, lenient: bool) {
    let label = format!("{} (lenient: {lenient})", case.label);
    if case.changed.iter().any(|f| is_creds(f)) {
        let err = outcome.expect_err("unreadable creds must fail");
        assert!(names_file(&err, "creds.json"), "{label}: {err}");
        assert_eq!(
            err.hint(),
            Some(wa_migrate::Hint::RestoreCreds),
            "{label}: {err}"
        );
        return;
    }
    if !lenient {
        let err = outcome.expect_err("strict must fail");
        assert!(
            case.changed.iter().any(|file| names_file(&err, file)),
            "{label}: {err}"
        );
        assert_eq!(
            err.hint(),
            Some(wa_migrate::Hint::SkipUnreadableKeys),
            "{label}: {err}"
        );
        return;
    }
    let summary = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(summary.published, "{label}");
    for file in &case.changed {
        assert!(
            summary.skipped.iter().any(|s| &s.what == file),
            "{label}: {file} not listed as skipped: {summary}"
        );
    }
}

/// Reads `file` from the unchanged copy's folder and from the migrated store: the same.
async fn same_as_unchanged_copy(
    manifest: &CorruptManifest,
    case: &CorruptCase,
    migrated: &Snapshot,
) {
    for file in &case.changed {
        let copy = manifest
            .unchanged_copy(file)
            .unwrap_or_else(|| panic!("{}: no unchanged copy of {file}", case.label));
        let original = lenient_snapshot(copy.parent().expect("folder")).await;
        match Names::default().classify(file) {
            FileClass::Creds => assert!(
                migrated.creds == original.creds,
                "{}: creds differ from {}",
                case.label,
                copy.display()
            ),
            FileClass::Key { kind, id } => assert!(
                migrated.keys.get(&kind).and_then(|k| k.get(&id))
                    == original.keys.get(&kind).and_then(|k| k.get(&id)),
                "{}: {file} differs from {}",
                case.label,
                copy.display()
            ),
            other => panic!("{}: {file} is {other:?}", case.label),
        }
    }
}

async fn check_case(
    manifest: &CorruptManifest,
    case: &CorruptCase,
    outcome: Result<Summary, MigrateError>,
    lenient: bool,
    dest: &Path,
) {
    let label = format!("{} (lenient: {lenient})", case.label);
    let base_keys = manifest.base_keys().count();
    match case.behaviour {
        ReaderBehaviour::NamedError | ReaderBehaviour::NamedErrorOrSkipped => {
            let published = outcome.as_ref().is_ok_and(|s| s.published);
            unreadable(case, outcome, lenient).await;
            if !published {
                assert!(!dest.exists(), "{label}: published");
                return;
            }
        }
        ReaderBehaviour::Accepted => {
            let summary = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(summary.total_keys, base_keys, "{label}: {summary}");
            same_as_unchanged_copy(manifest, case, &native_snapshot(dest).await).await;
        }
        ReaderBehaviour::Ignored => {
            let summary = outcome.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(summary.total_keys, base_keys, "{label}: {summary}");
            let mut listed: Vec<String> = summary
                .unrecognised
                .iter()
                .map(|u| u.what.clone())
                .collect();
            listed.sort();
            assert_eq!(
                listed,
                case.changed_entries(),
                "{label}: unrecognised files"
            );
        }
    }
    // Whatever was migrated is exactly what the source holds (leaving out what was skipped).
    let migrated = native_snapshot(dest).await;
    let source = lenient_snapshot(&case.auth).await;
    assert!(
        migrated == source,
        "{label}: the migrated state differs from the source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cases_behave_as_their_manifest_says() {
    let mut cases = 0;
    for manifest in corrupt_manifests() {
        for case in &manifest.cases {
            cases += 1;
            let before = tree(&case.auth);
            for lenient in [false, true] {
                let tmp = tempfile::tempdir().unwrap();
                let dest = tmp.path().join("native");
                let outcome = migrate(&case.auth, &dest, lenient).await;
                let label = format!("{} (lenient: {lenient})", case.label);
                assert_eq!(tree(&case.auth), before, "{label}: the source changed");
                check_case(&manifest, case, outcome, lenient, &dest).await;
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
