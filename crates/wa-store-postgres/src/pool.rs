//! Connection pools. The store takes a [`deadpool_postgres::Pool`], so one pool can serve every
//! instance a replica runs (a flush holds a connection only for its transaction). These helpers
//! build one from a connection string; any pool built with deadpool-postgres works as well.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Config;
use wa_auth::{AuthError, Result};

/// How long connecting may take when the connection string does not say
/// (`connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn config(connection_string: &str) -> Result<Config> {
    // The connection string may hold a password: never echo it.
    let mut config = Config::from_str(connection_string).map_err(|e| {
        AuthError::invalid(
            "PostgreSQL connection string",
            format!("cannot be parsed ({e})"),
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("wa-store-postgres");
    }
    Ok(config)
}

fn build(manager: Manager, max_size: usize) -> Result<Pool> {
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(DEFAULT_CONNECT_TIMEOUT))
        .build()
        .map_err(|e| AuthError::invalid("PostgreSQL pool", e.to_string()))
}

fn manager_config() -> ManagerConfig {
    ManagerConfig {
        // A connection whose server went away is noticed (`is_closed`) and replaced.
        recycling_method: RecyclingMethod::Fast,
    }
}

/// A pool of at most `max_size` plain (unencrypted) connections to `connection_string`
/// (libpq key-value form `host=... user=...` or a `postgresql://` URL). Nothing connects
/// until the pool is used.
pub fn connect_pool(connection_string: &str, max_size: usize) -> Result<Pool> {
    let manager = Manager::from_config(
        config(connection_string)?,
        tokio_postgres::NoTls,
        manager_config(),
    );
    build(manager, max_size)
}

/// A pool of at most `max_size` TLS connections (rustls with `tls`, e.g. built with root
/// certificates); `sslmode` in the connection string decides whether TLS is required
/// (`require`) or only preferred (the default).
#[cfg(feature = "tls")]
pub fn connect_pool_tls(
    connection_string: &str,
    max_size: usize,
    tls: rustls::ClientConfig,
) -> Result<Pool> {
    let manager = Manager::from_config(
        config(connection_string)?,
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        manager_config(),
    );
    build(manager, max_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_connection_strings_do_not_echo_secrets() {
        let err = connect_pool("host=x password=hunter2 port=notaport", 2).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
