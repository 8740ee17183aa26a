//! Curve25519 keys as WhatsApp's Signal profile uses them: X25519 key agreement and XEdDSA
//! signatures over the same Montgomery key pair.
//!
//! A public key travels in two forms: raw (32 bytes, used by Baileys creds, Noise and pairing)
//! and Signal-serialised (`0x05 || raw`, used in Signal messages, bundles and records). XEdDSA
//! always works on the raw key.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Result, SignalError};
use crate::provider::CryptoRng;

/// The type byte that prefixes a Curve25519 public key in Signal's serialisation.
pub const DJB_KEY_TYPE: u8 = 0x05;

/// Length of an XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;

/// An XEdDSA signature (`R || s`).
pub type Signature = [u8; SIGNATURE_LEN];

/// A Curve25519 public key (the Montgomery `u` coordinate, 32 raw bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps 32 raw bytes.
    pub const fn from_raw(raw: [u8; 32]) -> Self {
        Self(raw)
    }

    /// Parses a key given either raw (32 bytes) or Signal-serialised (33 bytes, `0x05` first).
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        match bytes.len() {
            32 => Ok(Self(bytes.try_into().expect("length checked"))),
            33 => Self::from_signal_bytes(bytes),
            len => Err(SignalError::InvalidKey(format!(
                "public key must be 32 or 33 bytes, got {len}"
            ))),
        }
    }

    /// Parses a Signal-serialised key: exactly 33 bytes starting with `0x05`.
    pub fn from_signal_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes {
            [DJB_KEY_TYPE, rest @ ..] if rest.len() == 32 => {
                Ok(Self(rest.try_into().expect("length checked")))
            }
            [DJB_KEY_TYPE, ..] => Err(SignalError::InvalidKey(format!(
                "serialised public key must be 33 bytes, got {}",
                bytes.len()
            ))),
            [other, ..] => Err(SignalError::InvalidKey(format!(
                "unknown public key type byte 0x{other:02x}"
            ))),
            [] => Err(SignalError::InvalidKey("empty public key".into())),
        }
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The Signal serialisation, `0x05 || raw`.
    pub fn serialize(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = DJB_KEY_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// Verifies an XEdDSA signature made by this key over `message`.
    ///
    /// The Montgomery `u` is mapped to the Edwards `y = (u-1)/(u+1)`; the sign bit is taken from
    /// bit 7 of the signature's last byte (0 for XEdDSA signatures, set by some legacy signers)
    /// and cleared before the Ed25519 check. Returns `false` for any malformed input.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <&Signature>::try_from(signature) else {
            return false;
        };
        let sign_bit = signature[63] >> 7;
        let Some(edwards) = MontgomeryPoint(self.0).to_edwards(sign_bit) else {
            return false;
        };
        let a_compressed = edwards.compress();

        let mut s_bytes: [u8; 32] = signature[32..].try_into().expect("64-byte signature");
        s_bytes[31] &= 0x7f;
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let r_bytes: [u8; 32] = signature[..32].try_into().expect("64-byte signature");
        // R must be a valid point encoding.
        if CompressedEdwardsY(r_bytes).decompress().is_none() {
            return false;
        }

        let h = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(a_compressed.as_bytes())
                .chain_update(message),
        );
        // R' = sB - hA; valid when R' encodes to R.
        let r_check =
            curve25519_dalek::EdwardsPoint::vartime_double_scalar_mul_basepoint(&-h, &edwards, &s);
        r_check.compress().as_bytes() == &r_bytes
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(raw: [u8; 32]) -> Self {
        Self(raw)
    }
}

/// A Curve25519 private key (32 bytes, clamped on generation). Zeroized on drop; `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// A fresh random key from `rng`, clamped like libsignal's.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = Self(clamp_integer(bytes));
        bytes.zeroize();
        key
    }

    /// Wraps 32 stored bytes as they are (stored keys are already clamped; X25519 clamps anyway).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses a 32-byte slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| {
            SignalError::InvalidKey(format!("private key must be 32 bytes, got {}", bytes.len()))
        })?;
        Ok(Self(raw))
    }

    /// The secret bytes. Handle with care: never log them.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }

    /// X25519 key agreement with `their` public key.
    pub fn agree(&self, their: &PublicKey) -> SharedSecret {
        SharedSecret(MontgomeryPoint(their.0).mul_clamped(self.0).to_bytes())
    }

    /// An XEdDSA signature over `message`, with 64 fresh random bytes from `rng`.
    pub fn sign<R: CryptoRng + ?Sized>(&self, rng: &mut R, message: &[u8]) -> Signature {
        let mut random = [0u8; 64];
        rng.fill_bytes(&mut random);
        let signature = self.sign_with_randomness(message, &random);
        random.zeroize();
        signature
    }

    /// An XEdDSA signature over `message` with caller-supplied 64 bytes of randomness `z`.
    /// Deterministic for a given `z`; use [`PrivateKey::sign`] unless a test needs fixed bytes.
    pub fn sign_with_randomness(&self, message: &[u8], z: &[u8; 64]) -> Signature {
        // calculate_key_pair: a key pair (A, a) with A's sign bit forced to 0.
        let mut k = Scalar::from_bytes_mod_order(clamp_integer(self.0));
        let edwards = &k * ED25519_BASEPOINT_TABLE;
        let mut a_bytes = edwards.compress().to_bytes();
        if a_bytes[31] & 0x80 != 0 {
            k = -k;
            a_bytes[31] &= 0x7f;
        }

        // r = hash1(a || M || Z) mod q, where hash1 prefixes 0xFE followed by 31 0xFF bytes.
        let mut prefix = [0xffu8; 32];
        prefix[0] = 0xfe;
        let mut r = Scalar::from_hash(
            Sha512::new()
                .chain_update(prefix)
                .chain_update(k.as_bytes())
                .chain_update(message)
                .chain_update(z),
        );
        let r_point = (&r * ED25519_BASEPOINT_TABLE).compress();
        let h = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_point.as_bytes())
                .chain_update(a_bytes)
                .chain_update(message),
        );
        let s = r + h * k;
        r.zeroize();
        k.zeroize();

        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..32].copy_from_slice(r_point.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        signature
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// The output of an X25519 key agreement. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// The 32 secret bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// A Curve25519 key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The public half.
    pub public: PublicKey,
    /// The private half.
    pub private: PrivateKey,
}

impl KeyPair {
    /// A fresh random key pair from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }

    /// The key pair of a private key (the public key is derived).
    pub fn from_private(private: PrivateKey) -> Self {
        Self {
            public: private.public_key(),
            private,
        }
    }

    /// A key pair from stored halves, checking that they belong together.
    pub fn from_parts(public: PublicKey, private: PrivateKey) -> Result<Self> {
        if private.public_key() != public {
            return Err(SignalError::InvalidKey(
                "public key does not match private key".into(),
            ));
        }
        Ok(Self { public, private })
    }

    /// X25519 key agreement with `their` public key.
    pub fn agree(&self, their: &PublicKey) -> SharedSecret {
        self.private.agree(their)
    }

    /// An XEdDSA signature over `message`, with fresh randomness from `rng`.
    pub fn sign<R: CryptoRng + ?Sized>(&self, rng: &mut R, message: &[u8]) -> Signature {
        self.private.sign(rng, message)
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("private", &self.private)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::TestProvider;
    use proptest::prelude::*;

    #[test]
    fn dh_agrees_both_ways() {
        let rng = &mut TestProvider::new(1);
        let a = KeyPair::generate(rng);
        let b = KeyPair::generate(rng);
        assert_eq!(a.agree(&b.public).as_bytes(), b.agree(&a.public).as_bytes());
    }

    #[test]
    fn serialization_round_trips() {
        let pair = KeyPair::generate(&mut TestProvider::new(2));
        let ser = pair.public.serialize();
        assert_eq!(ser[0], DJB_KEY_TYPE);
        assert_eq!(PublicKey::from_slice(&ser).unwrap(), pair.public);
        assert_eq!(
            PublicKey::from_slice(pair.public.as_bytes()).unwrap(),
            pair.public
        );
        assert!(PublicKey::from_signal_bytes(pair.public.as_bytes()).is_err());
        let mut wrong_type = ser;
        wrong_type[0] = 0x06;
        assert!(PublicKey::from_slice(&wrong_type).is_err());
    }

    #[test]
    fn debug_redacts_private_keys() {
        let pair = KeyPair::generate(&mut TestProvider::new(3));
        let shown = format!("{pair:?}");
        assert!(shown.contains("<redacted>"));
        let secret_hex: String = pair
            .private
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&secret_hex));
    }

    #[test]
    fn from_parts_rejects_mismatched_halves() {
        let rng = &mut TestProvider::new(4);
        let a = KeyPair::generate(rng);
        let b = KeyPair::generate(rng);
        assert!(KeyPair::from_parts(a.public, b.private.clone()).is_err());
        assert!(KeyPair::from_parts(b.public, b.private).is_ok());
    }

    proptest! {
        #[test]
        fn signatures_verify_and_bind_message(seed in any::<[u8; 32]>(), z in any::<[u8; 32]>(),
                                              msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let pair = KeyPair::from_private(PrivateKey::from_bytes(clamp_integer(seed)));
            let mut random = [0u8; 64];
            random[..32].copy_from_slice(&z);
            let sig = pair.private.sign_with_randomness(&msg, &random);
            prop_assert!(pair.public.verify(&msg, &sig));
            let mut tampered = msg.clone();
            tampered.push(1);
            prop_assert!(!pair.public.verify(&tampered, &sig));
            let mut bad_sig = sig;
            bad_sig[5] ^= 1;
            prop_assert!(!pair.public.verify(&msg, &bad_sig));
            let other = KeyPair::generate(&mut TestProvider::new(u64::from(z[0])));
            prop_assert!(!other.public.verify(&msg, &sig));
        }

        #[test]
        fn unclamped_private_keys_sign_verifiably(seed in any::<[u8; 32]>()) {
            // Stored keys need not be clamped; signing and DH must clamp consistently.
            let key = PrivateKey::from_bytes(seed);
            let public = key.public_key();
            let sig = key.sign(&mut TestProvider::new(5), b"message");
            prop_assert!(public.verify(b"message", &sig));
        }
    }
}
