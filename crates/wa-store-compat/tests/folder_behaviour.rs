//! How the store treats its folder: ids `fixFileName` does not preserve, unknown kinds, files
//! it must not touch, ownership, read-only opens, recovery of interrupted commits, flavour
//! detection, file modes, and taking over a Baileys folder without changing what is unchanged.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{folder_files, temp_copy};
use wa_auth::key::OtherKind;
use wa_auth::{AuthError, KeyId, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_store_compat::layout::key_file_name;
use wa_store_compat::{
    CompatReader, CompatStore, CompatStoreOptions, Flavour, FlavourSource, ReadMode, Recovery,
};

fn lid(value: &str) -> KeyValue {
    KeyValue::LidMapping(value.to_owned())
}

async fn put(store: &CompatStore, kind: KeyKind, id: &str, value: KeyValue) -> wa_auth::Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(kind, id, value);
    store.commit(batch).await
}

/// A paired fixture folder (the first version found).
fn fixture_paired() -> std::path::PathBuf {
    wa_testkit::fixtures::baileys_versions()
        .into_iter()
        .map(|v| v.join("paired-with-sessions/auth"))
        .find(|auth| auth.join("creds.json").is_file())
        .expect("a paired-with-sessions fixture folder")
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
    let (_tmp, dir) = temp_copy(&fixture_paired());
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
    let options = CompatStoreOptions::default().other_kind(OtherKind::new("unknown-type").unwrap());
    let store = CompatReader::open_with(&dir, options).await.unwrap();
    let unknown = KeyKind::from_name("unknown-type").unwrap();
    assert_eq!(
        store.get_one(&unknown, &"123".into()).await.unwrap(),
        Some(KeyValue::Other(serde_json::json!({"hello": "world"})))
    );
}

#[tokio::test]
async fn one_owner_at_a_time_and_read_only_opens_write_nothing() {
    let (_tmp, dir) = temp_copy(&fixture_paired());
    let owner = CompatStore::open(&dir).await.unwrap();
    match CompatStore::open(&dir).await {
        Err(AuthError::AlreadyOwned { holder, .. }) => {
            assert_eq!(holder, Some(format!("pid {}", std::process::id())));
        }
        other => panic!("a second owner must be refused: {other:?}"),
    }
    let before = common::tree(&dir);
    let reader = CompatReader::open(&dir).await.unwrap();
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

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const TEMP: &str = ".wa-store-compat.tmp-1-1-1-0";
const JOURNAL: &str = ".wa-store-compat.journal";
const NEW_CONTENT: &[u8] = br#""999""#;

/// An interrupted commit written by hand into a copy of a fixture folder: it puts a new LID
/// mapping (`target`) and deletes the folder's first pre-key (`deleted`). Its temp file is
/// written when `temp`, its journal when `journal`.
struct Interrupted {
    target: String,
    deleted: String,
}

impl Interrupted {
    fn write(dir: &Path, temp: bool, journal: bool) -> Self {
        let deleted = folder_files(dir)
            .into_keys()
            .find(|name| name.starts_with("pre-key-"))
            .expect("a pre-key in the fixture folder");
        let target = key_file_name(&KeyKind::LidMapping, &"interrupted".into());
        if temp {
            std::fs::write(dir.join(TEMP), NEW_CONTENT).unwrap();
        }
        if journal {
            let old = sha256(&std::fs::read(dir.join(&deleted)).unwrap());
            let new = sha256(NEW_CONTENT);
            let text = format!(
                r#"{{"format":"wa-store-compat-journal/2","epoch":"00000000000000aa","seq":3,"ops":[["rename","{TEMP}","{target}","{new}",null],["delete","{deleted}","{old}"]]}}"#
            );
            std::fs::write(dir.join(JOURNAL), text).unwrap();
        }
        Self { target, deleted }
    }
}

/// The journal of the folder has no operation left.
fn sealed(dir: &Path) -> bool {
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(JOURNAL)).unwrap()).unwrap();
    journal["ops"] == serde_json::json!([])
}

#[tokio::test]
async fn interrupted_commits_roll_forward_or_back_as_a_whole() {
    // Journal and temp file: a read-only open sees the commit without applying it; the owner
    // applies it and seals the journal.
    let (_tmp, dir) = temp_copy(&fixture_paired());
    let commit = Interrupted::write(&dir, true, true);
    let before = common::tree(&dir);
    let reader = CompatReader::open(&dir).await.unwrap();
    assert_eq!(reader.report().recovery, Recovery::PendingReadOnly);
    let mapping = KeyId::from("interrupted");
    assert_eq!(
        reader
            .get_one(&KeyKind::LidMapping, &mapping)
            .await
            .unwrap(),
        Some(lid("999"))
    );
    let pre_key = reader.list(&KeyKind::PreKey).await.unwrap().len();
    drop(reader);
    assert_eq!(common::tree(&dir), before);
    let owner = CompatStore::open(&dir).await.unwrap();
    let forward = Recovery::RolledForward {
        renamed: 1,
        deleted: 1,
    };
    assert_eq!(owner.report().recovery, forward);
    assert_eq!(
        std::fs::read(dir.join(&commit.target)).unwrap(),
        NEW_CONTENT
    );
    assert!(!dir.join(&commit.deleted).exists());
    assert_eq!(owner.list(&KeyKind::PreKey).await.unwrap().len(), pre_key);
    assert!(sealed(&dir));
    drop(owner);

    // A temp file without a journal: discarded, nothing changes.
    let (_tmp, dir) = temp_copy(&fixture_paired());
    let original = folder_files(&dir);
    Interrupted::write(&dir, true, false);
    let owner = CompatStore::open(&dir).await.unwrap();
    let back = Recovery::RolledBack { temp_files: 1 };
    assert_eq!(owner.report().recovery, back);
    assert_eq!(folder_files(&dir), original);
}

#[tokio::test]
async fn a_commit_whose_new_content_is_gone_is_dropped_as_a_whole() {
    // The journal is in place, nothing of it was applied, and its temp file is gone (what an
    // earlier version left after a failed folder sync): the delete is not carried out.
    let (_tmp, dir) = temp_copy(&fixture_paired());
    let original = folder_files(&dir);
    let commit = Interrupted::write(&dir, false, true);
    let owner = CompatStore::open(&dir).await.unwrap();
    let back = Recovery::RolledBack { temp_files: 0 };
    assert_eq!(owner.report().recovery, back);
    assert!(dir.join(&commit.deleted).exists());
    assert_eq!(folder_files(&dir), original);
    assert!(sealed(&dir));
}

#[tokio::test]
async fn files_another_program_wrote_after_the_commit_point_win_as_a_whole() {
    // Baileys took the folder over after the crash and wrote the mapping: its write wins, and
    // nothing more of the commit is applied (the pre-key stays), whatever the file times.
    let (_tmp, dir) = temp_copy(&fixture_paired());
    let commit = Interrupted::write(&dir, true, true);
    std::fs::write(dir.join(&commit.target), br#""newer""#).unwrap();
    let owner = CompatStore::open(&dir).await.unwrap();
    let superseded = Recovery::Superseded {
        files: vec![commit.target.clone()],
    };
    assert_eq!(owner.report().recovery, superseded);
    assert_eq!(
        std::fs::read(dir.join(&commit.target)).unwrap(),
        br#""newer""#
    );
    assert!(dir.join(&commit.deleted).exists());
    assert!(!dir.join(TEMP).exists());
}

#[tokio::test]
async fn a_commit_that_can_be_neither_completed_nor_undone_fails_the_open() {
    // The delete happened, the new content of the rename is gone: refused, nothing touched.
    let (_tmp, dir) = temp_copy(&fixture_paired());
    let commit = Interrupted::write(&dir, false, true);
    std::fs::remove_file(dir.join(&commit.deleted)).unwrap();
    let before = common::tree(&dir);
    for read_only in [false, true] {
        let err = if read_only {
            CompatReader::open(&dir).await.map(drop)
        } else {
            CompatStore::open(&dir).await.map(drop)
        }
        .unwrap_err();
        assert!(matches!(err, AuthError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(JOURNAL), "{err}");
        assert!(err.to_string().contains(&commit.target), "{err}");
    }
    let mut after = common::tree(&dir);
    after.remove(".wa-store-compat.lock");
    assert_eq!(after, before);
}

#[tokio::test]
async fn journals_are_refused_unless_exactly_of_the_format() {
    let (_tmp, dir) = temp_copy(&fixture_paired());
    for (text, unsupported) in [
        (
            r#"{"format":"wa-store-compat-journal/2","epoch":"00000000000000aa","seq":1,"ops":[["delete","../creds.json","00"]]}"#,
            false,
        ),
        (r#"{"ops":[]}"#, false),
        (r#"{"format":"wa-store-compat-journal/1","ops":[]}"#, true),
        (r#"{"format":"wa-store-compat-journal/3","ops":[]}"#, true),
    ] {
        std::fs::write(dir.join(JOURNAL), text).unwrap();
        let err = CompatStore::open(&dir).await.unwrap_err();
        match err {
            AuthError::UnsupportedVersion { .. } if unsupported => {}
            AuthError::Corrupt { ref location, .. }
                if !unsupported && location.ends_with(JOURNAL) => {}
            other => panic!("{text}: {other}"),
        }
    }
    // A torn journal (not JSON at all) is an incomplete commit: discarded.
    std::fs::write(dir.join(JOURNAL), br#"{"format":"wa-store-com"#).unwrap();
    let owner = CompatStore::open(&dir).await.unwrap();
    let back = Recovery::RolledBack { temp_files: 0 };
    assert_eq!(owner.report().recovery, back);
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
    // Lenient reads are only for read-only views: a store that writes must not take a
    // damaged key for an absent one.
    assert!(matches!(
        CompatStore::open_with(&dir, CompatStoreOptions::default().mode(ReadMode::Lenient)).await,
        Err(AuthError::Invalid { .. })
    ));
    let store =
        CompatReader::open_with(&dir, CompatStoreOptions::default().mode(ReadMode::Lenient))
            .await
            .unwrap();
    assert!(store.report().registry_error.is_some());
}

/// Reverses the field order of every object nested in `value` (not of `value` itself);
/// returns how many of them had fields to reorder.
fn reverse_nested_orders(value: &mut serde_json::Value, depth: usize) -> usize {
    let mut reordered = 0;
    match value {
        serde_json::Value::Object(map) => {
            if depth > 0 && map.len() > 1 {
                let fields: Vec<_> = std::mem::take(map).into_iter().rev().collect();
                map.extend(fields);
                reordered += 1;
            }
            for field in map.values_mut() {
                reordered += reverse_nested_orders(field, depth + 1);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                reordered += reverse_nested_orders(item, depth + 1);
            }
        }
        _ => {}
    }
    reordered
}

#[tokio::test]
async fn taking_over_keeps_the_field_order_of_nested_creds_objects() {
    for (name, auth) in wa_testkit::fixtures::baileys_auth_folders() {
        let (_tmp, dir) = temp_copy(&auth);
        let creds_path = dir.join("creds.json");
        let mut creds: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
        let reordered = reverse_nested_orders(&mut creds, 0);
        assert!(reordered > 0, "{name}: no nested object to reorder");
        let written = serde_json::to_vec(&creds).unwrap();
        std::fs::write(&creds_path, &written).unwrap();
        let store = CompatStore::open(&dir).await.unwrap();
        let loaded = store.load_creds().await.unwrap().expect("creds");
        store.save_creds(&loaded).await.unwrap();
        drop(store);
        let rewritten = std::fs::read(&creds_path).unwrap();
        assert!(
            rewritten == written,
            "{name}: creds.json rewritten in another order:\n{}\n{}",
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&rewritten)
        );
    }
}
