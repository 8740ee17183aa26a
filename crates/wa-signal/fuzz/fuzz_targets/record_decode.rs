//! Arbitrary bytes through the four record decoders (`SessionRecord`, `SenderKeyRecord`,
//! `PreKeyRecord`, `SignedPreKeyRecord`). Must never panic; a decoded record encodes to bytes
//! that decode to the same record, and that encoding is stable. (Input bytes need not equal the
//! re-encoding: unknown fields, defaults and field order are not kept.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_signal::record::{PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyRecord};
use wa_signal_fuzz::{assert_round_trip, key_pair};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = SessionRecord::decode(data) {
        assert_round_trip(&record, SessionRecord::encode, SessionRecord::decode);
    }
    if let Ok(record) = SenderKeyRecord::decode(data) {
        assert_round_trip(&record, SenderKeyRecord::encode, SenderKeyRecord::decode);
    }
    if let Ok(record) = PreKeyRecord::decode(data) {
        assert_round_trip(&record, PreKeyRecord::encode, PreKeyRecord::decode);
    }
    if let Ok(record) = SignedPreKeyRecord::decode(data) {
        assert_round_trip(
            &record,
            SignedPreKeyRecord::encode,
            SignedPreKeyRecord::decode,
        );
        let _ = record.verify(&key_pair(1).public);
    }
});
