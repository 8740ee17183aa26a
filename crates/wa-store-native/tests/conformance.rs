//! NativeStore passes the wa-auth backend conformance suite, directly and through
//! `Box<dyn Persistence>`, with full durability and with `NoSync`.

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::Persistence;
use wa_auth::conformance::{self, Harness};
use wa_store_native::{Durability, NativeStore, NativeStoreOptions};

/// A fresh temp directory per harness; every `open` opens the same directory.
struct NativeHarness {
    dir: tempfile::TempDir,
    options: NativeStoreOptions,
    boxed: bool,
}

impl NativeHarness {
    fn new(options: NativeStoreOptions, boxed: bool) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            options,
            boxed,
        }
    }
}

#[async_trait]
impl Harness for NativeHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        let store = NativeStore::open_with(self.dir.path().join("store"), self.options.clone())
            .await
            .expect("open the native store");
        if self.boxed {
            let boxed: Box<dyn Persistence> = Box::new(store);
            Arc::new(boxed)
        } else {
            Arc::new(store)
        }
    }
}

wa_auth::conformance_tests!(NativeHarness::new(NativeStoreOptions::default(), false));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_through_box_dyn() {
    conformance::run_all(|| NativeHarness::new(NativeStoreOptions::default(), true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_without_sync_and_with_constant_compaction() {
    // Compaction after nearly every commit exercises snapshot publication under the suite.
    let options = NativeStoreOptions::default()
        .durability(Durability::NoSync)
        .compact_min_log_bytes(256)
        .compact_log_ratio(0.01);
    conformance::run_all(|| NativeHarness::new(options.clone(), false)).await;
}
