//! Migrating a synthetic Baileys folder with 10 000 sessions and 1 000 pre-keys (plus creds)
//! into a new native store: read and decode every file, write the staging store durably
//! (`Durability::Full`: fdatasync), re-open and compare every key, rename into place and sync
//! the parent folder. Target: under 1 s on the reference machine (2 cores).
//!
//! Run: `cargo xtask bench migrate` (or `cargo bench -p wa-migrate --bench migrate`).

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use wa_auth::{AuthCreds, KeyKind, KeyValue, Persistence, WriteBatch, sample};
use wa_migrate::{MigrateOptions, migrate_compat_json_to_native};
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord};
use wa_store_compat::{CompatStore, CompatStoreOptions};

const SESSIONS: usize = 10_000;
const PRE_KEYS: u32 = 1_000;

async fn write_baileys_folder(dir: &Path) {
    let mut batch = WriteBatch::new();
    let mut creds = AuthCreds::generate();
    creds.next_pre_key_id = PRE_KEYS + 1;
    creds.first_unuploaded_pre_key_id = PRE_KEYS + 1;
    batch.set_creds(creds);
    for i in 0..SESSIONS {
        batch.put(
            KeyKind::Session,
            format!("49151{i:08}.0"),
            KeyValue::Session(sample::session(i as u8)),
        );
    }
    for id in 1..=PRE_KEYS {
        batch.put(
            KeyKind::PreKey,
            id.to_string(),
            KeyValue::PreKey(PreKeyRecord {
                id: PreKeyId(id),
                key_pair: KeyPair::generate(&mut wa_auth::SystemProvider::new()),
            }),
        );
    }
    let store = CompatStore::open_with(dir, CompatStoreOptions::default().fsync(false))
        .await
        .expect("open");
    store.commit(batch).await.expect("commit");
    store.close().await.expect("close");
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tmp = tempfile::tempdir().expect("temp dir");
    let folder = tmp.path().join("auth_info_baileys");
    runtime.block_on(write_baileys_folder(&folder));

    let mut group = c.benchmark_group("migrate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("compat_to_native_10k_sessions_1k_pre_keys", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("temp dir"),
            |dest| {
                let summary = runtime
                    .block_on(migrate_compat_json_to_native(
                        &folder,
                        dest.path().join("native"),
                        &MigrateOptions::default(),
                    ))
                    .expect("migrate");
                assert_eq!(summary.total_keys, SESSIONS + PRE_KEYS as usize);
                dest
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(migrate, benches);
criterion_main!(migrate);
