//! The wa-auth backend conformance suite against a real PostgreSQL (`$WA_TEST_DATABASE_URL`,
//! else a throwaway cluster), directly and through `Box<dyn Persistence>`; `PostgresReader` is
//! the read-only view. Each test is skipped with one line when there is no PostgreSQL.

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
    /// A harness, or `None` when the test must be skipped (no PostgreSQL).
    fn new() -> Option<Self> {
        if !support::has_database("conformance") {
            return None;
        }
        support::init_tracing();
        Some(Self {
            pool: support::pool(),
            instance: support::unique("conformance"),
            boxed: false,
        })
    }

    fn boxed() -> Option<Self> {
        Some(Self {
            boxed: true,
            ..Self::new()?
        })
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

// The harness expression is evaluated inside each generated test: `return` skips that test.
wa_auth::conformance_tests!(
    direct,
    match PgHarness::new() {
        Some(harness) => harness,
        None => return,
    }
);
wa_auth::conformance_tests!(
    through_box_dyn,
    match PgHarness::boxed() {
        Some(harness) => harness,
        None => return,
    }
);
