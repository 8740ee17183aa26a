//! Every way a server can fail to prove itself, and every malformed input, ends in a typed error
//! and never in a panic. Chains are issued here with fresh keys and sent through the test
//! responder, so each check runs through the whole handshake.

use std::cell::RefCell;

use proptest::prelude::*;
use wa_signal::SignalError;
use wa_signal::curve::{KeyPair, PrivateKey, PublicKey};
use wa_signal::noise::{
    AcceptedServerHello, CertDetails, CertRole, Certificate, CertificateChain, CertificateError,
    ClientConfig, ClientHandshake, FrameDecoder, Intro, LENGTH_PREFIX_LEN, MAX_FRAME_LEN,
    MAX_PLAINTEXT_LEN, NoiseStage, NoiseTransport, ServerConfig, ServerHandshake, TAG_LEN,
    UnixTime,
};
use wa_signal::provider::TestProvider;

const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

/// A test server's keys, and the seeded provider every key and signature of a test comes from.
struct Pki {
    root: KeyPair,
    intermediate: KeyPair,
    server_static: KeyPair,
    rng: RefCell<TestProvider>,
}

impl Pki {
    fn new() -> Self {
        let mut rng = TestProvider::new(1);
        Self {
            root: KeyPair::generate(&mut rng),
            intermediate: KeyPair::generate(&mut rng),
            server_static: KeyPair::generate(&mut rng),
            rng: RefCell::new(rng),
        }
    }

    /// A fresh key pair.
    fn key(&self) -> KeyPair {
        KeyPair::generate(&mut *self.rng.borrow_mut())
    }

    /// A client handshake with a fresh noise key and ephemeral key.
    fn start(&self, config: &ClientConfig) -> Result<(ClientHandshake, Vec<u8>), SignalError> {
        ClientHandshake::start(config, self.key(), &mut *self.rng.borrow_mut())
    }

    /// A server handshake with a fresh ephemeral key.
    fn server(&self, config: &ServerConfig) -> ServerHandshake {
        ServerHandshake::new(config, &mut *self.rng.borrow_mut())
    }

    fn details(serial: u32, issuer_serial: u32, key: PublicKey) -> CertDetails {
        CertDetails {
            serial,
            issuer_serial,
            key,
            not_before: Some(1_700_000_000),
            not_after: Some(1_800_000_000),
        }
    }

    fn intermediate_details(&self) -> CertDetails {
        Self::details(1, 0, self.intermediate.public)
    }

    fn leaf_details(&self) -> CertDetails {
        Self::details(2, 1, self.server_static.public)
    }

    fn chain(
        &self,
        intermediate: &CertDetails,
        intermediate_signer: &PrivateKey,
        leaf: &CertDetails,
        leaf_signer: &PrivateKey,
    ) -> Vec<u8> {
        let rng = &mut *self.rng.borrow_mut();
        CertificateChain {
            intermediate: Certificate::issue(rng, intermediate, intermediate_signer),
            leaf: Certificate::issue(rng, leaf, leaf_signer),
        }
        .encode()
    }

    fn good_chain(&self) -> Vec<u8> {
        self.chain(
            &self.intermediate_details(),
            &self.root.private,
            &self.leaf_details(),
            &self.intermediate.private,
        )
    }

    /// Runs client hello -> server hello with `cert_chain` as the server's payload.
    fn handshake(&self, cert_chain: Vec<u8>) -> Result<AcceptedServerHello, SignalError> {
        let config = ClientConfig {
            root_key: self.root.public,
            ..ClientConfig::default()
        };
        let (client, hello) = self.start(&config)?;
        let (intro, client_hello) = read_hello(&hello);
        let server = self.server(&ServerConfig {
            static_key: self.server_static.clone(),
            cert_chain,
        });
        let (_, server_hello) = server.read_client_hello(&intro, &client_hello)?;
        client.read_server_hello(&server_hello[LENGTH_PREFIX_LEN..], NOW)
    }

    fn rejection(&self, cert_chain: Vec<u8>) -> CertificateError {
        match self.handshake(cert_chain) {
            Err(SignalError::NoiseCertificate(e)) => e,
            other => panic!("expected a certificate error, got {other:?}"),
        }
    }
}

/// The intro and the client hello's body, as a server's decoder reads them.
fn read_hello(hello: &[u8]) -> (Intro, Vec<u8>) {
    let mut reader = FrameDecoder::expecting_intro();
    reader.push(hello);
    let frame = reader.next_frame().expect("frame").expect("whole frame");
    (reader.intro().expect("intro").clone(), frame)
}

#[test]
fn a_correct_chain_is_accepted() {
    let pki = Pki::new();
    let accepted = pki.handshake(pki.good_chain()).expect("accepted");
    assert_eq!(accepted.server_static(), &pki.server_static.public);
    assert_eq!(accepted.certificates().leaf, pki.leaf_details());
}

#[test]
fn intermediate_not_signed_by_the_root() {
    let pki = Pki::new();
    let impostor = pki.key();
    let chain = pki.chain(
        &pki.intermediate_details(),
        &impostor.private,
        &pki.leaf_details(),
        &pki.intermediate.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::BadSignature {
            role: CertRole::Intermediate
        }
    );
}

#[test]
fn leaf_not_signed_by_the_intermediate() {
    let pki = Pki::new();
    // Signed by the root instead of the intermediate.
    let chain = pki.chain(
        &pki.intermediate_details(),
        &pki.root.private,
        &pki.leaf_details(),
        &pki.root.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::BadSignature {
            role: CertRole::Leaf
        }
    );
}

#[test]
fn signatures_cover_the_exact_details_bytes() {
    let pki = Pki::new();
    let mut chain = CertificateChain::decode(&pki.good_chain()).expect("decodes");
    chain.leaf.details.push(0x00); // an extra varint tag byte changes the signed bytes
    assert_eq!(
        pki.rejection(chain.encode()),
        CertificateError::BadSignature {
            role: CertRole::Leaf
        }
    );
    let mut chain = CertificateChain::decode(&pki.good_chain()).expect("decodes");
    chain.intermediate.signature[10] ^= 1;
    assert_eq!(
        pki.rejection(chain.encode()),
        CertificateError::BadSignature {
            role: CertRole::Intermediate
        }
    );
    let mut chain = CertificateChain::decode(&pki.good_chain()).expect("decodes");
    chain.leaf.signature.truncate(63);
    assert_eq!(
        pki.rejection(chain.encode()),
        CertificateError::BadSignature {
            role: CertRole::Leaf
        }
    );
}

#[test]
fn wrong_issuer_serials() {
    let pki = Pki::new();
    let chain = pki.chain(
        &Pki::details(1, 5, pki.intermediate.public),
        &pki.root.private,
        &Pki::details(2, 5, pki.server_static.public),
        &pki.intermediate.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::WrongIssuerSerial {
            role: CertRole::Intermediate,
            expected: 0,
            found: 5
        }
    );
    let chain = pki.chain(
        &Pki::details(7, 0, pki.intermediate.public),
        &pki.root.private,
        &Pki::details(2, 1, pki.server_static.public),
        &pki.intermediate.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::WrongIssuerSerial {
            role: CertRole::Leaf,
            expected: 7,
            found: 1
        }
    );
}

#[test]
fn leaf_must_certify_the_server_static_key() {
    let pki = Pki::new();
    let other = pki.key();
    let chain = pki.chain(
        &pki.intermediate_details(),
        &pki.root.private,
        &Pki::details(2, 1, other.public),
        &pki.intermediate.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::LeafKeyMismatch {
            certified: other.public,
            server_static: pki.server_static.public
        }
    );
}

#[test]
fn expired_and_not_yet_valid_certificates() {
    let pki = Pki::new();
    let now = NOW.as_secs();
    let mut expired_leaf = pki.leaf_details();
    expired_leaf.not_after = Some(now - 1);
    let chain = pki.chain(
        &pki.intermediate_details(),
        &pki.root.private,
        &expired_leaf,
        &pki.intermediate.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::Expired {
            role: CertRole::Leaf,
            not_after: now - 1,
            now
        }
    );
    let mut future_intermediate = pki.intermediate_details();
    future_intermediate.not_before = Some(now + 1);
    let chain = pki.chain(
        &future_intermediate,
        &pki.root.private,
        &pki.leaf_details(),
        &pki.intermediate.private,
    );
    assert_eq!(
        pki.rejection(chain),
        CertificateError::NotYetValid {
            role: CertRole::Intermediate,
            not_before: now + 1,
            now
        }
    );
}

#[test]
fn malformed_chains() {
    let pki = Pki::new();
    assert!(matches!(
        pki.rejection(b"\xff\xff\xff".to_vec()),
        CertificateError::Malformed { .. }
    ));
    assert!(matches!(
        pki.rejection(Vec::new()),
        CertificateError::Malformed {
            role: CertRole::Intermediate,
            ..
        }
    ));
}

#[test]
fn tampered_client_finish_is_rejected_by_the_responder() {
    let pki = Pki::new();
    let config = ClientConfig {
        root_key: pki.root.public,
        ..ClientConfig::default()
    };
    let server_config = ServerConfig {
        static_key: pki.server_static.clone(),
        cert_chain: pki.good_chain(),
    };
    for (at, stage) in [
        (10, NoiseStage::ClientFinishStatic),
        (60, NoiseStage::ClientFinishPayload),
    ] {
        let (client, hello) = pki.start(&config).unwrap();
        let (intro, client_hello) = read_hello(&hello);
        let (server, server_hello) = pki
            .server(&server_config)
            .read_client_hello(&intro, &client_hello)
            .unwrap();
        let (mut finish, _) = client
            .read_server_hello(&server_hello[3..], NOW)
            .unwrap()
            .finish(b"a client payload long enough to reach byte sixty of the finish frame.....")
            .unwrap();
        finish[at] ^= 1;
        match server.read_client_finish(&finish[3..]) {
            Err(SignalError::NoiseDecrypt { stage: got, .. }) => assert_eq!(got, stage),
            other => panic!("tampered byte {at}: {other:?}"),
        }
    }
}

#[test]
fn oversized_frames_are_wire_errors() {
    // An announced length over the decoder's limit is refused from the header alone, and
    // converts into `SignalError::Wire`.
    let mut reader = FrameDecoder::new().with_max_frame_len(1024);
    reader.push(&[0x00, 0x04, 0x01]);
    let refused = SignalError::from(reader.next_frame().expect_err("over the limit"));
    assert!(
        matches!(
            refused,
            SignalError::Wire(wa_proto::Error::FrameTooLarge {
                len: 1025,
                limit: 1024
            })
        ),
        "{refused:?}"
    );
    // Routing info that does not fit the intro's 3-byte length.
    let rng = &mut TestProvider::new(2);
    let too_long_routing = ClientConfig {
        routing_info: Some(vec![0; 1 << 24]),
        ..ClientConfig::default()
    };
    assert!(matches!(
        ClientHandshake::start(&too_long_routing, KeyPair::generate(rng), rng),
        Err(SignalError::Wire(wa_proto::Error::TooLarge {
            what: "routing info",
            ..
        }))
    ));
    assert!(too_long_routing.intro().is_err());
    let longest_routing = ClientConfig {
        routing_info: Some(vec![0; MAX_FRAME_LEN]),
        ..ClientConfig::default()
    };
    let (_, hello) = ClientHandshake::start(&longest_routing, KeyPair::generate(rng), rng).unwrap();
    assert_eq!(&hello[..7], b"ED\x00\x01\xff\xff\xff");
}

/// A transport frame body may be exactly `MAX_FRAME_LEN` bytes; one plaintext byte more is
/// refused before encryption, so the counter does not move and the connection goes on.
#[test]
fn largest_transport_frame_and_one_byte_more() {
    let pki = Pki::new();
    let config = ClientConfig {
        root_key: pki.root.public,
        ..ClientConfig::default()
    };
    let (client, hello) = pki.start(&config).unwrap();
    let (intro, client_hello) = read_hello(&hello);
    let server_config = ServerConfig {
        static_key: pki.server_static.clone(),
        cert_chain: pki.good_chain(),
    };
    let (server, server_hello) = pki
        .server(&server_config)
        .read_client_hello(&intro, &client_hello)
        .unwrap();
    let (finish, mut client): (Vec<u8>, NoiseTransport) = client
        .read_server_hello(&server_hello[LENGTH_PREFIX_LEN..], NOW)
        .unwrap()
        .finish(b"payload")
        .unwrap();
    let mut server = server
        .read_client_finish(&finish[LENGTH_PREFIX_LEN..])
        .unwrap()
        .transport;

    let mut wire = b"before".to_vec();
    let refused = client
        .sender
        .encrypt_frame_into(&vec![1; MAX_PLAINTEXT_LEN + 1], &mut wire);
    assert!(
        matches!(
            refused,
            Err(SignalError::NoiseFrameTooLarge { len, max: MAX_FRAME_LEN }) if len == MAX_FRAME_LEN + 1
        ),
        "{refused:?}"
    );
    assert_eq!(wire, b"before", "the buffer is left as it was");
    assert_eq!(client.sender.next_counter(), 0);

    let largest = vec![7; MAX_PLAINTEXT_LEN];
    let frame = client.encrypt_frame(&largest).unwrap();
    assert_eq!(&frame[..LENGTH_PREFIX_LEN], &[0xff, 0xff, 0xff]);
    assert_eq!(frame.len(), LENGTH_PREFIX_LEN + MAX_PLAINTEXT_LEN + TAG_LEN);
    let mut reader = FrameDecoder::new();
    reader.push(&frame);
    let body = reader.next_frame().unwrap().expect("whole frame");
    assert_eq!(server.decrypt(&body).unwrap(), largest);
}

#[test]
fn intro_header_must_be_wa_6() {
    let pki = Pki::new();
    let server_config = ServerConfig {
        static_key: pki.server_static.clone(),
        cert_chain: pki.good_chain(),
    };
    let (_, hello) = pki.start(&ClientConfig::default()).unwrap();
    let (_, client_hello) = read_hello(&hello);
    for header in [*b"WA\x05\x03", *b"WA\x07\x02"] {
        let intro = Intro::new(None).unwrap().with_header(header);
        assert!(matches!(
            pki.server(&server_config)
                .read_client_hello(&intro, &client_hello),
            Err(SignalError::NoiseMalformed { what: "intro", .. })
        ));
    }
    // A Baileys 6 header (dictionary version 2) is a valid prologue.
    let intro = Intro::new(None).unwrap().with_header(*b"WA\x06\x02");
    assert!(
        pki.server(&server_config)
            .read_client_hello(&intro, &client_hello)
            .is_ok()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Garbage where a server hello is expected is an error, never a panic.
    #[test]
    fn garbage_server_hello_is_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let rng = &mut TestProvider::new(bytes.len() as u64);
        let (client, _) = ClientHandshake::start(&ClientConfig::default(), KeyPair::generate(rng), rng).unwrap();
        prop_assert!(client.read_server_hello(&bytes, NOW).is_err());
    }

    /// Garbage on the responder side is an error, never a panic.
    #[test]
    fn garbage_client_messages_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let pki = Pki::new();
        let server_config = ServerConfig { static_key: pki.server_static.clone(), cert_chain: pki.good_chain() };
        let intro = Intro::new(None).unwrap();
        let _ = pki.server(&server_config).read_client_hello(&intro, &bytes);
        let (_, hello) = pki.start(&ClientConfig::default()).unwrap();
        let (intro, client_hello) = read_hello(&hello);
        let (server, _) = pki.server(&server_config).read_client_hello(&intro, &client_hello).unwrap();
        prop_assert!(server.read_client_finish(&bytes).is_err());
    }

    /// Any bytes as a client's stream to a server: the decoder yields an intro and frames
    /// (never over the limit) or a wire error, and the responder takes whatever it yields
    /// without panicking.
    #[test]
    fn garbage_client_stream(bytes in proptest::collection::vec(any::<u8>(), 0..400), max in 0usize..300) {
        let pki = Pki::new();
        let server_config = ServerConfig { static_key: pki.server_static.clone(), cert_chain: pki.good_chain() };
        let mut reader = FrameDecoder::expecting_intro().with_max_frame_len(max);
        reader.push(&bytes);
        loop {
            match reader.next_frame().map_err(SignalError::from) {
                Ok(Some(frame)) => {
                    prop_assert!(frame.len() <= max);
                    let intro = reader.intro().expect("read before the first frame");
                    let _ = pki.server(&server_config).read_client_hello(intro, &frame);
                }
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(matches!(e, SignalError::Wire(_)), "{e:?}");
                    break;
                }
            }
        }
    }

    /// Any bytes as a transport frame: an authentication error.
    #[test]
    fn garbage_transport_frames_are_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let pki = Pki::new();
        let accepted = pki.handshake(pki.good_chain()).unwrap();
        let (_, mut transport) = accepted.finish(b"payload").unwrap();
        let rejected = matches!(
            transport.decrypt(&bytes),
            Err(SignalError::NoiseDecrypt { stage: NoiseStage::TransportReceive, counter: 0 })
        );
        prop_assert!(rejected);
    }
}
