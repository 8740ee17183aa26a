//! Noise's `SymmetricState` (handshake hash `h`, chaining key `ck`, the handshake cipher) in
//! WhatsApp's variant.
//!
//! Two types so that "encrypt before any key was mixed in" cannot be written:
//! [`SymmetricState`] (no key yet) becomes [`KeyedState`] at the first `MixKey`.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::cipher::CipherState;
use super::{NoiseStage, PROTOCOL_NAME};
use crate::error::Result;

/// `h` and `ck`, shared by both typestates. `ck` is zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Chain {
    h: [u8; 32],
    ck: [u8; 32],
}

impl Chain {
    fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    /// `HKDF-SHA256(salt = ck, ikm, info = "", 64)`: sets `ck` to the first half and returns the
    /// second half (the new cipher key).
    fn mix_key(&mut self, ikm: &[u8]) -> Zeroizing<[u8; 32]> {
        let (first, second) = hkdf_pair(&self.ck, ikm);
        self.ck = *first;
        second
    }
}

/// `HKDF-SHA256(salt, ikm, info = "", L = 64)`, split into two 32-byte halves.
fn hkdf_pair(salt: &[u8; 32], ikm: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut okm = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&[], okm.as_mut_slice())
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let mut first = Zeroizing::new([0u8; 32]);
    let mut second = Zeroizing::new([0u8; 32]);
    first.copy_from_slice(&okm[..32]);
    second.copy_from_slice(&okm[32..]);
    (first, second)
}

/// A snapshot of the state after a step, recorded in unit tests to compare with the fixtures'
/// `handshake.trace`.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceEntry {
    pub(crate) h: [u8; 32],
    pub(crate) ck: Option<[u8; 32]>,
    pub(crate) k: Option<[u8; 32]>,
}

/// The state before the first `MixKey`: only `MixHash` is possible.
pub(crate) struct SymmetricState {
    chain: Chain,
    #[cfg(test)]
    pub(crate) trace: Vec<TraceEntry>,
}

impl SymmetricState {
    /// `h = ck = "Noise_XX_25519_AESGCM_SHA256\0\0\0\0"` (the name is exactly 32 bytes with its
    /// padding, so it is used directly rather than hashed).
    pub(crate) fn new() -> Self {
        let mut name = [0u8; 32];
        name[..PROTOCOL_NAME.len()].copy_from_slice(PROTOCOL_NAME);
        Self {
            chain: Chain { h: name, ck: name },
            #[cfg(test)]
            trace: Vec::new(),
        }
    }

    /// `h = SHA-256(h || data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        self.chain.mix_hash(data);
    }

    /// The handshake hash `h`.
    pub(crate) fn handshake_hash(&self) -> [u8; 32] {
        self.chain.h
    }

    /// The first `MixKey`: derives the handshake cipher key, nonce counter 0.
    pub(crate) fn mix_key(mut self, ikm: &[u8]) -> KeyedState {
        let key = self.chain.mix_key(ikm);
        let chain = Chain {
            h: self.chain.h,
            ck: self.chain.ck,
        };
        KeyedState {
            chain,
            cipher: CipherState::new(&key),
            #[cfg(test)]
            k: *key,
            #[cfg(test)]
            trace: std::mem::take(&mut self.trace),
        }
    }

    /// Records `h` for the fixture trace (unit tests only).
    pub(crate) fn checkpoint(&mut self) {
        #[cfg(test)]
        self.trace.push(TraceEntry {
            h: self.chain.h,
            ck: None,
            k: None,
        });
    }
}

impl std::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &Hex(&self.chain.h))
            .field("ck", &"<redacted>")
            .finish()
    }
}

/// The state once a key is mixed in: handshake encryption and decryption under AD = `h`.
pub(crate) struct KeyedState {
    chain: Chain,
    cipher: CipherState,
    #[cfg(test)]
    k: [u8; 32],
    #[cfg(test)]
    pub(crate) trace: Vec<TraceEntry>,
}

impl KeyedState {
    /// `MixKey(ikm)`: new `ck` and cipher key, nonce counter reset to 0.
    pub(crate) fn mix_key(&mut self, ikm: &[u8]) {
        let key = self.chain.mix_key(ikm);
        self.cipher = CipherState::new(&key);
        #[cfg(test)]
        {
            self.k = *key;
        }
    }

    /// `EncryptAndHash`: AES-GCM with AD = `h` under the running counter, then
    /// `MixHash(ciphertext)`.
    pub(crate) fn encrypt_and_hash(
        &mut self,
        plaintext: &[u8],
        stage: NoiseStage,
    ) -> Result<Vec<u8>> {
        let ciphertext = self.cipher.encrypt(&self.chain.h, plaintext, stage)?;
        self.chain.mix_hash(&ciphertext);
        Ok(ciphertext)
    }

    /// `DecryptAndHash`: AES-GCM with AD = `h` under the running counter (the same counter
    /// encryption uses), then `MixHash(ciphertext)`.
    pub(crate) fn decrypt_and_hash(
        &mut self,
        ciphertext: &[u8],
        stage: NoiseStage,
    ) -> Result<Vec<u8>> {
        let plaintext = self.cipher.decrypt(&self.chain.h, ciphertext, stage)?;
        self.chain.mix_hash(ciphertext);
        Ok(plaintext)
    }

    /// The handshake hash `h`.
    pub(crate) fn handshake_hash(&self) -> [u8; 32] {
        self.chain.h
    }

    /// `Split`: `HKDF(salt = ck, ikm = empty)` -> (initiator->responder, responder->initiator)
    /// ciphers, counters at 0.
    pub(crate) fn split(self) -> (CipherState, CipherState) {
        let (first, second) = hkdf_pair(&self.chain.ck, &[]);
        (CipherState::new(&first), CipherState::new(&second))
    }

    /// The transport keys `Split` would produce (unit tests only).
    #[cfg(test)]
    pub(crate) fn split_keys(&self) -> ([u8; 32], [u8; 32]) {
        let (first, second) = hkdf_pair(&self.chain.ck, &[]);
        (*first, *second)
    }

    /// Records `h`, `ck` and `k` for the fixture trace (unit tests only); `with_keys = false`
    /// records only `h`, as the fixtures do after a `DecryptAndHash`/`EncryptAndHash` step.
    pub(crate) fn checkpoint(&mut self, with_keys: bool) {
        #[cfg(test)]
        self.trace.push(TraceEntry {
            h: self.chain.h,
            ck: with_keys.then_some(self.chain.ck),
            k: with_keys.then_some(self.k),
        });
        #[cfg(not(test))]
        let _ = with_keys;
    }
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("h", &Hex(&self.chain.h))
            .field("ck", &"<redacted>")
            .field("cipher", &self.cipher)
            .finish()
    }
}

/// Hex display of public bytes (the handshake hash is not secret).
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl std::fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_state_is_the_padded_protocol_name() {
        let state = SymmetricState::new();
        assert_eq!(&state.chain.h, b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0");
        assert_eq!(state.chain.h, state.chain.ck);
    }

    #[test]
    fn handshake_encryption_round_trips_with_matching_transcripts() {
        let mut a = SymmetricState::new();
        let mut b = SymmetricState::new();
        a.mix_hash(b"prologue");
        b.mix_hash(b"prologue");
        let mut a = a.mix_key(b"shared");
        let mut b = b.mix_key(b"shared");
        let ct = a
            .encrypt_and_hash(b"one", NoiseStage::ServerHelloStatic)
            .unwrap();
        assert_eq!(
            b.decrypt_and_hash(&ct, NoiseStage::ServerHelloStatic)
                .unwrap(),
            b"one"
        );
        // The counter runs on across directions: b encrypts with counter 1.
        let ct = b
            .encrypt_and_hash(b"two", NoiseStage::ClientFinishStatic)
            .unwrap();
        assert_eq!(
            a.decrypt_and_hash(&ct, NoiseStage::ClientFinishStatic)
                .unwrap(),
            b"two"
        );
        assert_eq!(a.handshake_hash(), b.handshake_hash());
        assert_eq!(a.split_keys(), b.split_keys());
    }

    #[test]
    fn diverging_hash_breaks_decryption() {
        let mut a = SymmetricState::new();
        let mut b = SymmetricState::new();
        a.mix_hash(b"WA\x06\x03");
        b.mix_hash(b"WA\x06\x02");
        let mut a = a.mix_key(b"shared");
        let mut b = b.mix_key(b"shared");
        let ct = a
            .encrypt_and_hash(b"x", NoiseStage::ServerHelloStatic)
            .unwrap();
        assert!(
            b.decrypt_and_hash(&ct, NoiseStage::ServerHelloStatic)
                .is_err()
        );
    }
}
