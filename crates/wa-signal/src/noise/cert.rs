//! The server's certificate chain: root -> intermediate -> leaf, where the leaf certifies the
//! server's Noise static key.
//!
//! Wire form: `CertChain { leaf = 1, intermediate = 2 }`, each a `NoiseCertificate { details = 1
//! (bytes), signature = 2 (64 bytes) }`, where `details` encodes `{ serial = 1, issuerSerial = 2,
//! key = 3 (raw 32 bytes), notBefore = 4, notAfter = 5 (unix seconds) }`. Each signature is
//! XEdDSA by the issuer over the exact `details` bytes.

use prost::Message;
use wa_proto::proto::CertChain;
use wa_proto::proto::cert_chain::NoiseCertificate;
use wa_proto::proto::cert_chain::noise_certificate::Details;

use crate::curve::PublicKey;
#[cfg(any(test, feature = "test-util"))]
use crate::{
    curve::{KeyPair, PrivateKey},
    provider::CryptoRng,
};

use super::UnixTime;

/// WhatsApp's root public key, the default trust anchor for the intermediate certificate.
pub const WHATSAPP_ROOT_KEY: PublicKey = PublicKey::from_raw([
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
]);

/// Which certificate of the chain an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// The intermediate, signed by the root.
    Intermediate,
    /// The leaf, signed by the intermediate; certifies the server's static key.
    Leaf,
}

impl std::fmt::Display for CertRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Intermediate => "intermediate",
            Self::Leaf => "leaf",
        })
    }
}

/// Why a server certificate chain was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The decrypted payload is not a `CertChain`, or a certificate or its details are missing
    /// or malformed.
    #[error("malformed {role} certificate: {reason}")]
    Malformed {
        /// Which certificate (for a chain that does not decode: the leaf).
        role: CertRole,
        /// What is wrong.
        reason: String,
    },
    /// The signature does not verify with the issuer's key (the root for the intermediate, the
    /// intermediate's key for the leaf). A chain from another root fails here.
    #[error("{role} certificate signature does not verify")]
    BadSignature {
        /// Which certificate.
        role: CertRole,
    },
    /// `issuerSerial` does not name the issuer (0 for the root; the intermediate's serial for
    /// the leaf).
    #[error("{role} certificate has issuer serial {found}, expected {expected}")]
    WrongIssuerSerial {
        /// Which certificate.
        role: CertRole,
        /// The serial it should carry.
        expected: u32,
        /// The serial it carries.
        found: u32,
    },
    /// The certificate is not valid yet at the given time.
    #[error("{role} certificate not valid before {not_before} (now {now})")]
    NotYetValid {
        /// Which certificate.
        role: CertRole,
        /// Its `notBefore`.
        not_before: u64,
        /// The time checked against.
        now: u64,
    },
    /// The certificate has expired at the given time.
    #[error("{role} certificate expired at {not_after} (now {now})")]
    Expired {
        /// Which certificate.
        role: CertRole,
        /// Its `notAfter`.
        not_after: u64,
        /// The time checked against.
        now: u64,
    },
    /// The leaf certifies a key other than the server static key of the handshake.
    #[error("leaf certificate key does not match the server's static key")]
    LeafKeyMismatch {
        /// The key in the leaf certificate.
        certified: PublicKey,
        /// The server's static key from the handshake.
        server_static: PublicKey,
    },
}

/// The signed fields of a certificate (`NoiseCertificate.Details`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertDetails {
    /// This certificate's serial number.
    pub serial: u32,
    /// The issuer's serial number (0 = the root).
    pub issuer_serial: u32,
    /// The certified key (raw 32 bytes on the wire).
    pub key: PublicKey,
    /// Valid from (unix seconds, inclusive); `None` = no lower bound.
    pub not_before: Option<u64>,
    /// Valid until (unix seconds, inclusive); `None` = no upper bound.
    pub not_after: Option<u64>,
}

impl CertDetails {
    /// The protobuf encoding (the bytes a signature covers).
    pub fn encode(&self) -> Vec<u8> {
        Details {
            serial: Some(self.serial),
            issuer_serial: Some(self.issuer_serial),
            key: Some(self.key.as_bytes().to_vec()),
            not_before: self.not_before,
            not_after: self.not_after,
        }
        .encode_to_vec()
    }

    /// Decodes details. Absent integers read as 0 (proto3 defaults); `key` must be present
    /// and 32 bytes.
    pub fn decode(bytes: &[u8], role: CertRole) -> Result<Self, CertificateError> {
        let malformed = |reason: String| CertificateError::Malformed { role, reason };
        let details =
            Details::decode(bytes).map_err(|e| malformed(format!("details do not decode: {e}")))?;
        let key = details
            .key
            .as_deref()
            .ok_or_else(|| malformed("details carry no key".into()))?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| malformed(format!("key is {} bytes, expected 32", key.len())))?;
        Ok(Self {
            serial: details.serial.unwrap_or(0),
            issuer_serial: details.issuer_serial.unwrap_or(0),
            key: PublicKey::from_raw(key),
            not_before: details.not_before,
            not_after: details.not_after,
        })
    }

    fn check_validity(&self, role: CertRole, now: UnixTime) -> Result<(), CertificateError> {
        let now = now.as_secs();
        if let Some(not_before) = self.not_before
            && now < not_before
        {
            return Err(CertificateError::NotYetValid {
                role,
                not_before,
                now,
            });
        }
        if let Some(not_after) = self.not_after
            && now > not_after
        {
            return Err(CertificateError::Expired {
                role,
                not_after,
                now,
            });
        }
        Ok(())
    }
}

/// A certificate as it travels: the exact details bytes and the issuer's signature over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The encoded [`CertDetails`].
    pub details: Vec<u8>,
    /// XEdDSA signature by the issuer over `details` (64 bytes when well formed).
    pub signature: Vec<u8>,
}

impl Certificate {
    /// Encodes `details` and signs them with `issuer` (for test servers; feature `test-util`).
    #[cfg(any(test, feature = "test-util"))]
    pub fn issue<R: CryptoRng + ?Sized>(
        rng: &mut R,
        details: &CertDetails,
        issuer: &PrivateKey,
    ) -> Self {
        let details = details.encode();
        let signature = issuer.sign(rng, &details).to_vec();
        Self { details, signature }
    }

    fn from_proto(
        cert: Option<NoiseCertificate>,
        role: CertRole,
    ) -> Result<Self, CertificateError> {
        let malformed = |reason: &str| CertificateError::Malformed {
            role,
            reason: reason.into(),
        };
        let cert = cert.ok_or_else(|| malformed("missing from the chain"))?;
        Ok(Self {
            details: cert.details.ok_or_else(|| malformed("no details"))?,
            signature: cert.signature.ok_or_else(|| malformed("no signature"))?,
        })
    }

    fn to_proto(&self) -> NoiseCertificate {
        NoiseCertificate {
            details: Some(self.details.clone()),
            signature: Some(self.signature.clone()),
        }
    }

    /// Checks the signature with `issuer`, then decodes the details.
    fn verify(&self, issuer: &PublicKey, role: CertRole) -> Result<CertDetails, CertificateError> {
        if !issuer.verify(&self.details, &self.signature) {
            return Err(CertificateError::BadSignature { role });
        }
        CertDetails::decode(&self.details, role)
    }
}

/// The server's certificate chain (`CertChain`), the plaintext of the server hello's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateChain {
    /// Signed by the root.
    pub intermediate: Certificate,
    /// Signed by the intermediate; certifies the server static key.
    pub leaf: Certificate,
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The intermediate's details (signature checked against the root).
    pub intermediate: CertDetails,
    /// The leaf's details (signature checked against the intermediate; `key` equals the
    /// server's static key).
    pub leaf: CertDetails,
}

impl CertificateChain {
    /// Issues a chain like WhatsApp's (for test servers; feature `test-util`): intermediate
    /// serial 1 signed by `root`, leaf serial 2 certifying `server_static` signed by
    /// `intermediate`, both valid from `not_before` to `not_after`, signed with randomness from
    /// `rng`.
    #[cfg(any(test, feature = "test-util"))]
    pub fn issue<R: CryptoRng + ?Sized>(
        rng: &mut R,
        root: &PrivateKey,
        intermediate: &KeyPair,
        server_static: &PublicKey,
        not_before: u64,
        not_after: u64,
    ) -> Self {
        let intermediate_details = CertDetails {
            serial: 1,
            issuer_serial: 0,
            key: intermediate.public,
            not_before: Some(not_before),
            not_after: Some(not_after),
        };
        let leaf_details = CertDetails {
            serial: 2,
            issuer_serial: 1,
            key: *server_static,
            not_before: Some(not_before),
            not_after: Some(not_after),
        };
        Self {
            intermediate: Certificate::issue(rng, &intermediate_details, root),
            leaf: Certificate::issue(rng, &leaf_details, &intermediate.private),
        }
    }

    /// The `CertChain` protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        CertChain {
            leaf: Some(self.leaf.to_proto()),
            intermediate: Some(self.intermediate.to_proto()),
        }
        .encode_to_vec()
    }

    /// Decodes a `CertChain`; both certificates with details and signature must be present.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let chain = CertChain::decode(bytes).map_err(|e| CertificateError::Malformed {
            role: CertRole::Leaf,
            reason: format!("certificate chain does not decode: {e}"),
        })?;
        Ok(Self {
            intermediate: Certificate::from_proto(chain.intermediate, CertRole::Intermediate)?,
            leaf: Certificate::from_proto(chain.leaf, CertRole::Leaf)?,
        })
    }

    /// Verifies the whole chain:
    ///
    /// 1. the intermediate's signature verifies with `root` and its `issuerSerial` is 0;
    /// 2. the leaf's signature verifies with the intermediate's key and its `issuerSerial` is the
    ///    intermediate's `serial`;
    /// 3. both are valid at `now` (`notBefore <= now <= notAfter`, an absent bound is open);
    /// 4. the leaf's key is `server_static`.
    ///
    /// Signatures are checked before any field of the details they cover is trusted.
    pub fn verify(
        &self,
        root: &PublicKey,
        server_static: &PublicKey,
        now: UnixTime,
    ) -> Result<VerifiedChain, CertificateError> {
        let intermediate = self.intermediate.verify(root, CertRole::Intermediate)?;
        if intermediate.issuer_serial != 0 {
            return Err(CertificateError::WrongIssuerSerial {
                role: CertRole::Intermediate,
                expected: 0,
                found: intermediate.issuer_serial,
            });
        }
        intermediate.check_validity(CertRole::Intermediate, now)?;

        let leaf = self.leaf.verify(&intermediate.key, CertRole::Leaf)?;
        if leaf.issuer_serial != intermediate.serial {
            return Err(CertificateError::WrongIssuerSerial {
                role: CertRole::Leaf,
                expected: intermediate.serial,
                found: leaf.issuer_serial,
            });
        }
        leaf.check_validity(CertRole::Leaf, now)?;
        if leaf.key != *server_static {
            return Err(CertificateError::LeafKeyMismatch {
                certified: leaf.key,
                server_static: *server_static,
            });
        }
        Ok(VerifiedChain { intermediate, leaf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::TestProvider;

    struct Setup {
        root: KeyPair,
        intermediate: KeyPair,
        server: KeyPair,
    }

    fn setup(rng: &mut TestProvider) -> Setup {
        Setup {
            root: KeyPair::generate(rng),
            intermediate: KeyPair::generate(rng),
            server: KeyPair::generate(rng),
        }
    }

    const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

    fn details(serial: u32, issuer_serial: u32, key: PublicKey) -> CertDetails {
        CertDetails {
            serial,
            issuer_serial,
            key,
            not_before: Some(1_700_000_000),
            not_after: Some(1_800_000_000),
        }
    }

    #[test]
    fn a_well_formed_chain_verifies_and_round_trips() {
        let rng = &mut TestProvider::new(1);
        let s = setup(rng);
        let chain = CertificateChain::issue(
            rng,
            &s.root.private,
            &s.intermediate,
            &s.server.public,
            1_700_000_000,
            1_800_000_000,
        );
        let decoded = CertificateChain::decode(&chain.encode()).unwrap();
        assert_eq!(decoded, chain);
        let verified = decoded
            .verify(&s.root.public, &s.server.public, NOW)
            .unwrap();
        assert_eq!(verified.leaf.key, s.server.public);
        assert_eq!(verified.intermediate.key, s.intermediate.public);
    }

    #[test]
    fn every_broken_link_is_reported_by_meaning() {
        let rng = &mut TestProvider::new(2);
        let s = setup(rng);
        let other = KeyPair::generate(rng);
        let good_i = details(1, 0, s.intermediate.public);
        let good_l = details(2, 1, s.server.public);
        let mut chain =
            |i: &CertDetails, i_signer: &PrivateKey, l: &CertDetails, l_signer: &PrivateKey| {
                CertificateChain {
                    intermediate: Certificate::issue(rng, i, i_signer),
                    leaf: Certificate::issue(rng, l, l_signer),
                }
            };
        let verify = |c: CertificateChain| c.verify(&s.root.public, &s.server.public, NOW);

        assert!(
            verify(chain(
                &good_i,
                &s.root.private,
                &good_l,
                &s.intermediate.private
            ))
            .is_ok()
        );
        assert_eq!(
            verify(chain(
                &good_i,
                &other.private,
                &good_l,
                &s.intermediate.private
            )),
            Err(CertificateError::BadSignature {
                role: CertRole::Intermediate
            })
        );
        assert_eq!(
            verify(chain(&good_i, &s.root.private, &good_l, &other.private)),
            Err(CertificateError::BadSignature {
                role: CertRole::Leaf
            })
        );
        assert_eq!(
            verify(chain(
                &details(1, 7, s.intermediate.public),
                &s.root.private,
                &good_l,
                &s.intermediate.private
            )),
            Err(CertificateError::WrongIssuerSerial {
                role: CertRole::Intermediate,
                expected: 0,
                found: 7
            })
        );
        assert_eq!(
            verify(chain(
                &good_i,
                &s.root.private,
                &details(2, 9, s.server.public),
                &s.intermediate.private
            )),
            Err(CertificateError::WrongIssuerSerial {
                role: CertRole::Leaf,
                expected: 1,
                found: 9
            })
        );
        assert!(matches!(
            verify(chain(
                &good_i,
                &s.root.private,
                &details(2, 1, other.public),
                &s.intermediate.private
            )),
            Err(CertificateError::LeafKeyMismatch { .. })
        ));
        let mut expired = good_i.clone();
        expired.not_after = Some(NOW.as_secs() - 1);
        assert!(matches!(
            verify(chain(
                &expired,
                &s.root.private,
                &good_l,
                &s.intermediate.private
            )),
            Err(CertificateError::Expired {
                role: CertRole::Intermediate,
                ..
            })
        ));
        let mut future = good_l.clone();
        future.not_before = Some(NOW.as_secs() + 1);
        assert!(matches!(
            verify(chain(
                &good_i,
                &s.root.private,
                &future,
                &s.intermediate.private
            )),
            Err(CertificateError::NotYetValid {
                role: CertRole::Leaf,
                ..
            })
        ));
        // Bounds are inclusive; absent bounds are open.
        let mut open = good_l.clone();
        open.not_before = None;
        open.not_after = Some(NOW.as_secs());
        assert!(
            verify(chain(
                &good_i,
                &s.root.private,
                &open,
                &s.intermediate.private
            ))
            .is_ok()
        );
    }

    #[test]
    fn malformed_chains_are_typed_errors() {
        assert!(matches!(
            CertificateChain::decode(&[0xff, 0xff]),
            Err(CertificateError::Malformed { .. })
        ));
        let missing = CertChain {
            leaf: None,
            intermediate: None,
        }
        .encode_to_vec();
        assert!(matches!(
            CertificateChain::decode(&missing),
            Err(CertificateError::Malformed {
                role: CertRole::Intermediate,
                ..
            })
        ));
        // A signed details blob with a short key.
        let rng = &mut TestProvider::new(3);
        let root = KeyPair::generate(rng);
        let bad_details = Details {
            key: Some(vec![1, 2, 3]),
            ..Default::default()
        }
        .encode_to_vec();
        let cert = Certificate {
            signature: root.private.sign(rng, &bad_details).to_vec(),
            details: bad_details,
        };
        assert!(matches!(
            cert.verify(&root.public, CertRole::Intermediate),
            Err(CertificateError::Malformed { .. })
        ));
        // A short signature is a bad signature, not a panic.
        let cert = Certificate {
            signature: vec![0; 10],
            details: cert.details,
        };
        assert_eq!(
            cert.verify(&root.public, CertRole::Intermediate),
            Err(CertificateError::BadSignature {
                role: CertRole::Intermediate
            })
        );
    }

    #[test]
    fn the_default_root_is_whatsapps() {
        let hex: String = WHATSAPP_ROOT_KEY
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b"
        );
    }
}
