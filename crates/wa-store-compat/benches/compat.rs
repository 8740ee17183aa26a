//! Benchmarks of a Baileys folder with 10 000 sessions (synthetic, in a temp dir), to compare
//! with Baileys' own figures (about 0.8 s to load 10k sessions, 0.7-4.5 s to save them without
//! fsync):
//!
//! - `open_index`: opening the folder (listing it into the index), read-only;
//! - `open_and_load_all`: opening and reading + decoding every session (what a migration or a
//!   full load does);
//! - `save_10k/{no_fsync,fsync}`: one commit of 10 000 sessions to an empty folder;
//! - `commit_one_session/{no_fsync,fsync}`: the commit after a decrypt (one session file)
//!   into the 10k folder.
//!
//! Run: `cargo bench -p wa-store-compat --bench compat`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::RngExt;
use wa_auth::{AuthCreds, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_signal::ratchet::{ChainKey, MessageKeySeed, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, ReceiverChain, SessionRecord, SessionState,
    StoredMessageKey,
};
use wa_signal::{KeyPair, PrivateKey};
use wa_store_compat::{CompatReader, CompatStore, CompatStoreOptions};

const SESSIONS: usize = 10_000;

fn key_pair() -> KeyPair {
    KeyPair::from_private(PrivateKey::from_bytes(rand::rng().random()))
}

/// A session shaped like one after some traffic: a current session with a sending chain and
/// three receiving chains holding skipped keys, and one closed session (about 3 KB of JSON).
fn session() -> SessionRecord {
    let mut rng = rand::rng();
    let mut chain = |keys: u32| ChainState {
        next_index: rng.random_range(5..50),
        key: Some(ChainKey::from_bytes(rng.random())),
        message_keys: (0..keys)
            .map(|index| StoredMessageKey {
                index,
                material: MessageKeyMaterial::Seed(MessageKeySeed::from_bytes(rng.random())),
            })
            .collect(),
    };
    let mut state = |closed: Option<u64>| SessionState {
        local_identity: None,
        local_registration_id: None,
        remote_identity: key_pair().public,
        remote_registration_id: 1234,
        root_key: RootKey::from_bytes(rand::rng().random()),
        previous_counter: 3,
        our_ratchet_key: key_pair(),
        their_ratchet_key: Some(key_pair().public),
        sender_chain: Some(chain(0)),
        receiver_chains: (0..3)
            .map(|_| ReceiverChain {
                ratchet_key: key_pair().public,
                chain: chain(2),
            })
            .collect(),
        pending_pre_key: None,
        base_key: key_pair().public,
        base_key_type: BaseKeyType::Theirs,
        created: 1_795_456_999_000,
        used: 1_795_457_999_000,
        closed,
    };
    SessionRecord::from_parts(Some(state(None)), vec![state(Some(1_795_456_999_500))])
}

fn ten_k_batch() -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.set_creds(AuthCreds::generate());
    for i in 0..SESSIONS {
        batch.put(
            KeyKind::Session,
            format!("49151{i:08}.0"),
            KeyValue::Session(session()),
        );
    }
    batch
}

fn options(fsync: bool) -> CompatStoreOptions {
    CompatStoreOptions::default().fsync(fsync)
}

async fn write_folder(dir: &Path, batch: WriteBatch, fsync: bool) {
    let store = CompatStore::open_with(dir, options(fsync))
        .await
        .expect("open");
    store.commit(batch).await.expect("commit");
    store.close().await.expect("close");
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let batch = ten_k_batch();
    let tmp = tempfile::tempdir().expect("temp dir");
    let folder: PathBuf = tmp.path().join("auth-10k");
    runtime.block_on(write_folder(&folder, batch.clone(), false));

    let mut group = c.benchmark_group("compat_10k_sessions");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("open_index", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let store = CompatReader::open(&folder).await.expect("open");
                assert_eq!(store.list(&KeyKind::Session).await.unwrap().len(), SESSIONS);
            })
        })
    });
    group.bench_function("open_and_load_all", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let store = CompatReader::open(&folder).await.expect("open");
                let all = store.load_all().await.expect("load all");
                assert_eq!(all.key_count(), SESSIONS);
            })
        })
    });
    for fsync in [false, true] {
        let name = if fsync { "fsync" } else { "no_fsync" };
        group.bench_function(format!("save_10k/{name}"), |b| {
            b.iter_batched(
                || (tempfile::tempdir().expect("temp dir"), batch.clone()),
                |(dir, batch)| {
                    runtime.block_on(write_folder(&dir.path().join("auth"), batch, fsync));
                    dir
                },
                BatchSize::PerIteration,
            )
        });
        let store = runtime
            .block_on(CompatStore::open_with(&folder, options(fsync)))
            .expect("open");
        let one = session();
        group.bench_function(format!("commit_one_session/{name}"), |b| {
            b.iter(|| {
                runtime
                    .block_on(
                        store.put_one("4915100000001.0".into(), KeyValue::Session(one.clone())),
                    )
                    .expect("commit")
            })
        });
        drop(store);
    }
    group.finish();
}

criterion_group!(compat, benches);
criterion_main!(compat);
