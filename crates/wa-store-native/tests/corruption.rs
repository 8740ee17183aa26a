//! Damaged files: for a small store, the log and the snapshot truncated at EVERY length and with
//! EVERY single bit flipped (exhaustive, through the read-only open, which runs the same
//! recovery as a writable open but writes nothing); a writable open on every third byte position
//! of the log (truncation and one flipped bit per position), which must also truncate the torn
//! tail away and leave a working store. Opening gives either a clean recovery to
//! exactly a prefix state (torn tail) or `Corrupt`/`UnsupportedVersion` naming the file, never
//! a panic or wrong data. Plus the named failure cases of the recovery rules.

mod common;

use std::path::Path;

use wa_auth::{
    AuthCreds, AuthError, CorruptItem, KeyKind, KeyValue, Persistence, PersistenceExt, Snapshot,
    WriteBatch,
};
use wa_store_native::{Durability, NativeReader, NativeStore, NativeStoreOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Open through the read-only view ([`NativeReader`]).
fn read_only() -> Option<NativeStoreOptions> {
    None
}

/// A small store: three batches compacted into the snapshot, then three in the log. Returns the
/// snapshot, the log and the states after 3, 4, 5 and 6 batches.
fn small_store(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<Snapshot>) {
    let rt = runtime();
    let mut model = Snapshot::default();
    let mut states = Vec::new();
    let creds = AuthCreds::generate();
    let store = NativeStore::open_blocking(dir, NativeStoreOptions::default()).expect("open");
    for index in 1..=6u64 {
        let mut batch = WriteBatch::new();
        if index == 1 || index == 5 {
            let mut creds = creds.clone();
            creds.next_pre_key_id = index as u32;
            batch.set_creds(creds);
        }
        batch.put(
            KeyKind::LidMapping,
            format!("user{index}"),
            KeyValue::LidMapping(format!("{index}00000000000001")),
        );
        batch.put(
            KeyKind::DeviceList,
            format!("user{}", index % 3),
            KeyValue::DeviceList(vec!["0".into(), index.to_string()]),
        );
        if index == 5 {
            batch.delete(KeyKind::LidMapping, "user2");
        }
        rt.block_on(store.commit(batch.clone())).expect("commit");
        common::apply(&mut model, &batch);
        if index >= 3 {
            states.push(model.clone());
        }
        if index == 3 {
            rt.block_on(store.compact()).expect("compact");
        }
    }
    drop(store);
    let snapshot = std::fs::read(dir.join("snapshot")).expect("snapshot");
    let log = std::fs::read(dir.join("log")).expect("log");
    (snapshot, log, states)
}

/// Loads the store in `dir`, opened for writing with `options`, or read-only with `None`.
fn load(dir: &Path, options: impl Into<Option<NativeStoreOptions>>) -> Result<Snapshot, AuthError> {
    match options.into() {
        Some(options) => {
            let store = NativeStore::open_blocking(dir, options)?;
            runtime().block_on(store.load_all())
        }
        None => runtime().block_on(NativeReader::open_blocking(dir)?.load_all()),
    }
}

/// Checks one damaged case: a clean recovery to a prefix state, or an error naming `file`.
fn check(
    case: &str,
    result: Result<Snapshot, AuthError>,
    file: &str,
    states: &[Snapshot],
    allowed: usize,
) -> Outcome {
    match result {
        Ok(state) => {
            let position = states.iter().position(|s| *s == state);
            assert!(
                position.is_some_and(|p| p < allowed),
                "{case}: recovered a state that is not an allowed prefix state"
            );
            Outcome::Recovered
        }
        Err(AuthError::Corrupt { location, .. }) => {
            assert!(
                location.contains(file),
                "{case}: corrupt error names {location:?}"
            );
            Outcome::Corrupt
        }
        Err(AuthError::UnsupportedVersion { what, .. }) => {
            assert!(what.contains(file), "{case}: version error names {what:?}");
            Outcome::Version
        }
        Err(other) => panic!("{case}: unexpected error {other}"),
    }
}

#[derive(Debug, Default)]
struct Tally {
    recovered: usize,
    corrupt: usize,
    version: usize,
}

enum Outcome {
    Recovered,
    Corrupt,
    Version,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Recovered => self.recovered += 1,
            Outcome::Corrupt => self.corrupt += 1,
            Outcome::Version => self.version += 1,
        }
    }
}

#[test]
fn every_truncation_and_bit_flip_recovers_a_prefix_or_names_the_damage() {
    let tmp = tempfile::tempdir().expect("tmp");
    let origin = tmp.path().join("origin");
    let (snapshot, log, states) = small_store(&origin);
    let full = states.len(); // any prefix state
    assert_eq!(
        load(&origin, read_only()).expect("intact store"),
        states[full - 1]
    );
    let case_dir = tmp.path().join("case");
    std::fs::create_dir(&case_dir).expect("mkdir");
    let write = |snapshot: &[u8], log: &[u8]| {
        // Fresh files (not truncated and rewritten, which makes ext4 flush on close).
        for name in ["snapshot", "log"] {
            std::fs::remove_file(case_dir.join(name)).ok();
        }
        std::fs::write(case_dir.join("snapshot"), snapshot).expect("write");
        std::fs::write(case_dir.join("log"), log).expect("write");
    };

    // The snapshot is published atomically: any change to it is an error.
    let mut tally = Tally::default();
    for len in 0..snapshot.len() {
        write(&snapshot[..len], &log);
        let outcome = check(
            &format!("snapshot truncated to {len}"),
            load(&case_dir, read_only()),
            "snapshot",
            &states,
            0,
        );
        tally.add(outcome);
    }
    for bit in 0..snapshot.len() * 8 {
        let mut damaged = snapshot.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        write(&damaged, &log);
        let outcome = check(
            &format!("snapshot bit {bit} flipped"),
            load(&case_dir, read_only()),
            "snapshot",
            &states,
            0,
        );
        tally.add(outcome);
    }
    println!(
        "snapshot ({} bytes): {} truncations + {} bit flips: {tally:?}",
        snapshot.len(),
        snapshot.len(),
        snapshot.len() * 8
    );
    assert_eq!(tally.recovered, 0);

    // The log: a torn tail recovers a prefix, anything else is an error.
    let mut tally = Tally::default();
    for len in 0..log.len() {
        write(&snapshot, &log[..len]);
        let outcome = check(
            &format!("log truncated to {len}"),
            load(&case_dir, read_only()),
            "log",
            &states,
            full - 1,
        );
        tally.add(outcome);
    }
    let truncations = Tally { ..tally };
    let mut tally = Tally::default();
    for bit in 0..log.len() * 8 {
        let mut damaged = log.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        write(&snapshot, &damaged);
        let outcome = check(
            &format!("log bit {bit} flipped"),
            load(&case_dir, read_only()),
            "log",
            &states,
            full - 1,
        );
        tally.add(outcome);
    }
    println!(
        "log ({} bytes): truncations {truncations:?}; bit flips {tally:?}",
        log.len()
    );
    // Every truncation inside the frames recovers; only a cut into the header is an error.
    assert_eq!(truncations.corrupt + truncations.version, 32);
    assert!(tally.recovered > 0 && tally.corrupt > 0);
}

#[test]
fn writable_open_truncates_a_torn_tail_and_rejects_damage_on_every_log_byte() {
    let tmp = tempfile::tempdir().expect("tmp");
    let origin = tmp.path().join("origin");
    let (snapshot, log, states) = small_store(&origin);
    let full = states.len();
    let mut tally = Tally::default();
    // Every 3rd byte: each recovered case costs real fsyncs (the exhaustive test above runs the
    // same recovery on every bit through the read-only path).
    for (n, pos) in (0..log.len()).step_by(3).enumerate() {
        for damage in ["truncate", "flip"] {
            let dir = tmp.path().join(format!("{damage}-{n}"));
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::write(dir.join("snapshot"), &snapshot).expect("write");
            let mut bytes = log.clone();
            if damage == "truncate" {
                bytes.truncate(pos);
            } else {
                bytes[pos] ^= 1 << (pos % 8);
            }
            std::fs::write(dir.join("log"), &bytes).expect("write");
            let case = format!("log {damage} at {pos} (writable)");
            let outcome = check(
                &case,
                load(&dir, NativeStoreOptions::default()),
                "log",
                &states,
                full - 1,
            );
            if let Outcome::Recovered = outcome {
                // The torn tail is gone from the file, and the store works on.
                let inspection = wa_store_native::inspect::inspect_dir(&dir).expect("inspect");
                assert_eq!(inspection.torn_tail, None, "{case}");
                let options = NativeStoreOptions::default().durability(Durability::NoSync);
                let store = NativeStore::open_blocking(&dir, options).expect(&case);
                runtime()
                    .block_on(store.put_one("x".into(), KeyValue::LidMapping("1".into())))
                    .expect(&case);
            } else {
                // Nothing was changed by the failed open.
                assert_eq!(
                    std::fs::read(dir.join("log")).expect("read"),
                    bytes,
                    "{case}"
                );
            }
            tally.add(outcome);
            std::fs::remove_dir_all(&dir).expect("clean");
        }
    }
    println!(
        "writable opens over every 3rd of {} log bytes: {tally:?}",
        log.len()
    );
}

#[test]
fn unknown_versions_are_errors_not_resets() {
    let tmp = tempfile::tempdir().expect("tmp");
    let origin = tmp.path().join("origin");
    let (snapshot, log, _) = small_store(&origin);
    for (file, bytes) in [("snapshot", &snapshot), ("log", &log)] {
        let dir = tmp.path().join(format!("v-{file}"));
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("snapshot"), &snapshot).expect("write");
        std::fs::write(dir.join("log"), &log).expect("write");
        // The snapshot is at version 1, the log at 2 (which reads logs of version 1 too).
        let (newest, supported_versions) = match file {
            "snapshot" => (1, "1"),
            _ => (2, "1, 2"),
        };
        assert_eq!(bytes[8..12], u32::to_le_bytes(newest), "{file}");
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&(newest + 1).to_le_bytes());
        std::fs::write(dir.join(file), &newer).expect("write");
        match NativeStore::open_blocking(&dir, NativeStoreOptions::default()) {
            Err(AuthError::UnsupportedVersion {
                what,
                version,
                supported,
            }) => {
                assert!(what.ends_with(file), "{what}");
                assert_eq!(version, (newest + 1).to_string());
                assert_eq!(supported, supported_versions);
            }
            other => panic!("{file}: expected UnsupportedVersion, got {other:?}"),
        }
        assert_eq!(std::fs::read(dir.join(file)).expect("read"), newer);
    }
}

/// A log of version 1 (what the first release wrote; its frames are frames of version 2) is
/// read as it is, left alone by a read-only open, and rewritten with the version 2 header by an
/// open for writing, which then keeps appending to it.
#[test]
fn a_version_1_log_is_read_and_upgraded_by_a_writable_open() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let (_, log, states) = small_store(&dir);
    let mut old = log.clone();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&old[..28]);
    old[28..32].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(dir.join("log"), &old).expect("write");
    let last = states.last().expect("states");
    assert_eq!(&load(&dir, None).expect("read-only"), last);
    assert_eq!(std::fs::read(dir.join("log")).expect("log"), old);
    assert_eq!(
        &load(&dir, NativeStoreOptions::default()).expect("open"),
        last
    );
    let upgraded = std::fs::read(dir.join("log")).expect("log");
    assert_eq!(upgraded[8..12], 2u32.to_le_bytes());
    assert_eq!(
        upgraded[32..],
        old[32..],
        "the frames are kept as they were"
    );
    let store = NativeStore::open_blocking(&dir, NativeStoreOptions::default()).expect("open");
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "after",
        KeyValue::LidMapping("1".into()),
    );
    runtime()
        .block_on(store.commit(batch.clone()))
        .expect("commit");
    drop(store);
    let mut expected = last.clone();
    common::apply(&mut expected, &batch);
    assert_eq!(load(&dir, None).expect("reopen"), expected);
}

#[test]
fn missing_or_mismatched_files_are_corrupt() {
    let tmp = tempfile::tempdir().expect("tmp");
    let origin = tmp.path().join("origin");
    let (snapshot, log, _) = small_store(&origin);
    let case = |name: &str, snapshot: Option<&[u8]>, log: Option<&[u8]>| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        if let Some(bytes) = snapshot {
            std::fs::write(dir.join("snapshot"), bytes).expect("write");
        }
        if let Some(bytes) = log {
            std::fs::write(dir.join("log"), bytes).expect("write");
        }
        match NativeStore::open_blocking(&dir, NativeStoreOptions::default()) {
            Err(AuthError::Corrupt {
                item: CorruptItem::Store,
                location,
                source,
            }) => format!("{location}: {source}"),
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
    };
    let err = case("no-snapshot", None, Some(&log));
    assert!(err.contains("snapshot is missing"), "{err}");
    let err = case("no-log", Some(&snapshot), None);
    assert!(err.contains("log is missing"), "{err}");
    // A log continuing from a later snapshot than the one present: batches are missing.
    let mut ahead = log.clone();
    ahead[16..24].copy_from_slice(&9u64.to_le_bytes());
    let crc = crc32c::crc32c(&ahead[..28]);
    ahead[28..32].copy_from_slice(&crc.to_le_bytes());
    let err = case("log-ahead", Some(&snapshot), Some(&ahead));
    assert!(err.contains("batches are missing"), "{err}");
}

#[test]
fn an_interrupted_compaction_recovers_and_the_log_is_rewritten() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("store");
    let rt = runtime();
    let store = NativeStore::open_blocking(&dir, NativeStoreOptions::default()).expect("open");
    for i in 0..5 {
        rt.block_on(store.put_one(format!("u{i}").into(), KeyValue::LidMapping(i.to_string())))
            .expect("commit");
    }
    let old_log = std::fs::read(dir.join("log")).expect("log");
    rt.block_on(store.compact()).expect("compact");
    let expected = rt.block_on(store.load_all()).expect("load");
    drop(store);
    // As if the process died after publishing the snapshot, before restarting the log, with
    // the next snapshot's temp file half written.
    std::fs::write(dir.join("log"), &old_log).expect("write");
    std::fs::write(dir.join("snapshot.tmp"), b"half a snapsh").expect("write");
    std::fs::write(dir.join("log.tmp"), b"half a log").expect("write");
    let before = wa_store_native::inspect::inspect_dir(&dir).expect("inspect");
    assert!(before.log_base < Some(before.snapshot_seq));
    assert_eq!(load(&dir, read_only()).expect("read-only"), expected);
    assert_eq!(
        load(&dir, NativeStoreOptions::default()).expect("writable"),
        expected
    );
    let after = wa_store_native::inspect::inspect_dir(&dir).expect("inspect");
    assert_eq!(after.log_base, Some(after.snapshot_seq));
    assert!(!dir.join("snapshot.tmp").exists() && !dir.join("log.tmp").exists());
}
