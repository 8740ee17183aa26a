//! The framing of `noise-handshake.json`: intros (with and without routing info, Baileys 6 and
//! 7 headers), the client hello frame with its intro, and every later frame, encoded byte for
//! byte and decoded from arbitrary splits of the recorded stream.

mod common;

use common::{Failures, b64, read_json, same_bytes, wire_dir};
use serde_json::Value;
use wa_proto::frame::{FrameDecoder, FrameEncoder, Intro, encode_frame};

fn intro_of(t: &Value) -> Result<Intro, String> {
    let header = b64(&t["noise_header_b64"]);
    let header: [u8; 4] = header
        .try_into()
        .map_err(|_| "noise header is not 4 bytes".to_owned())?;
    let routing = t["routing_info_b64"]
        .as_str()
        .map(|_| b64(&t["routing_info_b64"]));
    Intro::new(routing.as_deref())
        .map(|i| i.with_header(header))
        .map_err(|e| e.to_string())
}

/// Both directions of a transcript: the payloads and the bytes on the wire.
struct Streams {
    client_payloads: Vec<Vec<u8>>,
    server_payloads: Vec<Vec<u8>>,
    client_wire: Vec<u8>,
    server_wire: Vec<u8>,
}

/// What the client sends, in order: hello (with intro), finish, then its transport frames; and
/// what the server sends: hello, then its transport frames.
fn streams(t: &Value) -> Streams {
    let hs = &t["handshake"];
    let mut client_payloads = vec![
        b64(&hs["client_hello"]["handshake_message_b64"]),
        b64(&hs["client_finish"]["handshake_message_b64"]),
    ];
    let mut client_wire = b64(&hs["client_hello"]["frame_b64"]);
    client_wire.extend(b64(&hs["client_finish"]["frame_b64"]));
    let mut server_payloads = vec![b64(&hs["server_hello"]["handshake_message_b64"])];
    let mut server_wire = b64(&hs["server_hello"]["frame_b64"]);
    for frame in t["transport"].as_array().expect("transport") {
        let bytes = b64(&frame["frame_b64"]);
        // A transport frame is the 3-byte length and the AES-GCM ciphertext.
        let payload = bytes[3..].to_vec();
        if frame["direction"] == "client->server" {
            client_payloads.push(payload);
            client_wire.extend(bytes);
        } else {
            server_payloads.push(payload);
            server_wire.extend(bytes);
        }
    }
    Streams {
        client_payloads,
        server_payloads,
        client_wire,
        server_wire,
    }
}

fn decode_all(
    mut decoder: FrameDecoder,
    wire: &[u8],
    chunk: usize,
) -> Result<(FrameDecoder, Vec<Vec<u8>>), String> {
    let mut frames = Vec::new();
    for piece in wire.chunks(chunk) {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
            frames.push(frame);
        }
    }
    if decoder.buffered_len() != 0 {
        return Err(format!("{} bytes left over", decoder.buffered_len()));
    }
    Ok((decoder, frames))
}

#[test]
fn handshake_and_transport_frames_match_the_transcripts() {
    let doc = read_json(&wire_dir().join("noise-handshake.json"));
    assert_eq!(doc["format"], "wa-noise-transcript/1");
    let mut failures = Failures::default();
    for t in doc["transcripts"].as_array().expect("transcripts") {
        let name = t["name"].as_str().expect("name");

        let intro = (|| {
            let intro = intro_of(t)?;
            same_bytes("intro", &intro.to_bytes(), &b64(&t["intro_b64"]))
        })();
        failures.check(&format!("{name}/intro"), intro);

        let Streams {
            client_payloads,
            server_payloads,
            client_wire,
            server_wire,
        } = streams(t);

        let encode = (|| {
            let mut client = FrameEncoder::new(intro_of(t)?);
            let mut wire = Vec::new();
            for p in &client_payloads {
                client
                    .encode_into(p, &mut wire)
                    .map_err(|e| e.to_string())?;
            }
            same_bytes("client stream", &wire, &client_wire)?;
            let mut wire = Vec::new();
            for p in &server_payloads {
                encode_frame(p, &mut wire).map_err(|e| e.to_string())?;
            }
            same_bytes("server stream", &wire, &server_wire)
        })();
        failures.check(&format!("{name}/encode"), encode);

        let decode = (|| {
            for chunk in [1, 2, 3, 5, 64, 4096] {
                let (decoder, frames) =
                    decode_all(FrameDecoder::expecting_intro(), &client_wire, chunk)?;
                if frames != client_payloads {
                    return Err(format!("client frames differ with {chunk}-byte reads"));
                }
                if decoder.intro() != Some(&intro_of(t)?) {
                    return Err("intro differs".into());
                }
                let (_, frames) = decode_all(FrameDecoder::new(), &server_wire, chunk)?;
                if frames != server_payloads {
                    return Err(format!("server frames differ with {chunk}-byte reads"));
                }
            }
            Ok(())
        })();
        failures.check(&format!("{name}/decode"), decode);
    }
    failures.finish("noise transcripts");
}
