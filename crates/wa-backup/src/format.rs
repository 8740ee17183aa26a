//! The plaintext inside the age encryption (documented in `docs/format-backup.md`):
//!
//! ```text
//! <header: one line of JSON>\n
//! <body: JSON, exactly header.body_bytes bytes, SHA-256 = header.body_sha256>
//! ```
//!
//! The header says what the backup is (format name and version, when it was made, where from,
//! the account's public summary and the key counts) and can be read on its own, e.g. with
//! `age -d backup.age | head -n 1`. The body holds the creds and every key in the canonical
//! JSON form of `wa_auth::codec`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wa_auth::{AuthCreds, KeyId, KeyKind, Snapshot};
use zeroize::Zeroizing;

use crate::error::{BackupError, Result};

/// The format name in every header.
pub const FORMAT: &str = "wa-auth-backup";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Where a backup was taken from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `compat`, `native` or `postgres`.
    pub backend: String,
    /// The folder, or the PostgreSQL URL (without its password) and instance.
    pub location: String,
    /// The Baileys flavour of a compat folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<String>,
}

/// The first line of a backup's plaintext: everything but the state itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// When the backup was taken, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Where it was taken from.
    pub origin: Origin,
    /// The account's public summary, as `inspect --json` shows it (`null` without creds).
    pub account: Value,
    /// Keys per kind.
    pub keys: BTreeMap<String, usize>,
    /// The body's length in bytes.
    pub body_bytes: u64,
    /// The body's SHA-256, lower-case hex.
    pub body_sha256: String,
}

/// The body: the creds and every key.
#[derive(Serialize, Deserialize)]
struct Body {
    creds: Option<AuthCreds>,
    keys: BTreeMap<String, BTreeMap<String, Value>>,
}

/// Encodes `snapshot` with a header describing it. The result holds private keys: it is
/// zeroed when dropped.
pub fn encode(snapshot: &Snapshot, origin: Origin, created_unix_ms: u64) -> Zeroizing<Vec<u8>> {
    let body = Body {
        creds: snapshot.creds.clone(),
        keys: snapshot
            .keys
            .iter()
            .map(|(kind, ids)| {
                let values = ids
                    .iter()
                    .map(|(id, value)| (id.to_string(), wa_auth::codec::encode_json(value)))
                    .collect();
                (kind.to_string(), values)
            })
            .collect(),
    };
    let body = Zeroizing::new(serde_json::to_vec(&body).expect("plain data always encodes"));
    let account = snapshot.creds.as_ref().map_or(Value::Null, |creds| {
        serde_json::to_value(wa_migrate::inspect::Account::of(creds)).expect("plain data")
    });
    let header = Header {
        format: FORMAT.to_owned(),
        version: VERSION,
        created_unix_ms,
        origin,
        account,
        keys: snapshot
            .counts()
            .into_iter()
            .map(|(kind, count)| (kind.to_string(), count))
            .collect(),
        body_bytes: body.len() as u64,
        body_sha256: hex::encode(Sha256::digest(&body[..])),
    };
    let mut out = serde_json::to_vec(&header).expect("plain data always encodes");
    out.push(b'\n');
    let mut out = Zeroizing::new(out);
    out.extend_from_slice(&body);
    out
}

/// Reads the header of a plaintext (the first line).
pub fn read_header(path: &Path, plaintext: &[u8]) -> Result<Header> {
    let damaged = |detail: String| BackupError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let end = plaintext
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| damaged("the decrypted data has no header line".into()))?;
    let probe: Value = serde_json::from_slice(&plaintext[..end])
        .map_err(|e| damaged(format!("the header is not JSON ({e})")))?;
    if probe.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(damaged(format!(
            "the header does not start a {FORMAT} file"
        )));
    }
    let version = probe.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != u64::from(VERSION) {
        return Err(BackupError::UnsupportedVersion {
            path: path.to_path_buf(),
            version: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    serde_json::from_value(probe).map_err(|e| damaged(format!("the header is incomplete ({e})")))
}

/// Decodes a plaintext: checks the header, the body's length and checksum, and decodes every
/// key (an error names the first that does not decode).
pub fn decode(path: &Path, plaintext: &[u8]) -> Result<(Header, Snapshot)> {
    let damaged = |detail: String| BackupError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let header = read_header(path, plaintext)?;
    let start = plaintext.iter().position(|b| *b == b'\n').expect("checked") + 1;
    let body = &plaintext[start..];
    if body.len() as u64 != header.body_bytes {
        return Err(damaged(format!(
            "the body is {} bytes, the header says {}",
            body.len(),
            header.body_bytes
        )));
    }
    if hex::encode(Sha256::digest(body)) != header.body_sha256 {
        return Err(damaged(
            "the body's checksum does not match the header".into(),
        ));
    }
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| damaged(format!("the body is not a backup body ({e})")))?;
    let snapshot = decode_keys(path, body)?;
    let counts: BTreeMap<String, usize> = snapshot
        .counts()
        .into_iter()
        .map(|(kind, count)| (kind.to_string(), count))
        .collect();
    if counts != header.keys {
        return Err(damaged("the key counts differ from the header's".into()));
    }
    Ok((header, snapshot))
}

fn decode_keys(path: &Path, body: Body) -> Result<Snapshot> {
    let mut snapshot = Snapshot {
        creds: body.creds,
        keys: BTreeMap::new(),
    };
    for (kind_name, values) in body.keys {
        let kind = KeyKind::from_name(&kind_name).map_err(|e| BackupError::Damaged {
            path: path.to_path_buf(),
            detail: format!("key kind {kind_name:?}: {e}"),
        })?;
        let mut decoded = BTreeMap::new();
        for (id, json) in values {
            let id = KeyId::from(id);
            let value = wa_auth::codec::decode_json(&kind, &id, &json).map_err(|e| {
                BackupError::Damaged {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            })?;
            decoded.insert(id, value);
        }
        if !decoded.is_empty() {
            snapshot.keys.insert(kind, decoded);
        }
    }
    Ok(snapshot)
}
