//! Crash safety: a child process (this test binary, re-run with `WA_COMPAT_CRASH_CHILD` set)
//! commits seeded random batches to a folder in a loop and prints each acknowledged commit;
//! the parent SIGKILLs it at random moments. After every kill:
//!
//! 1. before anything recovers, every key file and `creds.json` in the folder parses as JSON
//!    (what Baileys, which ignores the journal, would read: never a torn file);
//! 2. the parent reopens the folder (replaying or discarding the journal) and checks that it
//!    holds EXACTLY the state after a prefix of the batches that includes every acknowledged
//!    one (the acknowledged count, or one more whose journal was complete), replaying the same
//!    seeded sequence in an in-memory model; no temp file is left, the journal is sealed and
//!    every file reads back.
//!
//! Batches mix every kind of write: sessions, sender keys, pre-keys, app-state versions, LID
//! mappings, an unknown kind with an id `fixFileName` does not preserve (so the registry is
//! part of commits), deletes, and creds changes.
//!
//! Environment: `WA_COMPAT_CRASH_SEED` (default fixed), `WA_COMPAT_CRASH_KILLS` (default 40).
//! This file has its own `main` (`harness = false` in Cargo.toml), so the same binary can act
//! as the child.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wa_auth::key::AppStateSyncVersion;
use wa_auth::{
    AuthCreds, KeyId, KeyKind, KeyValue, MemoryStore, Persistence, PersistenceExt, Snapshot,
    WriteBatch,
};
use wa_signal::ratchet::{ChainKey, MessageKeySeed, RootKey};
use wa_signal::record::{
    BaseKeyType, ChainState, MessageKeyMaterial, ReceiverChain, SenderKeyRecord, SenderKeyState,
    SenderMessageKey, SessionRecord, SessionState, StoredMessageKey,
};
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord, PrivateKey};
use wa_store_compat::{CompatStore, Recovery};

const CHILD_ENV: &str = "WA_COMPAT_CRASH_CHILD";
const COUNTER: &str = "crash-counter";

fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn key_pair(rng: &mut StdRng) -> KeyPair {
    KeyPair::from_private(PrivateKey::from_bytes(rng.random()))
}

fn session(rng: &mut StdRng) -> SessionRecord {
    let chain = |rng: &mut StdRng| ChainState {
        next_index: rng.random_range(1..50),
        key: Some(ChainKey::from_bytes(rng.random())),
        message_keys: (0..rng.random_range(0..3u32))
            .map(|index| StoredMessageKey {
                index,
                material: MessageKeyMaterial::Seed(MessageKeySeed::from_bytes(rng.random())),
            })
            .collect(),
    };
    let state = SessionState {
        local_identity: None,
        local_registration_id: None,
        remote_identity: key_pair(rng).public,
        remote_registration_id: rng.random_range(0..0x3fff),
        root_key: RootKey::from_bytes(rng.random()),
        previous_counter: rng.random_range(0..10),
        our_ratchet_key: key_pair(rng),
        their_ratchet_key: Some(key_pair(rng).public),
        sender_chain: Some(chain(rng)),
        receiver_chains: (0..2)
            .map(|_| ReceiverChain {
                ratchet_key: key_pair(rng).public,
                chain: chain(rng),
            })
            .collect(),
        pending_pre_key: None,
        base_key: key_pair(rng).public,
        base_key_type: BaseKeyType::Theirs,
        created: rng.random_range(1..1 << 40),
        used: rng.random_range(1..1 << 40),
        closed: None,
    };
    SessionRecord::from_parts(Some(state), vec![])
}

fn sender_key(rng: &mut StdRng) -> SenderKeyRecord {
    let signing = key_pair(rng);
    SenderKeyRecord::from_states(vec![SenderKeyState {
        key_id: rng.random(),
        iteration: rng.random_range(0..100),
        chain_key: ChainKey::from_bytes(rng.random()),
        signing_public: signing.public,
        signing_private: None,
        message_keys: (0..rng.random_range(0..3u32))
            .map(|iteration| SenderMessageKey {
                iteration,
                seed: MessageKeySeed::from_bytes(rng.random()),
            })
            .collect(),
        blank_message_key_slots: vec![],
    }])
}

/// Batch `index` of the sequence seeded by `seed`: deterministic, so the parent can replay it.
fn batch(seed: u64, index: u64, creds: &[AuthCreds]) -> WriteBatch {
    let mut rng = rng(seed, index);
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        COUNTER,
        KeyValue::LidMapping(index.to_string()),
    );
    let other = KeyKind::from_name("crash-kind").expect("kind");
    for _ in 0..rng.random_range(1..12) {
        let slot = rng.random_range(0..40u32);
        let delete = rng.random_range(0..5) == 0;
        let (kind, id, value) = match rng.random_range(0..6) {
            0 => (
                KeyKind::Session,
                format!("49151{slot}.0"),
                KeyValue::Session(session(&mut rng)),
            ),
            1 => (
                KeyKind::SenderKey,
                format!("1203630{slot}@g.us::49151{slot}::0"),
                KeyValue::SenderKey(sender_key(&mut rng)),
            ),
            2 => (
                KeyKind::PreKey,
                slot.to_string(),
                KeyValue::PreKey(PreKeyRecord {
                    id: PreKeyId(slot),
                    key_pair: key_pair(&mut rng),
                }),
            ),
            3 => (
                KeyKind::AppStateSyncVersion,
                format!("collection_{slot}"),
                KeyValue::AppStateSyncVersion(AppStateSyncVersion {
                    version: rng.random_range(1..100),
                    hash: (0..128).map(|_| rng.random()).collect(),
                    index_value_map: BTreeMap::from([(
                        format!("aW5kZXg{slot}="),
                        (0..32).map(|_| rng.random()).collect(),
                    )]),
                    extra: Default::default(),
                }),
            ),
            4 => (
                other.clone(),
                format!("x/{slot}:y"),
                KeyValue::Other(serde_json::json!({"slot": slot, "n": rng.random::<u32>()})),
            ),
            _ => (
                KeyKind::DeviceList,
                format!("user{slot}"),
                KeyValue::DeviceList(vec!["0".into(), rng.random_range(1..30u32).to_string()]),
            ),
        };
        if delete {
            batch.delete(kind, id);
        } else {
            batch.put(kind, id, value);
        }
    }
    if rng.random_range(0..4) == 0 {
        batch.set_creds(creds[rng.random_range(0..creds.len())].clone());
    }
    batch
}

fn counter(snapshot: &Snapshot) -> u64 {
    match snapshot
        .keys
        .get(&KeyKind::LidMapping)
        .and_then(|m| m.get(&KeyId::new(COUNTER)))
    {
        Some(KeyValue::LidMapping(n)) => n.parse().expect("counter"),
        _ => 0,
    }
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let seed = std::env::var("WA_COMPAT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0a7_u64);
    let kills = std::env::var("WA_COMPAT_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40usize);
    println!("crash_recovery: seed {seed} (set WA_COMPAT_CRASH_SEED to change), {kills} kills");
    run(seed, kills);
    println!("1 passed, 0 failed");
}

fn creds_file(dir: &Path) -> PathBuf {
    dir.join("creds-sequence.json")
}

fn folder(dir: &Path) -> PathBuf {
    dir.join("auth")
}

/// The child: commit batches until killed, printing `ACK <index>` after each commit.
fn child() {
    let dir = PathBuf::from(std::env::var("WA_COMPAT_CRASH_DIR").expect("dir"));
    let seed: u64 = std::env::var("WA_COMPAT_CRASH_CHILD_SEED")
        .expect("seed")
        .parse()
        .expect("seed");
    let creds: Vec<AuthCreds> =
        serde_json::from_slice(&std::fs::read(creds_file(&dir)).expect("creds")).expect("json");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = CompatStore::open(folder(&dir)).await.expect("child open");
        let current = store.load_all().await.expect("child load");
        for index in counter(&current) + 1.. {
            store
                .commit(batch(seed, index, &creds))
                .await
                .expect("child commit");
            let mut out = std::io::stdout().lock();
            writeln!(out, "ACK {index}").expect("stdout");
            out.flush().expect("stdout");
        }
    });
}

/// Every key file and creds file parses as JSON, as Baileys would read them now.
fn every_file_parses(dir: &Path) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read");
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            panic!(
                "{name} does not parse after a kill ({} bytes): {e}",
                bytes.len()
            );
        }
        files += 1;
    }
    files
}

/// The journal, if any, has no operation left to check (recovery sealed it).
fn journal_is_sealed(dir: &Path) -> bool {
    match std::fs::read(dir.join(".wa-store-compat.journal")) {
        Ok(bytes) => {
            let journal: serde_json::Value = serde_json::from_slice(&bytes).expect("journal");
            journal["ops"] == serde_json::json!([])
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => panic!("journal: {e}"),
    }
}

fn run(seed: u64, kills: usize) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let creds: Vec<AuthCreds> = (0..3).map(|_| AuthCreds::generate()).collect();
    std::fs::write(creds_file(dir), serde_json::to_vec(&creds).expect("json")).expect("write");
    let creds: Vec<AuthCreds> =
        serde_json::from_slice(&std::fs::read(creds_file(dir)).expect("read")).expect("json");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let model = MemoryStore::new();
    let mut model_index = 0u64;
    let mut timing = rng(seed, u64::MAX);
    let mut recoveries: BTreeMap<&str, usize> = BTreeMap::new();
    let mut acked_total = 0u64;
    let started = Instant::now();
    for kill in 0..kills {
        let mut child = Command::new(std::env::current_exe().expect("current exe"));
        child
            .env(CHILD_ENV, "1")
            .env("WA_COMPAT_CRASH_DIR", dir)
            .env("WA_COMPAT_CRASH_CHILD_SEED", seed.to_string());
        let delay = Duration::from_micros(timing.random_range(20_000..400_000));
        let lines = wa_testkit::crash::run_and_kill(child, delay, &format!("kill {kill}"));
        let acked = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ACK "))
            .filter_map(|i| i.parse::<u64>().ok())
            .inspect(|_| acked_total += 1)
            .max()
            .unwrap_or(0)
            .max(model_index);

        // 1. What a journal-unaware reader sees: no torn file.
        every_file_parses(&folder(dir));

        // 2. Recovery gives exactly a prefix including every acknowledged batch.
        let store = runtime
            .block_on(CompatStore::open(folder(dir)))
            .unwrap_or_else(|e| panic!("kill {kill}: reopen failed: {e}"));
        let report = store.report();
        *recoveries
            .entry(match report.recovery {
                Recovery::Clean => "clean",
                Recovery::RolledForward { .. } => "rolled forward",
                Recovery::RolledBack { .. } => "rolled back",
                _ => "other",
            })
            .or_default() += 1;
        let loaded = runtime
            .block_on(store.load_all())
            .unwrap_or_else(|e| panic!("kill {kill}: load after recovery failed: {e}"));
        let got = counter(&loaded);
        assert!(
            got == acked || got == acked + 1,
            "kill {kill}: {acked} batches acknowledged, the folder holds {got}"
        );
        for index in model_index + 1..=got {
            runtime
                .block_on(model.commit(batch(seed, index, &creds)))
                .expect("model");
        }
        model_index = got;
        let expected = model.snapshot();
        assert_eq!(
            loaded.creds, expected.creds,
            "kill {kill}: creds are not those after {got} batches"
        );
        assert_eq!(
            loaded.keys, expected.keys,
            "kill {kill}: the folder is not exactly the state after {got} batches"
        );
        assert!(report.unrecognised.is_empty(), "kill {kill}: {report}");
        let leftovers: Vec<String> = std::fs::read_dir(folder(dir))
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".wa-store-compat.tmp-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "kill {kill}: left behind {leftovers:?}"
        );
        assert!(
            journal_is_sealed(&folder(dir)),
            "kill {kill}: journal left unresolved"
        );
        drop(store);
    }
    println!(
        "crash_recovery: {kills} kills, {acked_total} acknowledged commits, {model_index} batches landed; recovery: {recoveries:?}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        model_index > kills as u64,
        "too few commits to mean anything ({model_index})"
    );
}
