//! Crash between pre-key generation and upload: a child process keeps preparing uploads on a
//! native store (minting keys and advancing `nextPreKeyId` in one commit), printing each
//! committed batch, and is SIGKILLed at random moments. After every kill the reopened store must
//! hold every key the child reported, its counter must be past all of them, and new keys must
//! never reuse an id. Seeded (`WA_CRASH_SEED`), so a failure can be replayed.
//!
//! Runs with its own `main` (harness = false): the same binary is the child when
//! `WA_PRE_KEY_CHILD_DIR` is set.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use wa_auth::{KeyId, KeyKind, PersistenceExt, SystemProvider};
use wa_link::pre_keys;
use wa_store_native::use_native_file_auth_state;

const CHILD_DIR: &str = "WA_PRE_KEY_CHILD_DIR";
const ITERATIONS: usize = 25;

fn child(dir: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let state = use_native_file_auth_state(dir).await.expect("open");
        println!("ready");
        for round in 0u64.. {
            // Prepare an upload (re-sending what is unacknowledged, minting the rest) and never
            // get the acknowledgement: the crash window this test is about.
            let upload = pre_keys::prepare_upload(&state, &mut SystemProvider::new(), 7)
                .await
                .expect("prepare");
            let ids: Vec<String> = upload.ids.iter().map(|id| id.0.to_string()).collect();
            println!("committed {}", ids.join(","));
            // Every third round the server acknowledges, so the window moves on.
            if round % 3 == 2 {
                pre_keys::mark_uploaded(&state, &upload).await.expect("ack");
                println!("acknowledged");
            }
        }
    });
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir);
        return;
    }
    let seed = wa_testkit::crash::seed(0x5eed_1234);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let runtime = wa_testkit::crash::runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device");
    let exe = std::env::current_exe().unwrap();
    let mut reported: BTreeSet<u32> = BTreeSet::new();
    let mut kills_mid_stream = 0;

    for iteration in 0..ITERATIONS {
        let mut command = Command::new(&exe);
        command.env(CHILD_DIR, &path);
        let delay = Duration::from_millis(rng.random_range(0..60));
        let printed = wa_testkit::crash::run_and_kill_when_ready(
            command,
            "ready",
            Duration::from_secs(30),
            delay,
            &format!("kill {iteration}"),
        );
        let mut lines = 0;
        for line in &printed {
            if let Some(ids) = line.strip_prefix("committed ") {
                reported.extend(
                    ids.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.parse::<u32>().unwrap()),
                );
                lines += 1;
            }
        }
        if lines > 0 {
            kills_mid_stream += 1;
        }

        runtime.block_on(async {
            let state = use_native_file_auth_state(&path)
                .await
                .expect("reopen after kill");
            let creds = state.creds();
            let stored: BTreeSet<u32> = state
                .store()
                .list(&KeyKind::PreKey)
                .await
                .unwrap()
                .iter()
                .map(|id| id.as_str().parse().unwrap())
                .collect();
            let missing: Vec<&u32> = reported.difference(&stored).collect();
            assert!(
                missing.is_empty(),
                "iteration {iteration} (seed {seed}): reported keys lost: {missing:?}"
            );
            let max_reported = reported.iter().max().copied().unwrap_or(0);
            assert!(
                creds.next_pre_key_id > max_reported,
                "iteration {iteration}: nextPreKeyId {} not past {max_reported}",
                creds.next_pre_key_id
            );
            // Every stored key is below the counter: nothing was stored without advancing it.
            assert!(
                stored.iter().all(|id| *id < creds.next_pre_key_id),
                "iteration {iteration}: a key beyond the counter"
            );
            // Minting now never reuses an id that ever existed.
            let fresh = pre_keys::generate(&state, &mut SystemProvider::new(), 3)
                .await
                .unwrap();
            for key in &fresh {
                assert!(
                    !stored.contains(&key.id.0),
                    "iteration {iteration}: id {} minted twice",
                    key.id.0
                );
                assert!(
                    state
                        .store()
                        .get_one(&KeyKind::PreKey, &KeyId::new(key.id.0.to_string()))
                        .await
                        .unwrap()
                        .is_some()
                );
            }
            reported.extend(fresh.iter().map(|k| k.id.0));
            // Closed, not dropped: a store dropped inside a runtime releases its lock a moment
            // later, and the next child (another process) must find it free.
            state.close().await.expect("close after checking");
        });
    }
    assert!(
        kills_mid_stream >= ITERATIONS / 2,
        "too few kills landed while the child was committing ({kills_mid_stream})"
    );
    println!(
        "pre_key_crash: {ITERATIONS} kills ({kills_mid_stream} mid-stream), {} ids, none lost or reused: ok",
        reported.len()
    );
}
