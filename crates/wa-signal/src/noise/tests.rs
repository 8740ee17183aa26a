//! Internal fixture tests: the `h`/`ck`/`k` trace after every step and the transport keys, on
//! both sides, for every transcript in `$WA_FIXTURES/wire/noise-handshake.json`. (The public
//! outputs — frames, final hash, transport frames — are checked through the public API in
//! `tests/noise_transcripts.rs`.)

use serde_json::Value;
use wa_testkit::vectors::{b64, b64_array};

use super::symmetric::TraceEntry;
use super::*;
use crate::curve::PrivateKey;
use crate::provider::TestProvider;

fn key_pair(keys: &Value, name: &str) -> KeyPair {
    let pair = KeyPair::from_private(PrivateKey::from_bytes(b64_array::<32>(
        &keys[name]["private_b64"],
    )));
    assert_eq!(
        pair.public.as_bytes(),
        &b64_array::<32>(&keys[name]["public_b64"]),
        "{name}: public key matches private"
    );
    pair
}

fn transcripts() -> Vec<Value> {
    let file = wa_testkit::fixtures::read_json("wire/noise-handshake.json");
    let transcripts = file["transcripts"].as_array().cloned().unwrap_or_default();
    assert!(
        !transcripts.is_empty(),
        "no Noise transcripts in the fixtures"
    );
    transcripts
}

fn assert_trace(name: &str, side: &str, ours: &[TraceEntry], expected: &[Value]) {
    assert_eq!(ours.len(), expected.len(), "{name} {side}: trace length");
    for (i, (got, want)) in ours.iter().zip(expected).enumerate() {
        let step = want["step"].as_str().unwrap_or("?");
        assert_eq!(
            got.h,
            b64_array::<32>(&want["h"]),
            "{name} {side}: h after step {i} ({step})"
        );
        let want_ck = want.get("ck").map(b64_array::<32>);
        let want_k = want.get("k").map(b64_array::<32>);
        assert_eq!(got.ck, want_ck, "{name} {side}: ck after step {i} ({step})");
        assert_eq!(got.k, want_k, "{name} {side}: k after step {i} ({step})");
    }
}

#[test]
fn every_transcript_reproduces_its_trace_and_transport_keys_on_both_sides() {
    for t in transcripts() {
        let name = t["name"].as_str().unwrap_or("?").to_owned();
        let keys = &t["keys"];
        let hs = &t["handshake"];
        let trace = hs["trace"].as_array().expect("trace");
        let header = b64(&t["noise_header_b64"]);
        let config = ClientConfig {
            dictionary_version: header[3],
            routing_info: t.get("routing_info_b64").filter(|v| !v.is_null()).map(b64),
            root_key: key_pair(keys, "test_root").public,
        };

        // Client: hello, then the recorded server hello, then the finish.
        let (client, hello) = ClientHandshake::start_with_ephemeral(
            &config,
            key_pair(keys, "client_static_noise_key"),
            key_pair(keys, "client_ephemeral"),
        )
        .unwrap();
        assert_eq!(
            hello,
            b64(&hs["client_hello"]["frame_b64"]),
            "{name}: client hello"
        );
        assert_trace(&name, "client", &client.state.trace, &trace[..1]);

        let mut reader = FrameDecoder::new();
        reader.push(&b64(&hs["server_hello"]["frame_b64"]));
        let server_hello = reader.next_frame().unwrap().expect("server hello frame");
        let leaf_from = t["cert_chain"]["leaf_details"]["notBefore"]
            .as_u64()
            .expect("notBefore");
        let accepted = client
            .read_server_hello(&server_hello, UnixTime::from_secs(leaf_from))
            .unwrap();
        assert_trace(&name, "client", &accepted.state.trace, &trace[..4]);
        let payload = b64(&hs["client_finish"]["client_payload_b64"]);
        let (finish, client_state) = accepted.finish_handshake(&payload).unwrap();
        assert_eq!(
            finish,
            b64(&hs["client_finish"]["frame_b64"]),
            "{name}: client finish"
        );
        assert_trace(&name, "client", &client_state.trace, trace);
        assert_eq!(
            client_state.handshake_hash(),
            b64_array::<32>(&hs["final_handshake_hash_b64"]),
            "{name}: final hash"
        );
        let (c2s, s2c) = client_state.split_keys();
        assert_eq!(
            c2s,
            b64_array::<32>(&t["transport_keys"]["client_to_server_key_b64"]),
            "{name}"
        );
        assert_eq!(
            s2c,
            b64_array::<32>(&t["transport_keys"]["server_to_client_key_b64"]),
            "{name}"
        );

        // Server: the recorded client hello and finish.
        let server_config = ServerConfig {
            static_key: key_pair(keys, "server_static"),
            cert_chain: b64(&t["cert_chain"]["bytes_b64"]),
        };
        let mut reader = FrameDecoder::expecting_intro();
        reader.push(&hello);
        let client_hello = reader.next_frame().unwrap().expect("client hello frame");
        let intro = reader.intro().expect("intro").clone();
        assert_eq!(intro, config.intro().unwrap(), "{name}: intro");
        assert_eq!(
            intro.to_bytes(),
            b64(&t["intro_b64"]),
            "{name}: intro bytes"
        );
        let (server, server_hello_frame) =
            ServerHandshake::with_ephemeral(&server_config, key_pair(keys, "server_ephemeral"))
                .read_client_hello(&intro, &client_hello)
                .unwrap();
        assert_eq!(
            server_hello_frame,
            b64(&hs["server_hello"]["frame_b64"]),
            "{name}: server hello"
        );
        assert_trace(&name, "server", &server.state.trace, &trace[..4]);
        reader.push(&finish);
        let finish = reader.next_frame().unwrap().expect("client finish frame");
        let (partial, server_state) = server.finish_handshake(&finish).unwrap();
        assert_eq!(partial.client_payload, payload, "{name}: client payload");
        assert_eq!(
            partial.client_static.as_bytes(),
            &b64_array::<32>(&keys["client_static_noise_key"]["public_b64"])
        );
        assert_trace(&name, "server", &server_state.trace, trace);
        assert_eq!(
            server_state.split_keys(),
            (c2s, s2c),
            "{name}: server split"
        );
        eprintln!(
            "{name}: trace ({} steps) and transport keys match on both sides",
            trace.len()
        );
    }
}

#[test]
fn transport_counter_exhaustion_is_an_error_on_both_halves() {
    let (mut client, mut server) = pair();
    client
        .sender
        .cipher_mut()
        .set_next_counter(u64::from(u32::MAX));
    server
        .receiver
        .cipher_mut()
        .set_next_counter(u64::from(u32::MAX));
    let frame = client.encrypt_frame(b"last").unwrap();
    assert_eq!(server.decrypt(&frame[3..]).unwrap(), b"last");
    assert!(matches!(
        client.encrypt_frame(b"one more"),
        Err(SignalError::NoiseCounterExhausted {
            stage: NoiseStage::TransportSend
        })
    ));
    assert!(matches!(
        server.decrypt(&frame[3..]),
        Err(SignalError::NoiseCounterExhausted {
            stage: NoiseStage::TransportReceive
        })
    ));
}

fn pair() -> (NoiseTransport, NoiseTransport) {
    let rng = &mut TestProvider::new(1);
    let (server_config, root_key) = ServerConfig::generate(rng, 0, 10);
    let config = ClientConfig {
        root_key,
        ..ClientConfig::default()
    };
    let noise_key = KeyPair::generate(rng);
    let (client, hello) = ClientHandshake::start(&config, noise_key, rng).unwrap();
    let mut reader = FrameDecoder::expecting_intro();
    reader.push(&hello);
    let client_hello = reader.next_frame().unwrap().unwrap();
    let (server, server_hello) = ServerHandshake::new(&server_config, rng)
        .read_client_hello(reader.intro().unwrap(), &client_hello)
        .unwrap();
    let (finish, client) = client
        .read_server_hello(&server_hello[3..], UnixTime::from_secs(5))
        .unwrap()
        .finish(b"payload")
        .unwrap();
    let server = server.read_client_finish(&finish[3..]).unwrap();
    (client, server.transport)
}

#[test]
fn debug_output_shows_no_secrets() {
    let rng = &mut TestProvider::new(2);
    let noise_key = KeyPair::generate(rng);
    let ephemeral = KeyPair::generate(rng);
    let (client, _) = ClientHandshake::start_with_ephemeral(
        &ClientConfig::default(),
        noise_key.clone(),
        ephemeral.clone(),
    )
    .unwrap();
    let (transport, _) = pair();
    for shown in [format!("{client:?}"), format!("{transport:?}")] {
        for secret in [&noise_key.private, &ephemeral.private] {
            let hex: String = secret
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(!shown.contains(&hex));
            assert!(!shown.contains(&format!("{:?}", secret.as_bytes())));
        }
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

#[test]
fn defaults_are_whatsapps() {
    let config = ClientConfig::default();
    assert_eq!(config.dictionary_version, 3);
    assert_eq!(config.routing_info, None);
    assert_eq!(config.root_key, WHATSAPP_ROOT_KEY);
    assert_eq!(config.intro().unwrap().to_bytes(), b"WA\x06\x03");
    assert_eq!(PROTOCOL_NAME.len(), 28);
}

#[test]
fn client_intro_is_wa_protos_intro_with_the_dictionary_version() {
    let config = ClientConfig {
        dictionary_version: 2,
        routing_info: Some(vec![8, 5, 8, 8]),
        ..ClientConfig::default()
    };
    assert_eq!(config.header(), *b"WA\x06\x02");
    let intro = config.intro().unwrap();
    assert_eq!(intro.header(), config.header());
    assert_eq!(intro.routing_info(), Some(&[8, 5, 8, 8][..]));
    assert_eq!(
        intro.to_bytes(),
        b"ED\x00\x01\x00\x00\x04\x08\x05\x08\x08WA\x06\x02"
    );
    // `start` sends exactly that intro, then the framed hello.
    let rng = &mut TestProvider::new(3);
    let (_, hello) = ClientHandshake::start(&config, KeyPair::generate(rng), rng).unwrap();
    assert_eq!(&hello[..intro.encoded_len()], intro.to_bytes());
    let body = &hello[intro.encoded_len() + LENGTH_PREFIX_LEN..];
    let len = &hello[intro.encoded_len()..intro.encoded_len() + LENGTH_PREFIX_LEN];
    assert_eq!(
        usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]),
        body.len()
    );
}
