//! WhatsApp's Noise handshake and transport, sans I/O.
//!
//! The connection to WhatsApp's servers is `Noise_XX_25519_AESGCM_SHA256` with WhatsApp's
//! deviations: message 1's empty payload is not mixed into the handshake hash; the handshake
//! nonce counter runs on across decryption and encryption under one key; the AES-GCM nonce is
//! `8 zero bytes || u32 big-endian counter`; the AD is `h` during the handshake and empty in
//! transport; frames carry a 3-byte big-endian length. The server proves its static key with a
//! certificate chain rooted in [`WHATSAPP_ROOT_KEY`] (configurable), which is verified in full.
//!
//! Nothing here touches a socket: every step takes the bytes received and returns the bytes to
//! send (in the style of `rustls`), so the same code runs under any runtime, or none.
//!
//! # Driving a client
//!
//! 1. [`ClientHandshake::start`] with a [`ClientConfig`] and `creds.noiseKey`: send the returned
//!    bytes (intro + client hello frame).
//! 2. Feed received bytes to a [`FrameReader`]; pass the first frame to
//!    [`ClientHandshake::read_server_hello`] with the current [`UnixTime`]. This decrypts the
//!    server's static key and verifies its certificate chain.
//! 3. [`AcceptedServerHello::finish`] with the encoded `ClientPayload`: send the returned frame
//!    and keep the [`NoiseTransport`].
//! 4. Encrypt outgoing nodes with [`TransportSender::encrypt_frame`] (whole frames); decrypt
//!    each further frame from the same [`FrameReader`] with [`TransportReceiver::decrypt`].
//!
//! Any error is final for the connection. Secrets (ephemeral private keys, chaining key, cipher
//! keys) are zeroized when dropped, and no `Debug` output shows them.
//!
//! The server side ([`ServerHandshake`], [`AwaitingClientFinish`]) exists for tests and
//! in-process fake servers. The example on [`ClientHandshake`] runs both sides against each
//! other.

mod cert;
mod cipher;
mod client;
mod frame;
mod server;
mod symmetric;
mod transport;

#[cfg(test)]
mod tests;

pub use cert::{
    CertDetails, CertRole, Certificate, CertificateChain, CertificateError, VerifiedChain,
    WHATSAPP_ROOT_KEY,
};
pub use cipher::TAG_LEN;
pub use client::{AcceptedServerHello, ClientConfig, ClientHandshake};
pub use frame::{FRAME_HEADER_LEN, FrameReader, Intro, MAX_FRAME_LEN, encode_frame};
pub use server::{AwaitingClientFinish, ClientFinished, ServerConfig, ServerHandshake};
pub use transport::{MAX_PLAINTEXT_LEN, NoiseTransport, TransportReceiver, TransportSender};

use prost::Message;
use subtle::ConstantTimeEq;
use wa_proto::proto::HandshakeMessage;

use crate::curve::{KeyPair, PublicKey, SharedSecret};
use crate::error::{Result, SignalError};

/// The Noise protocol name; padded with zeros to 32 bytes it is the initial `h` and `ck`.
pub const PROTOCOL_NAME: &[u8] = b"Noise_XX_25519_AESGCM_SHA256";

/// Which message or direction a Noise error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoiseStage {
    /// The server's static key in the server hello.
    ServerHelloStatic,
    /// The server hello's payload (the certificate chain).
    ServerHelloPayload,
    /// The client's static key in the client finish.
    ClientFinishStatic,
    /// The client finish's payload (the `ClientPayload`).
    ClientFinishPayload,
    /// A transport frame being sent.
    TransportSend,
    /// A transport frame being received.
    TransportReceive,
}

impl std::fmt::Display for NoiseStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ServerHelloStatic => "server hello static key",
            Self::ServerHelloPayload => "server hello payload",
            Self::ClientFinishStatic => "client finish static key",
            Self::ClientFinishPayload => "client finish payload",
            Self::TransportSend => "outgoing transport frame",
            Self::TransportReceive => "incoming transport frame",
        })
    }
}

/// A point in time as unix seconds, for certificate validity checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(u64);

impl UnixTime {
    /// `secs` seconds after 1970-01-01T00:00:00Z.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// The system clock's current time (0 if the clock is before 1970).
    pub fn now() -> Self {
        Self::from(std::time::SystemTime::now())
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }
}

impl From<std::time::SystemTime> for UnixTime {
    fn from(time: std::time::SystemTime) -> Self {
        Self(
            time.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }
}

/// Decodes a `HandshakeMessage` frame body.
fn decode_message(frame: &[u8], what: &'static str) -> Result<HandshakeMessage> {
    HandshakeMessage::decode(frame).map_err(|e| SignalError::NoiseMalformed {
        what,
        reason: format!("not a HandshakeMessage: {e}"),
    })
}

/// A raw 32-byte public key from a handshake field.
fn raw_key(bytes: Option<&[u8]>, what: &'static str) -> Result<PublicKey> {
    let bytes = bytes.ok_or_else(|| SignalError::NoiseMalformed {
        what,
        reason: "missing".into(),
    })?;
    let raw: [u8; 32] = bytes.try_into().map_err(|_| SignalError::NoiseMalformed {
        what,
        reason: format!("{} bytes, expected 32", bytes.len()),
    })?;
    Ok(PublicKey::from_raw(raw))
}

/// X25519 with a check that the peer's key is not a low-order point (all-zero output).
fn agree(ours: &KeyPair, theirs: &PublicKey, what: &'static str) -> Result<SharedSecret> {
    let secret = ours.agree(theirs);
    if bool::from(secret.as_bytes().ct_eq(&[0u8; 32])) {
        return Err(SignalError::NoiseMalformed {
            what,
            reason: "low-order point (all-zero shared secret)".into(),
        });
    }
    Ok(secret)
}
