//! Feeds arbitrary bytes to the incremental frame decoder in arbitrary chunk sizes. Must never
//! panic; the frames (and intro) it yields re-encode to exactly the bytes it consumed, and an
//! error is sticky.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_proto::frame::{FrameDecoder, FrameEncoder};

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control & 0x3f) + 1;
    let with_intro = control & 0x40 != 0;
    let mut decoder = if with_intro {
        FrameDecoder::expecting_intro()
    } else {
        FrameDecoder::new()
    }
    .with_max_frame_len(1 << 16);

    let mut frames = Vec::new();
    let mut failed = false;
    'feed: for piece in stream.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
    }
    if failed {
        assert!(
            decoder.next_frame().is_err(),
            "a stream error must be sticky"
        );
        return;
    }

    let consumed = stream.len() - decoder.buffered_len();
    let mut encoder = match decoder.intro() {
        Some(intro) => FrameEncoder::new(intro.clone()),
        None => FrameEncoder::without_intro(),
    };
    let mut wire = Vec::new();
    if frames.is_empty() {
        if let Some(intro) = decoder.intro() {
            wire.extend(intro.to_bytes());
        }
    }
    for frame in &frames {
        encoder
            .encode_into(frame, &mut wire)
            .expect("decoded frames re-encode");
    }
    assert_eq!(
        wire,
        stream[..consumed],
        "re-encoding differs from the consumed bytes"
    );
});
