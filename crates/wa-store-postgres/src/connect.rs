//! [`pool`]: a connection pool configured as libpq would configure it, so operators can use
//! the same settings as `psql`:
//!
//! - what the connection string (URL or `key=value` form) leaves out comes from the libpq
//!   environment variables `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//!   `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGSSLMODE` and `PGSSLROOTCERT`;
//! - without a password anywhere, the password file (`PGPASSFILE`, else `~/.pgpass`;
//!   `host:port:database:user:password` lines with `*` wildcards; ignored with a warning when
//!   group or others can read it, as libpq does);
//! - TLS through rustls by `sslmode`: `disable` (never), `prefer` (the default: TLS when the
//!   server offers it), `require` (TLS or fail), `verify-ca` (TLS, server certificate signed by
//!   `sslrootcert`), `verify-full` (that, and the certificate names the host). As with libpq,
//!   `prefer` and `require` check the certificate chain only when `sslrootcert` is given.
//!
//! Nothing here logs or returns a password.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Config, Host, SslMode as DriverSslMode};
use wa_auth::{AuthError, Result};

use crate::Pool;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it (the default).
    Prefer,
    /// TLS or fail.
    Require,
    /// TLS with a server certificate signed by a trusted root.
    VerifyCa,
    /// [`VerifyCa`](Self::VerifyCa), and the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling (`allow` is taken as `prefer`).
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(AuthError::invalid(
                    "sslmode",
                    format!(
                        "{other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    ),
                ));
            }
        })
    }
}

/// Where a setting is looked up when the connection string does not have it.
pub trait Environment {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A connection string resolved against the environment: the driver's settings and the TLS
/// settings it does not know.
#[derive(Clone)]
pub struct Resolved {
    /// The driver's configuration (with the password, if any: never print it).
    pub config: Config,
    /// The TLS mode.
    pub ssl_mode: SslMode,
    /// The trusted roots for `verify-*` (and for `prefer`/`require` when given).
    pub ssl_root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field("password", &self.config.get_password().map(|_| "<hidden>"))
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .finish()
    }
}

/// Resolves `connection` (a `postgres://` URL or `key=value` string; may be empty) with the
/// process environment and password file.
pub fn resolve(connection: &str) -> Result<Resolved> {
    resolve_with(connection, &ProcessEnvironment)
}

/// [`resolve`] with another environment (for tests and embedding).
pub fn resolve_with(connection: &str, env: &dyn Environment) -> Result<Resolved> {
    let (driver_text, ssl_mode, root) = split_tls_settings(connection);
    let text = if driver_text.trim().is_empty()
        || driver_text == "postgres://"
        || driver_text == "postgresql://"
    {
        String::new()
    } else {
        driver_text
    };
    let mut config = if text.is_empty() {
        Config::new()
    } else {
        crate::pool::parse_config(&text)?
    };
    fill_from_env(&mut config, env);
    let ssl_mode = match ssl_mode.or_else(|| env.var("PGSSLMODE")) {
        Some(mode) => SslMode::parse(&mode)?,
        None => SslMode::Prefer,
    };
    let ssl_root_cert = root.or_else(|| env.var("PGSSLROOTCERT")).map(PathBuf::from);
    config.ssl_mode(match ssl_mode {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        _ => DriverSslMode::Require,
    });
    if config.get_password().is_none()
        && let Some(password) = password_from_file(&config, env)
    {
        config.password(password);
    }
    crate::pool::tune(&mut config);
    Ok(Resolved {
        config,
        ssl_mode,
        ssl_root_cert,
    })
}

/// Takes `sslmode` and `sslrootcert` out of the connection string (the driver does not know
/// the `verify-*` modes).
fn split_tls_settings(connection: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            mode = Some(value.to_owned());
            true
        }
        "sslrootcert" => {
            root = Some(value.to_owned());
            true
        }
        _ => false,
    };
    let rest = if connection.starts_with("postgres://") || connection.starts_with("postgresql://") {
        let at = connection.find('@').map_or(0, |i| i + 1);
        match connection[at..].find('?') {
            Some(q) => {
                let (base, query) = connection.split_at(at + q);
                let kept: Vec<&str> = query[1..]
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => connection.to_owned(),
        }
    } else {
        connection
            .split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k.trim(), v.trim().trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

fn fill_from_env(config: &mut Config, env: &dyn Environment) {
    if config.get_hosts().is_empty() {
        let hosts = env.var("PGHOST").unwrap_or_else(default_host);
        for host in hosts.split(',') {
            if host.starts_with('/') {
                config.host_path(host);
            } else {
                config.host(host);
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(port) = env.var("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = env
            .var("PGUSER")
            .or_else(|| env.var("USER"))
            .unwrap_or_else(|| "postgres".to_owned());
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Some(db) = env.var("PGDATABASE")
    {
        config.dbname(db);
    }
    if config.get_password().is_none()
        && let Some(password) = env.var("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_application_name().is_none()
        && let Some(name) = env.var("PGAPPNAME")
    {
        config.application_name(name);
    }
    if config.get_connect_timeout().is_none()
        && let Some(secs) = env.var("PGCONNECT_TIMEOUT").and_then(|s| s.parse().ok())
    {
        config.connect_timeout(std::time::Duration::from_secs(secs));
    }
}

/// libpq's default: the local socket folder when there is one, else localhost.
fn default_host() -> String {
    if Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql".to_owned()
    } else {
        "localhost".to_owned()
    }
}

/// The first matching line of the password file.
fn password_from_file(config: &Config, env: &dyn Environment) -> Option<Vec<u8>> {
    let path = env
        .var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    let file = std::fs::File::open(&path).ok()?;
    if readable_by_others(&file) {
        tracing::warn!(file = %path.display(), "password file ignored: group or others can read it (chmod 0600)");
        return None;
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(_)) | None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config
        .get_dbname()
        .unwrap_or(config.get_user().unwrap_or(""))
        .to_owned();
    let user = config.get_user().unwrap_or("").to_owned();
    let wanted = [host, port, db, user];
    std::io::BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_pgpass(&line);
            (fields.len() == 5 && fields.iter().zip(&wanted).all(|(f, w)| f == "*" || f == w))
                .then(|| fields[4].clone().into_bytes())
        })
}

#[cfg(unix)]
fn readable_by_others(file: &std::fs::File) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_file: &std::fs::File) -> bool {
    false
}

/// Splits a password file line on `:`, honouring `\:` and `\\`.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one").push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one").push(c),
        }
    }
    fields
}

/// A pool of at most `max_size` connections to `connection`, resolved by [`resolve`] and
/// using TLS as its `sslmode` says. Nothing connects until the pool is used.
pub fn pool(connection: &str, max_size: usize) -> Result<Pool> {
    pool_from(resolve(connection)?, max_size)
}

/// [`pool`] from an already resolved configuration.
pub fn pool_from(resolved: Resolved, max_size: usize) -> Result<Pool> {
    if resolved.ssl_mode == SslMode::Disable {
        return crate::pool::pool_with(resolved.config, tokio_postgres::NoTls, max_size);
    }
    let tls = client_config(resolved.ssl_mode, resolved.ssl_root_cert.as_deref())?;
    crate::pool::pool_with(
        resolved.config,
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        max_size,
    )
}

/// The rustls configuration for `mode` with the roots in `root_cert` (PEM).
pub fn client_config(mode: SslMode, root_cert: Option<&Path>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match root_cert {
        Some(path) => Some(load_roots(path)?),
        None if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
            return Err(AuthError::invalid(
                "sslmode",
                "verify-ca and verify-full need sslrootcert (or PGSSLROOTCERT): the certificate(s) to trust",
            ));
        }
        None => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthError::invalid("TLS", e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            return Ok(builder.with_root_certificates(roots).with_no_client_auth());
        }
        (_, Some(roots)) => Arc::new(ChainOnly::new(roots, provider.clone())?),
        (_, None) => Arc::new(EncryptOnly(provider.signature_verification_algorithms)),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn load_roots(path: &Path) -> Result<RootCertStore> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| AuthError::invalid(format!("sslrootcert {}", path.display()), e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            AuthError::invalid(format!("sslrootcert {}", path.display()), e.to_string())
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(AuthError::invalid(
            format!("sslrootcert {}", path.display()),
            "holds no usable certificate",
        ));
    }
    Ok(roots)
}

/// `verify-ca` (and `prefer`/`require` with roots): the chain must lead to a trusted root; the
/// host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ChainOnly {
    fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<Self> {
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| AuthError::invalid("sslrootcert", e.to_string()))?;
        Ok(Self { inner })
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer`/`require` without roots, as libpq: encrypted, the server not authenticated (the
/// handshake signature is still checked against the certificate it sent).
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Env(HashMap<&'static str, String>);

    impl Environment for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn env(pairs: &[(&'static str, &str)]) -> Env {
        Env(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    #[test]
    fn what_the_url_leaves_out_comes_from_the_libpq_environment() {
        let e = env(&[
            ("PGHOST", "db.internal"),
            ("PGPORT", "6543"),
            ("PGUSER", "wa"),
            ("PGPASSWORD", "hunter2"),
            ("PGDATABASE", "auth"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
        ]);
        let r = resolve_with("postgres://", &e).unwrap();
        assert_eq!(r.config.get_hosts(), &[Host::Tcp("db.internal".into())]);
        assert_eq!(r.config.get_ports(), &[6543]);
        assert_eq!(r.config.get_user(), Some("wa"));
        assert_eq!(r.config.get_dbname(), Some("auth"));
        assert_eq!(r.config.get_password(), Some(&b"hunter2"[..]));
        assert_eq!(r.ssl_mode, SslMode::VerifyFull);
        assert_eq!(r.ssl_root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert!(!format!("{r:?}").contains("hunter2"));
        // The URL wins over the environment.
        let r = resolve_with("postgres://other@h2:1/db2?sslmode=disable", &e).unwrap();
        assert_eq!(r.config.get_hosts(), &[Host::Tcp("h2".into())]);
        assert_eq!(r.config.get_user(), Some("other"));
        assert_eq!(r.config.get_dbname(), Some("db2"));
        assert_eq!(r.ssl_mode, SslMode::Disable);
        let r = resolve_with("host=h3 sslmode=verify-ca sslrootcert=/ca.pem", &e).unwrap();
        assert_eq!(r.config.get_hosts(), &[Host::Tcp("h3".into())]);
        assert_eq!(r.ssl_mode, SslMode::VerifyCa);
        assert_eq!(r.ssl_root_cert.as_deref(), Some(Path::new("/ca.pem")));
        assert!(resolve_with("postgres://h/?sslmode=sometimes", &e).is_err());
    }

    #[test]
    fn the_password_file_is_read_when_private_and_no_password_is_given() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("wa-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:nope\ndb:5432:*:wa:s\\:cret\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.display().to_string();
        let e = env(&[("PGPASSFILE", &path)]);
        let r = resolve_with("postgres://wa@db/auth", &e).unwrap();
        assert_eq!(r.config.get_password(), Some(&b"s:cret"[..]));
        let r = resolve_with("postgres://wa@elsewhere/auth", &e).unwrap();
        assert_eq!(r.config.get_password(), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = resolve_with("postgres://wa@db/auth", &e).unwrap();
        assert_eq!(r.config.get_password(), None, "a readable file is ignored");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn verify_modes_need_roots() {
        assert!(client_config(SslMode::VerifyFull, None).is_err());
        assert!(client_config(SslMode::VerifyCa, None).is_err());
        assert!(client_config(SslMode::Require, None).is_ok());
    }
}
