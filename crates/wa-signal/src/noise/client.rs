//! The client (initiator) side of WhatsApp's XX handshake.

use prost::Message;
use wa_proto::proto::HandshakeMessage;
use wa_proto::proto::handshake_message::{ClientFinish, ClientHello};

use super::cert::{CertificateChain, VerifiedChain, WHATSAPP_ROOT_KEY};
use wa_proto::frame::{Intro, encode_frame};

use super::symmetric::{KeyedState, SymmetricState};
use super::transport::NoiseTransport;
use super::{NoiseStage, UnixTime, agree, decode_message, raw_key};
use crate::curve::{KeyPair, PublicKey};
use crate::error::{Result, SignalError};
use crate::provider::CryptoRng;

/// How a client connects. Defaults: dictionary version 3, no routing info, WhatsApp's root key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The binary-node dictionary version, the last byte of the prologue `"WA" 6 v`. Default 3
    /// (Baileys 7 and the official clients); Baileys 6 sent 2.
    pub dictionary_version: u8,
    /// `creds.routingInfo`: when set, the intro is `"ED" 0 1 || len (3 bytes) || routing info`
    /// followed by the prologue. Default `None`. At most
    /// [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN) bytes.
    pub routing_info: Option<Vec<u8>>,
    /// The trust anchor the server's intermediate certificate must be signed by. Default
    /// [`WHATSAPP_ROOT_KEY`].
    pub root_key: PublicKey,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            dictionary_version: 3,
            routing_info: None,
            root_key: WHATSAPP_ROOT_KEY,
        }
    }
}

impl ClientConfig {
    /// The 4-byte header `"WA" 6 <dictionary version>`, the end of the intro and the Noise
    /// prologue.
    pub fn header(&self) -> [u8; 4] {
        [b'W', b'A', 6, self.dictionary_version]
    }

    /// The intro this configuration sends before the first frame. Fails with
    /// [`SignalError::Wire`] ([`wa_proto::Error::TooLarge`]) when the routing info is longer
    /// than [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN).
    pub fn intro(&self) -> Result<Intro> {
        Ok(Intro::new(self.routing_info.as_deref())?.with_header(self.header()))
    }
}

/// A client handshake that has sent its hello and waits for the server hello.
///
/// The handshake is sans-I/O: each step takes the bytes received and returns the bytes to send;
/// moving bytes over a socket is the caller's job. Each step consumes the state, so steps cannot
/// be repeated or taken out of order, and a failed handshake leaves nothing behind (secrets are
/// zeroized when dropped).
///
/// The example runs a test server (feature `test-util`) against the client, with a seeded
/// provider; a program passes a provider backed by the OS and the system clock.
///
/// ```
/// use wa_signal::curve::KeyPair;
/// use wa_signal::noise::{ClientConfig, ClientHandshake, FrameDecoder, ServerConfig, ServerHandshake};
/// use wa_signal::provider::{Provider, TestProvider};
///
/// # fn main() -> wa_signal::Result<()> {
/// let mut provider = TestProvider::new(1);
/// // A test server with its own root (a real client keeps the default WhatsApp root).
/// let (server_config, root_key) = ServerConfig::generate(&mut provider, 0, u64::MAX);
/// let config = ClientConfig { root_key, ..ClientConfig::default() };
///
/// // Client: intro + client hello.
/// let noise_key = KeyPair::generate(&mut provider); // creds.noiseKey
/// let (client, hello) = ClientHandshake::start(&config, noise_key, &mut provider)?;
///
/// // Server: its decoder reads the intro, then the first frame; it answers with the server hello.
/// let mut server_reader = FrameDecoder::expecting_intro();
/// server_reader.push(&hello);
/// let frame = server_reader.next_frame()?.expect("whole frame");
/// let intro = server_reader.intro().expect("read with the first frame");
/// let (server, server_hello) =
///     ServerHandshake::new(&server_config, &mut provider).read_client_hello(intro, &frame)?;
///
/// // Client: read the server hello (verifies the certificate chain), send the client finish.
/// let mut client_reader = FrameDecoder::new();
/// client_reader.push(&server_hello);
/// let frame = client_reader.next_frame()?.expect("whole frame");
/// let accepted = client.read_server_hello(&frame, provider.now())?;
/// let (finish, mut client_transport) = accepted.finish(b"ClientPayload bytes")?;
///
/// server_reader.push(&finish);
/// let frame = server_reader.next_frame()?.expect("whole frame");
/// let done = server.read_client_finish(&frame)?;
/// assert_eq!(done.client_payload, b"ClientPayload bytes");
///
/// // Transport.
/// let mut server_transport = done.transport;
/// client_reader.push(&server_transport.encrypt_frame(b"\x00node")?);
/// let frame = client_reader.next_frame()?.expect("whole frame");
/// assert_eq!(client_transport.decrypt(&frame)?, b"\x00node");
/// # Ok(())
/// # }
/// ```
pub struct ClientHandshake {
    pub(super) state: SymmetricState,
    ephemeral: KeyPair,
    noise_key: KeyPair,
    root_key: PublicKey,
}

impl ClientHandshake {
    /// Starts a handshake with a fresh ephemeral key from `rng`. `noise_key` is the client's
    /// static key (`creds.noiseKey`). Returns the handshake and the bytes to send first: the
    /// intro followed by the framed client hello.
    ///
    /// Fails only when the configured routing info does not fit a 3-byte length
    /// ([`SignalError::Wire`]).
    pub fn start<R: CryptoRng + ?Sized>(
        config: &ClientConfig,
        noise_key: KeyPair,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>)> {
        Self::start_with_ephemeral(config, noise_key, KeyPair::generate(rng))
    }

    /// Like [`start`](Self::start) with a given ephemeral key. Reusing an ephemeral key across
    /// connections breaks forward secrecy: this exists for reproducing recorded transcripts.
    pub fn start_with_ephemeral(
        config: &ClientConfig,
        noise_key: KeyPair,
        ephemeral: KeyPair,
    ) -> Result<(Self, Vec<u8>)> {
        let intro = config.intro()?;
        let mut out = intro.to_bytes();

        let mut state = SymmetricState::new();
        state.mix_hash(&intro.header());
        // WhatsApp's deviation from Noise: the empty payload of message 1 is not mixed in.
        state.mix_hash(ephemeral.public.as_bytes());
        state.checkpoint();

        let hello = HandshakeMessage {
            client_hello: Some(ClientHello {
                ephemeral: Some(ephemeral.public.as_bytes().to_vec()),
                ..ClientHello::default()
            }),
            ..HandshakeMessage::default()
        };
        encode_frame(&hello.encode_to_vec(), &mut out)?;
        Ok((
            Self {
                state,
                ephemeral,
                noise_key,
                root_key: config.root_key,
            },
            out,
        ))
    }

    /// The handshake hash so far (public).
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.state.handshake_hash()
    }

    /// Processes the server hello (one frame body, as returned by
    /// [`FrameDecoder::next_frame`](super::FrameDecoder::next_frame)) and verifies the server's
    /// certificate chain at `now`.
    ///
    /// Steps: `MixHash(se)`, `MixKey(DH(e, se))`, `DecryptAndHash(server static)`,
    /// `MixKey(DH(e, ss))`, `DecryptAndHash(cert chain)`, then
    /// [`CertificateChain::verify`] against the configured root and the decrypted static key.
    ///
    /// Errors: [`SignalError::NoiseMalformed`] (not a server hello, bad key lengths, low-order
    /// key), [`SignalError::NoiseDecrypt`] (tampered static or payload ciphertext),
    /// [`SignalError::NoiseCertificate`] (chain rejected).
    pub fn read_server_hello(self, frame: &[u8], now: UnixTime) -> Result<AcceptedServerHello> {
        let Self {
            mut state,
            ephemeral,
            noise_key,
            root_key,
        } = self;
        let what = "server hello";
        let hello = decode_message(frame, what)?.server_hello.ok_or_else(|| {
            SignalError::NoiseMalformed {
                what,
                reason: "no serverHello in the handshake message".into(),
            }
        })?;
        let server_ephemeral = raw_key(hello.ephemeral.as_deref(), "server ephemeral key")?;
        let static_ciphertext = hello.r#static.ok_or_else(|| SignalError::NoiseMalformed {
            what,
            reason: "no static".into(),
        })?;
        let payload_ciphertext = hello.payload.ok_or_else(|| SignalError::NoiseMalformed {
            what,
            reason: "no payload".into(),
        })?;

        state.mix_hash(server_ephemeral.as_bytes());
        let mut state =
            state.mix_key(agree(&ephemeral, &server_ephemeral, "server ephemeral key")?.as_bytes());
        state.checkpoint(true);

        let server_static =
            state.decrypt_and_hash(&static_ciphertext, NoiseStage::ServerHelloStatic)?;
        let server_static = raw_key(Some(&server_static), "server static key")?;
        state.mix_key(agree(&ephemeral, &server_static, "server static key")?.as_bytes());
        state.checkpoint(true);

        let chain = state.decrypt_and_hash(&payload_ciphertext, NoiseStage::ServerHelloPayload)?;
        state.checkpoint(false);
        let chain = CertificateChain::decode(&chain)?.verify(&root_key, &server_static, now)?;

        Ok(AcceptedServerHello {
            state,
            noise_key,
            server_ephemeral,
            server_static,
            chain,
        })
    }
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("state", &self.state)
            .field("ephemeral", &self.ephemeral)
            .field("noise_key", &self.noise_key)
            .field("root_key", &self.root_key)
            .finish()
    }
}

/// A client handshake whose server hello was accepted and whose server certificate chain was
/// verified; it sends the client finish next.
pub struct AcceptedServerHello {
    pub(super) state: KeyedState,
    noise_key: KeyPair,
    server_ephemeral: PublicKey,
    server_static: PublicKey,
    chain: VerifiedChain,
}

impl AcceptedServerHello {
    /// The server's static key (certified by the verified chain's leaf).
    pub fn server_static(&self) -> &PublicKey {
        &self.server_static
    }

    /// The verified certificate details.
    pub fn certificates(&self) -> &VerifiedChain {
        &self.chain
    }

    /// The handshake hash so far (public).
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.state.handshake_hash()
    }

    /// Sends the client finish: `EncryptAndHash(noiseKey public)`, `MixKey(DH(noiseKey, se))`,
    /// `EncryptAndHash(client_payload)`, then splits into the transport.
    ///
    /// `client_payload` is the encoded `ClientPayload` protobuf (login for a paired device,
    /// registration for a new one). Returns the framed client finish to send and the transport.
    pub fn finish(self, client_payload: &[u8]) -> Result<(Vec<u8>, NoiseTransport)> {
        let (frame, state) = self.finish_handshake(client_payload)?;
        let hash = state.handshake_hash();
        let (send, receive) = state.split();
        Ok((frame, NoiseTransport::new(send, receive, hash)))
    }

    /// [`finish`](Self::finish) up to (not including) the split.
    pub(crate) fn finish_handshake(self, client_payload: &[u8]) -> Result<(Vec<u8>, KeyedState)> {
        let Self {
            mut state,
            noise_key,
            server_ephemeral,
            ..
        } = self;
        let static_ciphertext =
            state.encrypt_and_hash(noise_key.public.as_bytes(), NoiseStage::ClientFinishStatic)?;
        state.mix_key(agree(&noise_key, &server_ephemeral, "server ephemeral key")?.as_bytes());
        state.checkpoint(true);
        let payload_ciphertext =
            state.encrypt_and_hash(client_payload, NoiseStage::ClientFinishPayload)?;
        state.checkpoint(false);

        let finish = HandshakeMessage {
            client_finish: Some(ClientFinish {
                r#static: Some(static_ciphertext),
                payload: Some(payload_ciphertext),
                ..ClientFinish::default()
            }),
            ..HandshakeMessage::default()
        };
        let mut frame = Vec::new();
        encode_frame(&finish.encode_to_vec(), &mut frame)?;
        Ok((frame, state))
    }
}

impl std::fmt::Debug for AcceptedServerHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptedServerHello")
            .field("state", &self.state)
            .field("noise_key", &self.noise_key)
            .field("server_ephemeral", &self.server_ephemeral)
            .field("server_static", &self.server_static)
            .field("chain", &self.chain)
            .finish()
    }
}
