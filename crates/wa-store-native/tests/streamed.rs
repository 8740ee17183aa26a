//! Big batches are written in parts while threads encode them (log version 2,
//! `docs/format-native.md`): they land whole, with every kind, replacing and deleting keys, in
//! groups shared with small commits made at the same time, and read back the same after a
//! reopen, with full durability and without syncs. An invalid big batch leaves no trace.

mod common;

use std::path::Path;
use std::sync::Arc;

use wa_auth::{
    AuthCreds, AuthError, KeyKind, KeyValue, Persistence, PersistenceExt, Snapshot, WriteBatch,
};
use wa_store_native::{Durability, NativeStore, NativeStoreOptions};

/// Keys of each kind in the big batch: sessions enough for several parts of 512 keys, and
/// every other kind (unknown ones included) so that the segments cross kinds.
const BIG_SESSIONS: usize = 2_600;
const BIG_OTHERS: usize = 150;
const SMALL_COMMITS: u64 = 24;

/// A batch of every kind over ids `0..n` (`n` per kind), replacing what an earlier batch of
/// `round` put and deleting every seventh id, with creds.
fn big_batch(round: u64) -> WriteBatch {
    let mut rng = common::rng(7, round);
    let mut batch = WriteBatch::new();
    // Sessions are slow to make in a debug build: eight distinct ones, cycled.
    let sessions: Vec<_> = (0..8)
        .map(|_| common::value(&KeyKind::Session, "", &mut rng))
        .collect();
    for kind in common::kinds() {
        let n = if kind == KeyKind::Session {
            BIG_SESSIONS
        } else {
            BIG_OTHERS
        };
        for i in 0..n {
            let id = i.to_string();
            if round > 0 && i % 7 == 0 {
                batch.delete(kind.clone(), id);
            } else if kind == KeyKind::Session {
                batch.put(kind.clone(), id, sessions[(i + round as usize) % 8].clone());
            } else {
                let value = common::value(&kind, &id, &mut rng);
                batch.put(kind.clone(), id, value);
            }
        }
    }
    let mut creds = AuthCreds::generate();
    creds.next_pre_key_id = round as u32 + 1;
    batch.set_creds(creds);
    batch
}

/// Frames in the log and how many of them continue in the next one (walking the frame
/// headers: `u32` payload length, `u32` batch count whose top bit marks a part followed by
/// more).
fn frames_and_parts(dir: &Path) -> (usize, usize) {
    let log = std::fs::read(dir.join("log")).expect("log");
    assert_eq!(log[8..12], 2u32.to_le_bytes(), "log format version");
    let (mut pos, mut frames, mut continuing) = (32, 0, 0);
    while pos < log.len() {
        let le = |at: usize| u32::from_le_bytes(log[at..at + 4].try_into().expect("4 bytes"));
        frames += 1;
        continuing += usize::from(le(pos + 4) >> 31 == 1);
        pos += 24 + le(pos) as usize;
    }
    assert_eq!(pos, log.len(), "frames end where the log ends");
    (frames, continuing)
}

/// Where `found` differs from `expected`, briefly (a whole snapshot is too long to print).
fn differences(found: &Snapshot, expected: &Snapshot) -> String {
    let mut out = Vec::new();
    if found.creds != expected.creds {
        out.push("creds differ".to_owned());
    }
    let kinds: std::collections::BTreeSet<_> =
        found.keys.keys().chain(expected.keys.keys()).collect();
    for kind in kinds {
        let (f, e) = (found.keys.get(kind), expected.keys.get(kind));
        let ids: std::collections::BTreeSet<_> =
            f.into_iter().chain(e).flat_map(|m| m.keys()).collect();
        let differ: Vec<_> = ids
            .into_iter()
            .filter(|id| f.and_then(|m| m.get(*id)) != e.and_then(|m| m.get(*id)))
            .collect();
        if !differ.is_empty() {
            out.push(format!(
                "{kind}: {} ids differ, first {:?}",
                differ.len(),
                &differ[..differ.len().min(3)]
            ));
        }
    }
    out.join("; ")
}

async fn big_batches_land_whole(durability: Durability) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    // No compaction: the log keeps every frame for the walk below.
    let options = NativeStoreOptions::default()
        .durability(durability)
        .compact_min_log_bytes(u64::MAX);
    let store = Arc::new(
        NativeStore::open_with(&dir, options.clone())
            .await
            .expect("open"),
    );
    let mut model = Snapshot::default();
    for round in 0..2 {
        let big = big_batch(round);
        // Small commits race the big one into its group and the groups after it.
        let small: Vec<WriteBatch> = (1..=SMALL_COMMITS)
            // One letter apart: distinct namespaces, pre-key id ranges included.
            .map(|i| {
                let prefix = format!("small{round}-{}-", char::from(b'a' + i as u8));
                common::batch(round, &prefix, i, &[])
            })
            .collect();
        let committers: Vec<_> = small
            .iter()
            .cloned()
            .map(|batch| {
                let store = store.clone();
                tokio::spawn(async move { store.commit(batch).await })
            })
            .collect();
        store.commit(big.clone()).await.expect("big commit");
        for committer in committers {
            committer.await.expect("task").expect("small commit");
        }
        // Each small commit has its own namespace: any order gives this state.
        common::apply(&mut model, &big);
        for batch in &small {
            common::apply(&mut model, batch);
        }
        let loaded = store.load_all().await.expect("load");
        assert!(
            loaded == model,
            "round {round}: {}",
            differences(&loaded, &model)
        );
    }
    let (frames, continuing) = frames_and_parts(&dir);
    let parts = BIG_SESSIONS.div_ceil(512);
    assert!(
        continuing >= 2 * (parts - 1),
        "{frames} frames, {continuing} continuing: each big batch should take at least {parts} parts"
    );
    store.close().await.expect("close");
    drop(store);
    let reopened = NativeStore::open_with(&dir, options).await.expect("reopen");
    let loaded = reopened.load_all().await.expect("load");
    assert!(
        loaded == model,
        "after reopening: {}",
        differences(&loaded, &model)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_batches_land_whole_with_full_durability() {
    big_batches_land_whole(Durability::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_batches_land_whole_without_syncs() {
    big_batches_land_whole(Durability::NoSync).await;
}

/// A big batch with one misfiled value (the last one checked) is refused as `Invalid` before
/// anything reaches the log, and the store goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_big_batch_leaves_no_trace() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let store = NativeStore::open(&dir).await.expect("open");
    let mut first = WriteBatch::new();
    first.put(
        KeyKind::LidMapping,
        "kept",
        KeyValue::LidMapping("1".into()),
    );
    store.commit(first.clone()).await.expect("first commit");
    let log_len = || std::fs::metadata(dir.join("log")).expect("log").len();
    let before = log_len();
    let mut invalid = big_batch(0);
    let misfiled = KeyKind::from_name("zz-last").expect("kind");
    invalid.put(
        misfiled,
        "x",
        KeyValue::LidMapping("not of this kind".into()),
    );
    let err = store.commit(invalid).await.expect_err("invalid batch");
    assert!(matches!(err, AuthError::Invalid { .. }), "{err}");
    assert_eq!(
        log_len(),
        before,
        "nothing of the invalid batch was written"
    );
    let mut model = Snapshot::default();
    common::apply(&mut model, &first);
    let valid = big_batch(1);
    store
        .commit(valid.clone())
        .await
        .expect("the store goes on");
    common::apply(&mut model, &valid);
    let loaded = store.load_all().await.expect("load");
    assert!(loaded == model, "{}", differences(&loaded, &model));
}
