//! `AuthCreds`: everything a linked device keeps besides its key store, field for field what
//! Baileys' `AuthenticationCreds` holds, plus every unknown field read, so nothing is dropped.
//!
//! The serde form is the canonical one used by the JSON-based backends: Baileys' field names,
//! bytes as base64 strings (raw bytes in binary formats such as MessagePack). Baileys' own
//! `creds.json` (BufferJSON) is produced by the compat store's codec, not by this form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wa_signal::provider::CryptoRng;
use wa_signal::{KeyPair, PublicKey, Signature, SignedPreKeyId, SignedPreKeyRecord};

use crate::encoding;
use crate::provider::SystemProvider;

/// Unknown fields of a JSON object, kept as read.
pub type ExtraFields = BTreeMap<String, Value>;

/// The credentials of one linked device.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCreds {
    /// The Noise static key pair (the client's static key in the connection handshake).
    #[serde(with = "encoding::key_pair")]
    pub noise_key: KeyPair,
    /// Ephemeral key pair used by the pairing-code flow.
    #[serde(with = "encoding::key_pair")]
    pub pairing_ephemeral_key_pair: KeyPair,
    /// The Signal identity key pair.
    #[serde(with = "encoding::key_pair")]
    pub signed_identity_key: KeyPair,
    /// The current signed pre-key.
    pub signed_pre_key: SignedKeyPair,
    /// The Signal registration id (14 bits).
    pub registration_id: u32,
    /// The ADV secret (base64 text, as Baileys keeps it) used to check pairing HMACs.
    pub adv_secret_key: AdvSecretKey,
    /// Who this device is, once paired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me: Option<Contact>,
    /// The signed device identity received when pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<SignedDeviceIdentity>,
    /// Identities of the account's own primary device, trusted from pairing.
    #[serde(default)]
    pub signal_identities: Vec<SignalIdentity>,
    /// The app-state sync key id in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_app_state_key_id: Option<String>,
    /// The first pre-key id not yet uploaded to the server.
    pub first_unuploaded_pre_key_id: u32,
    /// The id the next generated pre-key gets.
    pub next_pre_key_id: u32,
    /// When the account was last synced (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_account_sync_timestamp: Option<i64>,
    /// The primary device's platform, from pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// History-sync messages already processed.
    #[serde(default)]
    pub processed_history_messages: Vec<ProcessedHistoryMessage>,
    /// Account sync counter.
    #[serde(default)]
    pub account_sync_counter: u32,
    /// Account settings.
    #[serde(default)]
    pub account_settings: AccountSettings,
    /// Whether the device completed registration (pairing-code flow).
    #[serde(default)]
    pub registered: bool,
    /// The pairing code in use, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing_code: Option<String>,
    /// Hash of the last server props.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prop_hash: Option<String>,
    /// Edge routing info sent before the Noise handshake.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "encoding::opt_bytes"
    )]
    pub routing_info: Option<Vec<u8>>,
    /// Free-form data (Baileys' `additionalData`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_data: Option<Value>,
    /// Fields this version does not know, kept as read and written back.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl AuthCreds {
    /// Fresh credentials for a new, unpaired device, like Baileys' `initAuthCreds`: new Noise,
    /// pairing and identity key pairs, signed pre-key 1 signed by the identity key (XEdDSA), a
    /// random 14-bit registration id and a random 32-byte ADV secret, all from the operating
    /// system's random source ([`SystemProvider`]).
    pub fn generate() -> Self {
        Self::generate_with(&mut SystemProvider::new())
    }

    /// [`AuthCreds::generate`] with the randomness from `rng` (a seeded one makes the same
    /// creds every time, for tests).
    pub fn generate_with<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let identity = KeyPair::generate(rng);
        let signed_pre_key = SignedKeyPair::generate(rng, &identity, 1);
        let mut adv_secret = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *adv_secret);
        Self {
            noise_key: KeyPair::generate(rng),
            pairing_ephemeral_key_pair: KeyPair::generate(rng),
            signed_identity_key: identity,
            signed_pre_key,
            registration_id: wa_signal::keys::generate_registration_id(rng),
            adv_secret_key: AdvSecretKey(encoding::b64_encode(&*adv_secret)),
            me: None,
            account: None,
            signal_identities: Vec::new(),
            my_app_state_key_id: None,
            first_unuploaded_pre_key_id: 1,
            next_pre_key_id: 1,
            last_account_sync_timestamp: None,
            platform: None,
            processed_history_messages: Vec::new(),
            account_sync_counter: 0,
            account_settings: AccountSettings::default(),
            registered: false,
            pairing_code: None,
            last_prop_hash: None,
            routing_info: None,
            additional_data: None,
            extra: ExtraFields::new(),
        }
    }

    /// Whether the device has been paired (has an account identity and knows who it is).
    pub fn is_paired(&self) -> bool {
        self.me.is_some() && self.account.is_some()
    }
}

impl std::fmt::Debug for AuthCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key pairs redact their private halves; the ADV secret redacts itself.
        f.debug_struct("AuthCreds")
            .field("me", &self.me)
            .field("registration_id", &self.registration_id)
            .field("noise_key", &self.noise_key)
            .field("signed_identity_key", &self.signed_identity_key)
            .field("signed_pre_key", &self.signed_pre_key)
            .field("adv_secret_key", &self.adv_secret_key)
            .field("next_pre_key_id", &self.next_pre_key_id)
            .field(
                "first_unuploaded_pre_key_id",
                &self.first_unuploaded_pre_key_id,
            )
            .field("registered", &self.registered)
            .field("platform", &self.platform)
            .field("extra_fields", &self.extra.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A signed pre-key as Baileys keeps it in creds: `{keyPair, signature, keyId}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedKeyPair {
    /// The key pair.
    #[serde(with = "encoding::key_pair")]
    pub key_pair: KeyPair,
    /// The identity key's XEdDSA signature over `0x05 || public`.
    #[serde(with = "encoding::signature")]
    pub signature: Signature,
    /// The signed pre-key id.
    pub key_id: u32,
}

impl SignedKeyPair {
    /// A new signed pre-key `key_id` from `rng`, signed by `identity`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, identity: &KeyPair, key_id: u32) -> Self {
        Self::from_record(wa_signal::keys::generate_signed_pre_key(
            rng,
            identity,
            SignedPreKeyId(key_id),
            0,
        ))
    }

    /// The creds form of a signed pre-key record (its timestamp is not kept in creds).
    pub fn from_record(record: SignedPreKeyRecord) -> Self {
        Self {
            key_pair: record.key_pair,
            signature: record.signature,
            key_id: record.id.0,
        }
    }

    /// Whether the signature is `identity`'s valid signature over this key.
    pub fn verify(&self, identity: &PublicKey) -> bool {
        identity.verify(&self.key_pair.public.serialize(), &self.signature)
    }

    /// The Signal record form (timestamp unknown: 0).
    pub fn to_record(&self) -> SignedPreKeyRecord {
        SignedPreKeyRecord {
            id: SignedPreKeyId(self.key_id),
            key_pair: self.key_pair.clone(),
            signature: self.signature,
            timestamp: 0,
        }
    }
}

impl std::fmt::Debug for SignedKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedKeyPair")
            .field("key_id", &self.key_id)
            .field("key_pair", &self.key_pair)
            .finish_non_exhaustive()
    }
}

/// The ADV secret, kept as the base64 text Baileys stores. `Debug` redacts it.
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
#[serde(transparent)]
pub struct AdvSecretKey(pub String);

impl AdvSecretKey {
    /// The secret bytes (base64-decoded).
    pub fn to_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        encoding::b64_decode(&self.0)
    }
}

impl std::fmt::Debug for AdvSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdvSecretKey(<redacted>)")
    }
}

/// Who this device is (Baileys' `Contact` for `me`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// The device's phone-number JID, e.g. `15550100001:17@s.whatsapp.net`.
    pub id: String,
    /// The device's LID JID, e.g. `100000000000001:17@lid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
    /// The (business) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The push name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// The verified business name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

/// `ADVSignedDeviceIdentity` as creds keep it (protobuf JSON: bytes as base64 strings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedDeviceIdentity {
    /// `ADVDeviceIdentity` bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "encoding::opt_bytes"
    )]
    pub details: Option<Vec<u8>>,
    /// The primary device's identity key (raw 32 bytes).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "encoding::opt_bytes"
    )]
    pub account_signature_key: Option<Vec<u8>>,
    /// The primary's signature over the details.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "encoding::opt_bytes"
    )]
    pub account_signature: Option<Vec<u8>>,
    /// This device's signature.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "encoding::opt_bytes"
    )]
    pub device_signature: Option<Vec<u8>>,
}

impl From<wa_proto::proto::AdvSignedDeviceIdentity> for SignedDeviceIdentity {
    fn from(p: wa_proto::proto::AdvSignedDeviceIdentity) -> Self {
        Self {
            details: p.details,
            account_signature_key: p.account_signature_key,
            account_signature: p.account_signature,
            device_signature: p.device_signature,
        }
    }
}

impl From<SignedDeviceIdentity> for wa_proto::proto::AdvSignedDeviceIdentity {
    fn from(s: SignedDeviceIdentity) -> Self {
        Self {
            details: s.details,
            account_signature_key: s.account_signature_key,
            account_signature: s.account_signature,
            device_signature: s.device_signature,
        }
    }
}

/// A trusted identity: `{identifier: {name, deviceId}, identifierKey}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalIdentity {
    /// Whose identity.
    pub identifier: SignalIdentifier,
    /// The identity key, written in its 33-byte `0x05` form.
    #[serde(with = "encoding::signal_public_key")]
    pub identifier_key: PublicKey,
}

/// A Signal protocol address as creds write it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalIdentifier {
    /// The JID (LID in Baileys 7, PN in Baileys 6).
    pub name: String,
    /// The device id.
    pub device_id: u32,
}

/// A processed history-sync message reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessedHistoryMessage {
    /// The message key.
    pub key: MessageKey,
    /// The message timestamp (Unix seconds) as stored: a number, a decimal string or a Long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_timestamp: Option<Value>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

/// A message key (`proto.IMessageKey`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageKey {
    /// The chat JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_jid: Option<String>,
    /// Whether we sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_me: Option<bool>,
    /// The message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The sender in a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

/// Account settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSettings {
    /// Whether new messages unarchive chats.
    #[serde(default)]
    pub unarchive_chats: bool,
    /// The default disappearing-messages mode, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_disappearing_mode: Option<Value>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_come_from_the_given_random_source() {
        use wa_signal::provider::TestProvider;
        let a = AuthCreds::generate_with(&mut TestProvider::new(1));
        assert_eq!(a, AuthCreds::generate_with(&mut TestProvider::new(1)));
        assert_ne!(a, AuthCreds::generate_with(&mut TestProvider::new(2)));
        assert_ne!(a.adv_secret_key, AuthCreds::generate().adv_secret_key);
    }

    #[test]
    fn generated_creds_are_valid_like_baileys() {
        let creds = AuthCreds::generate();
        assert!(creds.registration_id <= 0x3fff);
        assert_eq!(creds.signed_pre_key.key_id, 1);
        assert!(
            creds
                .signed_pre_key
                .verify(&creds.signed_identity_key.public)
        );
        assert_eq!(creds.next_pre_key_id, 1);
        assert_eq!(creds.first_unuploaded_pre_key_id, 1);
        assert_eq!(creds.adv_secret_key.to_bytes().unwrap().len(), 32);
        assert!(!creds.is_paired());
        assert_ne!(creds.noise_key, creds.signed_identity_key);
    }

    #[test]
    fn json_and_msgpack_round_trip_with_unknown_fields() {
        let mut creds = AuthCreds::generate();
        creds
            .extra
            .insert("futureField".into(), serde_json::json!({"a": [1, 2, "x"]}));
        creds.me = Some(Contact {
            id: "15550100001:17@s.whatsapp.net".into(),
            extra: [("imgUrl".to_string(), Value::from("x"))].into(),
            ..Default::default()
        });
        creds.routing_info = Some(vec![8, 5, 8]);
        let json = serde_json::to_string(&creds).unwrap();
        assert!(json.contains("\"futureField\""));
        assert_eq!(serde_json::from_str::<AuthCreds>(&json).unwrap(), creds);
        let packed = rmp_serde::to_vec_named(&creds).unwrap();
        assert_eq!(rmp_serde::from_slice::<AuthCreds>(&packed).unwrap(), creds);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = AuthCreds::generate();
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&creds.adv_secret_key.0));
        for pair in [
            &creds.noise_key,
            &creds.signed_identity_key,
            &creds.signed_pre_key.key_pair,
        ] {
            let hex: String = pair
                .private
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(!shown.contains(&hex));
        }
    }

    #[test]
    fn mismatched_key_pair_is_rejected() {
        let creds = AuthCreds::generate();
        let mut json = serde_json::to_value(&creds).unwrap();
        json["noiseKey"]["public"] = json["signedIdentityKey"]["public"].clone();
        assert!(serde_json::from_value::<AuthCreds>(json).is_err());
    }
}
