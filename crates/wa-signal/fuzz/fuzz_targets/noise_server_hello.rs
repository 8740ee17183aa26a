//! The Noise client's `read_server_hello` after a valid client start (fixed keys), fed:
//!
//! - mode 0: arbitrary bytes as the frame body;
//! - mode 1: arbitrary bytes as the received stream, split into frames by `wa_proto`'s
//!   `FrameDecoder` (in chunks of a fuzz-chosen size), its first frame read as the hello;
//! - mode 2: a genuine server hello (the test responder) whose certificate chain is arbitrary
//!   bytes: the client must accept it exactly when `CertificateChain::decode` + `verify` do,
//!   with the same error;
//! - mode 3: a genuine server hello with fuzz-chosen bytes flipped (and maybe truncated): an
//!   unchanged hello is accepted.
//!
//! Must never panic. An accepted hello finishes the handshake, and the transport refuses the
//! input as a frame.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use wa_signal::SignalError;
use wa_signal::curve::KeyPair;
use wa_signal::noise::{
    AcceptedServerHello, CertDetails, Certificate, CertificateChain, ClientConfig, ClientHandshake,
    FrameDecoder, Intro, LENGTH_PREFIX_LEN, ServerConfig, ServerHandshake, UnixTime,
};
use wa_signal_fuzz::key_pair;

const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

struct Setup {
    config: ClientConfig,
    noise_key: KeyPair,
    ephemeral: KeyPair,
    server_static: KeyPair,
    server_ephemeral: KeyPair,
    intro: Intro,
    client_hello: Vec<u8>,
    server_hello: Vec<u8>,
}

/// A chain like WhatsApp's, signed deterministically.
fn chain(root: &KeyPair, intermediate: &KeyPair, server_static: &KeyPair) -> CertificateChain {
    let details = |serial, issuer_serial, key| CertDetails {
        serial,
        issuer_serial,
        key,
        not_before: Some(1_700_000_000),
        not_after: Some(1_800_000_000),
    };
    let issue = |details: CertDetails, issuer: &KeyPair| {
        let details = details.encode();
        let signature = issuer
            .private
            .sign_with_randomness(&details, &[7; 64])
            .to_vec();
        Certificate { details, signature }
    };
    CertificateChain {
        intermediate: issue(details(1, 0, intermediate.public), root),
        leaf: issue(details(2, 1, server_static.public), intermediate),
    }
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let (root, intermediate) = (key_pair(3), key_pair(4));
    let (server_static, server_ephemeral) = (key_pair(5), key_pair(6));
    let config = ClientConfig {
        root_key: root.public,
        routing_info: Some(vec![8, 5, 8, 8]),
        ..ClientConfig::default()
    };
    let (noise_key, ephemeral) = (key_pair(1), key_pair(2));
    let (_, hello) =
        ClientHandshake::start_with_ephemeral(&config, noise_key.clone(), ephemeral.clone())
            .expect("start");
    let mut reader = FrameDecoder::expecting_intro();
    reader.push(&hello);
    let client_hello = reader.next_frame().expect("frame").expect("whole frame");
    let intro = reader.intro().expect("intro").clone();
    let (_, server_hello) = ServerHandshake::with_ephemeral(
        &ServerConfig {
            static_key: server_static.clone(),
            cert_chain: chain(&root, &intermediate, &server_static).encode(),
        },
        server_ephemeral.clone(),
    )
    .read_client_hello(&intro, &client_hello)
    .expect("client hello");
    Setup {
        config,
        noise_key,
        ephemeral,
        server_static,
        server_ephemeral,
        intro,
        client_hello,
        server_hello: server_hello[LENGTH_PREFIX_LEN..].to_vec(),
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let s = &*SETUP;
    let (client, _) =
        ClientHandshake::start_with_ephemeral(&s.config, s.noise_key.clone(), s.ephemeral.clone())
            .expect("start");
    let accepted = match control % 4 {
        0 => client.read_server_hello(rest, NOW),
        1 => {
            let mut reader = FrameDecoder::new();
            let mut first = None;
            'feed: for piece in rest.chunks(usize::from(control >> 2) + 1) {
                reader.push(piece);
                match reader.next_frame().map_err(SignalError::from) {
                    Ok(Some(frame)) => {
                        first = Some(frame);
                        break 'feed;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        assert!(matches!(e, SignalError::Wire(_)), "{e:?}");
                        return;
                    }
                }
            }
            let Some(frame) = first else {
                return;
            };
            client.read_server_hello(&frame, NOW)
        }
        2 => {
            let server = ServerHandshake::with_ephemeral(
                &ServerConfig {
                    static_key: s.server_static.clone(),
                    cert_chain: rest.to_vec(),
                },
                s.server_ephemeral.clone(),
            );
            let (_, hello) = server
                .read_client_hello(&s.intro, &s.client_hello)
                .expect("client hello");
            let accepted = client.read_server_hello(&hello[LENGTH_PREFIX_LEN..], NOW);
            let direct = CertificateChain::decode(rest)
                .and_then(|chain| chain.verify(&s.config.root_key, &s.server_static.public, NOW));
            match (&accepted, direct) {
                (Ok(accepted), Ok(verified)) => assert_eq!(accepted.certificates(), &verified),
                (Err(SignalError::NoiseCertificate(got)), Err(expected)) => {
                    assert_eq!(got, &expected)
                }
                (got, expected) => panic!("client: {got:?}, chain alone: {expected:?}"),
            }
            accepted
        }
        _ => {
            let mut hello = s.server_hello.clone();
            let edits = rest.chunks_exact(3);
            if let [cut] = edits.remainder() {
                hello.truncate(hello.len() * usize::from(*cut) / 255);
            }
            for edit in edits {
                if hello.is_empty() {
                    break;
                }
                let at = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % hello.len();
                hello[at] ^= edit[2];
            }
            let accepted = client.read_server_hello(&hello, NOW);
            if hello == s.server_hello {
                assert!(accepted.is_ok(), "{accepted:?}");
            }
            accepted
        }
    };
    if let Ok(accepted) = accepted {
        finish(accepted, rest);
    }
});

fn finish(accepted: AcceptedServerHello, frame: &[u8]) {
    assert_eq!(accepted.server_static(), &SETUP.server_static.public);
    let (finish, mut transport) = accepted.finish(b"client payload").expect("finish");
    assert!(finish.len() > LENGTH_PREFIX_LEN);
    assert!(transport.decrypt(frame).is_err());
}
