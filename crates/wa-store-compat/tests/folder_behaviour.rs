//! How the store treats its folder: ids `fixFileName` does not preserve, unknown kinds, files
//! it must not touch, ownership, read-only opens, recovery of interrupted commits, flavour
//! detection, file modes, and taking over a Baileys folder without changing what is unchanged.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{folder_files, temp_copy};
use wa_auth::key::OtherKind;
use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_store_compat::{
    CompatStore, CompatStoreOptions, Flavour, FlavourSource, ReadMode, Recovery,
};

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.to_owned())
}

async fn put(store: &CompatStore, kind: KeyKind, id: &str, value: KeyValue) -> wa_auth::Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(kind, id, value);
    store.commit(batch).await
}

fn fixtures_v7_paired() -> std::path::PathBuf {
    wa_testkit::fixtures::baileys_versions()
        .into_iter()
        .find(|v| {
            v.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("v7"))
        })
        .expect("a v7 fixture folder")
        .join("paired-with-sessions/auth")
}

#[tokio::test]
async fn ids_fix_file_name_loses_are_kept_across_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    {
        let store = CompatStore::open(&dir).await.unwrap();
        for round in 0..2 {
            for id in ["c:d", "a/b", "x__y", "plain"] {
                put(
                    &store,
                    KeyKind::LidMapping,
                    id,
                    lid(&format!("{id}{round}")),
                )
                .await
                .unwrap();
            }
        }
        assert!(dir.join("lid-mapping-c-d.json").is_file());
        assert!(dir.join("lid-mapping-a__b.json").is_file());
    }
    let store = CompatStore::open(&dir).await.unwrap();
    let mut listed = store.list(&KeyKind::LidMapping).await.unwrap();
    listed.sort();
    let expected: Vec<KeyId> = ["a/b", "c:d", "plain", "x__y"].map(KeyId::from).to_vec();
    assert_eq!(listed, expected);
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"c:d".into())
            .await
            .unwrap(),
        Some(lid("c:d1"))
    );
    // Baileys' view: the same file answers for `c-d`.
    assert_eq!(
        store
            .get_one(&KeyKind::LidMapping, &"c-d".into())
            .await
            .unwrap(),
        Some(lid("c:d1"))
    );
    // Two ids of one batch in one file: refused, nothing written.
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, "e:f", lid("1"));
    batch.put(KeyKind::LidMapping, "e-f", lid("2"));
    assert!(matches!(
        store.commit(batch).await,
        Err(AuthError::Invalid { .. })
    ));
    assert!(!dir.join("lid-mapping-e-f.json").exists());
    // Deleting the recorded id removes the file and the record.
    store
        .delete_many(&KeyKind::LidMapping, &["c:d".into()])
        .await
        .unwrap();
    drop(store);
    let store = CompatStore::open(&dir).await.unwrap();
    assert!(
        !store
            .list(&KeyKind::LidMapping)
            .await
            .unwrap()
            .contains(&"c:d".into())
    );
    assert!(!dir.join("lid-mapping-c-d.json").exists());
}

#[tokio::test]
async fn unknown_kinds_round_trip_and_unknown_files_are_left_alone() {
    let (_tmp, dir) = temp_copy(&fixtures_v7_paired());
    std::fs::write(dir.join("unknown-type-123.json"), br#"{"hello":"world"}"#).unwrap();
    std::fs::write(dir.join("session-abc.json"), b"{}").unwrap();
    let future = KeyKind::from_name("future-kind").unwrap();
    {
        let store = CompatStore::open(&dir).await.unwrap();
        let files: Vec<String> = store
            .report()
            .unrecognised
            .into_iter()
            .map(|u| u.file)
            .collect();
        assert_eq!(files, ["session-abc.json", "unknown-type-123.json"]);
        put(
            &store,
            future.clone(),
            "x/y:z",
            KeyValue::Other(serde_json::json!({"a": [1]})),
        )
        .await
        .unwrap();
        // A kind whose file names would read as another kind is refused.
        let sender = KeyKind::from_name("sender").unwrap();
        let err = put(
            &store,
            sender,
            "key-1",
            KeyValue::Other(serde_json::json!(1)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, AuthError::Invalid { .. }), "{err}");
        // A key whose file is an unrecognised file is refused; the file stays.
        let err = put(
            &store,
            KeyKind::Session,
            "abc",
            KeyValue::Other(serde_json::json!(1)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, AuthError::Invalid { .. }), "{err}");
        let too_long = "9".repeat(300);
        let err = put(&store, KeyKind::LidMapping, &too_long, lid("1"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("file name"), "{err}");
    }
    assert_eq!(std::fs::read(dir.join("session-abc.json")).unwrap(), b"{}");
    let store = CompatStore::open(&dir).await.unwrap();
    assert_eq!(
        store.list(&future).await.unwrap(),
        vec![KeyId::from("x/y:z")]
    );
    assert!(store.kinds().await.unwrap().contains(&future));
    assert_eq!(
        store.get_one(&future, &"x/y:z".into()).await.unwrap(),
        Some(KeyValue::Other(serde_json::json!({"a": [1]})))
    );
    assert_eq!(store.report().unrecognised.len(), 2);
    // A kind given in the options makes such files readable.
    drop(store);
    let options = CompatStoreOptions::default()
        .read_only(true)
        .other_kind(OtherKind::new("unknown-type").unwrap());
    let store = CompatStore::open_with(&dir, options).await.unwrap();
    let unknown = KeyKind::from_name("unknown-type").unwrap();
    assert_eq!(
        store.get_one(&unknown, &"123".into()).await.unwrap(),
        Some(KeyValue::Other(serde_json::json!({"hello": "world"})))
    );
}

#[tokio::test]
async fn one_owner_at_a_time_and_read_only_opens_write_nothing() {
    let (_tmp, dir) = temp_copy(&fixtures_v7_paired());
    let owner = CompatStore::open(&dir).await.unwrap();
    match CompatStore::open(&dir).await {
        Err(AuthError::AlreadyOwned { holder, .. }) => {
            assert_eq!(holder, Some(format!("pid {}", std::process::id())));
        }
        other => panic!("a second owner must be refused: {other:?}"),
    }
    let before = common::tree(&dir);
    let reader = CompatStore::open_with(&dir, CompatStoreOptions::default().read_only(true))
        .await
        .unwrap();
    assert!(reader.load_all().await.unwrap().key_count() > 0);
    assert!(
        reader
            .commit(
                WriteBatch::new()
                    .put(KeyKind::LidMapping, "1", lid("2"))
                    .clone()
            )
            .await
            .is_err()
    );
    assert_eq!(common::tree(&dir), before);
    owner.close().await.unwrap();
    assert!(matches!(
        put(&owner, KeyKind::LidMapping, "1", lid("2")).await,
        Err(AuthError::Closed)
    ));
    // Closed: the folder can be owned again.
    CompatStore::open(&dir).await.unwrap();
    let missing = CompatStoreOptions::default().create(false);
    assert!(matches!(
        CompatStore::open_with(dir.join("nope"), missing).await,
        Err(AuthError::NotFound { .. })
    ));
}

/// Writes an interrupted commit by hand: its temp file, and its journal when `journal`.
fn interrupted_commit(dir: &Path, journal: bool) {
    let temp = ".wa-store-compat.tmp-1-1-1-0";
    std::fs::write(dir.join(temp), br#""999""#).unwrap();
    if journal {
        let text = format!(
            r#"{{"format":"wa-store-compat-journal/1","ops":[["rename","{temp}","lid-mapping-15550100001.json"],["delete","pre-key-10.json"]]}}"#
        );
        std::fs::write(dir.join(".wa-store-compat.journal"), text).unwrap();
    }
}

#[tokio::test]
async fn interrupted_commits_roll_forward_or_back() {
    // With a complete journal: a read-only open sees the commit without applying it; the
    // owner applies it.
    let (_tmp, dir) = temp_copy(&fixtures_v7_paired());
    interrupted_commit(&dir, true);
    let before = common::tree(&dir);
    let reader = CompatStore::open_with(&dir, CompatStoreOptions::default().read_only(true))
        .await
        .unwrap();
    assert_eq!(reader.report().recovery, Recovery::PendingReadOnly);
    assert_eq!(
        reader
            .get_one(&KeyKind::LidMapping, &"15550100001".into())
            .await
            .unwrap(),
        Some(lid("999"))
    );
    assert_eq!(
        reader
            .get_one(&KeyKind::PreKey, &"10".into())
            .await
            .unwrap(),
        None
    );
    drop(reader);
    assert_eq!(common::tree(&dir), before);
    let owner = CompatStore::open(&dir).await.unwrap();
    assert_eq!(
        owner.report().recovery,
        Recovery::RolledForward {
            renamed: 1,
            deleted: 1,
            superseded: 0
        }
    );
    assert_eq!(
        std::fs::read(dir.join("lid-mapping-15550100001.json")).unwrap(),
        br#""999""#
    );
    assert!(!dir.join("pre-key-10.json").exists());
    drop(owner);

    // Without a journal: the temp file is discarded, nothing changes.
    let (_tmp, dir) = temp_copy(&fixtures_v7_paired());
    let original = folder_files(&dir);
    interrupted_commit(&dir, false);
    let owner = CompatStore::open(&dir).await.unwrap();
    assert_eq!(
        owner.report().recovery,
        Recovery::RolledBack { temp_files: 1 }
    );
    assert_eq!(folder_files(&dir), original);

    // Files another program changed after the commit point win over the journal (Baileys
    // took the folder over after the crash).
    drop(owner);
    interrupted_commit(&dir, true);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(dir.join(".wa-store-compat.journal"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::write(dir.join("lid-mapping-15550100001.json"), br#""newer""#).unwrap();
    std::fs::write(
        dir.join("pre-key-10.json"),
        std::fs::read(dir.join("pre-key-11.json")).unwrap(),
    )
    .unwrap();
    let owner = CompatStore::open(&dir).await.unwrap();
    assert_eq!(
        owner.report().recovery,
        Recovery::RolledForward {
            renamed: 0,
            deleted: 0,
            superseded: 2
        }
    );
    assert_eq!(
        std::fs::read(dir.join("lid-mapping-15550100001.json")).unwrap(),
        br#""newer""#
    );
    assert!(dir.join("pre-key-10.json").exists());
    assert!(!dir.join(".wa-store-compat.tmp-1-1-1-0").exists());

    // A journal that names files it must not touch is refused, never applied.
    drop(owner);
    std::fs::write(
        dir.join(".wa-store-compat.journal"),
        r#"{"format":"wa-store-compat-journal/1","ops":[["delete","../creds.json"]]}"#,
    )
    .unwrap();
    let err = CompatStore::open(&dir).await.unwrap_err();
    assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn new_folders_and_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/auth");
    let state = wa_store_compat::use_multi_file_auth_state(&dir)
        .await
        .unwrap();
    drop(state);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("creds.json")), 0o600);
    let store = CompatStore::open(&dir).await.unwrap();
    assert_eq!(store.flavour(), Flavour::Baileys7);
    assert_eq!(store.report().flavour_source, FlavourSource::Registry);
}

#[tokio::test]
async fn the_flavour_comes_from_the_option_the_files_or_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    let options = CompatStoreOptions::default().flavour(Flavour::Baileys6);
    let store = CompatStore::open_with(&dir, options).await.unwrap();
    assert_eq!(store.report().flavour_source, FlavourSource::Option);
    put(&store, KeyKind::LidMapping, "1", lid("2"))
        .await
        .unwrap();
    drop(store);
    // The registry remembers Baileys 6 although a lid-mapping file suggests 7.
    let store = CompatStore::open(&dir).await.unwrap();
    assert_eq!(
        (store.flavour(), store.report().flavour_source),
        (Flavour::Baileys6, FlavourSource::Registry)
    );
    drop(store);
    std::fs::remove_file(dir.join(".wa-store-compat.json")).unwrap();
    let store = CompatStore::open(&dir).await.unwrap();
    assert_eq!(
        (store.flavour(), store.report().flavour_source),
        (Flavour::Baileys7, FlavourSource::Baileys7Kinds)
    );
}

#[tokio::test]
async fn taking_over_a_baileys_folder_changes_only_what_changes() {
    for version in wa_testkit::fixtures::baileys_versions() {
        let (_tmp, dir) = temp_copy(&version.join("paired-with-sessions/auth"));
        let before = folder_files(&dir);
        let store = CompatStore::open(&dir).await.unwrap();
        let creds = store.load_creds().await.unwrap().expect("creds");
        store.save_creds(&creds).await.unwrap();
        let mapping = lid("123");
        put(&store, KeyKind::LidMapping, "4915100000000", mapping)
            .await
            .unwrap();
        drop(store);
        let mut after = folder_files(&dir);
        assert!(after.remove("lid-mapping-4915100000000.json").is_some());
        assert_eq!(
            after,
            before,
            "{}: creds rewritten differently",
            version.display()
        );
    }
}

#[tokio::test]
async fn lenient_mode_reports_an_unreadable_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("auth");
    CompatStore::open(&dir).await.unwrap();
    std::fs::write(dir.join(".wa-store-compat.json"), b"{not json").unwrap();
    assert!(matches!(
        CompatStore::open(&dir).await,
        Err(AuthError::Corrupt { .. })
    ));
    let store = CompatStore::open_with(&dir, CompatStoreOptions::default().mode(ReadMode::Lenient))
        .await
        .unwrap();
    assert!(store.report().registry_error.is_some());
}
