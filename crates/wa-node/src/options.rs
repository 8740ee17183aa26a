//! The options objects of the three JS entry points, as the JS side passes them (JSON text of
//! the object, after its own type checks). Unknown fields are refused, so a typo is an error
//! instead of a silently ignored setting.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use wa_auth::{AuthError, Result};
use wa_store_compat::Flavour;
use wa_store_postgres::{PostgresStoreOptions, SchemaName, Takeover};

/// Options every store takes (`baileysVersion`, `installedBaileys`).
#[derive(Debug, Default, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    /// The Baileys major version (6 or 7) whose value shapes to hand out, when the store does
    /// not show it.
    pub baileys_version: Option<u8>,
    /// The major version of the Baileys installed next to the program, found by the JS side
    /// (a hint, weaker than anything the store shows).
    pub installed_baileys: Option<u8>,
}

impl Common {
    fn flavour(version: Option<u8>, what: &str) -> Result<Option<Flavour>> {
        match version {
            None => Ok(None),
            Some(6) => Ok(Some(Flavour::Baileys6)),
            Some(7) => Ok(Some(Flavour::Baileys7)),
            Some(other) => Err(AuthError::invalid(
                what,
                format!("{other} (must be 6 or 7)"),
            )),
        }
    }

    /// The flavour the caller asked for.
    pub fn explicit(&self) -> Result<Option<Flavour>> {
        Self::flavour(self.baileys_version, "baileysVersion")
    }

    /// The flavour of the installed Baileys, if known.
    pub fn hint(&self) -> Option<Flavour> {
        Self::flavour(self.installed_baileys, "installedBaileys")
            .ok()
            .flatten()
    }
}

/// `useNativeAuthState(dir, options)`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NativeOptions {
    /// The Baileys major version (6 or 7) whose value shapes to hand out.
    pub baileys_version: Option<u8>,
    /// The major version of the installed Baileys (a hint from the JS side).
    pub installed_baileys: Option<u8>,
}

/// `useBaileysFolderAuthState(dir, options)`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FolderOptions {
    /// The Baileys major version (6 or 7) whose value shapes to hand out.
    pub baileys_version: Option<u8>,
    /// The major version of the installed Baileys (a hint from the JS side).
    pub installed_baileys: Option<u8>,
    /// Sync every written file (default true; false is not crash-safe against power loss).
    #[serde(default = "yes")]
    pub fsync: bool,
}

fn yes() -> bool {
    true
}

/// `usePostgresAuthState(options)`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresOptions {
    /// The Baileys major version (6 or 7) whose value shapes to hand out.
    pub baileys_version: Option<u8>,
    /// The major version of the installed Baileys (a hint from the JS side).
    pub installed_baileys: Option<u8>,
    /// libpq key-value string or `postgresql://` URL, completed from the `PG*` environment
    /// variables and the password file as libpq does (empty or missing: the environment alone).
    #[serde(default)]
    pub connection_string: String,
    /// The account's instance id.
    pub instance_id: String,
    /// `"never"` (default) or `"after-expiry"`.
    #[serde(default)]
    pub takeover: Option<String>,
    /// `set` resolves once queued instead of once durable.
    #[serde(default)]
    pub write_behind: bool,
    /// The schema holding the tables (default `wa_auth`).
    pub schema: Option<String>,
    /// The lease owner id (default `<host>:<pid>:<random>`).
    pub owner_id: Option<String>,
    /// Connections in the pool shared by every instance opened with the same connection
    /// string (default 8; the first open of a connection string sets it).
    pub pool_size: Option<usize>,
    /// Lease duration without renewal.
    pub lease_ttl_ms: Option<u64>,
    /// Renewal period of an idle lease.
    pub lease_renew_interval_ms: Option<u64>,
    /// How long `open` waits for a held lease.
    pub lease_wait_ms: Option<u64>,
    /// How long commits gather before a flush.
    pub flush_interval_ms: Option<u64>,
    /// How long rounds may fail before the store reports unhealthy.
    pub unhealthy_after_ms: Option<u64>,
    /// Timeout of one database operation.
    pub operation_timeout_ms: Option<u64>,
}

impl PostgresOptions {
    /// The store options these ask for.
    pub fn store_options(&self) -> Result<PostgresStoreOptions> {
        let mut options = PostgresStoreOptions::new(self.instance_id.clone());
        options = match self.takeover.as_deref() {
            None | Some("never") => options.takeover(Takeover::Never),
            Some("after-expiry") => options.takeover(Takeover::AfterExpiry),
            Some(other) => {
                return Err(AuthError::invalid(
                    "takeover",
                    format!("{other:?} (must be \"never\" or \"after-expiry\")"),
                ));
            }
        };
        if let Some(schema) = &self.schema {
            options = options.schema(SchemaName::new(schema)?);
        }
        if let Some(owner) = &self.owner_id {
            options = options.owner_id(owner.clone());
        }
        let ms = Duration::from_millis;
        if let Some(v) = self.lease_ttl_ms {
            options = options.lease_ttl(ms(v));
        }
        if let Some(v) = self.lease_renew_interval_ms {
            options = options.lease_renew_interval(ms(v));
        }
        if let Some(v) = self.lease_wait_ms {
            options = options.lease_wait(ms(v));
        }
        if let Some(v) = self.flush_interval_ms {
            options = options.flush_interval(ms(v));
        }
        if let Some(v) = self.unhealthy_after_ms {
            options = options.unhealthy_after(ms(v));
        }
        if let Some(v) = self.operation_timeout_ms {
            options = options.operation_timeout(ms(v));
        }
        options.validate()?;
        Ok(options)
    }
}

macro_rules! common {
    ($($options:ty),+) => {$(
        impl $options {
            /// The shared options.
            pub fn common(&self) -> Common {
                Common {
                    baileys_version: self.baileys_version,
                    installed_baileys: self.installed_baileys,
                }
            }
        }
    )+};
}

common!(NativeOptions, FolderOptions, PostgresOptions);

/// Parses the JSON text of an options object.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| AuthError::invalid("options", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let native: NativeOptions = parse(r#"{"baileysVersion": 6}"#).unwrap();
        assert_eq!(native.common().explicit().unwrap(), Some(Flavour::Baileys6));
        assert!(
            parse::<NativeOptions>(r#"{"baileysVersion": 5}"#)
                .unwrap()
                .common()
                .explicit()
                .is_err()
        );
        let typo = parse::<NativeOptions>(r#"{"baileyVersion": 7}"#).unwrap_err();
        assert!(typo.to_string().contains("baileyVersion"), "{typo}");
        let folder: FolderOptions = parse("{}").unwrap();
        assert!(folder.fsync);
        let pg: PostgresOptions = parse(
            r#"{"connectionString": "host=x", "instanceId": "a", "takeover": "after-expiry",
                "leaseTtlMs": 4000, "leaseRenewIntervalMs": 500, "unhealthyAfterMs": 2000}"#,
        )
        .unwrap();
        let store = pg.store_options().unwrap();
        assert_eq!(store.takeover, Takeover::AfterExpiry);
        assert_eq!(store.lease_ttl, Duration::from_secs(4));
        let bad: PostgresOptions =
            parse(r#"{"connectionString": "x", "instanceId": "a", "takeover": "now"}"#).unwrap();
        assert!(bad.store_options().is_err());
        // The connection string may be left to libpq's environment; the instance may not.
        let from_env: PostgresOptions = parse(r#"{"instanceId": "a"}"#).unwrap();
        assert!(from_env.connection_string.is_empty());
        assert!(parse::<PostgresOptions>(r#"{"connectionString": "host=x"}"#).is_err());
    }
}
