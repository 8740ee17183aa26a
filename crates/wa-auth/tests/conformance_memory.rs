//! MemoryStore passes the backend conformance suite, directly and through `Box<dyn Persistence>`.

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::conformance::{self, Harness};
use wa_auth::{MemoryStore, Persistence};

/// Opens the same in-memory data on every call (a "reopen" of a MemoryStore is a new handle).
struct MemoryHarness(MemoryStore);

impl MemoryHarness {
    fn new() -> Self {
        Self(MemoryStore::new())
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        Arc::new(self.0.clone())
    }
}

/// The same store handed out as `Box<dyn Persistence>` inside the `Arc`.
struct BoxedHarness(MemoryStore);

#[async_trait]
impl Harness for BoxedHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        let boxed: Box<dyn Persistence> = Box::new(self.0.clone());
        Arc::new(boxed)
    }
}

wa_auth::conformance_tests!(direct, MemoryHarness::new());
wa_auth::conformance_tests!(through_box_dyn, BoxedHarness(MemoryStore::new()));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_through_box_dyn() {
    conformance::run_all(|| BoxedHarness(MemoryStore::new())).await;
}
