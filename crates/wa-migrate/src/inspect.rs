//! [`inspect`]: what a location holds — the backend, the account (public keys only) and the
//! number of keys per kind. Opens read-only and never fails on a damaged key: problems are
//! listed as warnings ([`verify`](crate::verify()) is the strict check).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use wa_auth::{AuthCreds, AuthError, Persistence};

use crate::error::{MigrateError, Result};
use crate::location::{Location, OpenMode, OpenStore, open_at};

/// The account's own identity (the `me` contact of the creds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Me {
    /// The phone-number JID of this device.
    pub id: String,
    /// The LID of this device, when known.
    pub lid: Option<String>,
    /// The push name.
    pub name: Option<String>,
}

/// The public side of the creds. Never holds a private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Who this device is (`null` until paired).
    pub me: Option<Me>,
    /// The Signal registration id.
    pub registration_id: u32,
    /// The public identity key, 32 raw bytes in base64.
    pub identity_key_b64: String,
    /// The current signed pre-key's id.
    pub signed_pre_key_id: u32,
    /// The public Noise static key, 32 raw bytes in base64.
    pub noise_key_b64: String,
    /// Whether the device completed registration.
    pub registered: bool,
    /// The platform the server reported.
    pub platform: Option<String>,
}

impl Account {
    /// The public summary of `creds`.
    pub fn of(creds: &AuthCreds) -> Self {
        Self {
            me: creds.me.as_ref().map(|me| Me {
                id: me.id.clone(),
                lid: me.lid.clone(),
                name: me.name.clone(),
            }),
            registration_id: creds.registration_id,
            identity_key_b64: STANDARD.encode(creds.signed_identity_key.public.as_bytes()),
            signed_pre_key_id: creds.signed_pre_key.key_id,
            noise_key_b64: STANDARD.encode(creds.noise_key.public.as_bytes()),
            registered: creds.registered,
            platform: creds.platform.clone(),
        }
    }
}

/// What [`inspect`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// `compat`, `native` or `postgres`.
    pub backend: String,
    /// The account, `null` when there are no readable creds.
    pub account: Option<Account>,
    /// Keys per kind.
    pub keys: BTreeMap<String, usize>,
    /// Problems found on the way (unreadable creds or files, files that are not auth state).
    pub warnings: Vec<String>,
}

impl Inspection {
    /// The inspection as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an inspection always serialises")
    }
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<18} {}", "backend", self.backend)?;
        match &self.account {
            None => writeln!(f, "{:<18} none (no readable creds)", "account")?,
            Some(account) => {
                let me = account.me.as_ref();
                let or_none = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".into());
                writeln!(f, "{:<18} {}", "me", or_none(me.map(|m| &m.id)))?;
                writeln!(
                    f,
                    "{:<18} {}",
                    "lid",
                    or_none(me.and_then(|m| m.lid.as_ref()))
                )?;
                writeln!(
                    f,
                    "{:<18} {}",
                    "name",
                    or_none(me.and_then(|m| m.name.as_ref()))
                )?;
                writeln!(
                    f,
                    "{:<18} {}",
                    "platform",
                    or_none(account.platform.as_ref())
                )?;
                writeln!(f, "{:<18} {}", "registered", account.registered)?;
                writeln!(f, "{:<18} {}", "registration id", account.registration_id)?;
                writeln!(f, "{:<18} {}", "identity key", account.identity_key_b64)?;
                writeln!(f, "{:<18} {}", "noise key", account.noise_key_b64)?;
                writeln!(
                    f,
                    "{:<18} {}",
                    "signed pre-key id", account.signed_pre_key_id
                )?;
            }
        }
        writeln!(f, "{:<26} {:>8}", "kind", "keys")?;
        for (kind, count) in &self.keys {
            writeln!(f, "  {kind:<24} {count:>8}")?;
        }
        writeln!(
            f,
            "  {:<24} {:>8}",
            "total",
            self.keys.values().sum::<usize>()
        )?;
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

/// Inspects `location` read-only.
pub async fn inspect(location: &Location) -> Result<Inspection> {
    let failed = |source: AuthError| MigrateError::Source {
        location: location.to_string(),
        source,
    };
    let store = open_at(location, None, OpenMode::source(true))
        .await
        .map_err(failed)?;
    let result = inspect_open(&store, location).await;
    let closed = store.close().await;
    let inspection = result?;
    closed.map_err(failed)?;
    Ok(inspection)
}

async fn inspect_open(store: &OpenStore, location: &Location) -> Result<Inspection> {
    let failed = |source: AuthError| MigrateError::Source {
        location: location.to_string(),
        source,
    };
    let persistence: &dyn Persistence = store.persistence();
    let mut warnings = Vec::new();
    let account = match persistence.load_creds().await {
        Ok(Some(creds)) => Some(Account::of(&creds)),
        Ok(None) => {
            warnings.push("no creds stored".to_owned());
            None
        }
        Err(e @ (AuthError::Corrupt { .. } | AuthError::UnsupportedVersion { .. })) => {
            warnings.push(e.to_string());
            None
        }
        Err(e) => return Err(failed(e)),
    };
    let mut keys = BTreeMap::new();
    for kind in persistence.kinds().await.map_err(failed)? {
        let count = persistence.list(&kind).await.map_err(failed)?.len();
        if count > 0 {
            keys.insert(kind.to_string(), count);
        }
    }
    if let Some(scanned) = store.folder_scan().await {
        let report = scanned.map_err(failed)?;
        warnings.extend(
            report
                .unrecognised
                .iter()
                .map(|u| format!("{}: not auth state ({}); left alone", u.file, u.reason)),
        );
        warnings.extend(
            report
                .skipped
                .iter()
                .map(|s| format!("{}: unreadable: {}", s.file, s.reason)),
        );
        if let Some(e) = report.registry_error {
            let registry = wa_store_compat::layout::REGISTRY_FILE;
            warnings.push(format!("{registry}: unreadable: {e}"));
        }
    }
    Ok(Inspection {
        backend: location.format().to_string(),
        account,
        keys,
        warnings,
    })
}
