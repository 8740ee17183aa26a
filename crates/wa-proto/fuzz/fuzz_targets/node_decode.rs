//! Decodes arbitrary bytes as a node buffer (flag byte, maybe zlib). Must never panic; whatever
//! decodes must encode again, and be stable from its first re-encoding on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_proto::Error;
use wa_proto::codec::{self, DecodeLimits};

/// Smaller than the default inflate limit, so zlib bombs stay cheap per run.
const LIMITS: DecodeLimits = DecodeLimits {
    max_depth: 64,
    max_inflated_len: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Ok(node) = codec::decode_with_limits(data, &LIMITS) else {
        return;
    };
    let first = codec::encode(&node).expect("a decoded node encodes");
    // The format is lossy for a few string forms (a `:0` device, an agent naming a server, raw
    // string content), so the first round trip may change the node, and two keys may then
    // collide; after that, nothing changes.
    let second = match codec::decode_with_limits(&first, &LIMITS) {
        Ok(n) => n,
        Err(Error::DuplicateAttribute { .. }) => return,
        Err(e) => panic!("our own encoding of a decoded node failed to decode: {e}"),
    };
    let again = codec::encode(&second).expect("re-encode");
    let third = codec::decode_with_limits(&again, &LIMITS).expect("stable encoding decodes");
    assert_eq!(third, second, "not stable after one round trip");
});
