//! The server (responder) side of WhatsApp's XX handshake (feature `test-util`).
//!
//! **For tests and servers, not for clients.** A WhatsApp client never runs this; it exists so
//! that the client can be driven end to end against an in-process fake server (this crate's
//! tests, and other crates' end-to-end tests), and to reproduce the server half of recorded
//! transcripts.

use prost::Message;
use wa_proto::proto::HandshakeMessage;
use wa_proto::proto::handshake_message::ServerHello;

use wa_proto::frame::{Intro, encode_frame};

use super::CertificateChain;
use super::symmetric::{KeyedState, SymmetricState};
use super::transport::NoiseTransport;
use super::{NoiseStage, agree, decode_message, raw_key};
use crate::curve::{KeyPair, PublicKey};
use crate::error::{Result, SignalError};
use crate::provider::CryptoRng;

/// A server's long-lived Noise identity (for test servers).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The server's static key pair; its public half must be the leaf certificate's key.
    pub static_key: KeyPair,
    /// The encoded `CertChain` sent (encrypted) in the server hello, usually
    /// [`CertificateChain::encode`](super::CertificateChain::encode). Sent as given, so tests can
    /// send broken chains.
    pub cert_chain: Vec<u8>,
}

impl ServerConfig {
    /// A fresh test server identity from `rng`: a static key certified by a new intermediate
    /// under a new root, the chain valid from `not_before` to `not_after` (unix seconds).
    /// Returns the config and the root's public key, which a client must trust
    /// ([`ClientConfig::root_key`](super::ClientConfig::root_key)).
    pub fn generate<R: CryptoRng + ?Sized>(
        rng: &mut R,
        not_before: u64,
        not_after: u64,
    ) -> (Self, PublicKey) {
        let root = KeyPair::generate(rng);
        let intermediate = KeyPair::generate(rng);
        let static_key = KeyPair::generate(rng);
        let chain = CertificateChain::issue(
            rng,
            &root.private,
            &intermediate,
            &static_key.public,
            not_before,
            not_after,
        );
        let config = Self {
            static_key,
            cert_chain: chain.encode(),
        };
        (config, root.public)
    }
}

/// A server (responder) handshake waiting for the client hello.
///
/// **For tests and servers, not for clients.** A WhatsApp client never runs this; it exists so
/// that the client can be driven end to end against an in-process fake server (this crate's
/// tests, other crates' end-to-end tests) and to reproduce the server half of recorded
/// transcripts. It does exactly what WhatsApp's server does in the handshake, nothing more: it
/// does not interpret the client payload.
pub struct ServerHandshake {
    static_key: KeyPair,
    cert_chain: Vec<u8>,
    ephemeral: KeyPair,
}

impl ServerHandshake {
    /// A handshake for one connection with a fresh ephemeral key from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(config: &ServerConfig, rng: &mut R) -> Self {
        Self::with_ephemeral(config, KeyPair::generate(rng))
    }

    /// Like [`new`](Self::new) with a given ephemeral key (to reproduce recorded transcripts).
    pub fn with_ephemeral(config: &ServerConfig, ephemeral: KeyPair) -> Self {
        Self {
            static_key: config.static_key.clone(),
            cert_chain: config.cert_chain.clone(),
            ephemeral,
        }
    }

    /// Processes the client hello (one frame body) that followed `intro`, and returns the state
    /// waiting for the client finish plus the framed server hello to send. Read both from the
    /// client's stream with a [`FrameDecoder::expecting_intro`](super::FrameDecoder::expecting_intro) (its
    /// [`intro`](super::FrameDecoder::intro) is there once the first frame is).
    ///
    /// The intro's header (the prologue) must be `"WA" 6 <dictionary version>`, otherwise the
    /// hello is refused with [`SignalError::NoiseMalformed`].
    ///
    /// Steps: `MixHash(prologue)`, `MixHash(ce)`, `MixHash(se)`, `MixKey(DH(se, ce))`,
    /// `EncryptAndHash(ss public)`, `MixKey(DH(ss, ce))`, `EncryptAndHash(cert chain)`.
    pub fn read_client_hello(
        self,
        intro: &Intro,
        frame: &[u8],
    ) -> Result<(AwaitingClientFinish, Vec<u8>)> {
        let prologue = intro.header();
        if prologue[..3] != *b"WA\x06" {
            return Err(SignalError::NoiseMalformed {
                what: "intro",
                reason: format!("header {prologue:02x?} is not \"WA\" 6 <version>"),
            });
        }
        let what = "client hello";
        let hello = decode_message(frame, what)?.client_hello.ok_or_else(|| {
            SignalError::NoiseMalformed {
                what,
                reason: "no clientHello in the handshake message".into(),
            }
        })?;
        let client_ephemeral = raw_key(hello.ephemeral.as_deref(), "client ephemeral key")?;

        let mut state = SymmetricState::new();
        state.mix_hash(&prologue);
        state.mix_hash(client_ephemeral.as_bytes());
        state.checkpoint();

        state.mix_hash(self.ephemeral.public.as_bytes());
        let mut state = state
            .mix_key(agree(&self.ephemeral, &client_ephemeral, "client ephemeral key")?.as_bytes());
        state.checkpoint(true);

        let static_ciphertext = state.encrypt_and_hash(
            self.static_key.public.as_bytes(),
            NoiseStage::ServerHelloStatic,
        )?;
        state.mix_key(
            agree(&self.static_key, &client_ephemeral, "client ephemeral key")?.as_bytes(),
        );
        state.checkpoint(true);

        let payload_ciphertext =
            state.encrypt_and_hash(&self.cert_chain, NoiseStage::ServerHelloPayload)?;
        state.checkpoint(false);

        let hello = HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(self.ephemeral.public.as_bytes().to_vec()),
                r#static: Some(static_ciphertext),
                payload: Some(payload_ciphertext),
                ..ServerHello::default()
            }),
            ..HandshakeMessage::default()
        };
        let mut frame = Vec::new();
        encode_frame(&hello.encode_to_vec(), &mut frame)?;
        Ok((
            AwaitingClientFinish {
                state,
                ephemeral: self.ephemeral,
                intro: intro.clone(),
            },
            frame,
        ))
    }
}

impl std::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("static_key", &self.static_key)
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}

/// A server handshake that sent its hello and waits for the client finish (for tests and
/// servers).
pub struct AwaitingClientFinish {
    pub(super) state: KeyedState,
    ephemeral: KeyPair,
    intro: Intro,
}

impl AwaitingClientFinish {
    /// Processes the client finish (one frame body): `DecryptAndHash(client static)`,
    /// `MixKey(DH(se, cs))`, `DecryptAndHash(client payload)`, then splits into the transport
    /// (sending server->client, receiving client->server).
    pub fn read_client_finish(self, frame: &[u8]) -> Result<ClientFinished> {
        let (partial, state) = self.finish_handshake(frame)?;
        let hash = state.handshake_hash();
        let (client_to_server, server_to_client) = state.split();
        Ok(ClientFinished {
            client_static: partial.client_static,
            client_payload: partial.client_payload,
            intro: partial.intro,
            transport: NoiseTransport::new(server_to_client, client_to_server, hash),
        })
    }

    /// [`read_client_finish`](Self::read_client_finish) up to (not including) the split.
    pub(crate) fn finish_handshake(self, frame: &[u8]) -> Result<(PartialFinish, KeyedState)> {
        let Self {
            mut state,
            ephemeral,
            intro,
        } = self;
        let what = "client finish";
        let finish = decode_message(frame, what)?.client_finish.ok_or_else(|| {
            SignalError::NoiseMalformed {
                what,
                reason: "no clientFinish in the handshake message".into(),
            }
        })?;
        let static_ciphertext = finish.r#static.ok_or_else(|| SignalError::NoiseMalformed {
            what,
            reason: "no static".into(),
        })?;
        let payload_ciphertext = finish.payload.ok_or_else(|| SignalError::NoiseMalformed {
            what,
            reason: "no payload".into(),
        })?;

        let client_static =
            state.decrypt_and_hash(&static_ciphertext, NoiseStage::ClientFinishStatic)?;
        let client_static = raw_key(Some(&client_static), "client static key")?;
        state.mix_key(agree(&ephemeral, &client_static, "client static key")?.as_bytes());
        state.checkpoint(true);
        let client_payload =
            state.decrypt_and_hash(&payload_ciphertext, NoiseStage::ClientFinishPayload)?;
        state.checkpoint(false);
        Ok((
            PartialFinish {
                client_static,
                client_payload,
                intro,
            },
            state,
        ))
    }
}

/// The client's side of a finished handshake, before the split.
pub(crate) struct PartialFinish {
    pub(crate) client_static: PublicKey,
    pub(crate) client_payload: Vec<u8>,
    pub(crate) intro: Intro,
}

impl std::fmt::Debug for AwaitingClientFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitingClientFinish")
            .field("state", &self.state)
            .field("ephemeral", &self.ephemeral)
            .field("intro", &self.intro)
            .finish()
    }
}

/// What the server learned from a completed handshake (for tests and servers).
#[derive(Debug)]
pub struct ClientFinished {
    /// The client's static key (`creds.noiseKey` public).
    pub client_static: PublicKey,
    /// The decrypted client payload (an encoded `ClientPayload`).
    pub client_payload: Vec<u8>,
    /// The intro the client sent (dictionary version, routing info).
    pub intro: Intro,
    /// The server's transport: sends server->client, receives client->server.
    pub transport: NoiseTransport,
}
