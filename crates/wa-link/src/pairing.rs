//! Pairing: processing the server's `pair-success` stanza after the phone scanned the QR code
//! (or confirmed a pairing code), and the `pair-device-sign` reply.
//!
//! Checks, in order (any failure rejects the stanza and leaves creds untouched):
//! 1. `device-identity` and `device` children exist;
//! 2. the container's HMAC-SHA256 under `advSecretKey` matches (over `[6,5] ||` the details
//!    for HOSTED accounts);
//! 3. the primary's XEdDSA account signature over `[6,0]` (`[6,5]` for a HOSTED device) `||`
//!    device details `||` our identity key verifies. (Baileys skips the result of this check.)
//!
//! Then this device signs `[6,1] || details || identity key || account signature key`, and the
//! creds gain `account`, `me`, a `signalIdentities` entry for the primary and `platform`.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use sha2::Sha256;
use wa_auth::creds::{AuthCreds, Contact, SignalIdentifier, SignalIdentity, SignedDeviceIdentity};
use wa_auth::{AuthState, LockKey, Transaction};
use wa_proto::Node;
use wa_proto::proto::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};
use wa_signal::PublicKey;
use wa_signal::provider::CryptoRng;

use crate::BaileysProfile;
use crate::error::{LinkError, Result};

const ACCOUNT_SIGNATURE_PREFIX: [u8; 2] = [6, 0];
const DEVICE_SIGNATURE_PREFIX: [u8; 2] = [6, 1];
const HOSTED_PREFIX: [u8; 2] = [6, 5];

/// Why a `pair-success` stanza was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairingRejection {
    /// A required child node (`pair-success`, `device-identity`, `device`) or attribute is missing.
    Missing(&'static str),
    /// The HMAC of the signed device identity does not match our ADV secret: the stanza was not
    /// meant for this device, or was tampered with.
    BadHmac,
    /// The primary device's signature over our identity does not verify.
    BadAccountSignature,
    /// A protobuf or field is malformed.
    Malformed {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for PairingRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(what) => write!(f, "missing {what}"),
            Self::BadHmac => f.write_str("the device identity HMAC does not match the ADV secret"),
            Self::BadAccountSignature => f.write_str("the account signature does not verify"),
            Self::Malformed { what, reason } => write!(f, "malformed {what}: {reason}"),
        }
    }
}

impl std::error::Error for PairingRejection {}

/// What a verified `pair-success` changes, and the reply to send.
#[derive(Clone, Debug, PartialEq)]
pub struct PairingOutcome {
    /// The signed device identity, with our device signature (kept in creds as `account`).
    pub account: SignedDeviceIdentity,
    /// Who this device now is.
    pub me: Contact,
    /// The primary device's identity, trusted from now on.
    pub signal_identity: SignalIdentity,
    /// The primary's platform (`android`, `smba`, ...), when given.
    pub platform: Option<String>,
    /// The key index of this device in the account's device list.
    pub key_index: u32,
    /// The `pair-device-sign` reply stanza.
    pub reply: Node,
}

impl PairingOutcome {
    /// Applies the outcome to creds, as Baileys' creds update does.
    pub fn apply(&self, creds: &mut AuthCreds) {
        creds.account = Some(self.account.clone());
        creds.me = Some(self.me.clone());
        creds.signal_identities.push(self.signal_identity.clone());
        if self.platform.is_some() {
            creds.platform = self.platform.clone();
        }
    }
}

fn missing(what: &'static str) -> PairingRejection {
    PairingRejection::Missing(what)
}

fn malformed(what: &'static str, reason: impl ToString) -> PairingRejection {
    PairingRejection::Malformed {
        what,
        reason: reason.to_string(),
    }
}

/// What the checks and the outcome read from a `pair-success` stanza.
struct PairSuccess<'a> {
    /// The `iq` id, echoed in the reply.
    stanza_id: &'a str,
    /// The `device-identity` content: an `ADVSignedDeviceIdentityHMAC`.
    container: &'a [u8],
    /// The device's JID and LID (`device` attributes).
    jid: &'a str,
    lid: Option<&'a str>,
    /// The primary's platform and the business name, when given.
    platform: Option<String>,
    biz_name: Option<String>,
}

/// Step 0: the children and attributes the stanza must have.
fn read_stanza(stanza: &Node) -> Result<PairSuccess<'_>, PairingRejection> {
    let stanza_id = stanza.attr("id").ok_or(missing("iq id"))?;
    let pair_success = stanza
        .child("pair-success")
        .ok_or(missing("pair-success"))?;
    let (Some(identity), Some(device)) = (
        pair_success.child("device-identity"),
        pair_success.child("device"),
    ) else {
        return Err(missing("device-identity or device"));
    };
    let name_of = |child: &str| {
        pair_success
            .child(child)
            .and_then(|n| n.attr("name"))
            .map(str::to_owned)
    };
    Ok(PairSuccess {
        stanza_id,
        container: identity
            .content_bytes()
            .ok_or(missing("device-identity content"))?,
        jid: device.attr("jid").ok_or(missing("device jid"))?,
        lid: device.attr("lid"),
        platform: name_of("platform"),
        biz_name: name_of("biz"),
    })
}

/// Step 1: the container's HMAC-SHA256 under our ADV secret (over `[6,5] ||` the details for a
/// HOSTED account). Returns the details: an encoded `ADVSignedDeviceIdentity`.
fn verify_hmac(container: &[u8], creds: &AuthCreds) -> Result<Vec<u8>, PairingRejection> {
    let container = AdvSignedDeviceIdentityHmac::decode(container)
        .map_err(|e| malformed("device identity container", e))?;
    let details = container.details.ok_or(missing("container details"))?;
    let expected = container.hmac.ok_or(missing("container hmac"))?;
    let secret = creds
        .adv_secret_key
        .to_bytes()
        .map_err(|e| malformed("advSecretKey", e))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&secret).map_err(|e| malformed("advSecretKey", e))?;
    if container.account_type == Some(AdvEncryptionType::Hosted as i32) {
        mac.update(&HOSTED_PREFIX);
    }
    mac.update(&details);
    mac.verify_slice(&expected)
        .map_err(|_| PairingRejection::BadHmac)?;
    Ok(details)
}

/// The primary's signed account, once its signature over our identity verified.
struct VerifiedAccount {
    account: AdvSignedDeviceIdentity,
    /// The encoded `ADVDeviceIdentity` (the account's `details`).
    device_details: Vec<u8>,
    key_index: u32,
    account_key: PublicKey,
}

/// Step 2: the primary's XEdDSA signature over `[6,0]` (`[6,5]` for a HOSTED device) `||`
/// device details `||` our identity key.
fn verify_account(details: &[u8], creds: &AuthCreds) -> Result<VerifiedAccount, PairingRejection> {
    let account = AdvSignedDeviceIdentity::decode(details)
        .map_err(|e| malformed("signed device identity", e))?;
    let device_details = account.details.clone().ok_or(missing("account details"))?;
    let account_key = account
        .account_signature_key
        .as_deref()
        .ok_or(missing("account signature key"))?;
    let account_key =
        PublicKey::from_slice(account_key).map_err(|e| malformed("account signature key", e))?;
    let signature = account
        .account_signature
        .as_deref()
        .ok_or(missing("account signature"))?;
    let device_identity = AdvDeviceIdentity::decode(device_details.as_slice())
        .map_err(|e| malformed("device identity", e))?;
    let prefix = if device_identity.device_type == Some(AdvEncryptionType::Hosted as i32) {
        HOSTED_PREFIX
    } else {
        ACCOUNT_SIGNATURE_PREFIX
    };
    let our_identity = creds.signed_identity_key.public.as_bytes();
    let signed = [&prefix[..], &device_details, our_identity].concat();
    if !account_key.verify(&signed, signature) {
        return Err(PairingRejection::BadAccountSignature);
    }
    Ok(VerifiedAccount {
        key_index: device_identity.key_index.unwrap_or(0),
        account,
        device_details,
        account_key,
    })
}

/// Step 3: our device signature over `[6,1] || details || identity key || account signature
/// key`, added to the account.
fn sign_as_device<R: CryptoRng + ?Sized>(
    rng: &mut R,
    verified: &VerifiedAccount,
    creds: &AuthCreds,
) -> AdvSignedDeviceIdentity {
    let to_sign = [
        &DEVICE_SIGNATURE_PREFIX[..],
        &verified.device_details,
        creds.signed_identity_key.public.as_bytes(),
        verified.account_key.as_bytes(),
    ]
    .concat();
    let signature = creds.signed_identity_key.private.sign(rng, &to_sign);
    AdvSignedDeviceIdentity {
        device_signature: Some(signature.to_vec()),
        ..verified.account.clone()
    }
}

/// The `pair-device-sign` reply: the signed account without the account signature key.
fn reply_node(stanza_id: &str, key_index: u32, signed: &AdvSignedDeviceIdentity) -> Node {
    let reply_account = AdvSignedDeviceIdentity {
        account_signature_key: None,
        ..signed.clone()
    };
    Node::new("iq")
        .with_attr("to", "@s.whatsapp.net")
        .with_attr("type", "result")
        .with_attr("id", stanza_id)
        .with_child(
            Node::new("pair-device-sign").with_child(
                Node::new("device-identity")
                    .with_attr("key-index", key_index.to_string())
                    .with_bytes(reply_account.encode_to_vec()),
            ),
        )
}

/// Verifies a `pair-success` stanza against `creds` and computes the outcome (our device
/// signature draws from `rng`). Pure: nothing is changed; see [`handle_pair_success`] to verify,
/// persist and get the reply in one step.
pub fn process_pair_success<R: CryptoRng + ?Sized>(
    stanza: &Node,
    creds: &AuthCreds,
    profile: BaileysProfile,
    rng: &mut R,
) -> Result<PairingOutcome, PairingRejection> {
    let pair = read_stanza(stanza)?;
    let details = verify_hmac(pair.container, creds)?;
    let verified = verify_account(&details, creds)?;
    let signed = sign_as_device(rng, &verified, creds);
    let reply = reply_node(pair.stanza_id, verified.key_index, &signed);
    let identity_name = match (profile, pair.lid) {
        (BaileysProfile::Baileys7, Some(lid)) => lid,
        _ => pair.jid,
    };
    Ok(PairingOutcome {
        account: signed.into(),
        me: Contact {
            id: pair.jid.to_owned(),
            lid: match profile {
                BaileysProfile::Baileys7 => pair.lid.map(str::to_owned),
                BaileysProfile::Baileys6 => None,
            },
            name: pair.biz_name,
            ..Default::default()
        },
        signal_identity: SignalIdentity {
            identifier: SignalIdentifier {
                name: identity_name.to_owned(),
                device_id: 0,
            },
            identifier_key: verified.account_key,
        },
        platform: pair.platform,
        key_index: verified.key_index,
        reply,
    })
}

/// Verifies `stanza`, commits the creds change (one commit, a `CredsUpdated` event) and returns
/// the reply to send. On rejection nothing is written.
pub async fn handle_pair_success<R: CryptoRng + Send + ?Sized>(
    state: &AuthState,
    rng: &mut R,
    stanza: &Node,
) -> Result<Node> {
    state
        .transaction(LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let outcome =
                process_pair_success(stanza, &tx.creds(), BaileysProfile::default(), rng)?;
            tx.update_creds(|creds| outcome.apply(creds)).await?;
            tracing::info!(me = %outcome.me.id, platform = ?outcome.platform, "paired");
            Ok::<_, LinkError>(outcome.reply)
        })
        .await
}
