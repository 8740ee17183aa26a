//! Every way a server can fail to prove itself, and every malformed input, ends in a typed error
//! and never in a panic. Chains are issued here with fresh keys and sent through the test
//! responder, so each check runs through the whole handshake.

use proptest::prelude::*;
use wa_signal::SignalError;
use wa_signal::curve::{KeyPair, PrivateKey, PublicKey};
use wa_signal::noise::{
    AcceptedServerHello, CertDetails, CertRole, Certificate, CertificateChain, CertificateError,
    ClientConfig, ClientHandshake, FrameReader, Intro, NoiseStage, ServerConfig, ServerHandshake,
    UnixTime, encode_frame,
};

const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

struct Pki {
    root: KeyPair,
    intermediate: KeyPair,
    server_static: KeyPair,
}

impl Pki {
    fn new() -> Self {
        Self {
            root: KeyPair::generate(),
            intermediate: KeyPair::generate(),
            server_static: KeyPair::generate(),
        }
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
        CertificateChain {
            intermediate: Certificate::issue(intermediate, intermediate_signer),
            leaf: Certificate::issue(leaf, leaf_signer),
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
        let (client, hello) = ClientHandshake::start(&config, KeyPair::generate())?;
        let (intro, used) = Intro::parse(&hello)?.expect("intro");
        let server = ServerHandshake::new(&ServerConfig {
            static_key: self.server_static.clone(),
            cert_chain,
        });
        let (_, server_hello) = server.read_client_hello(&intro, &hello[used + 3..])?;
        client.read_server_hello(&server_hello[3..], NOW)
    }

    fn rejection(&self, cert_chain: Vec<u8>) -> CertificateError {
        match self.handshake(cert_chain) {
            Err(SignalError::NoiseCertificate(e)) => e,
            other => panic!("expected a certificate error, got {other:?}"),
        }
    }
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
    let impostor = KeyPair::generate();
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
    let other = KeyPair::generate();
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
        let (client, hello) = ClientHandshake::start(&config, KeyPair::generate()).unwrap();
        let (intro, used) = Intro::parse(&hello).unwrap().unwrap();
        let (server, server_hello) = ServerHandshake::new(&server_config)
            .read_client_hello(&intro, &hello[used + 3..])
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
fn oversized_frames_and_plaintexts() {
    let mut reader = FrameReader::with_max_frame_len(1024);
    reader.push(&[0x00, 0x04, 0x01]);
    assert!(matches!(
        reader.next_frame(),
        Err(SignalError::NoiseFrameTooLarge {
            len: 1025,
            max: 1024
        })
    ));
    let too_long_routing = ClientConfig {
        routing_info: Some(vec![0; 1 << 24]),
        ..ClientConfig::default()
    };
    assert!(matches!(
        ClientHandshake::start(&too_long_routing, KeyPair::generate()),
        Err(SignalError::NoiseMalformed {
            what: "routing info",
            ..
        })
    ));
    assert!(matches!(
        encode_frame(&vec![0; 1 << 24]),
        Err(SignalError::NoiseFrameTooLarge { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Garbage where a server hello is expected is an error, never a panic.
    #[test]
    fn garbage_server_hello_is_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (client, _) = ClientHandshake::start(&ClientConfig::default(), KeyPair::generate()).unwrap();
        prop_assert!(client.read_server_hello(&bytes, NOW).is_err());
    }

    /// Garbage on the responder side is an error, never a panic.
    #[test]
    fn garbage_client_messages_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let pki = Pki::new();
        let server_config = ServerConfig { static_key: pki.server_static.clone(), cert_chain: pki.good_chain() };
        let intro = Intro { dictionary_version: 3, routing_info: None };
        let _ = ServerHandshake::new(&server_config).read_client_hello(&intro, &bytes);
        let (_, hello) = ClientHandshake::start(&ClientConfig::default(), KeyPair::generate()).unwrap();
        let (server, _) = ServerHandshake::new(&server_config).read_client_hello(&intro, &hello[7..]).unwrap();
        prop_assert!(server.read_client_finish(&bytes).is_err());
    }

    /// Any bytes through the intro parser and the frame reader: errors or frames, never panics,
    /// and never a frame over the limit.
    #[test]
    fn garbage_through_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..400), max in 0usize..300) {
        let _ = Intro::parse(&bytes);
        let mut reader = FrameReader::with_max_frame_len(max);
        reader.push(&bytes);
        while let Ok(Some(frame)) = reader.next_frame() {
            prop_assert!(frame.len() <= max);
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
