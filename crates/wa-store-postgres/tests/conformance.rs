//! The wa-auth backend conformance suite against a real PostgreSQL (a throwaway cluster),
//! directly and through `Box<dyn Persistence>`; `PostgresReader` is the read-only view.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use wa_auth::Persistence;
use wa_auth::conformance::Harness;
use wa_store_postgres::{Pool, PostgresReader, PostgresStore, SchemaName};

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

    async fn open_read_only(&self) -> Option<Arc<dyn Persistence>> {
        let reader = PostgresReader::open(&self.pool, &SchemaName::default(), &self.instance)
            .await
            .expect("open a PostgresReader");
        Some(Arc::new(reader))
    }
}

wa_auth::conformance_tests!(direct, PgHarness::new());
wa_auth::conformance_tests!(through_box_dyn, PgHarness::boxed());
