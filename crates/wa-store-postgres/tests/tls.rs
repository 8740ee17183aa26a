//! TLS (feature `tls`): a store works over a verified TLS connection (`sslmode=require`) to a
//! server with a certificate from a test CA, and refuses a server it cannot verify.
//! The certificates are made with the `openssl` command line tool.
#![cfg(feature = "tls")]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use wa_auth::{AuthError, KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::rustls::pki_types::CertificateDer;
use wa_store_postgres::rustls::pki_types::pem::PemObject;
use wa_store_postgres::rustls::{self, RootCertStore};
use wa_store_postgres::{PostgresStore, connect_pool_tls};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=wa-test-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
}

fn client_config(roots: RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_over_verified_tls() {
    // The test turns TLS on in the server itself.
    let Some(cluster) = support::cluster("tls::store_over_verified_tls") else {
        return;
    };
    let dir = cluster.root().join("test-certs");
    make_certificates(&dir);
    cluster.enable_ssl(&dir.join("server.crt"), &dir.join("server.key"));
    let conn = format!("{} sslmode=require", cluster.connection_string());

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.crt")).expect("CA certificate"))
        .expect("trust the test CA");
    let pool = connect_pool_tls(&conn, 4, client_config(roots)).expect("pool");
    let instance = support::unique("tls");
    let store = PostgresStore::open(pool.clone(), support::options(&instance))
        .await
        .expect("open over TLS");
    let mut batch = WriteBatch::new();
    batch.put(KeyKind::LidMapping, "k", KeyValue::LidMapping("v".into()));
    store.commit(batch).await.expect("commit");
    store.flush().await.expect("flush over TLS");
    let client = pool.get().await.expect("connection");
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted, "the pool's connections use TLS");
    drop(client);
    store.close().await.expect("close");

    // A server the client cannot verify is refused, never silently used in clear.
    let untrusting =
        connect_pool_tls(&conn, 2, client_config(RootCertStore::empty())).expect("pool");
    let err = PostgresStore::open(untrusting, support::options(&support::unique("tls-bad")))
        .await
        .expect_err("an unverifiable server is refused");
    assert!(matches!(err, AuthError::Backend { .. }), "{err}");
}
