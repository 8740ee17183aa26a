//! End to end against an in-process server that follows the Noise transcript rules: a fresh
//! device registers, receives `pair-success`, persists it, restarts from the native store, logs
//! in with the login payload and uploads its pre-keys — all on the persisted state.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use sha2::Sha256;
use tokio::sync::mpsc;
use wa_auth::{KeyKind, PersistenceExt};
use wa_link::{DeviceLink, FrameTransport, LinkConfig, LinkError, LinkKind};
use wa_proto::frame::FrameDecoder;
use wa_proto::proto::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
    ClientPayload,
};
use wa_proto::{Jid, Node};
use wa_signal::noise::{NoiseTransport, ServerConfig, ServerHandshake};
use wa_signal::provider::TestProvider;
use wa_signal::{KeyPair, PublicKey, SignalError, UnixTime};
use wa_store_native::use_native_file_auth_state;

/// Who the fake phone pairs the device as.
const DEVICE_JID: &str = "15550100001:5@s.whatsapp.net";
const DEVICE_LID: &str = "100000000000001:5@lid";

/// The client's end of an in-process connection.
struct Channel {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
}

#[async_trait]
impl FrameTransport for Channel {
    async fn send(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        self.tx
            .send(bytes)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
    async fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.rx.recv().await)
    }
}

fn connection() -> (Channel, Channel) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    (
        Channel { tx: a_tx, rx: b_rx },
        Channel { tx: b_tx, rx: a_rx },
    )
}

/// The fake WhatsApp server and the primary phone it speaks for, with the seeded generator
/// their keys and signatures come from.
struct Server {
    root: PublicKey,
    config: ServerConfig,
    phone: KeyPair,
    rng: Mutex<TestProvider>,
}

/// The server's side of one accepted connection.
struct Accepted {
    io: Channel,
    frames: FrameDecoder,
    noise: NoiseTransport,
    payload: ClientPayload,
    client_static: PublicKey,
}

impl Accepted {
    async fn send(&mut self, node: &Node) {
        let frame = self.noise.encrypt_frame(&node.encode().unwrap()).unwrap();
        self.io.send(frame).await.unwrap();
    }
    async fn recv(&mut self) -> Node {
        loop {
            if let Some(body) = self.frames.next_frame().unwrap() {
                return Node::decode(&self.noise.decrypt(&body).unwrap()).unwrap();
            }
            let bytes = self.io.recv().await.unwrap().expect("client closed");
            self.frames.push(&bytes);
        }
    }
}

/// The server's certificates are valid for this long before and after it starts.
const CERT_VALIDITY: Duration = Duration::from_secs(3600);

impl Server {
    fn new() -> Self {
        let mut rng = TestProvider::new(1);
        let now = UnixTime::from(SystemTime::now()).as_secs();
        let validity = CERT_VALIDITY.as_secs();
        let (config, root) = ServerConfig::generate(&mut rng, now - validity, now + validity);
        Self {
            root,
            config,
            phone: KeyPair::generate(&mut rng),
            rng: Mutex::new(rng),
        }
    }

    fn handshake(&self) -> ServerHandshake {
        ServerHandshake::new(&self.config, &mut *self.rng.lock().unwrap())
    }

    fn link_config(&self) -> LinkConfig {
        let mut config = LinkConfig::default();
        config.noise.root_key = self.root;
        config
    }

    async fn accept(&self, mut io: Channel) -> Accepted {
        let mut frames = FrameDecoder::expecting_intro();
        let hello = loop {
            if let Some(frame) = frames.next_frame().unwrap() {
                break frame;
            }
            frames.push(&io.recv().await.unwrap().unwrap());
        };
        let intro = frames
            .intro()
            .cloned()
            .expect("intro before the first frame");
        let (waiting, server_hello) = self.handshake().read_client_hello(&intro, &hello).unwrap();
        io.send(server_hello).await.unwrap();
        let finish = loop {
            if let Some(frame) = frames.next_frame().unwrap() {
                break frame;
            }
            frames.push(&io.recv().await.unwrap().unwrap());
        };
        let finished = waiting.read_client_finish(&finish).unwrap();
        Accepted {
            payload: ClientPayload::decode(finished.client_payload.as_slice()).unwrap(),
            client_static: finished.client_static,
            noise: finished.transport,
            frames,
            io,
        }
    }

    /// The phone's pair-success for the registering device (the QR code gave it the device's
    /// ADV secret), with the HMAC computed under `adv_secret`.
    fn pair_success(&self, identity: &[u8], adv_secret: &[u8]) -> Node {
        let details = AdvDeviceIdentity {
            raw_id: Some(4711),
            timestamp: Some(1_712_345_695),
            key_index: Some(7),
            ..Default::default()
        }
        .encode_to_vec();
        let signed = [&[6u8, 0][..], &details, identity].concat();
        let account = AdvSignedDeviceIdentity {
            details: Some(details),
            account_signature_key: Some(self.phone.public.as_bytes().to_vec()),
            account_signature: Some(
                self.phone
                    .sign(&mut *self.rng.lock().unwrap(), &signed)
                    .to_vec(),
            ),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = Hmac::<Sha256>::new_from_slice(adv_secret).unwrap();
        mac.update(&account);
        let container = AdvSignedDeviceIdentityHmac {
            details: Some(account),
            hmac: Some(mac.finalize().into_bytes().to_vec()),
            account_type: Some(AdvEncryptionType::E2ee as i32),
        };
        Node::new("iq")
            .with_attr("from", "s.whatsapp.net")
            .with_attr("type", "set")
            .with_attr("id", "pair-1")
            .with_child(
                Node::new("pair-success").with_children([
                    Node::new("device-identity").with_bytes(container.encode_to_vec()),
                    Node::new("platform").with_attr("name", "android"),
                    Node::new("device")
                        .with_attr("jid", DEVICE_JID)
                        .with_attr("lid", DEVICE_LID),
                ]),
            )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_pair_restart_login_and_upload_pre_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device");
    let server = std::sync::Arc::new(Server::new());

    // 1. A fresh device registers and is paired.
    let state = use_native_file_auth_state(&path).await.unwrap();
    let adv_secret = state.creds().adv_secret_key.to_bytes().unwrap();
    let noise_public = state.creds().noise_key.public;
    let (client_io, server_io) = connection();
    let phone_server = server.clone();
    let registration = tokio::spawn(async move {
        let mut conn = phone_server.accept(server_io).await;
        let pairing = conn
            .payload
            .device_pairing_data
            .clone()
            .expect("a registration payload");
        assert_eq!(conn.payload.username, None);
        let identity = pairing.e_ident.clone().unwrap();
        conn.send(&phone_server.pair_success(&identity, &adv_secret))
            .await;
        let reply = conn.recv().await;
        assert_eq!(
            (reply.attr("type"), reply.attr("id")),
            (Some("result"), Some("pair-1"))
        );
        let device_identity = reply
            .child_at(&["pair-device-sign", "device-identity"])
            .unwrap();
        assert_eq!(device_identity.attr("key-index"), Some("7"));
        let account =
            AdvSignedDeviceIdentity::decode(device_identity.content_bytes().unwrap()).unwrap();
        let signed = [
            &[6u8, 1][..],
            account.details.as_deref().unwrap(),
            &identity,
            phone_server.phone.public.as_bytes(),
        ]
        .concat();
        let device_key = PublicKey::from_slice(&identity).unwrap();
        assert!(
            device_key.verify(&signed, account.device_signature.as_deref().unwrap()),
            "device signature"
        );
        (conn.client_static, pairing)
    });
    let mut link = DeviceLink::connect(state.clone(), client_io, &server.link_config())
        .await
        .unwrap();
    assert_eq!(link.kind(), LinkKind::Registration);
    link.await_pairing().await.unwrap();
    let (client_static, pairing) = registration.await.unwrap();
    assert_eq!(
        client_static, noise_public,
        "the handshake used creds.noiseKey"
    );
    assert_eq!(
        pairing.e_regid.as_deref(),
        Some(&state.creds().registration_id.to_be_bytes()[..])
    );
    drop(link);
    drop(state); // the process stops

    // 2. Restart from disk: paired, and logging in with the login payload.
    let state = use_native_file_auth_state(&path).await.unwrap();
    let creds = state.creds();
    assert!(creds.is_paired(), "pairing was persisted");
    assert_eq!(creds.me.as_ref().unwrap().id, DEVICE_JID);
    assert_eq!(creds.me.as_ref().unwrap().lid.as_deref(), Some(DEVICE_LID));
    assert_eq!(creds.platform.as_deref(), Some("android"));
    assert_eq!(creds.noise_key.public, noise_public);

    let (client_io, server_io) = connection();
    let login_server = server.clone();
    let login = tokio::spawn(async move {
        let mut conn = login_server.accept(server_io).await;
        let device: Jid = DEVICE_JID.parse().unwrap();
        assert_eq!(
            (conn.payload.username, conn.payload.device),
            (
                Some(device.user().parse().unwrap()),
                Some(u32::from(device.device()))
            )
        );
        assert!(conn.payload.device_pairing_data.is_none());
        // The pre-key count query, then the upload.
        let count = conn.recv().await;
        assert_eq!(count.attr("xmlns"), Some("encrypt"));
        conn.send(
            &Node::new("iq")
                .with_attr("type", "result")
                .with_attr("id", count.attr("id").unwrap())
                .with_child(Node::new("count").with_attr("value", "0")),
        )
        .await;
        let upload = conn.recv().await;
        let keys = upload.child("list").unwrap().children().len();
        let identity =
            PublicKey::from_slice(upload.child("identity").unwrap().content_bytes().unwrap())
                .unwrap();
        let skey = upload.child("skey").unwrap();
        let spk =
            PublicKey::from_slice(skey.child("value").unwrap().content_bytes().unwrap()).unwrap();
        assert!(identity.verify(
            &spk.serialize(),
            skey.child("signature").unwrap().content_bytes().unwrap()
        ));
        conn.send(
            &Node::new("iq")
                .with_attr("type", "result")
                .with_attr("id", upload.attr("id").unwrap()),
        )
        .await;
        (conn.client_static, keys)
    });
    // This time with a seeded provider whose clock reads the present.
    let provider = TestProvider::new(2).at(UnixTime::from(SystemTime::now()));
    let mut link =
        DeviceLink::connect_with(state.clone(), client_io, &server.link_config(), provider)
            .await
            .unwrap();
    assert_eq!(link.kind(), LinkKind::Login);
    assert_eq!(link.ensure_pre_keys().await.unwrap(), 30);
    let (client_static, uploaded) = login.await.unwrap();
    assert_eq!(client_static, noise_public);
    assert_eq!(uploaded, 30);
    drop(link);
    drop(state);

    // 3. And the upload survives another restart.
    let state = use_native_file_auth_state(&path).await.unwrap();
    let creds = state.creds();
    assert_eq!(
        (creds.next_pre_key_id, creds.first_unuploaded_pre_key_id),
        (31, 31)
    );
    assert_eq!(
        state.store().list(&KeyKind::PreKey).await.unwrap().len(),
        30
    );
    assert!(state.store().load_all().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_pair_success_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device");
    let server = std::sync::Arc::new(Server::new());
    let state = use_native_file_auth_state(&path).await.unwrap();
    let before = state.store().load_creds().await.unwrap();
    let (client_io, server_io) = connection();
    let phone = server.clone();
    let task = tokio::spawn(async move {
        let mut conn = phone.accept(server_io).await;
        let identity = conn
            .payload
            .device_pairing_data
            .clone()
            .unwrap()
            .e_ident
            .unwrap();
        // HMAC under the wrong secret: someone else's pairing.
        conn.send(&phone.pair_success(&identity, &[7u8; 32])).await;
        conn
    });
    let mut link = DeviceLink::connect(state.clone(), client_io, &server.link_config())
        .await
        .unwrap();
    let err = link.await_pairing().await.unwrap_err();
    assert!(matches!(err, LinkError::PairingRejected(_)), "{err}");
    let _conn = task.await.unwrap();
    assert_eq!(
        state.store().load_creds().await.unwrap(),
        before,
        "creds untouched"
    );
    assert!(!state.creds().is_paired());
}

/// Answers one client hello with the server hello, then hands back the connection.
async fn answer_hello(server: &Server, mut io: Channel) -> Channel {
    let mut frames = FrameDecoder::expecting_intro();
    let hello = loop {
        if let Some(frame) = frames.next_frame().unwrap() {
            break frame;
        }
        frames.push(&io.recv().await.unwrap().unwrap());
    };
    let intro = frames.intro().cloned().unwrap();
    let (_, server_hello) = server
        .handshake()
        .read_client_hello(&intro, &hello)
        .unwrap();
    io.send(server_hello).await.unwrap();
    io
}

async fn memory_state() -> wa_auth::AuthState {
    wa_auth::AuthState::load(std::sync::Arc::new(wa_auth::MemoryStore::new()))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused() {
    let server = std::sync::Arc::new(Server::new());
    let state = memory_state().await;
    let (client_io, server_io) = connection();
    let accepting = server.clone();
    let task = tokio::spawn(async move { answer_hello(&accepting, server_io).await });
    // The client trusts WhatsApp's real root, not this server's test root.
    let result = DeviceLink::connect(state, client_io, &LinkConfig::default()).await;
    assert!(
        matches!(
            result,
            Err(LinkError::Noise(SignalError::NoiseCertificate(_)))
        ),
        "the handshake must fail on the certificate"
    );
    drop(task.await.unwrap());
}

#[tokio::test]
async fn certificates_are_checked_at_the_providers_time() {
    let server = std::sync::Arc::new(Server::new());
    let state = memory_state().await;
    let (client_io, server_io) = connection();
    let accepting = server.clone();
    let task = tokio::spawn(async move { answer_hello(&accepting, server_io).await });
    // A clock past the certificates' validity: the same server is now refused.
    let later = UnixTime::from(SystemTime::now()).saturating_add(CERT_VALIDITY * 2);
    let provider = TestProvider::new(3).at(later);
    let result = DeviceLink::connect_with(state, client_io, &server.link_config(), provider).await;
    let Err(LinkError::Noise(SignalError::NoiseCertificate(err))) = result else {
        panic!("expected a certificate error");
    };
    assert!(
        matches!(err, wa_signal::noise::CertificateError::Expired { .. }),
        "{err:?}"
    );
    drop(task.await.unwrap());
}
