//! Property tests: the client state machine against the test responder with random keys,
//! configurations and payloads, every byte stream delivered in random splits through
//! `wa_proto`'s frame decoder (re-exported as `noise::FrameDecoder`).

use proptest::prelude::*;
use wa_signal::curve::{KeyPair, PrivateKey};
use wa_signal::noise::{
    CertificateChain, ClientConfig, ClientHandshake, FrameDecoder, Intro, LENGTH_PREFIX_LEN,
    NoiseTransport, ServerConfig, ServerHandshake, TAG_LEN, UnixTime,
};
use wa_signal::provider::TestProvider;

/// Cuts `bytes` at the given (unsorted, possibly out-of-range) points.
fn split_at_points(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .collect()
}

/// Feeds `bytes` to `reader` in pieces and collects every frame.
fn frames_from(reader: &mut FrameDecoder, bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for piece in split_at_points(bytes, points) {
        reader.push(&piece);
        while let Some(frame) = reader.next_frame().expect("well-formed stream") {
            frames.push(frame);
        }
    }
    frames
}

fn key(seed: [u8; 32]) -> KeyPair {
    KeyPair::from_private(PrivateKey::from_bytes(seed))
}

#[derive(Debug, Clone)]
struct Keys {
    root: [u8; 32],
    intermediate: [u8; 32],
    server_static: [u8; 32],
    server_ephemeral: [u8; 32],
    client_static: [u8; 32],
    client_ephemeral: [u8; 32],
}

fn keys() -> impl Strategy<Value = Keys> {
    any::<[[u8; 32]; 6]>().prop_map(|k| Keys {
        root: k[0],
        intermediate: k[1],
        server_static: k[2],
        server_ephemeral: k[3],
        client_static: k[4],
        client_ephemeral: k[5],
    })
}

/// Runs a whole handshake with every byte stream delivered in pieces; returns both transports
/// and what the server saw.
fn handshake(
    keys: &Keys,
    config: &ClientConfig,
    payload: &[u8],
    points: &[usize],
) -> (NoiseTransport, NoiseTransport, Vec<u8>, Intro) {
    let root = key(keys.root);
    let server_static = key(keys.server_static);
    let chain = CertificateChain::issue(
        &mut TestProvider::new(0),
        &root.private,
        &key(keys.intermediate),
        &server_static.public,
        1_000,
        2_000,
    );
    let config = ClientConfig {
        root_key: root.public,
        ..config.clone()
    };
    let client_static = key(keys.client_static);
    let (client, hello) = ClientHandshake::start_with_ephemeral(
        &config,
        client_static.clone(),
        key(keys.client_ephemeral),
    )
    .expect("start");

    // The server reads the intro, then frames, from the same stream.
    let mut server_reader = FrameDecoder::expecting_intro();
    let server_frames = frames_from(&mut server_reader, &hello, points);
    let intro = server_reader.intro().expect("whole intro").clone();
    assert_eq!(intro, config.intro().expect("intro"));
    assert_eq!(server_frames.len(), 1);

    let server = ServerHandshake::with_ephemeral(
        &ServerConfig {
            static_key: server_static.clone(),
            cert_chain: chain.encode(),
        },
        key(keys.server_ephemeral),
    );
    let (server, server_hello) = server
        .read_client_hello(&intro, &server_frames[0])
        .expect("client hello");

    let mut client_reader = FrameDecoder::new();
    let frames = frames_from(&mut client_reader, &server_hello, points);
    assert_eq!(frames.len(), 1);
    let accepted = client
        .read_server_hello(&frames[0], UnixTime::from_secs(1_500))
        .expect("server hello");
    assert_eq!(accepted.server_static(), &server_static.public);
    let (finish, client_transport) = accepted.finish(payload).expect("finish");

    let frames = frames_from(&mut server_reader, &finish, points);
    assert_eq!(frames.len(), 1);
    let done = server
        .read_client_finish(&frames[0])
        .expect("client finish");
    assert_eq!(done.client_static, client_static.public);
    assert_eq!(
        client_transport.handshake_hash(),
        done.transport.handshake_hash()
    );
    (
        client_transport,
        done.transport,
        done.client_payload,
        done.intro,
    )
}

fn config() -> impl Strategy<Value = ClientConfig> {
    (
        any::<u8>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
    )
        .prop_map(|(dictionary_version, routing_info)| ClientConfig {
            dictionary_version,
            routing_info,
            ..ClientConfig::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn client_and_responder_agree(
        keys in keys(),
        config in config(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        points in proptest::collection::vec(any::<usize>(), 0..8),
        messages in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12),
    ) {
        let (mut client, mut server, seen_payload, intro) =
            handshake(&keys, &config, &payload, &points);
        prop_assert_eq!(seen_payload, payload);
        prop_assert_eq!(intro.routing_info(), config.routing_info.as_deref());
        prop_assert_eq!(intro.header(), config.header());

        // A conversation in random directions, each direction one byte stream read in pieces.
        let mut to_server = FrameDecoder::new();
        let mut to_client = FrameDecoder::new();
        let (mut sent_up, mut sent_down) = (0u64, 0u64);
        for (upstream, message) in &messages {
            let (sender, receiver, reader) = if *upstream {
                sent_up += 1;
                (&mut client, &mut server, &mut to_server)
            } else {
                sent_down += 1;
                (&mut server, &mut client, &mut to_client)
            };
            let frame = sender.encrypt_frame(message).expect("encrypt");
            prop_assert_eq!(frame.len(), LENGTH_PREFIX_LEN + message.len() + TAG_LEN);
            let bodies = frames_from(reader, &frame, &points);
            prop_assert_eq!(bodies.len(), 1);
            prop_assert_eq!(&receiver.decrypt(&bodies[0]).expect("decrypt"), message);
        }
        prop_assert_eq!(client.sender.next_counter(), sent_up);
        prop_assert_eq!(server.receiver.next_counter(), sent_up);
        prop_assert_eq!(server.sender.next_counter(), sent_down);
        prop_assert_eq!(client.receiver.next_counter(), sent_down);
    }

    #[test]
    fn split_halves_and_in_place_apis_agree(
        keys in keys(),
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..6),
    ) {
        let (client, server, _, _) = handshake(&keys, &ClientConfig::default(), b"p", &[]);
        let (mut send, _) = client.into_split();
        let (_, mut receive) = server.into_split();
        let mut wire = Vec::new();
        for message in &messages {
            send.encrypt_frame_into(message, &mut wire).expect("encrypt");
        }
        let mut reader = FrameDecoder::new();
        reader.push(&wire);
        for message in &messages {
            let mut body = reader.next_frame().expect("frame").expect("whole");
            receive.decrypt_in_place(&mut body).expect("decrypt");
            prop_assert_eq!(&body, message);
        }
        prop_assert_eq!(reader.buffered_len(), 0);
    }

    /// Transport frames appended to one buffer, read back in any split by a decoder whose
    /// limit is exactly the largest frame body: every frame fits, nothing is left over.
    #[test]
    fn transport_frames_reassemble_from_any_split(
        keys in keys(),
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 1..10),
        points in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let (mut client, mut server, _, _) = handshake(&keys, &ClientConfig::default(), b"p", &[]);
        let mut wire = Vec::new();
        for message in &messages {
            client.sender.encrypt_frame_into(message, &mut wire).expect("encrypt");
        }
        let largest = messages.iter().map(Vec::len).max().unwrap_or(0) + TAG_LEN;
        let mut reader = FrameDecoder::new().with_max_frame_len(largest);
        let bodies = frames_from(&mut reader, &wire, &points);
        prop_assert_eq!(reader.buffered_len(), 0);
        let plaintexts: Vec<Vec<u8>> = bodies
            .iter()
            .map(|body| server.decrypt(body).expect("decrypt"))
            .collect();
        prop_assert_eq!(plaintexts, messages);
    }
}
