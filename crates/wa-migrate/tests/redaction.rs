//! Migrations from and to PostgreSQL accounts whose connection strings carry passwords in every
//! form (URL user info with unencoded `/` and `@`, `?password=`, `sslpassword`, key=value with
//! quotes): the errors, their `Debug` form, and every log line (all levels, all crates) name the
//! location without a password. The property test over generated passwords and forms is in
//! `src/redact.rs`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use wa_auth::AuthCreds;
use wa_migrate::{Location, MigrateOptions, PostgresLocation, Role, migrate_between};

const SECRETS: [&str; 5] = [
    "S3CR/ETPW",
    "P4SS@W0RD",
    "PW?QUERY",
    "K3YPASSPHRASE",
    "QU0TED SECRET",
];

/// Every log line of the process, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn locations() -> Vec<Location> {
    let at = "127.0.0.1:1/wa?connect_timeout=2";
    let urls = [
        // The driver reads this one (user info up to the first `@`) and tries to connect.
        format!("postgres://wa:{}@{at}&instance=acct", SECRETS[0]),
        format!("postgres://wa:{}@{at}&instance=acct", SECRETS[1]),
        format!("postgres://wa:{}@{at}&instance=acct", SECRETS[2]),
        format!(
            "postgres://wa@{at}&sslpassword={}&instance=acct",
            SECRETS[3]
        ),
    ];
    let mut locations: Vec<Location> = urls
        .iter()
        .map(|url| Location::resolve(url, None, Role::Source).expect("a postgres URL"))
        .collect();
    locations.push(Location::Postgres(PostgresLocation {
        connection: format!(
            "host=127.0.0.1 port=1 user=wa password='{}' dbname=wa connect_timeout=2",
            SECRETS[4]
        ),
        instance: "acct".into(),
        schema: None,
    }));
    locations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_errors_and_logs_never_print_a_password() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let tmp = tempfile::tempdir().unwrap();
    let native = tmp.path().join("native");
    wa_store_native::save_credentials(&native, &AuthCreds::generate())
        .await
        .unwrap();
    let mut printed = Vec::new();
    for pg in locations() {
        printed.push(format!("{pg} {pg:?}"));
        let dry_run = MigrateOptions::default().dry_run(true);
        let from_native = Location::Native(native.clone());
        let to_native = Location::Native(tmp.path().join("copy"));
        for (from, to) in [(&from_native, &pg), (&pg, &to_native)] {
            let err = migrate_between(from, to, &dry_run)
                .await
                .expect_err("the database is not there");
            printed.push(format!("{err} {err:?}"));
        }
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("migration: reading the source"),
        "the migration logged nothing: {logs}"
    );
    printed.push(logs);
    for text in &printed {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret:?} printed in: {text}");
        }
    }
}
