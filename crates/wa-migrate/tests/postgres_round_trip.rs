//! Baileys -> PostgreSQL -> Baileys: every fixture folder goes into an account of a throwaway
//! PostgreSQL cluster and back out into a Baileys folder of the same flavour, with every key
//! and the creds intact. Also: a non-empty account is refused, `overwrite` replaces it, and a
//! failure after the write restores the account's previous state.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{assert_same, compat_snapshot};
use wa_auth::Persistence;
use wa_migrate::{FaultPoint, Location, MigrateError, MigrateOptions, Role, migrate_between};
use wa_testkit::fixtures::baileys_auth_folders;
use wa_testkit::postgres::{Cluster, SUPERUSER};

fn account(cluster: &Cluster, instance: &str) -> Location {
    let url = format!(
        "postgres://{SUPERUSER}@127.0.0.1:{}/postgres?connect_timeout=5&instance={instance}",
        cluster.port()
    );
    Location::resolve(&url, None, Role::Target).expect("postgres url")
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baileys_folders_go_to_postgres_and_back_intact() {
    let cluster = Cluster::start();
    let folders = baileys_auth_folders();
    for (i, (name, auth)) in folders.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let pg = account(&cluster, &format!("fixture-{i}"));
        let options = MigrateOptions::default();
        let into = migrate_between(&Location::Compat(auth.clone()), &pg, &options)
            .await
            .unwrap_or_else(|e| panic!("{name} -> postgres: {e}"));
        assert!(into.published, "{name}: {into}");
        assert!(
            !into.target.location.contains("password"),
            "{name}: {}",
            into.target.location
        );
        let back = tmp.path().join("back");
        let out = migrate_between(&pg, &Location::Compat(back.clone()), &options)
            .await
            .unwrap_or_else(|e| panic!("{name} postgres -> compat: {e}"));
        assert_eq!(
            out.target.flavour, into.source.flavour,
            "{name}: flavour after the round trip"
        );
        assert_same(
            name,
            &compat_snapshot(auth).await,
            &compat_snapshot(&back).await,
        );
        assert_eq!(file_names(&back), file_names(auth), "{name}: file names");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_account_is_replaced_only_when_asked_and_restored_on_failure() {
    let cluster = Cluster::start();
    let folders: Vec<_> = baileys_auth_folders()
        .into_iter()
        .filter(|(name, _)| name.ends_with("paired-with-sessions"))
        .map(|(_, path)| path)
        .collect();
    let (old, new) = (&folders[0], &folders[1]);
    let pg = account(&cluster, "replace-me");
    let read_back = |tmp: &Path| Location::Compat(tmp.join("out"));

    // A dry run into an account of a schema that does not exist yet creates nothing.
    let dry = Location::resolve(
        &format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/postgres?instance=dry&schema=never_created",
            cluster.port()
        ),
        None,
        Role::Target,
    )
    .unwrap();
    let summary = migrate_between(
        &Location::Compat(old.clone()),
        &dry,
        &MigrateOptions::default().dry_run(true),
    )
    .await
    .unwrap();
    assert!(!summary.published && summary.total_keys > 0, "{summary}");
    assert!(
        summary.warnings.iter().any(|w| w.contains("would create")),
        "{summary}"
    );
    assert_eq!(
        cluster
            .psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'never_created'")
            .trim(),
        "0"
    );

    migrate_between(
        &Location::Compat(old.clone()),
        &pg,
        &MigrateOptions::default(),
    )
    .await
    .unwrap();
    let err = migrate_between(
        &Location::Compat(new.clone()),
        &pg,
        &MigrateOptions::default(),
    )
    .await
    .expect_err("non-empty account");
    assert!(
        matches!(err, MigrateError::DestinationNotEmpty { .. }),
        "{err}"
    );

    let err = migrate_between(
        &Location::Compat(new.clone()),
        &pg,
        &MigrateOptions::default()
            .overwrite(true)
            .inject_fault(FaultPoint::AfterWrite),
    )
    .await
    .expect_err("fault");
    assert!(matches!(err, MigrateError::Injected(_)), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    migrate_between(&pg, &read_back(tmp.path()), &MigrateOptions::default())
        .await
        .unwrap();
    assert_same(
        "restored",
        &compat_snapshot(old).await,
        &compat_snapshot(&tmp.path().join("out")).await,
    );

    let summary = migrate_between(
        &Location::Compat(new.clone()),
        &pg,
        &MigrateOptions::default().overwrite(true),
    )
    .await
    .unwrap();
    assert!(summary.replaced_existing && summary.published);
    let tmp = tempfile::tempdir().unwrap();
    migrate_between(&pg, &read_back(tmp.path()), &MigrateOptions::default())
        .await
        .unwrap();
    assert_same(
        "replaced",
        &compat_snapshot(new).await,
        &compat_snapshot(&tmp.path().join("out")).await,
    );

    // A live owner keeps its lease while the account is read (inspected, migrated out).
    let pool = wa_store_postgres::connect_pool(&cluster.connection_string(), 2).unwrap();
    let owner = wa_store_postgres::PostgresStore::open(
        pool,
        wa_store_postgres::PostgresStoreOptions::new("replace-me"),
    )
    .await
    .unwrap();
    let epoch = owner.epoch();
    let inspection = wa_migrate::inspect(&pg).await.unwrap();
    assert_eq!(inspection.backend, "postgres");
    assert!(inspection.account.is_some());
    let tmp = tempfile::tempdir().unwrap();
    migrate_between(&pg, &read_back(tmp.path()), &MigrateOptions::default())
        .await
        .unwrap();
    assert!(owner.is_healthy() && owner.epoch() == epoch);
    owner.close().await.unwrap();
}
