//! Backups from and restores into PostgreSQL (feature `postgres`): a backup of an account taken
//! while its owner holds the lease, restored into another account and a folder, equal to the
//! source. Uses `$WA_TEST_DATABASE_URL` or a throwaway cluster (see `wa_testkit::postgres`).
#![cfg(feature = "postgres")]

use wa_auth::Persistence;
use wa_backup::{BackupOptions, Decryption, Encryption};
use wa_migrate::{Location, MigrateOptions, PostgresLocation};

fn account(connection: &str, instance: &str) -> Location {
    Location::Postgres(PostgresLocation {
        connection: connection.to_owned(),
        instance: instance.to_owned(),
        schema: Some("wa_backup_test".to_owned()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_account_backs_up_and_restores_into_postgres_and_a_folder() {
    let Some(database) = wa_testkit::postgres::database("wa-backup postgres") else {
        return;
    };
    let connection = database.connection_string();
    let tmp = tempfile::tempdir().unwrap();
    let (_, baileys) = wa_testkit::fixtures::baileys_auth_folders()
        .pop()
        .expect("fixture");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let source = account(&connection, &format!("src-{nanos}"));
    wa_migrate::migrate_between(
        &Location::Compat(baileys),
        &source,
        &MigrateOptions::default(),
    )
    .await
    .expect("seed the account");
    let expected = wa_migrate::read_location(&source, &MigrateOptions::default())
        .await
        .expect("read")
        .0;

    // Its owner holds the lease while the backup reads a snapshot.
    let pool = wa_store_postgres::connect::pool(&connection, 2).unwrap();
    let Location::Postgres(pg) = &source else {
        unreachable!()
    };
    let owner = wa_store_postgres::PostgresStore::open(
        pool,
        wa_store_postgres::PostgresStoreOptions::new(pg.instance.clone())
            .schema(wa_store_postgres::SchemaName::new("wa_backup_test").unwrap()),
    )
    .await
    .expect("the owner opens it");
    let identity = age::x25519::Identity::generate();
    let file = tmp.path().join("pg.age");
    let summary = wa_backup::backup(
        &source,
        &file,
        &Encryption::Recipients(vec![identity.to_public()]),
        &BackupOptions::default(),
    )
    .await
    .expect("backup beside a live owner");
    assert_eq!(summary.header.origin.backend, "postgres");
    assert!(!summary.header.origin.location.contains("password"));
    owner.close().await.expect("close");

    let open = Decryption::Identities(vec![Box::new(identity)]);
    for to in [
        account(&connection, &format!("dst-{nanos}")),
        Location::Native(tmp.path().join("native")),
    ] {
        wa_backup::restore(&file, &open, &to, &MigrateOptions::default())
            .await
            .unwrap_or_else(|e| panic!("restore into {to}: {e}"));
        let got = wa_migrate::read_location(&to, &MigrateOptions::default())
            .await
            .expect("read back")
            .0;
        assert_eq!(got, expected, "{to}");
    }
}
