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
use wa_proto::Node;
use wa_proto::proto::{
    AdvDeviceIdentity, AdvEncryptionType, AdvSignedDeviceIdentity, AdvSignedDeviceIdentityHmac,
};
use wa_signal::PublicKey;

use super::BaileysProfile;
use crate::creds::{AuthCreds, Contact, SignalIdentifier, SignalIdentity, SignedDeviceIdentity};
use crate::error::{AuthError, Result};
use crate::state::{AuthState, Transaction};

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

fn reject(rejection: PairingRejection) -> AuthError {
    AuthError::PairingRejected(rejection)
}

fn malformed(what: &'static str, reason: impl ToString) -> AuthError {
    reject(PairingRejection::Malformed {
        what,
        reason: reason.to_string(),
    })
}

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

/// Verifies a `pair-success` stanza against `creds` and computes the outcome. Pure: nothing is
/// changed; see [`handle_pair_success`] to verify, persist and get the reply in one step.
pub fn process_pair_success(
    stanza: &Node,
    creds: &AuthCreds,
    profile: BaileysProfile,
) -> Result<PairingOutcome> {
    let stanza_id = stanza
        .attr("id")
        .ok_or_else(|| reject(PairingRejection::Missing("iq id")))?;
    let pair_success = stanza
        .child("pair-success")
        .ok_or_else(|| reject(PairingRejection::Missing("pair-success")))?;
    let identity_node = pair_success.child("device-identity");
    let device_node = pair_success.child("device");
    let (Some(identity_node), Some(device_node)) = (identity_node, device_node) else {
        return Err(reject(PairingRejection::Missing(
            "device-identity or device",
        )));
    };
    let container_bytes = identity_node
        .content_bytes()
        .ok_or_else(|| reject(PairingRejection::Missing("device-identity content")))?;
    let jid = device_node
        .attr("jid")
        .ok_or_else(|| reject(PairingRejection::Missing("device jid")))?;
    let lid = device_node.attr("lid");
    let platform = pair_success
        .child("platform")
        .and_then(|n| n.attr("name"))
        .map(str::to_owned);
    let biz_name = pair_success
        .child("biz")
        .and_then(|n| n.attr("name"))
        .map(str::to_owned);

    // 1. The container's HMAC under our ADV secret.
    let container = AdvSignedDeviceIdentityHmac::decode(container_bytes)
        .map_err(|e| malformed("device identity container", e))?;
    let details = container
        .details
        .as_deref()
        .ok_or_else(|| reject(PairingRejection::Missing("container details")))?;
    let expected_hmac = container
        .hmac
        .as_deref()
        .ok_or_else(|| reject(PairingRejection::Missing("container hmac")))?;
    let secret = creds
        .adv_secret_key
        .to_bytes()
        .map_err(|e| malformed("advSecretKey", e))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&secret).map_err(|e| malformed("advSecretKey", e))?;
    if container.account_type == Some(AdvEncryptionType::Hosted as i32) {
        mac.update(&HOSTED_PREFIX);
    }
    mac.update(details);
    mac.verify_slice(expected_hmac)
        .map_err(|_| reject(PairingRejection::BadHmac))?;

    // 2. The primary's signature over our identity.
    let account = AdvSignedDeviceIdentity::decode(details)
        .map_err(|e| malformed("signed device identity", e))?;
    let device_details = account
        .details
        .as_deref()
        .ok_or_else(|| reject(PairingRejection::Missing("account details")))?;
    let account_key_bytes = account
        .account_signature_key
        .as_deref()
        .ok_or_else(|| reject(PairingRejection::Missing("account signature key")))?;
    let account_key = PublicKey::from_slice(account_key_bytes)
        .map_err(|e| malformed("account signature key", e))?;
    let account_signature = account
        .account_signature
        .as_deref()
        .ok_or_else(|| reject(PairingRejection::Missing("account signature")))?;
    let device_identity =
        AdvDeviceIdentity::decode(device_details).map_err(|e| malformed("device identity", e))?;
    let prefix = if device_identity.device_type == Some(AdvEncryptionType::Hosted as i32) {
        HOSTED_PREFIX
    } else {
        ACCOUNT_SIGNATURE_PREFIX
    };
    let our_identity = creds.signed_identity_key.public.as_bytes();
    let signed = [&prefix[..], device_details, our_identity].concat();
    if !account_key.verify(&signed, account_signature) {
        return Err(reject(PairingRejection::BadAccountSignature));
    }

    // 3. Our device signature.
    let to_sign = [
        &DEVICE_SIGNATURE_PREFIX[..],
        device_details,
        our_identity,
        account_key.as_bytes(),
    ]
    .concat();
    let device_signature = creds.signed_identity_key.private.sign(&to_sign);
    let mut signed_account = account.clone();
    signed_account.device_signature = Some(device_signature.to_vec());

    let key_index = device_identity.key_index.unwrap_or(0);
    let reply_account = AdvSignedDeviceIdentity {
        account_signature_key: None,
        ..signed_account.clone()
    };
    let reply = Node::new("iq")
        .with_attr("to", "@s.whatsapp.net")
        .with_attr("type", "result")
        .with_attr("id", stanza_id)
        .with_child(
            Node::new("pair-device-sign").with_child(
                Node::new("device-identity")
                    .with_attr("key-index", key_index.to_string())
                    .with_bytes(reply_account.encode_to_vec()),
            ),
        );

    let identity_name = match (profile, lid) {
        (BaileysProfile::Baileys7, Some(lid)) => lid,
        _ => jid,
    };
    Ok(PairingOutcome {
        account: signed_account.into(),
        me: Contact {
            id: jid.to_owned(),
            lid: match profile {
                BaileysProfile::Baileys7 => lid.map(str::to_owned),
                BaileysProfile::Baileys6 => None,
            },
            name: biz_name,
            ..Default::default()
        },
        signal_identity: SignalIdentity {
            identifier: SignalIdentifier {
                name: identity_name.to_owned(),
                device_id: 0,
            },
            identifier_key: account_key,
        },
        platform,
        key_index,
        reply,
    })
}

/// Verifies `stanza`, commits the creds change (one commit, a `CredsUpdated` event) and returns
/// the reply to send. On rejection nothing is written.
pub async fn handle_pair_success(state: &AuthState, stanza: &Node) -> Result<Node> {
    state
        .transaction(crate::LockKey::creds(), async |tx: &mut Transaction<'_>| {
            let outcome = process_pair_success(stanza, &tx.creds(), BaileysProfile::default())?;
            tx.update_creds(|creds| outcome.apply(creds)).await?;
            tracing::info!(me = %outcome.me.id, platform = ?outcome.platform, "paired");
            Ok::<_, AuthError>(outcome.reply)
        })
        .await
}
