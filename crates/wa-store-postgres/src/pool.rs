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

/// Idle time before the first TCP keepalive probe when the connection string does not say
/// (`keepalives_idle`; tokio-postgres' own default is 2 hours). With
/// [`DEFAULT_KEEPALIVES_INTERVAL`] and [`DEFAULT_KEEPALIVES_RETRIES`], a connection to a server
/// that went silent (a dead host, a cut network) is dropped after about 25 s instead of hours.
pub const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(10);

/// Time between unanswered keepalive probes when the connection string does not say
/// (`keepalives_interval`).
pub const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);

/// Unanswered keepalive probes before the connection is dropped when the connection string
/// does not say (`keepalives_retries`).
pub const DEFAULT_KEEPALIVES_RETRIES: u32 = 3;

/// How long sent data may stay unacknowledged before the connection is dropped, when the
/// connection string does not say (`tcp_user_timeout`; Linux only).
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);

/// tokio-postgres' keepalive idle time when nothing sets it.
const TOKIO_POSTGRES_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// Parses a connection string without echoing it (it may hold a password).
pub(crate) fn parse_config(connection_string: &str) -> Result<Config> {
    Config::from_str(connection_string).map_err(|e| {
        AuthError::invalid(
            "PostgreSQL connection string",
            format!("cannot be parsed ({e})"),
        )
    })
}

/// A pool over `tls` with this crate's pool settings.
#[cfg(feature = "tls")]
pub(crate) fn pool_with<T>(config: Config, tls: T, max_size: usize) -> Result<Pool>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    build(
        Manager::from_config(config, tls, manager_config()),
        max_size,
    )
}

fn config(connection_string: &str) -> Result<Config> {
    let mut config = parse_config(connection_string)?;
    tune(&mut config);
    Ok(config)
}

/// This crate's defaults for what `config` leaves unset.
pub(crate) fn tune(config: &mut Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("wa-store-postgres");
    }
    bound_tcp(config);
}

/// Keepalives and a TCP user timeout, where the connection string leaves them at
/// tokio-postgres' defaults, so that a silent peer is noticed in seconds (the store's own
/// rounds are bounded by its `operation_timeout` either way; this is for the pool).
fn bound_tcp(config: &mut Config) {
    if config.get_keepalives_idle() == TOKIO_POSTGRES_KEEPALIVES_IDLE {
        config.keepalives_idle(DEFAULT_KEEPALIVES_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(DEFAULT_KEEPALIVES_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(DEFAULT_KEEPALIVES_RETRIES);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
    }
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
    fn silent_peers_are_noticed_in_seconds_unless_the_connection_string_says_otherwise() {
        let default = config("host=x").unwrap();
        assert!(default.get_keepalives());
        assert_eq!(default.get_keepalives_idle(), DEFAULT_KEEPALIVES_IDLE);
        assert_eq!(
            default.get_keepalives_interval(),
            Some(DEFAULT_KEEPALIVES_INTERVAL)
        );
        assert_eq!(
            default.get_keepalives_retries(),
            Some(DEFAULT_KEEPALIVES_RETRIES)
        );
        assert_eq!(
            default.get_tcp_user_timeout(),
            Some(&DEFAULT_TCP_USER_TIMEOUT)
        );
        let own = config(
            "host=x keepalives_idle=60 keepalives_interval=7 keepalives_retries=9 tcp_user_timeout=40",
        )
        .unwrap();
        assert_eq!(own.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(own.get_keepalives_interval(), Some(Duration::from_secs(7)));
        assert_eq!(own.get_keepalives_retries(), Some(9));
        assert_eq!(own.get_tcp_user_timeout(), Some(&Duration::from_secs(40)));
    }

    #[test]
    fn bad_connection_strings_do_not_echo_secrets() {
        let err = connect_pool("host=x password=hunter2 port=notaport", 2).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
