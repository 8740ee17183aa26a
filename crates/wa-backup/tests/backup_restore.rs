//! Backups of every Baileys fixture folder round-trip into each folder backend; wrong keys,
//! truncated and changed files are refused with a clear error and nothing written; a backup
//! taken while the owner commits in a loop restores to one committed prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use age::secrecy::SecretString;
use wa_auth::{AuthCreds, KeyKind, KeyValue, Persistence, Snapshot, WriteBatch};
use wa_backup::{BackupError, BackupOptions, Decryption, Encryption};
use wa_migrate::{Location, MigrateOptions};
use wa_store_native::{NativeStore, NativeStoreOptions};

fn x25519_pair() -> (Encryption, Decryption) {
    let identity = age::x25519::Identity::generate();
    (
        Encryption::Recipients(vec![identity.to_public()]),
        Decryption::Identities(vec![Box::new(identity)]),
    )
}

async fn read(location: &Location) -> Snapshot {
    wa_migrate::read_location(location, &MigrateOptions::default())
        .await
        .unwrap_or_else(|e| panic!("read {location}: {e}"))
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_folder_restores_into_each_folder_backend() {
    for (name, auth) in wa_testkit::fixtures::baileys_auth_folders() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.age");
        let source = Location::Compat(auth.clone());
        let (seal, open) = x25519_pair();
        let summary = wa_backup::backup(&source, &file, &seal, &BackupOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: backup: {e}"));
        let expected = read(&source).await;
        assert_eq!(
            summary.header.keys.values().sum::<usize>(),
            expected.key_count(),
            "{name}"
        );
        for to in [
            Location::Native(dir.path().join("native")),
            Location::Compat(dir.path().join("compat")),
        ] {
            let restored = wa_backup::restore(&file, &open, &to, &MigrateOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{name}: restore into {to}: {e}"));
            assert!(restored.published, "{name}");
            assert_eq!(read(&to).await, expected, "{name}: restored into {to}");
            // A second restore without --overwrite is refused; with it, it replaces.
            let again = wa_backup::restore(&file, &open, &to, &MigrateOptions::default()).await;
            assert!(
                matches!(
                    again,
                    Err(BackupError::Migrate(
                        wa_migrate::MigrateError::DestinationNotEmpty { .. }
                    ))
                ),
                "{name}: {again:?}"
            );
            let options = MigrateOptions::default().overwrite(true);
            wa_backup::restore(&file, &open, &to, &options)
                .await
                .expect("overwrite");
            assert_eq!(read(&to).await, expected, "{name}: overwritten {to}");
        }
    }
}

/// The first fixture folder with creds and at least one key.
fn some_fixture() -> PathBuf {
    wa_testkit::fixtures::baileys_auth_folders()
        .into_iter()
        .map(|(_, path)| path)
        .max_by_key(|path| std::fs::read_dir(path).map_or(0, |d| d.count()))
        .expect("a fixture")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_backups_open_with_that_passphrase_only_and_show_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.age");
    let source = Location::Compat(some_fixture());
    let secret = SecretString::from("a long passphrase for the test".to_owned());
    wa_backup::backup(
        &source,
        &file,
        &Encryption::Passphrase(secret.clone()),
        &BackupOptions::default(),
    )
    .await
    .expect("backup");

    // The standard age format: the age crate's own one-shot decryption opens it.
    let identity = age::scrypt::Identity::new(secret.clone());
    let plaintext = age::decrypt(&identity, &std::fs::read(&file).unwrap()).expect("age");
    let header = wa_backup::format::read_header(&file, &plaintext).expect("header");
    let inspection = wa_migrate::inspect(&source).await.expect("inspect");
    assert_eq!(
        header.account,
        serde_json::to_value(&inspection.account).unwrap()
    );
    assert_eq!(header.keys, inspection.keys);
    assert_eq!(header.origin.backend, "compat");

    let to = Location::Native(dir.path().join("restored"));
    let wrong = Decryption::Passphrase(SecretString::from("not it".to_owned()));
    let err = wa_backup::restore(&file, &wrong, &to, &MigrateOptions::default())
        .await
        .expect_err("wrong passphrase");
    assert!(matches!(err, BackupError::WrongKey { .. }), "{err}");
    assert!(!err.to_string().contains("not it"), "{err}");
    let (_, stranger) = x25519_pair();
    let err = wa_backup::restore(&file, &stranger, &to, &MigrateOptions::default())
        .await
        .expect_err("an identity for a passphrase file");
    assert!(matches!(err, BackupError::WrongKey { .. }), "{err}");
    assert!(!to.path().unwrap().exists(), "nothing written");

    // An existing backup file is not replaced unless asked.
    let again = wa_backup::backup(
        &source,
        &file,
        &Encryption::Passphrase(secret),
        &BackupOptions::default(),
    )
    .await;
    assert!(
        matches!(again, Err(BackupError::Exists { .. })),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_recipients_truncated_and_changed_files_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.age");
    let source = Location::Compat(some_fixture());
    let (seal, open) = x25519_pair();
    wa_backup::backup(&source, &file, &seal, &BackupOptions::default())
        .await
        .expect("backup");
    let to = Location::Native(dir.path().join("restored"));
    let (_, stranger) = x25519_pair();
    let err = wa_backup::restore(&file, &stranger, &to, &MigrateOptions::default())
        .await
        .expect_err("another identity");
    assert!(matches!(err, BackupError::WrongKey { .. }), "{err}");
    let err = wa_backup::restore(
        &file,
        &Decryption::Passphrase(SecretString::from("x".to_owned())),
        &to,
        &MigrateOptions::default(),
    )
    .await
    .expect_err("a passphrase for a recipients file");
    assert!(matches!(err, BackupError::WrongKey { .. }), "{err}");

    let good = std::fs::read(&file).unwrap();
    let damaged = dir.path().join("damaged.age");
    // Cut everywhere from inside the header to the last byte; flip bytes across the file.
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for len in [
        0,
        10,
        good.len() / 4,
        good.len() / 2,
        good.len() - 17,
        good.len() - 1,
    ] {
        cases.push((format!("truncated to {len}"), good[..len].to_vec()));
    }
    for at in [20, good.len() / 3, good.len() / 2, good.len() - 2] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x40;
        cases.push((format!("byte {at} changed"), bytes));
    }
    for (what, bytes) in cases {
        std::fs::write(&damaged, &bytes).unwrap();
        let err = wa_backup::restore(&damaged, &open, &to, &MigrateOptions::default())
            .await
            .expect_err(&what);
        assert!(
            matches!(
                err,
                BackupError::Damaged { .. } | BackupError::WrongKey { .. }
            ),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("damaged.age"),
            "{what}: names the file: {err}"
        );
        assert!(!to.path().unwrap().exists(), "{what}: nothing written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksum_mismatch_or_inconsistent_creds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let open = Decryption::Identities(vec![Box::new(identity.clone())]);
    let to = Location::Native(dir.path().join("restored"));
    let source = Location::Compat(some_fixture());
    let snapshot = read(&source).await;
    let origin = wa_backup::Origin {
        backend: "compat".into(),
        location: "x".into(),
        flavour: None,
    };

    // A body changed after its checksum was taken (then encrypted properly).
    let mut plaintext = wa_backup::format::encode(&snapshot, origin.clone(), 0).to_vec();
    let last = plaintext.len() - 2;
    plaintext[last] = if plaintext[last] == b'1' { b'2' } else { b'1' };
    let file = dir.path().join("sum.age");
    std::fs::write(
        &file,
        age::encrypt(&identity.to_public(), &plaintext).unwrap(),
    )
    .unwrap();
    let err = wa_backup::restore(&file, &open, &to, &MigrateOptions::default())
        .await
        .expect_err("checksum");
    assert!(
        matches!(err, BackupError::Damaged { ref detail, .. } if detail.contains("checksum")),
        "{err}"
    );

    // Creds whose signed pre-key was not signed by their identity key.
    let mut bad = snapshot.clone();
    let creds: &mut AuthCreds = bad.creds.as_mut().expect("creds");
    creds.signed_pre_key.signature[0] ^= 1;
    let plaintext = wa_backup::format::encode(&bad, origin, 0);
    let file = dir.path().join("bad.age");
    std::fs::write(
        &file,
        age::encrypt(&identity.to_public(), &plaintext).unwrap(),
    )
    .unwrap();
    let err = wa_backup::restore(&file, &open, &to, &MigrateOptions::default())
        .await
        .expect_err("signature");
    assert!(matches!(err, BackupError::Inconsistent { .. }), "{err}");
    assert!(!to.path().unwrap().exists(), "nothing written");
}

/// Commit `n` adds key `k{n}` and sets `latest` to `n`: a state is a committed prefix when
/// its `k` keys are exactly `k1..=latest`.
fn assert_prefix(snapshot: &Snapshot, what: &str) -> usize {
    let lids = snapshot
        .keys
        .get(&KeyKind::LidMapping)
        .cloned()
        .unwrap_or_default();
    let latest = match lids.get(&"latest".into()) {
        Some(KeyValue::LidMapping(n)) => n.parse::<usize>().expect("number"),
        None => 0,
        other => panic!("{what}: latest is {other:?}"),
    };
    let numbered = lids
        .keys()
        .filter(|id| id.to_string().starts_with('k'))
        .count();
    assert_eq!(numbered, latest, "{what}: k keys and latest agree");
    for n in 1..=latest {
        assert!(
            lids.contains_key(&format!("k{n}").as_str().into()),
            "{what}: k{n} missing"
        );
    }
    latest
}

fn numbered_commit(n: usize) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        format!("k{n}"),
        KeyValue::LidMapping(n.to_string()),
    );
    batch.put(
        KeyKind::LidMapping,
        "latest",
        KeyValue::LidMapping(n.to_string()),
    );
    batch
}

async fn backup_while_committing(store: Arc<dyn Persistence>, source: Location, dir: &Path) {
    let mut first = WriteBatch::new();
    first.set_creds(AuthCreds::generate());
    store.commit(first).await.expect("creds");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                store.commit(numbered_commit(n)).await.expect("commit");
                // A live client commits in bursts (a message, its receipts) with quiet gaps,
                // which is when a folder can be read whole; a spin would refuse every read.
                if n % 16 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            n
        })
    };
    let (seal, open) = x25519_pair();
    let mut seen = Vec::new();
    for round in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let file = dir.join(format!("b{round}.age"));
        match wa_backup::backup(&source, &file, &seal, &BackupOptions::default()).await {
            Ok(_) => {}
            // A folder that keeps changing may be refused, clearly; never copied torn.
            Err(BackupError::Migrate(wa_migrate::MigrateError::ChangedWhileReading { .. })) => {
                continue;
            }
            Err(e) => panic!("backup {round}: {e}"),
        }
        let to = Location::Native(dir.join(format!("r{round}")));
        wa_backup::restore(&file, &open, &to, &MigrateOptions::default())
            .await
            .expect("restore");
        seen.push(assert_prefix(&read(&to).await, &format!("backup {round}")));
    }
    stop.store(true, Ordering::Relaxed);
    let last = writer.await.expect("writer");
    assert!(seen.iter().all(|n| *n <= last), "{seen:?} <= {last}");
    assert!(!seen.is_empty(), "at least one backup succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_backup_taken_while_the_owner_commits_is_one_committed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("live");
    let store = NativeStore::open_with(&store_dir, NativeStoreOptions::default())
        .await
        .expect("open");
    let store: Arc<dyn Persistence> = Arc::new(store);
    backup_while_committing(store.clone(), Location::Native(store_dir), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baileys_folder_backup_taken_while_the_owner_commits_is_one_committed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("live");
    let store = wa_store_compat::CompatStore::open(&store_dir)
        .await
        .expect("open");
    let store: Arc<dyn Persistence> = Arc::new(store);
    backup_while_committing(store.clone(), Location::Compat(store_dir), dir.path()).await;
}
