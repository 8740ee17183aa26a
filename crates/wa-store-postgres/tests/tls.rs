//! TLS (feature `tls`): a store works over a verified TLS connection (`sslmode=require`) to a
//! server with a certificate from a test CA, and refuses a server it cannot verify.
//! The certificates are made with the `openssl` command line tool (`wa_testkit::tls`).
#![cfg(feature = "tls")]

mod support;

use std::sync::Arc;

use wa_auth::{AuthError, KeyKind, KeyValue, Persistence, WriteBatch};
use wa_store_postgres::rustls::pki_types::CertificateDer;
use wa_store_postgres::rustls::pki_types::pem::PemObject;
use wa_store_postgres::rustls::{self, RootCertStore};
use wa_store_postgres::{PostgresStore, connect_pool_tls};

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
    let certs = cluster.enable_test_tls(&cluster.root().join("test-certs"));
    let conn = format!("{} sslmode=require", cluster.connection_string());

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&certs.ca).expect("CA certificate"))
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
