//! What a new user does, end to end with the installed binary: migrate a Baileys folder, back
//! it up to an age file, restore it into PostgreSQL over verified TLS with the password only in
//! `PGPASSWORD`; then the operator commands on that account while a replica owns it.
//! Needs PostgreSQL's server binaries (see `wa_testkit::postgres::cluster`).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use wa_auth::{AuthError, KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::{PostgresStore, PostgresStoreOptions, connect_pool};
use wa_testkit::postgres::Cluster;
use wa_testkit::tls::TestCertificates;

const PASSWORD: &str = "pw-only-in-the-environment";
const ROLE: &str = "wa_tls";

/// TLS on with a test CA (certificates in `dir`); a role with a password that may connect
/// only over TLS.
fn secure(cluster: &Cluster, dir: &Path) -> TestCertificates {
    let certs = cluster.enable_test_tls(dir);
    cluster.psql(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"));
    cluster.psql(&format!("GRANT CREATE ON DATABASE postgres TO {ROLE}"));
    let hba = cluster.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl all {ROLE} 127.0.0.1/32 scram-sha-256\nhost all {ROLE} 127.0.0.1/32 reject\n{old}"
        ),
    )
    .unwrap();
    cluster.psql("SELECT pg_reload_conf()");
    certs
}

struct Tool<'a> {
    cluster: &'a Cluster,
    certs: TestCertificates,
}

impl Tool<'_> {
    /// Runs wa-auth-state with the libpq environment of the TLS role, trusting `root`.
    fn run(&self, ssl_mode: &str, root: &Path, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_wa-auth-state"))
            .args(args)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.cluster.port().to_string())
            .env("PGUSER", ROLE)
            .env("PGPASSWORD", PASSWORD)
            .env("PGDATABASE", "postgres")
            .env("PGSSLMODE", ssl_mode)
            .env("PGSSLROOTCERT", root)
            .env("RUST_LOG", "debug")
            .output()
            .expect("run wa-auth-state");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(PASSWORD),
                "the password was printed"
            );
        }
        out
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run("verify-full", &self.certs.ca, &all);
        let doc = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().expect("exit"), doc)
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baileys_to_native_to_backup_to_postgres_over_tls_then_operator_commands() {
    let Some(cluster) = wa_testkit::postgres::cluster("wa-cli postgres_tls") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let certs = secure(cluster, &tmp.path().join("certs"));
    let (ca, other_ca) = (certs.ca.clone(), certs.other_ca.clone());
    let tool = Tool { cluster, certs };

    let (_, baileys) = wa_testkit::fixtures::baileys_auth_folders()
        .pop()
        .expect("fixture");
    let native = tmp.path().join("native");
    let file = tmp.path().join("backup.age");
    let passphrase = tmp.path().join("passphrase");
    std::fs::write(&passphrase, "a passphrase for the test\n").unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    ok(
        &tool.run(
            "disable",
            &ca,
            &["migrate", "--from", &s(&baileys), "--to", &s(&native)],
        ),
        "migrate",
    );
    ok(
        &tool.run(
            "disable",
            &ca,
            &[
                "backup",
                &s(&native),
                "--to",
                &s(&file),
                "--passphrase-file",
                &s(&passphrase),
            ],
        ),
        "backup",
    );

    let account = "postgres://?instance=restored-1";
    let restore = |mode: &str, root: &Path, overwrite: bool| {
        let mut args = vec![
            "restore",
            file.to_str().unwrap(),
            "--to",
            account,
            "--passphrase-file",
            passphrase.to_str().unwrap(),
        ];
        if overwrite {
            args.push("--overwrite");
        }
        tool.run(mode, root, &args)
    };
    // Without TLS the role is rejected; with a CA that did not sign the server, refused.
    for (mode, root) in [
        ("disable", &ca),
        ("verify-full", &other_ca),
        ("verify-ca", &other_ca),
    ] {
        let out = restore(mode, root, false);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{mode} with {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for mode in ["verify-full", "verify-ca", "require"] {
        ok(
            &restore(mode, &ca, true),
            &format!("restore over TLS ({mode})"),
        );
    }
    let (code, restored) = tool.json(&["inspect", account]);
    assert_eq!(code, 0);
    let (_, original) = tool.json(&["inspect", &s(&native)]);
    assert_eq!(restored["result"]["account"], original["result"]["account"]);
    assert_eq!(restored["result"]["keys"], original["result"]["keys"]);
    let (code, report) = tool.json(&["verify", account]);
    assert_eq!((code, &report["ok"]), (0, &Value::Bool(true)), "{report}");

    operator_commands(&tool, cluster).await;
}

async fn operator_commands(tool: &Tool<'_>, cluster: &Cluster) {
    let account = "postgres://?instance=restored-1";
    let (code, listed) = tool.json(&["accounts"]);
    assert_eq!(code, 0, "{listed}");
    let accounts = listed["result"]["accounts"].as_array().expect("accounts");
    let ours = accounts
        .iter()
        .find(|a| a["instance_id"] == "restored-1")
        .expect("listed");
    assert_eq!(ours["has_creds"], true);
    assert!(
        ours["keys"].as_object().is_some_and(|k| !k.is_empty()),
        "{ours}"
    );
    assert!(ours["last_write_unix_ms"].is_i64(), "{ours}");
    assert_eq!(
        ours["lease"]["owner"],
        Value::Null,
        "released after the restore: {ours}"
    );

    // A live replica owns it: deleting is refused, releasing by force fences the replica.
    let pool = connect_pool(&cluster.connection_string(), 2).unwrap();
    let replica = PostgresStore::open(
        pool,
        PostgresStoreOptions::new("restored-1").owner_id("replica-a"),
    )
    .await
    .expect("replica takes the lease");
    let (code, refused) = tool.json(&["delete-account", account, "--yes"]);
    assert_eq!(
        (code, &refused["error"]["kind"]),
        (3, &Value::from("lease_held")),
        "{refused}"
    );
    let (code, listed) = tool.json(&["accounts"]);
    assert_eq!(code, 0);
    let live = listed["result"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instance_id"] == "restored-1")
        .cloned()
        .unwrap();
    assert_eq!(
        (&live["lease"]["owner"], &live["lease"]["live"]),
        (&Value::from("replica-a"), &Value::Bool(true))
    );
    let (code, released) = tool.json(&["release-lease", account, "--force", "--yes"]);
    assert_eq!(code, 0, "{released}");
    assert_eq!(released["result"]["previous"]["owner"], "replica-a");
    let mut batch = WriteBatch::new();
    batch.put(
        KeyKind::LidMapping,
        "after-release",
        KeyValue::LidMapping("x".into()),
    );
    let fenced = async {
        replica.commit(batch).await?;
        replica.flush().await
    }
    .await;
    assert!(
        matches!(fenced, Err(AuthError::OwnershipLost { .. })),
        "{fenced:?}"
    );

    let (code, deleted) = tool.json(&["delete-account", account, "--yes"]);
    assert_eq!(code, 0, "{deleted}");
    assert_eq!(deleted["result"]["deleted"]["creds"], true);
    let (_, listed) = tool.json(&["accounts"]);
    assert!(
        !listed["result"]["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["instance_id"] == "restored-1")
    );
    // Confirmation is required without --yes when stdin is not a terminal.
    let out = tool.run("verify-full", &tool.certs.ca, &["delete-account", account]);
    assert_eq!(out.status.code(), Some(2));
}
