//! `PostgresReader`: a read-only snapshot of an account taken beside its live owner — it sees
//! what was flushed, never takes or changes the lease, rejects commits, and fails only the
//! read of a damaged row, naming it.

mod support;

use wa_auth::{
    AuthCreds, AuthError, CorruptItem, KeyKind, Persistence, PersistenceExt, WriteBatch,
};
use wa_store_postgres::{PostgresReader, PostgresStore, SchemaName};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_snapshots_a_live_account_without_touching_its_lease() {
    if !support::has_database(
        "reader::a_reader_snapshots_a_live_account_without_touching_its_lease",
    ) {
        return;
    }
    support::init_tracing();
    let instance = support::unique("reader");
    let owner = PostgresStore::open(support::pool(), support::options(&instance))
        .await
        .unwrap();
    let mut creds = AuthCreds::generate();
    for i in 0..5 {
        owner
            .commit(support::stream_batch(i, &mut creds))
            .await
            .unwrap();
    }
    owner.flush().await.unwrap();
    let epoch = owner.epoch();

    let reader = PostgresReader::open(&support::pool(), &SchemaName::default(), &instance)
        .await
        .unwrap();
    let seen = reader.load_all().await.unwrap();
    assert_eq!(seen.creds.as_ref().map(|c| c.next_pre_key_id), Some(4));
    assert_eq!(seen.keys, owner.load_all().await.unwrap().keys);
    let err = reader
        .commit(WriteBatch::new())
        .await
        .expect_err("read-only");
    assert!(matches!(err, AuthError::ReadOnly { .. }), "{err}");
    assert!(reader.capabilities().read_only);

    // The owner is still the owner: same epoch, still healthy, still writing.
    assert!(owner.is_healthy());
    assert_eq!(owner.epoch(), epoch);
    owner
        .commit(support::stream_batch(5, &mut creds))
        .await
        .unwrap();
    owner.flush().await.unwrap();
    // The snapshot does not move.
    assert_eq!(
        reader.load_creds().await.unwrap().unwrap().next_pre_key_id,
        4
    );
    owner.close().await.unwrap();

    // A damaged row fails only its own read, naming it.
    let client = support::client().await;
    client
        .execute(
            "UPDATE wa_auth.keys SET data = '{\"not\": \"a device list\"}'::jsonb WHERE instance_id = $1 AND kind = 'device-list' AND key_id = 's-1-b'",
            &[&instance],
        )
        .await
        .unwrap();
    let reader = PostgresReader::open(&support::pool(), &SchemaName::default(), &instance)
        .await
        .unwrap();
    let err = reader
        .get_one(&KeyKind::DeviceList, &"s-1-b".into())
        .await
        .expect_err("damaged row");
    assert!(
        matches!(
            &err,
            AuthError::Corrupt { item: CorruptItem::Key { id, .. }, location, .. }
                if id.as_str() == "s-1-b" && location.contains(&instance)
        ),
        "{err}"
    );
    assert!(
        reader
            .get_one(&KeyKind::DeviceList, &"s-2-b".into())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_errors_keep_their_sqlstate() {
    // A database that does not exist needs the server's own connection string.
    let Some(cluster) = support::cluster("reader::database_errors_keep_their_sqlstate") else {
        return;
    };
    support::init_tracing();
    let pool = wa_store_postgres::connect_pool(&cluster.connection_string_for("no_such_db"), 1)
        .expect("pool");
    let err = PostgresReader::open(&pool, &SchemaName::default(), "anyone")
        .await
        .expect_err("no such database");
    assert!(matches!(err, AuthError::Backend { .. }), "{err}");
    // invalid_catalog_name, as the server reported it; the clone keeps it too.
    assert_eq!(wa_store_postgres::sqlstate(&err), Some("3D000"), "{err}");
    assert_eq!(wa_store_postgres::sqlstate(&err.clone()), Some("3D000"));
}
