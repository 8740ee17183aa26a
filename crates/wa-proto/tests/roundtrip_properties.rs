//! Property tests: nodes in the canonical (round-trippable) subset survive encode → decode
//! unchanged; any string survives as an attribute value unless the format itself is lossy for
//! it; JIDs and Signal addresses survive format → parse; and no input makes the decoder panic.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use wa_proto::codec::{self, DecodeLimits};
use wa_proto::jid::{Jid, Server, SignalAddress};
use wa_proto::token;
use wa_proto::{Attrs, Content, Node};

fn any_token() -> impl Strategy<Value = String> {
    let single = token::single_byte_tokens();
    let double: Vec<&str> = token::double_byte_tokens()
        .iter()
        .flatten()
        .copied()
        .collect();
    prop_oneof![
        (1..single.len()).prop_map(move |i| single[i].to_owned()),
        (0..double.len()).prop_map(move |i| double[i].to_owned()),
    ]
}

fn any_server() -> impl Strategy<Value = Server> {
    prop_oneof![
        Just(Server::Pn),
        Just(Server::Lid),
        Just(Server::Group),
        Just(Server::Broadcast),
        Just(Server::Hosted),
        Just(Server::HostedLid),
        Just(Server::LegacyUser),
        Just(Server::Newsletter),
        Just(Server::Call),
        Just(Server::Messenger),
        Just(Server::Interop),
        Just(Server::Bot),
        "[a-z][a-z0-9.:_-]{0,10}".prop_map(Server::Other),
    ]
}

/// Any valid JID: numeric or free-form users (without `@ : _`), any device, agent, integrator.
fn any_jid() -> impl Strategy<Value = Jid> {
    let user = prop_oneof![
        "[1-9][0-9]{0,17}",
        "[0-9]{1,10}-[0-9]{1,10}",
        "[a-zA-Z0-9.\\- ]{0,12}",
        "[^@:_]{0,8}",
    ];
    (user, any_server(), any::<u16>(), any::<u8>(), any::<u16>()).prop_map(
        |(user, server, device, agent, integrator)| {
            Jid::new(user, server)
                .expect("generated users are valid")
                .with_device(device)
                .with_agent(agent)
                .with_integrator(integrator)
        },
    )
}

/// JIDs whose text the binary format carries without loss: everything but the agent form of a
/// device JID whose agent names another server (Baileys decodes `u_1:3@s.whatsapp.net` as
/// `u:3@lid`).
fn wire_jid() -> impl Strategy<Value = Jid> {
    any_jid().prop_filter("agent naming another server", |j| {
        !(j.is_pn() && j.device() != 0 && matches!(j.agent(), 1 | 128 | 129))
    })
}

/// Strings that decode back as the same string from any position (attribute key or value).
fn attr_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any_token(),
        "[0-9.\\-]{1,130}",
        "[0-9A-F]{1,130}",
        "[0-9a-f]{1,20}",
        "[^@]{0,40}",
        "[a-z]{250,300}",
        wire_jid().prop_map(|j| j.to_string()),
        "[^@]{0,10}@",
        "[a-z]{1,5}@[a-z]{1,5}@[a-z]{1,5}",
    ]
}

/// String content that decodes back as the same string (tokens, packed numbers, JIDs); other
/// string content decodes as bytes.
fn text_content() -> impl Strategy<Value = String> {
    prop_oneof![
        any_token(),
        "[0-9.\\-]{1,127}",
        "[0-9A-F]{1,127}",
        wire_jid().prop_map(|j| j.to_string()),
    ]
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![any_token(), "[a-z][a-z:_\\-]{0,12}", "[^@]{1,10}"]
}

fn attrs() -> impl Strategy<Value = Attrs> {
    prop::collection::vec((attr_string(), attr_string()), 0..6).prop_map(Attrs::from_iter)
}

fn leaf_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::None),
        Just(Content::Nodes(Vec::new())),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Content::Bytes),
        text_content().prop_map(Content::Text),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (tag(), attrs(), leaf_content()).prop_map(|(tag, attrs, content)| Node {
        tag,
        attrs,
        content,
    });
    leaf.prop_recursive(4, 48, 6, |inner| {
        (tag(), attrs(), prop::collection::vec(inner, 0..6)).prop_map(|(tag, attrs, children)| {
            Node {
                tag,
                attrs,
                content: Content::Nodes(children),
            }
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn canonical_nodes_round_trip(node in node()) {
        let bytes = codec::encode(&node).expect("canonical nodes encode");
        prop_assert_eq!(bytes[0], 0);
        let back = codec::decode(&bytes).expect("our own encoding decodes");
        prop_assert_eq!(&back, &node);
        // Compressed at any level, too.
        let packed = codec::encode_compressed(&node, 6).expect("compress");
        prop_assert_eq!(codec::decode(&packed).expect("inflate"), node);
    }

    #[test]
    fn strings_without_a_device_part_round_trip_exactly(s in "[^:]{0,60}") {
        let node = Node::new("x").with_attr("v", s.clone());
        let back = codec::decode(&codec::encode(&node).expect("encode")).expect("decode");
        prop_assert_eq!(back.attr("v"), Some(s.as_str()));
    }

    /// The format is lossy for a few JID forms (`:0` devices, agent forms); whatever a string
    /// becomes after one round trip, it then stays.
    #[test]
    fn any_string_is_stable_after_one_round_trip(
        s in prop_oneof![
            ".{0,40}",
            "[0-9a-z_]{0,8}(:[0-9]{1,4})?@(s\\.whatsapp\\.net|lid|hosted|hosted\\.lid|msgr|interop|g\\.us)",
            "[0-9]{1,3}-[0-9a-z_]{0,6}:[0-9]{1,6}@interop",
        ]
    ) {
        let once = codec::decode(&codec::encode(&Node::new("x").with_attr("v", s.clone())).expect("encode"))
            .expect("decode");
        let twice = codec::decode(&codec::encode(&once).expect("re-encode")).expect("re-decode");
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn jids_round_trip_through_text(jid in any_jid()) {
        let text = jid.to_string();
        prop_assert_eq!(Jid::parse(&text).expect("own output parses"), jid);
    }

    #[test]
    fn signal_addresses_round_trip(jid in any_jid()) {
        let Ok(address) = jid.signal_address() else {
            // Only JIDs without a user or with a '.' in it, and device 99 outside hosted
            // servers, have none.
            prop_assert!(
                jid.user().is_empty()
                    || jid.user().contains('.')
                    || (jid.device() == 99 && !jid.is_hosted())
            );
            return Ok(());
        };
        prop_assert_eq!(SignalAddress::parse(&address.to_string()).expect("parses"), address.clone());
        // The address names the device: for PN (any agent), LID and hosted user JIDs without
        // an extra agent, it maps back to the same JID.
        let simple = jid.agent() == 0 || (jid.is_pn() && !matches!(jid.agent(), 1 | 128 | 129));
        if (jid.is_pn() || jid.is_lid() || jid.is_hosted()) && simple {
            prop_assert_eq!(address.to_jid().expect("maps back"), jid);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&bytes);
        let _ = codec::decode_raw(&bytes, &DecodeLimits::DEFAULT);
    }

    #[test]
    fn decoding_mutated_encodings_never_panics(
        node in node(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = codec::encode(&node).expect("encode");
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(decoded) = codec::decode(&bytes) {
            // Whatever decodes is a well-formed node: it encodes again.
            prop_assert!(codec::encode(&decoded).is_ok());
        }
    }
}
