//! The age layer: who can open a backup.

use std::io::{Read, Write};
use std::path::Path;

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{BackupError, Result};

/// Who will be able to open a backup.
#[non_exhaustive]
pub enum Encryption {
    /// Whoever knows this passphrase (age's scrypt recipient).
    Passphrase(SecretString),
    /// Whoever holds the private key of one of these age recipients (`age1...`).
    Recipients(Vec<age::x25519::Recipient>),
}

impl Encryption {
    /// Parses age public keys (`age1...`); an unparsable one is an error naming it.
    pub fn recipients<S: AsRef<str>>(keys: &[S]) -> Result<Self> {
        if keys.is_empty() {
            return Err(BackupError::NoKey("give at least one recipient"));
        }
        let parsed = keys
            .iter()
            .map(|key| {
                key.as_ref().trim().parse().map_err(|e: &str| {
                    BackupError::Encrypt(format!("{:?} is not an age recipient: {e}", key.as_ref()))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encryption::Recipients(parsed))
    }
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::Passphrase(_) => f.write_str("Encryption::Passphrase(..)"),
            Encryption::Recipients(r) => write!(f, "Encryption::Recipients({} keys)", r.len()),
        }
    }
}

/// What opens a backup.
#[non_exhaustive]
pub enum Decryption {
    /// The passphrase it was encrypted with.
    Passphrase(SecretString),
    /// Age identities (private keys), e.g. from an identity file.
    Identities(Vec<Box<dyn age::Identity + Send + Sync>>),
}

impl Decryption {
    /// The identities of an age identity file (as `age-keygen` writes it).
    pub fn identity_file(path: &Path) -> Result<Self> {
        let file = age::IdentityFile::from_file(path.display().to_string())
            .map_err(|e| BackupError::io(path, e))?;
        let identities = file.into_identities().map_err(|e| BackupError::Damaged {
            path: path.to_path_buf(),
            detail: format!("not an age identity file ({e})"),
        })?;
        if identities.is_empty() {
            return Err(BackupError::NoKey("the identity file holds no identity"));
        }
        Ok(Decryption::Identities(identities))
    }
}

impl std::fmt::Debug for Decryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decryption::Passphrase(_) => f.write_str("Decryption::Passphrase(..)"),
            Decryption::Identities(i) => write!(f, "Decryption::Identities({} keys)", i.len()),
        }
    }
}

/// Encrypts `plaintext` into an age file's bytes.
pub(crate) fn encrypt(plaintext: &[u8], encryption: &Encryption) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| BackupError::Encrypt(e.to_string());
    let encryptor = match encryption {
        Encryption::Passphrase(passphrase) => {
            age::Encryptor::with_user_passphrase(passphrase.clone())
        }
        Encryption::Recipients(recipients) => {
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| failed(&e))?
        }
    };
    let mut out = Vec::with_capacity(plaintext.len() + 1024);
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| failed(&e))?;
    writer.write_all(plaintext).map_err(|e| failed(&e))?;
    writer.finish().map_err(|e| failed(&e))?;
    Ok(out)
}

/// Decrypts the age file `bytes` read from `path`.
pub(crate) fn decrypt(path: &Path, bytes: &[u8], key: &Decryption) -> Result<Zeroizing<Vec<u8>>> {
    let decryptor = age::Decryptor::new(bytes).map_err(|e| classify(path, e))?;
    let scrypt;
    let identities: Vec<&dyn age::Identity> = match key {
        Decryption::Passphrase(passphrase) => {
            if !decryptor.is_scrypt() {
                return Err(BackupError::WrongKey {
                    path: path.to_path_buf(),
                });
            }
            scrypt = age::scrypt::Identity::new(passphrase.clone());
            vec![&scrypt]
        }
        Decryption::Identities(ids) => ids
            .iter()
            .map(|i| i.as_ref() as &dyn age::Identity)
            .collect(),
    };
    let mut reader = decryptor
        .decrypt(identities.into_iter())
        .map_err(|e| classify(path, e))?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(bytes.len()));
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| BackupError::Damaged {
            path: path.to_path_buf(),
            detail: format!("the encrypted data is truncated or was changed ({e})"),
        })?;
    Ok(plaintext)
}

fn classify(path: &Path, error: age::DecryptError) -> BackupError {
    let path = path.to_path_buf();
    match error {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::KeyDecryptionFailed
        | age::DecryptError::NoMatchingKeys => BackupError::WrongKey { path },
        age::DecryptError::ExcessiveWork { .. } => BackupError::Damaged {
            path,
            detail: "its passphrase encryption asks for more work than this build allows".into(),
        },
        age::DecryptError::InvalidMac => BackupError::Damaged {
            path,
            detail: "the age header was changed (or the passphrase is wrong)".into(),
        },
        other => BackupError::Damaged {
            path,
            detail: format!("not a readable age file ({other})"),
        },
    }
}
