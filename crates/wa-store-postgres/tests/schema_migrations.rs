//! The schema is versioned: a fresh database is migrated to the latest version, a version-1
//! database holding data is upgraded in place and its data reads back, a newer schema is
//! `UnsupportedVersion` (never a reset), and concurrent migrators migrate once.
//! Each test uses its own PostgreSQL schema.

mod support;

use wa_auth::codec::encode_json;
use wa_auth::sample;
use wa_auth::{AuthCreds, AuthError, KeyKind, KeyValue, Persistence, PersistenceExt, WriteBatch};
use wa_store_postgres::{
    LATEST_VERSION, PostgresStore, SchemaName, migrate, migrate_to, schema_version,
};

fn fresh_schema(prefix: &str) -> SchemaName {
    SchemaName::new(&support::unique(prefix).to_lowercase()).expect("schema name")
}

async fn applied(schema: &SchemaName) -> Vec<i32> {
    let client = support::client().await;
    client
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .expect("schema_migrations")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_database_is_migrated_to_latest_on_open() {
    if !support::has_database("schema_migrations::fresh_database_is_migrated_to_latest_on_open") {
        return;
    }
    let schema = fresh_schema("fresh");
    let pool = support::pool();
    assert_eq!(schema_version(&pool, &schema).await.expect("version"), 0);
    let instance = support::unique("fresh");
    let store = PostgresStore::open(
        pool.clone(),
        support::options(&instance).schema(schema.clone()),
    )
    .await
    .expect("open");
    assert_eq!(
        schema_version(&pool, &schema).await.expect("version"),
        LATEST_VERSION
    );
    assert_eq!(applied(&schema).await, vec![1, 2]);
    // Migrating again is a no-op.
    let report = migrate(&pool, &schema).await.expect("migrate");
    assert!(report.applied.is_empty());
    assert_eq!((report.from, report.to), (LATEST_VERSION, LATEST_VERSION));
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_database_with_data_is_upgraded() {
    if !support::has_database("schema_migrations::version_1_database_with_data_is_upgraded") {
        return;
    }
    support::init_tracing();
    let schema = fresh_schema("upgrade");
    let pool = support::pool();
    let report = migrate_to(&pool, &schema, 1).await.expect("migrate to 1");
    assert_eq!(report.applied, vec![1]);

    // Rows as a version-1 build wrote them (no written_epoch column, no last_flush_at).
    let instance = support::unique("v1");
    let creds = AuthCreds::generate();
    let samples = sample::one_of_every_kind();
    let client = support::client().await;
    for (kind, id, value) in &samples {
        client
            .execute(
                &format!(
                    "INSERT INTO \"{schema}\".keys (instance_id, kind, key_id, data) VALUES ($1, $2, $3, $4::text::jsonb)"
                ),
                &[&instance, &kind.as_str(), &id.as_str(), &encode_json(value).to_string()],
            )
            .await
            .expect("v1 key row");
    }
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".creds (instance_id, data) VALUES ($1, $2::text::jsonb)"
            ),
            &[
                &instance,
                &serde_json::to_string(&creds).expect("creds json"),
            ],
        )
        .await
        .expect("v1 creds row");
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".leases (instance_id, owner_id, epoch, expires_at) VALUES ($1, NULL, 7, now())"
            ),
            &[&instance],
        )
        .await
        .expect("v1 released lease");

    // A build that does not migrate refuses the old schema and leaves it alone.
    let err = PostgresStore::open(
        pool.clone(),
        support::options(&instance)
            .schema(schema.clone())
            .auto_migrate(false),
    )
    .await
    .expect_err("schema 1 is not the latest");
    assert!(matches!(err, AuthError::UnsupportedVersion { .. }), "{err}");
    assert_eq!(schema_version(&pool, &schema).await.expect("version"), 1);

    // Opening upgrades in place; every row reads back.
    let store = PostgresStore::open(
        pool.clone(),
        support::options(&instance).schema(schema.clone()),
    )
    .await
    .expect("open upgrades");
    assert_eq!(applied(&schema).await, vec![1, 2]);
    assert_eq!(store.epoch(), 8, "the epoch continues from the old lease");
    assert_eq!(store.load_creds().await.expect("creds"), Some(creds));
    for (kind, id, value) in &samples {
        assert_eq!(
            store.get_one(kind, id).await.expect("get").as_ref(),
            Some(value),
            "{kind} {id} survives the upgrade"
        );
    }
    // New writes use what migration 2 added.
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "after-upgrade",
        KeyValue::LidMapping("1".into()),
    );
    store.commit(batch).await.expect("commit");
    store.flush().await.expect("flush");
    let rows = client
        .query(
            &format!("SELECT key_id, written_epoch FROM \"{schema}\".keys WHERE instance_id = $1 AND kind = 'lid-mapping'"),
            &[&instance],
        )
        .await
        .expect("rows");
    for row in rows {
        let (id, epoch): (String, Option<i64>) = (row.get(0), row.get(1));
        let expected = (id == "after-upgrade").then_some(8);
        assert_eq!(epoch, expected, "written_epoch of {id}");
    }
    let flushed_at: Option<String> = client
        .query_one(
            &format!("SELECT last_flush_at::text FROM \"{schema}\".leases WHERE instance_id = $1"),
            &[&instance],
        )
        .await
        .expect("lease")
        .get(0);
    assert!(flushed_at.is_some());
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_unsupported_never_reset() {
    if !support::has_database("schema_migrations::newer_schema_is_unsupported_never_reset") {
        return;
    }
    let schema = fresh_schema("newer");
    let pool = support::pool();
    let instance = support::unique("newer");
    let store = PostgresStore::open(
        pool.clone(),
        support::options(&instance).schema(schema.clone()),
    )
    .await
    .expect("open");
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "keep",
        KeyValue::LidMapping("me".into()),
    );
    store.commit(batch).await.expect("commit");
    store.close().await.expect("close");

    let client = support::client().await;
    client
        .execute(
            &format!("INSERT INTO \"{schema}\".schema_migrations (version, name) VALUES (3, 'from a newer build')"),
            &[],
        )
        .await
        .expect("newer version");
    let err = PostgresStore::open(
        pool.clone(),
        support::options(&instance).schema(schema.clone()),
    )
    .await
    .expect_err("a newer schema is refused");
    match &err {
        AuthError::UnsupportedVersion { version, .. } => assert_eq!(version, "3"),
        other => panic!("expected UnsupportedVersion, got {other}"),
    }
    assert!(matches!(
        migrate(&pool, &schema).await,
        Err(AuthError::UnsupportedVersion { .. })
    ));
    let kept: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".keys WHERE instance_id = $1"),
            &[&instance],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(kept, 1, "nothing was reset");
    assert_eq!(applied(&schema).await, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrators_migrate_once() {
    if !support::has_database("schema_migrations::concurrent_migrators_migrate_once") {
        return;
    }
    let schema = fresh_schema("race");
    let pool = support::pool();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (pool, schema) = (pool.clone(), schema.clone());
        tasks.push(tokio::spawn(async move { migrate(&pool, &schema).await }));
    }
    let mut applied_total = Vec::new();
    for task in tasks {
        let report = task.await.expect("task").expect("every migrator succeeds");
        applied_total.extend(report.applied);
    }
    applied_total.sort();
    assert_eq!(
        applied_total,
        vec![1, 2],
        "each migration applied exactly once"
    );
    assert_eq!(applied(&schema).await, vec![1, 2]);
}
