//! Parses arbitrary text as a JID and a Signal address. Must never panic; whatever parses
//! formats to text that parses back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wa_proto::jid::{Jid, SignalAddress};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jid) = Jid::parse(text) {
        assert_eq!(
            Jid::parse(&jid.to_string()).expect("own output parses"),
            jid
        );
        if let Ok(address) = jid.signal_address() {
            assert_eq!(
                SignalAddress::parse(&address.to_string()).expect("own address parses"),
                address
            );
        }
    }
    if let Ok(address) = SignalAddress::parse(text) {
        assert_eq!(
            SignalAddress::parse(&address.to_string()).expect("reparses"),
            address
        );
        // An address that names a JID is that JID's address (device 99 outside hosted
        // servers has none).
        if let Ok(jid) = address.to_jid()
            && let Ok(back) = jid.signal_address()
        {
            assert_eq!(back, address, "via {jid}");
        }
    }
});
