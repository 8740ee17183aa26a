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
//! Framing is [`wa_proto::frame`]'s, the project's one frame codec: the bytes this module
//! returns are whole frames, ready to write (the first ones preceded by the intro), and incoming
//! bytes are split into frames with a [`FrameDecoder`] (re-exported here with [`Intro`] and the
//! frame constants), whose errors convert into [`SignalError::Wire`].
//!
//! # Driving a client
//!
//! 1. [`ClientHandshake::start`] with a [`ClientConfig`], `creds.noiseKey` and a random
//!    generator (for the ephemeral key): send the returned bytes (intro + framed client hello).
//! 2. Feed every received byte to one [`FrameDecoder::new`] (the server sends no intro); pass
//!    its first frame to [`ClientHandshake::read_server_hello`] with the current
//!    [`UnixTime`]. This decrypts the server's static key and verifies its certificate chain.
//! 3. [`AcceptedServerHello::finish`] with the encoded `ClientPayload`: send the returned frame
//!    and keep the [`NoiseTransport`].
//! 4. Encrypt outgoing nodes with [`TransportSender::encrypt_frame`] (whole frames, ready to
//!    send); decrypt each further frame from the same [`FrameDecoder`] with
//!    [`TransportReceiver::decrypt`].
//!
//! ```no_run
//! # use std::io::{Read, Write};
//! use wa_signal::curve::KeyPair;
//! use wa_signal::noise::{ClientConfig, ClientHandshake, FrameDecoder, UnixTime};
//!
//! # fn connect(
//! #     socket: &mut std::net::TcpStream,
//! #     noise_key: KeyPair,
//! #     routing_info: Option<Vec<u8>>,
//! #     client_payload: &[u8],
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! # let rng = &mut wa_signal::provider::TestProvider::new(1);
//! # let now = UnixTime::from_secs(1_750_000_000);
//! let config = ClientConfig { routing_info, ..ClientConfig::default() };
//! // `rng`: a cryptographically secure generator (the fresh ephemeral key comes from it).
//! let (client, hello) = ClientHandshake::start(&config, noise_key, rng)?;
//! socket.write_all(&hello)?;
//!
//! let mut frames = FrameDecoder::new();
//! let mut buf = [0u8; 4096];
//! let server_hello = loop {
//!     if let Some(frame) = frames.next_frame()? {
//!         break frame;
//!     }
//!     let n = socket.read(&mut buf)?;
//!     if n == 0 {
//!         return Err("connection closed during the handshake".into());
//!     }
//!     frames.push(&buf[..n]);
//! };
//! // `now`: the caller's clock (e.g. `UnixTime::from(SystemTime::now())`).
//! let accepted = client.read_server_hello(&server_hello, now)?;
//! let (finish, mut transport) = accepted.finish(client_payload)?;
//! socket.write_all(&finish)?;
//!
//! socket.write_all(&transport.encrypt_frame(b"\x00<an encoded node>")?)?;
//! loop {
//!     while let Some(frame) = frames.next_frame()? {
//!         let node = transport.decrypt(&frame)?; // flag byte + binary node
//! #       let _ = node;
//!     }
//!     let n = socket.read(&mut buf)?;
//!     if n == 0 {
//!         return Ok(());
//!     }
//!     frames.push(&buf[..n]);
//! }
//! # }
//! ```
//!
//! Any error is final for the connection, except [`SignalError::NoiseFrameTooLarge`] from
//! encrypting a plaintext too large for one frame (nothing was encrypted or sent). Secrets
//! (ephemeral private keys, chaining key, cipher keys) are zeroized when dropped, and no `Debug`
//! output shows them.
//!
//! The server side (`ServerHandshake`, `AwaitingClientFinish`, and issuing certificates with
//! `Certificate::issue` / `CertificateChain::issue`) exists for tests and in-process fake
//! servers, behind the `test-util` feature; it reads its stream with
//! [`FrameDecoder::expecting_intro`], which yields the [`Intro`] that
//! `ServerHandshake::read_client_hello` needs. The example on [`ClientHandshake`] runs both
//! sides against each other.

mod cert;
mod cipher;
mod client;
#[cfg(any(test, feature = "test-util"))]
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
#[cfg(any(test, feature = "test-util"))]
pub use server::{AwaitingClientFinish, ClientFinished, ServerConfig, ServerHandshake};
pub use transport::{MAX_PLAINTEXT_LEN, NoiseTransport, TransportReceiver, TransportSender};
pub use wa_proto::frame::{FrameDecoder, Intro, LENGTH_PREFIX_LEN, MAX_FRAME_LEN};

/// The time certificates are checked at (re-exported from [`provider`](crate::provider)).
pub use crate::provider::UnixTime;

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
