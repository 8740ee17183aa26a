//! The crate's one error type. Match on the variant, never on the message.

use wa_auth::AuthError;
use wa_signal::SignalError;

use crate::pairing::PairingRejection;

/// Everything that can go wrong while a device talks to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Moving bytes failed: the [`FrameTransport`](crate::FrameTransport) returned an error.
    #[error("transport failed: {0}")]
    Transport(#[source] std::io::Error),
    /// The server closed the connection while something was still expected from it.
    #[error("the server closed the connection {during}")]
    Closed {
        /// What was being waited for (`"during the handshake"`, `"before pair-success"`, ...).
        during: String,
    },
    /// The server sent something this client cannot use: a bad frame, an undecodable stanza, an
    /// answer without what it must hold.
    #[error("unexpected from the server: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The server answered a request (an `iq`) with an error.
    #[error("the server refused {request}: {answer}")]
    Refused {
        /// The request (its id).
        request: String,
        /// The server's answer, as text.
        answer: String,
    },
    /// The Noise handshake or transport failed: an untrusted or expired server certificate,
    /// a tampered frame, a malformed handshake message.
    #[error("noise: {0}")]
    Noise(#[from] SignalError),
    /// A `pair-success` stanza was rejected; creds are unchanged.
    #[error("pair-success rejected: {0}")]
    PairingRejected(PairingRejection),
    /// A value to send could not be built from the auth state (e.g. creds whose `me.id` is not a
    /// device JID); nothing was sent.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        reason: String,
    },
    /// Reading or committing the auth state failed (see [`AuthError`]); nothing of the step
    /// was committed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl LinkError {
    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Self::Protocol {
            reason: reason.into(),
        }
    }

    pub(crate) fn closed(during: impl Into<String>) -> Self {
        Self::Closed {
            during: during.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl From<PairingRejection> for LinkError {
    fn from(rejection: PairingRejection) -> Self {
        Self::PairingRejected(rejection)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LinkError> = std::result::Result<T, E>;
