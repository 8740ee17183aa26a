//! `DeviceLink`: a connection's life cycle over an [`AuthState`], driven over an abstract
//! [`FrameTransport`] (a WebSocket in production, an in-process channel in tests):
//!
//! 1. [`DeviceLink::connect`]: the Noise handshake, sending the login payload when the creds
//!    are paired and the registration payload otherwise (routing info from creds);
//! 2. [`DeviceLink::await_pairing`] (new devices): waits for `pair-success`, verifies and
//!    persists it (one commit), answers with `pair-device-sign`;
//! 3. [`DeviceLink::ensure_pre_keys`] (paired devices): asks the server how many of our
//!    one-time pre-keys it holds and uploads more when it runs low, marking them uploaded only
//!    once the server acknowledges.
//!
//! Each persisted step goes through the normal `AuthState` path, so it is durable before the
//! corresponding stanza is sent. The link's [`Provider`] supplies the handshake's ephemeral
//! key, the time certificates are checked at, and the randomness of pairing and new pre-keys.

use std::collections::VecDeque;

use async_trait::async_trait;
use prost::Message;
use wa_auth::{AuthState, SystemProvider};
use wa_proto::Node;
use wa_proto::frame::FrameDecoder;
use wa_signal::Provider;
use wa_signal::noise::{ClientHandshake, NoiseTransport};

use crate::client_payload::{ClientConfig, login_payload_for, registration_payload};
use crate::error::{LinkError, Result};
use crate::pairing::handle_pair_success;
use crate::pre_keys;

/// Moves bytes to and from the server. Sends whole frames (the intro before the first); receives
/// whatever arrived, in any split.
#[async_trait]
pub trait FrameTransport: Send {
    /// Sends `bytes`.
    async fn send(&mut self, bytes: Vec<u8>) -> std::io::Result<()>;
    /// The next bytes received, or `None` when the server closed the connection.
    async fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>>;
}

/// How a [`DeviceLink`] connects. (The clock certificates are checked against is the link's
/// [`Provider`].)
#[derive(Clone, Debug, Default)]
pub struct LinkConfig {
    /// What the client payload says about this client.
    pub client: ClientConfig,
    /// Noise settings (dictionary version, trust anchor); the routing info comes from creds.
    pub noise: wa_signal::noise::ClientConfig,
}

/// Which payload the connection logged in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A new device registering (it waits to be paired).
    Registration,
    /// A paired device logging in.
    Login,
}

/// An established, encrypted connection of one linked device, drawing time and randomness from
/// `P` (the operating system's by default).
pub struct DeviceLink<T, P = SystemProvider> {
    state: AuthState,
    transport: T,
    provider: P,
    noise: NoiseTransport,
    frames: FrameDecoder,
    kind: LinkKind,
    next_tag: u64,
    unhandled: VecDeque<Node>,
}

impl<T: FrameTransport> DeviceLink<T> {
    /// Runs the Noise handshake over `transport` with the payload the creds call for, with the
    /// [`SystemProvider`].
    pub async fn connect(state: AuthState, transport: T, config: &LinkConfig) -> Result<Self> {
        Self::connect_with(state, transport, config, SystemProvider::new()).await
    }
}

impl<T: FrameTransport, P: Provider + Send> DeviceLink<T, P> {
    /// [`DeviceLink::connect`] with another provider (a seeded one with a fixed clock in a
    /// test).
    pub async fn connect_with(
        state: AuthState,
        mut transport: T,
        config: &LinkConfig,
        mut provider: P,
    ) -> Result<Self> {
        let creds = state.creds();
        let mut noise_config = config.noise.clone();
        noise_config.routing_info = creds.routing_info.clone();
        let (handshake, hello) =
            ClientHandshake::start(&noise_config, creds.noise_key.clone(), &mut provider)?;
        transport.send(hello).await.map_err(LinkError::Transport)?;
        let mut frames = FrameDecoder::new();
        let server_hello = next_frame(&mut transport, &mut frames)
            .await?
            .ok_or_else(|| LinkError::closed("during the handshake"))?;
        let accepted = handshake.read_server_hello(&server_hello, provider.now())?;
        let (kind, payload) = if creds.is_paired() {
            (LinkKind::Login, login_payload_for(&creds, &config.client)?)
        } else {
            (
                LinkKind::Registration,
                registration_payload(&creds, &config.client),
            )
        };
        let (finish, noise) = accepted.finish(&payload.encode_to_vec())?;
        transport.send(finish).await.map_err(LinkError::Transport)?;
        tracing::debug!(?kind, "noise handshake complete");
        Ok(Self {
            state,
            transport,
            provider,
            noise,
            frames,
            kind,
            next_tag: 1,
            unhandled: VecDeque::new(),
        })
    }

    /// Which payload this connection logged in with.
    pub fn kind(&self) -> LinkKind {
        self.kind
    }

    /// The auth state behind the link.
    pub fn state(&self) -> &AuthState {
        &self.state
    }

    /// Encrypts and sends a stanza.
    pub async fn send_node(&mut self, node: &Node) -> Result<()> {
        let plaintext = node
            .encode()
            .map_err(|e| LinkError::invalid(format!("stanza <{}>", node.tag), e.to_string()))?;
        let frame = self.noise.encrypt_frame(&plaintext)?;
        self.transport
            .send(frame)
            .await
            .map_err(LinkError::Transport)
    }

    /// The next stanza (one set aside by [`DeviceLink::query`] first), or `None` when the server
    /// closed the connection.
    pub async fn recv_node(&mut self) -> Result<Option<Node>> {
        if let Some(node) = self.unhandled.pop_front() {
            return Ok(Some(node));
        }
        self.recv_fresh().await
    }

    /// Sends an `iq` with a fresh id and waits for the server's answer (other stanzas received
    /// meanwhile are kept for [`DeviceLink::recv_node`]). An `error` answer is an error.
    pub async fn query(&mut self, mut iq: Node) -> Result<Node> {
        let id = format!("wa-auth-{}", self.next_tag);
        self.next_tag += 1;
        iq.attrs.insert("id", id.as_str());
        self.send_node(&iq).await?;
        loop {
            let node = self
                .recv_fresh()
                .await?
                .ok_or_else(|| LinkError::closed(format!("while waiting for iq {id}")))?;
            if node.tag == "iq" && node.attr("id") == Some(&id) {
                if node.attr("type") == Some("error") {
                    return Err(LinkError::Refused {
                        request: format!("iq {id}"),
                        answer: node.to_string(),
                    });
                }
                return Ok(node);
            }
            self.unhandled.push_back(node);
        }
    }

    /// A new device: waits for `pair-success`, verifies it and persists the pairing (one commit,
    /// a `CredsUpdated` event), then sends the `pair-device-sign` reply. A rejected stanza is an
    /// error and changes nothing.
    pub async fn await_pairing(&mut self) -> Result<()> {
        loop {
            let node = self
                .recv_node()
                .await?
                .ok_or_else(|| LinkError::closed("before pair-success"))?;
            if node.tag == "iq" && node.child("pair-success").is_some() {
                let reply = handle_pair_success(&self.state, &mut self.provider, &node).await?;
                return self.send_node(&reply).await;
            }
            tracing::debug!(tag = %node.tag, "ignoring a stanza while waiting to be paired");
        }
    }

    /// A paired device: asks how many pre-keys the server has and, below the minimum, uploads
    /// enough to refill it. Returns how many keys were uploaded.
    pub async fn ensure_pre_keys(&mut self) -> Result<usize> {
        let count = Node::new("iq")
            .with_attr("xmlns", "encrypt")
            .with_attr("type", "get")
            .with_attr("to", "@s.whatsapp.net")
            .with_child(Node::new("count"));
        let answer = self.query(count).await?;
        let on_server: u32 = answer
            .child("count")
            .and_then(|c| c.attr("value"))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                LinkError::protocol(format!("pre-key count answer without a count: {answer}"))
            })?;
        let Some(upload) = pre_keys::top_up(&self.state, &mut self.provider, on_server).await?
        else {
            return Ok(0);
        };
        self.query(upload.node.clone()).await?;
        pre_keys::mark_uploaded(&self.state, &upload).await?;
        tracing::info!(uploaded = upload.ids.len(), on_server, "uploaded pre-keys");
        Ok(upload.ids.len())
    }

    /// Gives back the transport (closing is the caller's business).
    pub fn into_transport(self) -> T {
        self.transport
    }

    async fn recv_fresh(&mut self) -> Result<Option<Node>> {
        let Some(body) = next_frame(&mut self.transport, &mut self.frames).await? else {
            return Ok(None);
        };
        let plaintext = self.noise.decrypt(&body)?;
        Node::decode(&plaintext)
            .map(Some)
            .map_err(|e| LinkError::protocol(format!("undecodable stanza: {e}")))
    }
}

/// The next whole frame, or `None` when the server closed the connection.
async fn next_frame<T: FrameTransport>(
    transport: &mut T,
    frames: &mut FrameDecoder,
) -> Result<Option<Vec<u8>>> {
    loop {
        if let Some(frame) = frames
            .next_frame()
            .map_err(|e| LinkError::protocol(format!("bad frame: {e}")))?
        {
            return Ok(Some(frame));
        }
        match transport.recv().await.map_err(LinkError::Transport)? {
            Some(bytes) => frames.push(&bytes),
            None => return Ok(None),
        }
    }
}
