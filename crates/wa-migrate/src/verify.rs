//! [`verify`](verify()): a consistency check of stored auth state, for operators before and
//! after a migration or a restore from backup.

use std::collections::BTreeMap;

use serde::Serialize;
use wa_auth::{AuthCreds, AuthError, KeyKind, KeyValue, Persistence};
use wa_signal::curve::KeyPair;

use crate::error::{MigrateError, Result};
use crate::location::{Location, OpenMode, is_entry_error, open_at};
use crate::summary::Entry;

/// What [`verify`](verify()) checked and found.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// `compat`, `native` or `postgres`.
    pub backend: String,
    /// Keys that decoded, per kind.
    pub checked: BTreeMap<String, usize>,
    /// Everything wrong, each naming the creds field, file or key.
    pub problems: Vec<Entry>,
    /// Things worth knowing that are not wrong (files that are not auth state).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Entry {
            what: what.into(),
            reason: reason.into(),
        });
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<26} {:>8}", "kind", "decoded")?;
        for (kind, count) in &self.checked {
            writeln!(f, "  {kind:<24} {count:>8}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        if self.problems.is_empty() {
            writeln!(f, "ok: no problems found")
        } else {
            for p in &self.problems {
                writeln!(f, "problem: {}: {}", p.what, p.reason)?;
            }
            writeln!(f, "{} problem(s) found", self.problems.len())
        }
    }
}

/// Checks the state at `location`: every key decodes (sessions, sender keys and the other
/// records parse), the creds' key pairs are consistent, the signed pre-key's signature is
/// valid, and the pre-key counters agree with the stored pre-keys. Read-only. Problems are
/// returned in the report; `Err` only when the location cannot be opened at all.
pub async fn verify(location: &Location) -> Result<VerifyReport> {
    let failed = |source: AuthError| MigrateError::Source {
        location: location.to_string(),
        source,
    };
    let store = open_at(location, None, OpenMode::source(false))
        .await
        .map_err(failed)?;
    let mut report = VerifyReport {
        backend: location.format().to_string(),
        ..VerifyReport::default()
    };
    let result = verify_store(store.persistence(), &mut report).await;
    if let Some(folder) = store.folder_report() {
        report.warnings.extend(
            folder
                .unrecognised
                .iter()
                .map(|u| format!("{}: not auth state ({}); left alone", u.file, u.reason)),
        );
    }
    let closed = store.close().await;
    result.map_err(failed)?;
    closed.map_err(failed)?;
    Ok(report)
}

/// [`verify`](verify()) on an open store of any backend.
pub async fn verify_store(
    store: &dyn Persistence,
    report: &mut VerifyReport,
) -> wa_auth::Result<()> {
    let creds = match store.load_creds().await {
        Ok(Some(creds)) => Some(creds),
        Ok(None) => {
            report.problem("creds", "no creds stored");
            None
        }
        Err(e) if is_entry_error(&e) || matches!(e, AuthError::UnsupportedVersion { .. }) => {
            report.problem("creds", e.to_string());
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(creds) = &creds {
        check_creds(creds, report);
    }
    let mut pre_key_ids = Vec::new();
    for kind in store.kinds().await? {
        let ids = store.list(&kind).await?;
        let mut decoded = 0;
        for chunk in ids.chunks(1024) {
            let found = match store.get(&kind, chunk).await {
                Ok(found) => found,
                Err(e) if is_entry_error(&e) => {
                    let mut found = Vec::new();
                    for id in chunk {
                        match store.get(&kind, std::slice::from_ref(id)).await {
                            Ok(one) => found.extend(one),
                            Err(e) if is_entry_error(&e) => {
                                report.problem(format!("{kind} {id}"), e.to_string());
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    found
                }
                Err(e) => return Err(e),
            };
            for (id, value) in &found {
                check_value(&kind, id.as_str(), value, report);
                if let (KeyKind::PreKey, Ok(n)) = (&kind, id.as_str().parse::<u32>()) {
                    pre_key_ids.push(n);
                }
            }
            decoded += found.len();
        }
        report.checked.insert(kind.to_string(), decoded);
    }
    if let Some(creds) = &creds {
        check_counters(creds, &pre_key_ids, report);
    }
    Ok(())
}

fn pair_is_consistent(pair: &KeyPair) -> bool {
    pair.private.public_key() == pair.public
}

fn check_creds(creds: &AuthCreds, report: &mut VerifyReport) {
    for (field, pair) in [
        ("noiseKey", &creds.noise_key),
        ("signedIdentityKey", &creds.signed_identity_key),
        ("signedPreKey.keyPair", &creds.signed_pre_key.key_pair),
        ("pairingEphemeralKeyPair", &creds.pairing_ephemeral_key_pair),
    ] {
        if !pair_is_consistent(pair) {
            report.problem(
                format!("creds {field}"),
                "the public key does not belong to the private key",
            );
        }
    }
    if !creds
        .signed_pre_key
        .verify(&creds.signed_identity_key.public)
    {
        report.problem(
            "creds signedPreKey.signature",
            "not a valid signature of the signed pre-key by the identity key",
        );
    }
    if creds.first_unuploaded_pre_key_id > creds.next_pre_key_id {
        report.problem(
            "creds firstUnuploadedPreKeyId",
            format!(
                "{} is past nextPreKeyId {}",
                creds.first_unuploaded_pre_key_id, creds.next_pre_key_id
            ),
        );
    }
}

fn check_value(kind: &KeyKind, id: &str, value: &KeyValue, report: &mut VerifyReport) {
    if let KeyValue::PreKey(record) = value {
        if !pair_is_consistent(&record.key_pair) {
            report.problem(
                format!("{kind} {id}"),
                "the public key does not belong to the private key",
            );
        }
        if record.id.0.to_string() != id {
            report.problem(
                format!("{kind} {id}"),
                format!("holds pre-key {}", record.id.0),
            );
        }
    }
}

/// Stored pre-keys must lie below `nextPreKeyId`, or generating new ones would overwrite them
/// (unless the 24-bit id space wrapped, which resets the counter below older ids).
fn check_counters(creds: &AuthCreds, ids: &[u32], report: &mut VerifyReport) {
    let wrapped = ids.iter().any(|&id| id > (1 << 24) - 1000) && creds.next_pre_key_id < 1000;
    if wrapped {
        return;
    }
    if let Some(&max) = ids
        .iter()
        .max()
        .filter(|&&max| max >= creds.next_pre_key_id)
    {
        report.problem(
            "creds nextPreKeyId",
            format!(
                "is {} but pre-key {max} is stored: new pre-keys would overwrite stored ones",
                creds.next_pre_key_id
            ),
        );
    }
}
