//! CompatStore passes the wa-auth backend conformance suite, directly and through
//! `Box<dyn Persistence>`, in both flavours and without fsync.

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::Persistence;
use wa_auth::conformance::{self, Harness};
use wa_store_compat::{CompatStore, CompatStoreOptions, Flavour};

/// A fresh temp folder per harness; every `open` opens the same folder.
struct CompatHarness {
    dir: tempfile::TempDir,
    options: CompatStoreOptions,
    boxed: bool,
}

impl CompatHarness {
    fn new(options: CompatStoreOptions, boxed: bool) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            options,
            boxed,
        }
    }
}

#[async_trait]
impl Harness for CompatHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        let store = CompatStore::open_with(self.dir.path().join("auth"), self.options.clone())
            .await
            .expect("open the folder");
        if self.boxed {
            let boxed: Box<dyn Persistence> = Box::new(store);
            Arc::new(boxed)
        } else {
            Arc::new(store)
        }
    }
}

wa_auth::conformance_tests!(CompatHarness::new(CompatStoreOptions::default(), false));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_through_box_dyn() {
    conformance::run_all(|| CompatHarness::new(CompatStoreOptions::default(), true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_in_the_baileys_6_layout_without_fsync() {
    let options = CompatStoreOptions::default()
        .flavour(Flavour::Baileys6)
        .fsync(false);
    conformance::run_all(|| CompatHarness::new(options.clone(), false)).await;
}
