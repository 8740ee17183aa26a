//! NativeStore passes the wa-auth backend conformance suite, directly and through
//! `Box<dyn Persistence>`, with full durability and with `NoSync` (and constant compaction);
//! its read-only view runs the read-only test.

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::Persistence;
use wa_auth::conformance::Harness;
use wa_store_native::{Durability, NativeReader, NativeStore, NativeStoreOptions};

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

    /// Compaction after nearly every commit exercises snapshot publication under the suite.
    fn without_sync_and_with_constant_compaction() -> Self {
        let options = NativeStoreOptions::default()
            .durability(Durability::NoSync)
            .compact_min_log_bytes(256)
            .compact_log_ratio(0.01);
        Self::new(options, false)
    }

    fn hand_out(&self, store: impl Persistence + 'static) -> Arc<dyn Persistence> {
        if self.boxed {
            let boxed: Box<dyn Persistence> = Box::new(store);
            Arc::new(boxed)
        } else {
            Arc::new(store)
        }
    }
}

#[async_trait]
impl Harness for NativeHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        let store = NativeStore::open_with(self.dir.path().join("store"), self.options.clone())
            .await
            .expect("open the native store");
        self.hand_out(store)
    }

    async fn open_read_only(&self) -> Option<Arc<dyn Persistence>> {
        let reader = NativeReader::open(self.dir.path().join("store"))
            .await
            .expect("open the read-only view");
        Some(self.hand_out(reader))
    }
}

wa_auth::conformance_tests!(
    full_durability,
    NativeHarness::new(NativeStoreOptions::default(), false)
);
wa_auth::conformance_tests!(
    through_box_dyn,
    NativeHarness::new(NativeStoreOptions::default(), true)
);
wa_auth::conformance_tests!(
    without_sync_and_with_constant_compaction,
    NativeHarness::without_sync_and_with_constant_compaction()
);
