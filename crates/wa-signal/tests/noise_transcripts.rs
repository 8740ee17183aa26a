//! Reproduces every recorded Noise transcript in `$WA_FIXTURES/wire/noise-handshake.json` byte
//! for byte through the public API (client and test responder), then checks that tampering with
//! the recorded bytes, the wrong root or the wrong time is rejected with the right typed error.
//!
//! The `h`/`ck`/`k` trace after each step and the transport keys are compared by the unit test
//! `noise::tests::every_transcript_reproduces_its_trace_and_transport_keys_on_both_sides` (they
//! are not reachable through the public API).

use prost::Message;
use serde_json::Value;
use wa_proto::proto::HandshakeMessage;
use wa_signal::SignalError;
use wa_signal::curve::{KeyPair, PrivateKey, PublicKey};
use wa_signal::noise::{
    AcceptedServerHello, CertDetails, CertRole, CertificateError, ClientConfig, ClientHandshake,
    FrameDecoder, Intro, NoiseStage, NoiseTransport, ServerConfig, ServerHandshake, UnixTime,
    WHATSAPP_ROOT_KEY,
};
use wa_signal::provider::TestProvider;
use wa_testkit::vectors::{b64, b64_array};

/// One transcript, decoded.
struct Transcript {
    name: String,
    json: Value,
}

impl Transcript {
    fn all() -> Vec<Self> {
        let file = wa_testkit::fixtures::read_json("wire/noise-handshake.json");
        assert_eq!(file["format"], "wa-noise-transcript/1");
        let found: Vec<Self> = file["transcripts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|json| Self {
                name: json["name"].as_str().unwrap_or("?").to_owned(),
                json,
            })
            .collect();
        assert!(!found.is_empty(), "no Noise transcripts in the fixtures");
        found
    }

    fn key_pair(&self, name: &str) -> KeyPair {
        let keys = &self.json["keys"][name];
        let pair = KeyPair::from_private(PrivateKey::from_bytes(b64_array::<32>(
            &keys["private_b64"],
        )));
        assert_eq!(
            pair.public.as_bytes(),
            &b64_array::<32>(&keys["public_b64"])
        );
        pair
    }

    fn hs(&self, message: &str, field: &str) -> Vec<u8> {
        b64(&self.json["handshake"][message][field])
    }

    fn config(&self) -> ClientConfig {
        let header = b64(&self.json["noise_header_b64"]);
        assert_eq!(&header[..3], b"WA\x06");
        ClientConfig {
            dictionary_version: header[3],
            routing_info: self
                .json
                .get("routing_info_b64")
                .filter(|v| !v.is_null())
                .map(b64),
            root_key: self.key_pair("test_root").public,
        }
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            static_key: self.key_pair("server_static"),
            cert_chain: b64(&self.json["cert_chain"]["bytes_b64"]),
        }
    }

    /// A time at which both recorded certificates are valid.
    fn valid_now(&self) -> UnixTime {
        UnixTime::from_secs(
            self.details("leaf")["notBefore"]
                .as_u64()
                .expect("notBefore"),
        )
    }

    fn details(&self, which: &str) -> &Value {
        &self.json["cert_chain"][format!("{which}_details")]
    }

    fn expected_details(&self, which: &str) -> CertDetails {
        let d = self.details(which);
        CertDetails {
            serial: d["serial"].as_u64().expect("serial") as u32,
            issuer_serial: d["issuerSerial"].as_u64().expect("issuerSerial") as u32,
            key: PublicKey::from_raw(b64_array::<32>(&d["key_b64"])),
            not_before: d["notBefore"].as_u64(),
            not_after: d["notAfter"].as_u64(),
        }
    }

    fn start(&self, config: &ClientConfig) -> (ClientHandshake, Vec<u8>) {
        ClientHandshake::start_with_ephemeral(
            config,
            self.key_pair("client_static_noise_key"),
            self.key_pair("client_ephemeral"),
        )
        .expect("start")
    }

    /// The client after reading `server_hello` (a whole frame as recorded, or tampered).
    fn client_reads(
        &self,
        config: &ClientConfig,
        server_hello_frame: &[u8],
        now: UnixTime,
    ) -> Result<AcceptedServerHello, SignalError> {
        let (client, _) = self.start(config);
        let mut reader = FrameDecoder::new();
        reader.push(server_hello_frame);
        let frame = reader.next_frame()?.expect("a whole frame");
        client.read_server_hello(&frame, now)
    }

    /// Both transports after the recorded handshake.
    fn transports(&self) -> (NoiseTransport, NoiseTransport) {
        let accepted = self
            .client_reads(
                &self.config(),
                &self.hs("server_hello", "frame_b64"),
                self.valid_now(),
            )
            .expect("recorded server hello");
        let (_, client) = accepted
            .finish(&self.hs("client_finish", "client_payload_b64"))
            .expect("finish");
        let (hello, body) = split_intro(&self.hs("client_hello", "frame_b64"));
        let (server, _) = ServerHandshake::with_ephemeral(
            &self.server_config(),
            self.key_pair("server_ephemeral"),
        )
        .read_client_hello(&hello, &body)
        .expect("client hello");
        let finish = self.hs("client_finish", "frame_b64");
        let server = server
            .read_client_finish(&finish[3..])
            .expect("client finish");
        (client, server.transport)
    }
}

/// Splits recorded client-hello bytes into the intro and the first frame's body, as a server
/// reads them.
fn split_intro(bytes: &[u8]) -> (Intro, Vec<u8>) {
    let mut reader = FrameDecoder::expecting_intro();
    reader.push(bytes);
    let body = reader.next_frame().expect("frame").expect("whole frame");
    assert_eq!(reader.buffered_len(), 0);
    (reader.intro().expect("whole intro").clone(), body)
}

/// Re-frames a server hello after changing it.
fn reframe_server_hello(
    frame: &[u8],
    change: impl FnOnce(&mut wa_proto::proto::handshake_message::ServerHello),
) -> Vec<u8> {
    let mut message = HandshakeMessage::decode(&frame[3..]).expect("recorded message");
    change(message.server_hello.as_mut().expect("server hello"));
    let mut out = Vec::new();
    wa_proto::frame::encode_frame(&message.encode_to_vec(), &mut out).expect("frame");
    out
}

#[test]
fn client_and_server_reproduce_every_transcript_byte_for_byte() {
    for t in Transcript::all() {
        let name = &t.name;
        let config = t.config();

        // Client hello: intro + frame.
        let (client, hello) = t.start(&config);
        assert_eq!(
            hello,
            t.hs("client_hello", "frame_b64"),
            "{name}: client hello"
        );
        let (intro, body) = split_intro(&hello);
        assert_eq!(intro, config.intro().expect("intro"), "{name}: intro");
        assert_eq!(
            body,
            t.hs("client_hello", "handshake_message_b64"),
            "{name}: client hello message"
        );
        assert_eq!(
            config.intro().expect("intro").to_bytes(),
            b64(&t.json["intro_b64"]),
            "{name}: intro bytes"
        );

        // Server hello, produced by the responder and accepted by the client. Fed one byte at a
        // time to exercise the frame reader.
        let server_config = t.server_config();
        let (server, server_hello) =
            ServerHandshake::with_ephemeral(&server_config, t.key_pair("server_ephemeral"))
                .read_client_hello(&intro, &body)
                .expect("client hello");
        assert_eq!(
            server_hello,
            t.hs("server_hello", "frame_b64"),
            "{name}: server hello"
        );
        let mut reader = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in &server_hello {
            reader.push(std::slice::from_ref(byte));
            frames.extend(reader.next_frame().expect("frame"));
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0],
            t.hs("server_hello", "handshake_message_b64"),
            "{name}"
        );
        let accepted = client
            .read_server_hello(&frames[0], t.valid_now())
            .unwrap_or_else(|e| panic!("{name}: server hello rejected: {e}"));
        assert_eq!(
            accepted.server_static(),
            &t.key_pair("server_static").public,
            "{name}"
        );
        assert_eq!(
            accepted.certificates().intermediate,
            t.expected_details("intermediate"),
            "{name}"
        );
        assert_eq!(
            accepted.certificates().leaf,
            t.expected_details("leaf"),
            "{name}"
        );

        // Client finish with the recorded ClientPayload.
        let payload = t.hs("client_finish", "client_payload_b64");
        let (finish, mut client_transport) = accepted.finish(&payload).expect("finish");
        assert_eq!(
            finish,
            t.hs("client_finish", "frame_b64"),
            "{name}: client finish"
        );
        let final_hash = b64_array::<32>(&t.json["handshake"]["final_handshake_hash_b64"]);
        assert_eq!(client_transport.handshake_hash(), &final_hash, "{name}");

        let done = server.read_client_finish(&finish[3..]).expect("finish");
        assert_eq!(done.client_payload, payload, "{name}: decrypted payload");
        assert_eq!(
            done.client_static,
            t.key_pair("client_static_noise_key").public
        );
        assert_eq!(done.intro, intro);
        let mut server_transport = done.transport;
        assert_eq!(server_transport.handshake_hash(), &final_hash, "{name}");

        // Transport, in recorded order: encrypt the plaintexts and compare the frames, decrypt
        // the recorded frames on the other side.
        let transport = t.json["transport"].as_array().expect("transport");
        assert!(!transport.is_empty());
        for (i, entry) in transport.iter().enumerate() {
            let plaintext = b64(&entry["plaintext_b64"]);
            let frame = b64(&entry["frame_b64"]);
            let counter = entry["counter"].as_u64().expect("counter");
            let (sender, receiver) = match entry["direction"].as_str() {
                Some("client->server") => (&mut client_transport, &mut server_transport),
                Some("server->client") => (&mut server_transport, &mut client_transport),
                other => panic!("{name}: unknown direction {other:?}"),
            };
            assert_eq!(sender.sender.next_counter(), counter, "{name} #{i}");
            assert_eq!(
                sender.encrypt_frame(&plaintext).expect("encrypt"),
                frame,
                "{name}: transport frame #{i}"
            );
            let mut reader = FrameDecoder::new();
            reader.push(&frame);
            let body = reader.next_frame().expect("frame").expect("whole frame");
            assert_eq!(
                receiver.decrypt(&body).expect("decrypt"),
                plaintext,
                "{name}: transport plaintext #{i}"
            );
        }
        eprintln!(
            "{name}: client hello, server hello, client finish, final hash and {} transport frames reproduced",
            transport.len()
        );
    }
}

#[test]
fn tampered_server_hello_is_rejected() {
    for t in Transcript::all() {
        let name = &t.name;
        let frame = t.hs("server_hello", "frame_b64");
        let config = t.config();
        let now = t.valid_now();
        type Hello = wa_proto::proto::handshake_message::ServerHello;
        fn static_field(h: &mut Hello) -> &mut Vec<u8> {
            h.r#static.as_mut().expect("static")
        }
        fn payload_field(h: &mut Hello) -> &mut Vec<u8> {
            h.payload.as_mut().expect("payload")
        }
        fn ephemeral_field(h: &mut Hello) -> &mut Vec<u8> {
            h.ephemeral.as_mut().expect("ephemeral")
        }
        let flip = |field: fn(&mut Hello) -> &mut Vec<u8>, at: usize| {
            reframe_server_hello(&frame, |hello| field(hello)[at] ^= 0x01)
        };

        for (what, tampered, stage) in [
            (
                "static ciphertext",
                flip(static_field, 0),
                NoiseStage::ServerHelloStatic,
            ),
            (
                "static tag",
                flip(static_field, 40),
                NoiseStage::ServerHelloStatic,
            ),
            (
                "payload ciphertext",
                flip(payload_field, 5),
                NoiseStage::ServerHelloPayload,
            ),
            (
                "server ephemeral",
                flip(ephemeral_field, 3),
                NoiseStage::ServerHelloStatic,
            ),
        ] {
            match t.client_reads(&config, &tampered, now) {
                Err(SignalError::NoiseDecrypt {
                    stage: got,
                    counter: 0,
                }) => {
                    assert_eq!(got, stage, "{name}: {what}")
                }
                other => panic!("{name}: tampered {what}: {other:?}"),
            }
        }

        let truncated = reframe_server_hello(&frame, |h| {
            h.payload.as_mut().expect("payload").truncate(10)
        });
        assert!(matches!(
            t.client_reads(&config, &truncated, now),
            Err(SignalError::NoiseDecrypt {
                stage: NoiseStage::ServerHelloPayload,
                ..
            })
        ));
        let no_static = reframe_server_hello(&frame, |h| h.r#static = None);
        assert!(matches!(
            t.client_reads(&config, &no_static, now),
            Err(SignalError::NoiseMalformed { .. })
        ));
        let short_ephemeral =
            reframe_server_hello(&frame, |h| h.ephemeral.as_mut().expect("e").truncate(31));
        assert!(matches!(
            t.client_reads(&config, &short_ephemeral, now),
            Err(SignalError::NoiseMalformed { .. })
        ));
        let low_order = reframe_server_hello(&frame, |h| h.ephemeral = Some(vec![0; 32]));
        assert!(matches!(
            t.client_reads(&config, &low_order, now),
            Err(SignalError::NoiseMalformed { .. })
        ));
        // A client hello where a server hello is expected.
        let wrong_message = t.hs("client_hello", "handshake_message_b64");
        let (client, _) = t.start(&config);
        assert!(matches!(
            client.read_server_hello(&wrong_message, now),
            Err(SignalError::NoiseMalformed { .. })
        ));
        // The same bytes under another prologue (dictionary version) do not authenticate.
        let other_version = ClientConfig {
            dictionary_version: config.dictionary_version ^ 1,
            ..config.clone()
        };
        assert!(matches!(
            t.client_reads(&other_version, &frame, now),
            Err(SignalError::NoiseDecrypt {
                stage: NoiseStage::ServerHelloStatic,
                ..
            })
        ));
        eprintln!("{name}: tampered server hellos rejected");
    }
}

#[test]
fn recorded_chain_needs_the_right_root_and_time() {
    for t in Transcript::all() {
        let name = &t.name;
        let frame = t.hs("server_hello", "frame_b64");
        let config = t.config();
        let cert = |config: &ClientConfig, now: u64| match t.client_reads(
            config,
            &frame,
            UnixTime::from_secs(now),
        ) {
            Err(SignalError::NoiseCertificate(e)) => e,
            other => panic!("{name}: expected a certificate error, got {other:?}"),
        };
        let valid = t.valid_now().as_secs();

        // The default (WhatsApp's) root, and a random one, do not vouch for the test chain.
        let whatsapp = ClientConfig {
            root_key: WHATSAPP_ROOT_KEY,
            ..config.clone()
        };
        let random = ClientConfig {
            root_key: KeyPair::generate(&mut TestProvider::new(1)).public,
            ..config.clone()
        };
        for wrong in [whatsapp, random] {
            assert_eq!(
                cert(&wrong, valid),
                CertificateError::BadSignature {
                    role: CertRole::Intermediate
                },
                "{name}"
            );
        }

        let leaf = t.expected_details("leaf");
        let intermediate = t.expected_details("intermediate");
        let leaf_end = leaf.not_after.expect("leaf notAfter");
        let inter_end = intermediate.not_after.expect("intermediate notAfter");
        let inter_start = intermediate.not_before.expect("intermediate notBefore");
        assert!(
            t.client_reads(&config, &frame, UnixTime::from_secs(leaf_end))
                .is_ok(),
            "{name}: notAfter is inclusive"
        );
        assert!(matches!(
            cert(&config, leaf_end + 1),
            CertificateError::Expired {
                role: CertRole::Leaf,
                ..
            }
        ));
        assert!(matches!(
            cert(&config, inter_end + 1),
            CertificateError::Expired {
                role: CertRole::Intermediate,
                ..
            }
        ));
        assert!(matches!(
            cert(&config, inter_start - 1),
            CertificateError::NotYetValid {
                role: CertRole::Intermediate,
                ..
            }
        ));
        eprintln!("{name}: wrong roots and out-of-validity times rejected");
    }
}

#[test]
fn tampered_replayed_and_reordered_transport_frames_are_rejected() {
    for t in Transcript::all() {
        let name = &t.name;
        let (mut client, mut server) = t.transports();
        let frames: Vec<(String, Vec<u8>)> = t.json["transport"]
            .as_array()
            .expect("transport")
            .iter()
            .map(|e| {
                (
                    e["direction"].as_str().unwrap_or("?").to_owned(),
                    b64(&e["frame_b64"])[3..].to_vec(),
                )
            })
            .collect();
        let to_client: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|(d, _)| d == "server->client")
            .map(|(_, f)| f)
            .collect();
        let to_server: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|(d, _)| d == "client->server")
            .map(|(_, f)| f)
            .collect();

        // Out of order: frame 1 first.
        assert!(matches!(
            client.decrypt(to_client[1]),
            Err(SignalError::NoiseDecrypt {
                stage: NoiseStage::TransportReceive,
                counter: 0
            })
        ));
        // Tampered body and tag, truncated.
        for at in [0, to_client[0].len() - 1] {
            let mut bad = to_client[0].clone();
            bad[at] ^= 0x80;
            assert!(matches!(
                client.decrypt(&bad),
                Err(SignalError::NoiseDecrypt { counter: 0, .. })
            ));
        }
        assert!(matches!(
            client.decrypt(&to_client[0][..to_client[0].len() - 1]),
            Err(SignalError::NoiseDecrypt { .. })
        ));
        assert!(matches!(
            client.decrypt(&[]),
            Err(SignalError::NoiseDecrypt { .. })
        ));
        // A failed frame does not advance the counter: the real one still decrypts...
        assert!(client.decrypt(to_client[0]).is_ok(), "{name}");
        // ...and replaying it is rejected under the next counter.
        assert!(matches!(
            client.decrypt(to_client[0]),
            Err(SignalError::NoiseDecrypt { counter: 1, .. })
        ));
        // A frame from the other direction does not decrypt either.
        assert!(matches!(
            client.decrypt(to_server[1]),
            Err(SignalError::NoiseDecrypt { counter: 1, .. })
        ));
        // The server side behaves the same.
        assert!(server.decrypt(to_server[0]).is_ok());
        assert!(matches!(
            server.decrypt(to_server[0]),
            Err(SignalError::NoiseDecrypt {
                stage: NoiseStage::TransportReceive,
                counter: 1
            })
        ));
        eprintln!("{name}: tampered, truncated, replayed and reordered frames rejected");
    }
}
