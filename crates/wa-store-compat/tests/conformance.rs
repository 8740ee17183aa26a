//! CompatStore passes the wa-auth backend conformance suite, directly and through
//! `Box<dyn Persistence>`, in both flavours and without fsync; its read-only view runs the
//! read-only test.

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::Persistence;
use wa_auth::conformance::Harness;
use wa_store_compat::{CompatReader, CompatStore, CompatStoreOptions, Flavour};

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
impl Harness for CompatHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        let store = CompatStore::open_with(self.dir.path().join("auth"), self.options.clone())
            .await
            .expect("open the folder");
        self.hand_out(store)
    }

    async fn open_read_only(&self) -> Option<Arc<dyn Persistence>> {
        let reader = CompatReader::open_with(self.dir.path().join("auth"), self.options.clone())
            .await
            .expect("open the read-only view");
        Some(self.hand_out(reader))
    }
}

wa_auth::conformance_tests!(
    default_options,
    CompatHarness::new(CompatStoreOptions::default(), false)
);
wa_auth::conformance_tests!(
    through_box_dyn,
    CompatHarness::new(CompatStoreOptions::default(), true)
);
wa_auth::conformance_tests!(
    baileys_6_layout_without_fsync,
    CompatHarness::new(
        CompatStoreOptions::default()
            .flavour(Flavour::Baileys6)
            .fsync(false),
        false
    )
);
