//! Every case of every version's `corrupt/` folder behaves as its `manifest.json` says, in
//! strict and in lenient mode, and no case changes any file. The expectation of each case is
//! derived from the manifest (its `changed` files and its `expected_reader_behaviour`, parsed
//! by `wa_testkit::fixtures`), so a case added to the fixtures is checked, not refused.

mod common;

use std::collections::BTreeSet;

use common::{temp_copy, tree};
use wa_auth::{AuthError, CorruptItem, Persistence, PersistenceExt};
use wa_store_compat::layout::{FileClass, Names, key_file_name};
use wa_store_compat::{
    CompatReader, CompatStore, CompatStoreOptions, FolderReport, ReadMode,
    use_multi_file_auth_state,
};
use wa_testkit::fixtures::{CorruptCase, CorruptManifest, ReaderBehaviour, corrupt_manifests};

fn names_file(err: &AuthError, file: &str) -> bool {
    matches!(err, AuthError::Corrupt { location, .. } if location.ends_with(file))
}

/// The folder opened for writing (strict reads) or as a read-only view (lenient reads, which
/// exist only there).
enum Opened {
    Store(CompatStore),
    Reader(CompatReader),
}

impl Opened {
    async fn open(auth: &std::path::Path, mode: ReadMode) -> wa_auth::Result<Self> {
        Ok(match mode {
            ReadMode::Lenient => {
                let options = CompatStoreOptions::default().mode(mode);
                Self::Reader(CompatReader::open_with(auth, options).await?)
            }
            _ => Self::Store(CompatStore::open(auth).await?),
        })
    }

    fn report(&self) -> FolderReport {
        match self {
            Self::Store(store) => store.report(),
            Self::Reader(reader) => reader.report(),
        }
    }

    async fn scan(&self) -> wa_auth::Result<FolderReport> {
        match self {
            Self::Store(store) => store.scan().await,
            Self::Reader(reader) => reader.scan().await,
        }
    }
}

impl std::ops::Deref for Opened {
    type Target = dyn Persistence;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Store(store) => store,
            Self::Reader(reader) => reader,
        }
    }
}

/// Every base file the case did not change reads in strict mode.
async fn unchanged_files_load(manifest: &CorruptManifest, case: &CorruptCase, store: &Opened) {
    let label = &case.label;
    for file in manifest
        .base_files
        .iter()
        .filter(|f| !case.changed.contains(f))
    {
        match Names::default().classify(file) {
            FileClass::Creds => {
                let creds = store.load_creds().await;
                let creds = creds.unwrap_or_else(|e| panic!("{label}: {e}"));
                let creds = creds.unwrap_or_else(|| panic!("{label}: no creds"));
                if let Some(id) = manifest.creds_registration_id {
                    assert_eq!(u64::from(creds.registration_id), id, "{label}");
                }
            }
            FileClass::Key { kind, id } => {
                let value = store.get_one(&kind, &id).await;
                let value = value.unwrap_or_else(|e| panic!("{label}: {file}: {e}"));
                assert!(value.is_some(), "{label}: {file} did not load");
            }
            other => panic!("{label}: base file {file} is {other:?}"),
        }
    }
}

/// The changed files cannot be read: an error naming each (creds: in every mode), or, for a
/// key in lenient mode (the caller's explicit choice), skipped and reported.
async fn unreadable(case: &CorruptCase, store: &Opened, mode: ReadMode) {
    let label = &case.label;
    for file in &case.changed {
        match Names::default().classify(file) {
            FileClass::Creds => {
                let err = store.load_creds().await.expect_err("unreadable creds");
                assert!(names_file(&err, file), "{label}: {err}");
                assert!(
                    matches!(
                        err,
                        AuthError::Corrupt {
                            item: CorruptItem::Creds,
                            ..
                        }
                    ),
                    "{label}: {err:?}"
                );
                if case.mentions("byte offset") {
                    assert!(err.to_string().contains("at byte"), "{label}: {err}");
                }
                let scan = store.scan().await.expect("scan");
                assert!(scan.creds_error.is_some(), "{label}: {scan}");
                println!("{label} {mode:?}: {err}");
            }
            FileClass::Key { kind, id } if mode == ReadMode::Strict => {
                let err = store.get_one(&kind, &id).await.expect_err("strict read");
                assert!(names_file(&err, file), "{label}: {err}");
                assert!(
                    matches!(&err, AuthError::Corrupt { item: CorruptItem::Key { kind: k, id: i }, .. } if *k == kind && *i == id),
                    "{label}: {err:?}"
                );
                if case.mentions("0 bytes") {
                    assert!(err.to_string().contains("empty"), "{label}: {err}");
                }
                let err = store.load_all().await.expect_err("strict load_all");
                assert!(names_file(&err, file), "{label}: {err}");
                println!("{label} {mode:?}: {err}");
            }
            FileClass::Key { kind, id } => {
                assert_eq!(store.get_one(&kind, &id).await.unwrap(), None, "{label}");
                let report = store.report();
                assert!(
                    report.skipped.iter().any(|s| &s.file == file),
                    "{label}: {report}"
                );
            }
            other => panic!("{label}: {file} should fail to read but is {other:?}"),
        }
    }
    // A migration tool sees every unreadable key either way.
    let changed_keys: BTreeSet<&String> = case
        .changed
        .iter()
        .filter(|f| matches!(Names::default().classify(f), FileClass::Key { .. }))
        .collect();
    let scan = store.scan().await.expect("scan");
    let skipped: BTreeSet<&String> = scan.skipped.iter().map(|s| &s.file).collect();
    assert_eq!(skipped, changed_keys, "{label}: {scan}");
}

/// The changed files read as the same values as unchanged copies of them.
async fn accepted(manifest: &CorruptManifest, case: &CorruptCase, store: &Opened) {
    let label = &case.label;
    for file in &case.changed {
        let copy = manifest
            .unchanged_copy(file)
            .unwrap_or_else(|| panic!("{label}: no unchanged copy of {file}"));
        let other = CompatReader::open(copy.parent().expect("folder"))
            .await
            .unwrap();
        match Names::default().classify(file) {
            FileClass::Creds => {
                let creds = store.load_creds().await.unwrap().expect("creds");
                let expected = other.load_creds().await.unwrap().expect("creds");
                assert_eq!(
                    creds,
                    expected,
                    "{label}: not the same creds as {}",
                    copy.display()
                );
                let identity = &creds.signed_identity_key.public;
                assert!(creds.signed_pre_key.verify(identity), "{label}");
            }
            FileClass::Key { kind, id } => {
                let value = store.get_one(&kind, &id).await.unwrap();
                let expected = other.get_one(&kind, &id).await.unwrap();
                assert!(value.is_some() && value == expected, "{label}: {file}");
            }
            other => panic!("{label}: {file} should be accepted but is {other:?}"),
        }
    }
}

/// The changed entries are reported as unrecognised and shadow nothing: exactly the base keys
/// are listed.
async fn ignored(manifest: &CorruptManifest, case: &CorruptCase, store: &Opened) {
    let label = &case.label;
    let report = store.report();
    let unrecognised: Vec<String> = report.unrecognised.iter().map(|u| u.file.clone()).collect();
    assert_eq!(unrecognised, case.changed_entries(), "{label}: {report}");
    let mut listed = BTreeSet::new();
    for kind in store.kinds().await.unwrap() {
        for id in store.list(&kind).await.unwrap() {
            listed.insert(key_file_name(&kind, &id));
        }
    }
    let base: BTreeSet<String> = manifest.base_keys().cloned().collect();
    assert_eq!(
        listed, base,
        "{label}: the keys listed are not the base keys"
    );
    let all = store.load_all().await.expect("load_all");
    assert_eq!(all.key_count(), base.len(), "{label}");
}

async fn run_case(manifest: &CorruptManifest, case: &CorruptCase) {
    let (_tmp, auth) = temp_copy(&case.auth);
    let before = tree(&auth);
    for mode in [ReadMode::Strict, ReadMode::Lenient] {
        let store = Opened::open(&auth, mode)
            .await
            .unwrap_or_else(|e| panic!("{} {mode:?}: open: {e}", case.label));
        match case.behaviour {
            ReaderBehaviour::NamedError | ReaderBehaviour::NamedErrorOrSkipped => {
                unreadable(case, &store, mode).await
            }
            ReaderBehaviour::Accepted => accepted(manifest, case, &store).await,
            ReaderBehaviour::Ignored => ignored(manifest, case, &store).await,
        }
        unchanged_files_load(manifest, case, &store).await;
        drop(store);
        println!("{} {mode:?}: as the manifest says", case.label);
    }
    if case
        .changed
        .iter()
        .any(|f| f == wa_store_compat::layout::CREDS_FILE)
        && case.behaviour != ReaderBehaviour::Accepted
    {
        // Unreadable creds: never fresh ones instead.
        let err = use_multi_file_auth_state(&auth)
            .await
            .expect_err("no state");
        assert!(names_file(&err, "creds.json"), "{}: {err}", case.label);
    }
    let mut after = tree(&auth);
    after.retain(|name, _| !name.starts_with(".wa-store-compat"));
    assert_eq!(
        after, before,
        "{}: a file of the folder was changed",
        case.label
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corrupt_case_behaves_as_its_manifest_says() {
    let mut cases = 0;
    for manifest in corrupt_manifests() {
        for case in &manifest.cases {
            run_case(&manifest, case).await;
            cases += 1;
        }
    }
    assert!(cases > 0, "no corrupt case found");
}
