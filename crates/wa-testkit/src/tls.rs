//! A test CA and a server certificate it signed, made with the `openssl` command line tool,
//! for the tests that run PostgreSQL over verified TLS ([`Cluster::enable_test_tls`]).
//!
//! [`Cluster::enable_test_tls`]: crate::postgres::Cluster::enable_test_tls

use std::path::{Path, PathBuf};
use std::process::Command;

/// The subject both CAs share: a client must tell them apart by signature, not by name.
const CA_SUBJECT: &str = "/CN=wa-test-ca";

/// Where [`test_certificates`] wrote its PEM files.
#[derive(Clone, Debug)]
pub struct TestCertificates {
    /// The CA that signed the server certificate (what a client trusts).
    pub ca: PathBuf,
    /// Another CA with the same subject, which signed nothing (what a client must refuse).
    pub other_ca: PathBuf,
    /// The server certificate, for `127.0.0.1`.
    pub server_cert: PathBuf,
    /// The server certificate's private key.
    pub server_key: PathBuf,
}

/// Writes into `dir` (created if missing) a CA (`ca.crt`), another CA (`other-ca.crt`) and a
/// server certificate for IP `127.0.0.1` signed by the first (`server.crt`, `server.key`), all
/// ECDSA P-256, valid for two days. Panics (with openssl's message) if a step fails.
pub fn test_certificates(dir: &Path) -> TestCertificates {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for name in ["ca", "other-ca"] {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", CA_SUBJECT];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &crt]);
        openssl(dir, &args);
    }
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", ext.display()));
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
    TestCertificates {
        ca: dir.join("ca.crt"),
        other_ca: dir.join("other-ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    }
}

/// Runs `openssl args` in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
