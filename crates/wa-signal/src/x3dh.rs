//! X3DH key agreement, both roles, as WhatsApp's profile runs it.
//!
//! Master secret = `0xFF * 32 || DH1 || DH2 || DH3 [|| DH4]`, then HKDF-SHA256(salt = 32 zero
//! bytes, info = `"WhisperText"`) -> root key || chain key.
//!
//! - Initiator ("Alice", from a bundle): DH1 = DH(IKa, SPKb), DH2 = DH(EKa, IKb),
//!   DH3 = DH(EKa, SPKb), DH4 = DH(EKa, OPKb).
//! - Responder ("Bob", from a PreKeySignalMessage): the same values from the other side.

use zeroize::Zeroizing;

use crate::curve::{KeyPair, PublicKey, SharedSecret};
use crate::ratchet::{ChainKey, RootKey, derive_initial_keys};

fn master_secret(dhs: &[SharedSecret]) -> (RootKey, ChainKey) {
    let mut secret = Zeroizing::new(Vec::with_capacity(32 * (1 + dhs.len())));
    secret.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        secret.extend_from_slice(dh.as_bytes());
    }
    derive_initial_keys(&secret)
}

/// The initiator's side.
pub(crate) fn initiator(
    our_identity: &KeyPair,
    our_base: &KeyPair,
    their_identity: &PublicKey,
    their_signed_pre_key: &PublicKey,
    their_one_time_pre_key: Option<&PublicKey>,
) -> (RootKey, ChainKey) {
    let mut dhs = vec![
        our_identity.agree(their_signed_pre_key),
        our_base.agree(their_identity),
        our_base.agree(their_signed_pre_key),
    ];
    if let Some(opk) = their_one_time_pre_key {
        dhs.push(our_base.agree(opk));
    }
    master_secret(&dhs)
}

/// The responder's side.
pub(crate) fn responder(
    our_identity: &KeyPair,
    our_signed_pre_key: &KeyPair,
    our_one_time_pre_key: Option<&KeyPair>,
    their_identity: &PublicKey,
    their_base: &PublicKey,
) -> (RootKey, ChainKey) {
    let mut dhs = vec![
        our_signed_pre_key.agree(their_identity),
        our_identity.agree(their_base),
        our_signed_pre_key.agree(their_base),
    ];
    if let Some(opk) = our_one_time_pre_key {
        dhs.push(opk.agree(their_base));
    }
    master_secret(&dhs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::TestProvider;

    #[test]
    fn both_roles_agree_with_and_without_one_time_pre_key() {
        let rng = &mut TestProvider::new(1);
        let (ika, eka) = (KeyPair::generate(rng), KeyPair::generate(rng));
        let (ikb, spkb, opkb) = (
            KeyPair::generate(rng),
            KeyPair::generate(rng),
            KeyPair::generate(rng),
        );
        for with_opk in [false, true] {
            let (ra, ca) = initiator(
                &ika,
                &eka,
                &ikb.public,
                &spkb.public,
                with_opk.then_some(&opkb.public),
            );
            let (rb, cb) = responder(
                &ikb,
                &spkb,
                with_opk.then_some(&opkb),
                &ika.public,
                &eka.public,
            );
            assert_eq!(ra, rb);
            assert_eq!(ca, cb);
        }
    }
}
