//! The wa-auth backend conformance suite against a real PostgreSQL (a throwaway cluster),
//! directly and through `Box<dyn Persistence>`. The harness's `settle` is `flush`.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::Persistence;
use wa_auth::conformance::{self, Harness};
use wa_store_postgres::{Pool, PostgresStore};

/// Every `open` opens the same instance; a new harness uses a new instance.
struct PgHarness {
    pool: Pool,
    instance: String,
    boxed: bool,
}

impl PgHarness {
    fn new() -> Self {
        support::init_tracing();
        Self {
            pool: support::pool(),
            instance: support::unique("conformance"),
            boxed: false,
        }
    }

    fn boxed() -> Self {
        Self {
            boxed: true,
            ..Self::new()
        }
    }
}

#[async_trait]
impl Harness for PgHarness {
    async fn open(&self) -> Arc<dyn Persistence> {
        // The previous handle was dropped: its flusher releases the lease in the background,
        // and the new store waits for it (`lease_wait`).
        let store = PostgresStore::open(self.pool.clone(), support::options(&self.instance))
            .await
            .expect("open the PostgreSQL store");
        if self.boxed {
            let boxed: Box<dyn Persistence> = Box::new(store);
            Arc::new(boxed)
        } else {
            Arc::new(store)
        }
    }
}

wa_auth::conformance_tests!(PgHarness::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_through_box_dyn() {
    conformance::run_all(PgHarness::boxed).await;
}
