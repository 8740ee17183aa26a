//! Arbitrary bytes through the four wire-message parsers (`msg`, `pkmsg`, `skmsg`, SKDM). Must
//! never panic. A parsed message keeps exactly the bytes it was parsed from and parses from
//! them to the same message; a `pkmsg`'s inner message is the `msg` its bytes parse to; an
//! `skmsg` signature check with any key (the SKDM's, a fixed one, 32 input bytes) is a plain
//! yes or no.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_signal::curve::PublicKey;
use wa_signal::message::{
    PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage, SignalMessage,
};
use wa_signal_fuzz::key_pair;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = SignalMessage::parse(data) {
        assert_eq!(message.serialized(), data);
        assert_eq!(SignalMessage::parse(data).expect("parses again"), message);
    }

    if let Ok(message) = PreKeySignalMessage::parse(data) {
        assert_eq!(message.serialized(), data);
        let inner = SignalMessage::parse(message.message.serialized()).expect("inner parses");
        assert_eq!(inner, message.message);
        assert_eq!(
            PreKeySignalMessage::parse(data).expect("parses again"),
            message
        );
    }

    let distribution = SenderKeyDistributionMessage::parse(data).ok();
    if let Some(message) = &distribution {
        assert_eq!(message.serialized(), data);
        let again = SenderKeyDistributionMessage::parse(data).expect("parses again");
        assert_eq!(&again, message);
    }

    if let Ok(message) = SenderKeyMessage::parse(data) {
        assert_eq!(message.serialized(), data);
        assert_eq!(
            SenderKeyMessage::parse(data).expect("parses again"),
            message
        );
        let mut keys = vec![key_pair(1).public];
        keys.extend(distribution.map(|d| d.signing_key));
        if let Some(raw) = data.first_chunk::<32>() {
            keys.push(PublicKey::from_raw(*raw));
        }
        for key in keys {
            let _ = message.verify_signature(&key);
        }
    }
});
