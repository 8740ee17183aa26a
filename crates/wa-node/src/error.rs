//! The stable error codes JS sees. The one place that maps Rust errors to codes: JS errors
//! carry `code` (one of [`CODES`]) and the Rust error's message.

use wa_auth::AuthError;

/// Every code [`error_code`] gives, for the TypeScript declarations and the docs.
pub const CODES: &[&str] = &[
    "ALREADY_OWNED",
    "OWNERSHIP_LOST",
    "CORRUPT",
    "UNSUPPORTED_VERSION",
    "INVALID",
    "NOT_FOUND",
    "CLOSED",
    "IO",
    "UNHEALTHY",
    "BACKEND",
    "COMMIT_UNKNOWN",
    "CHANGED_WHILE_READING",
    "READ_ONLY",
    "SIGNAL",
    "ERROR",
];

/// The code of `error`.
pub fn error_code(error: &AuthError) -> &'static str {
    match error {
        AuthError::AlreadyOwned { .. } => "ALREADY_OWNED",
        AuthError::OwnershipLost { .. } => "OWNERSHIP_LOST",
        AuthError::Corrupt { .. } => "CORRUPT",
        AuthError::UnsupportedVersion { .. } => "UNSUPPORTED_VERSION",
        AuthError::Invalid { .. } => "INVALID",
        AuthError::NotFound { .. } => "NOT_FOUND",
        AuthError::Closed => "CLOSED",
        AuthError::Io { .. } => "IO",
        AuthError::Unhealthy { .. } => "UNHEALTHY",
        AuthError::Backend { .. } => "BACKEND",
        AuthError::CommitUnknown { .. } => "COMMIT_UNKNOWN",
        AuthError::ChangedWhileReading { .. } => "CHANGED_WHILE_READING",
        AuthError::ReadOnly { .. } => "READ_ONLY",
        AuthError::Signal(_) => "SIGNAL",
        _ => "ERROR",
    }
}

/// Separates the code from the message in the reason of a napi error; the JS entry splits it
/// off into `error.code` (a control character, so no message can contain it by accident).
pub const SEPARATOR: char = '\u{1f}';

/// The napi error reason for `error`: `<CODE><SEPARATOR><message>`.
pub fn encode(error: &AuthError) -> String {
    format!("{}{SEPARATOR}{error}", error_code(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_and_encoded_first() {
        let errors = [
            AuthError::AlreadyOwned {
                resource: "x".into(),
                holder: None,
            },
            AuthError::OwnershipLost {
                resource: "x".into(),
                reason: "y".into(),
            },
            AuthError::corrupt_key(&wa_auth::KeyKind::Session, &"1.0".into(), "", "bad"),
            AuthError::ReadOnly {
                resource: "x".into(),
            },
            AuthError::invalid("x", "y"),
            AuthError::Closed,
            AuthError::io("/tmp/x", std::io::Error::other("disk")),
            AuthError::NotFound {
                what: "creds".into(),
            },
        ];
        for error in &errors {
            let code = error_code(error);
            assert!(CODES.contains(&code), "{code}");
            let encoded = encode(error);
            let (head, message) = encoded.split_once(SEPARATOR).unwrap();
            assert_eq!(head, code);
            assert_eq!(message, error.to_string());
        }
        assert_eq!(error_code(&errors[2]), "CORRUPT");
    }
}
