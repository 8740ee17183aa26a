//! AES-256-GCM under one key with a running 32-bit nonce counter (Noise's `CipherState`, in
//! WhatsApp's layout).

use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use aes_gcm::{Aes256Gcm, Key};

use super::NoiseStage;
use crate::error::{Result, SignalError};

/// Length of the AES-GCM authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// AES-256-GCM with the nonce `8 zero bytes || counter as u32 big-endian`, the counter starting
/// at 0 and advancing after every successful operation. It never wraps: once counter
/// `u32::MAX` has been used, every further operation fails with
/// [`SignalError::NoiseCounterExhausted`].
///
/// The expanded key is zeroized on drop (aes-gcm's `zeroize` feature); `Debug` shows only the
/// counter.
pub(crate) struct CipherState {
    aead: Aes256Gcm,
    /// The next counter to use; `u32::MAX + 1` means exhausted.
    next: u64,
}

impl CipherState {
    /// A cipher under `key`, counter 0.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let key: &Key<Aes256Gcm> = key.into();
        Self {
            aead: Aes256Gcm::new(key),
            next: 0,
        }
    }

    /// The counter the next operation will use.
    pub(crate) fn next_counter(&self) -> u64 {
        self.next
    }

    #[cfg(test)]
    pub(crate) fn set_next_counter(&mut self, next: u64) {
        self.next = next;
    }

    fn counter(&self, stage: NoiseStage) -> Result<u32> {
        u32::try_from(self.next).map_err(|_| SignalError::NoiseCounterExhausted { stage })
    }

    fn nonce(counter: u32) -> Nonce<Aes256Gcm> {
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        Nonce::<Aes256Gcm>::from(nonce)
    }

    /// Encrypts `buf[start..]` in place and appends the tag.
    pub(crate) fn encrypt_tail(
        &mut self,
        ad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
        stage: NoiseStage,
    ) -> Result<()> {
        let counter = self.counter(stage)?;
        let Some(plaintext) = buf.get_mut(start..) else {
            return Err(SignalError::NoiseMalformed {
                what: "plaintext",
                reason: "start beyond buffer".into(),
            });
        };
        let tag = self
            .aead
            .encrypt_inout_detached(&Self::nonce(counter), ad, plaintext.into())
            .map_err(|_| SignalError::NoiseFrameTooLarge {
                len: plaintext_len(buf, start),
                max: super::MAX_FRAME_LEN,
            })?;
        buf.extend_from_slice(&tag);
        self.next += 1;
        Ok(())
    }

    /// Encrypts `plaintext` into a new buffer (ciphertext || tag).
    pub(crate) fn encrypt(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        stage: NoiseStage,
    ) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        self.encrypt_tail(ad, &mut buf, 0, stage)?;
        Ok(buf)
    }

    /// Decrypts `buf` (ciphertext || tag) in place, leaving the plaintext. On failure `buf` is
    /// unchanged and the counter does not advance.
    pub(crate) fn decrypt_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut Vec<u8>,
        stage: NoiseStage,
    ) -> Result<()> {
        let counter = self.counter(stage)?;
        let failed = SignalError::NoiseDecrypt { stage, counter };
        let Some(body_len) = buf.len().checked_sub(TAG_LEN) else {
            return Err(failed);
        };
        let (body, tag) = buf.split_at_mut(body_len);
        let Ok(tag) = Tag::<Aes256Gcm>::try_from(&*tag) else {
            return Err(failed);
        };
        self.aead
            .decrypt_inout_detached(&Self::nonce(counter), ad, body.into(), &tag)
            .map_err(|_| failed)?;
        buf.truncate(body_len);
        self.next += 1;
        Ok(())
    }

    /// Decrypts `ciphertext` (ciphertext || tag) into a new buffer.
    pub(crate) fn decrypt(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        stage: NoiseStage,
    ) -> Result<Vec<u8>> {
        let mut buf = ciphertext.to_vec();
        self.decrypt_in_place(ad, &mut buf, stage)?;
        Ok(buf)
    }
}

fn plaintext_len(buf: &[u8], start: usize) -> usize {
    buf.len().saturating_sub(start)
}

impl std::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherState")
            .field("key", &"<redacted>")
            .field("next_counter", &self.next)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_advances() {
        let key = [7u8; 32];
        let mut tx = CipherState::new(&key);
        let mut rx = CipherState::new(&key);
        for i in 0..3u64 {
            let ct = tx
                .encrypt(b"ad", b"hello", NoiseStage::TransportSend)
                .unwrap();
            assert_eq!(ct.len(), 5 + TAG_LEN);
            assert_eq!(
                rx.decrypt(b"ad", &ct, NoiseStage::TransportReceive)
                    .unwrap(),
                b"hello"
            );
            assert_eq!(tx.next_counter(), i + 1);
        }
    }

    #[test]
    fn failure_leaves_state_untouched() {
        let key = [7u8; 32];
        let mut tx = CipherState::new(&key);
        let mut rx = CipherState::new(&key);
        let ct = tx.encrypt(b"", b"x", NoiseStage::TransportSend).unwrap();
        let mut bad = ct.clone();
        bad[0] ^= 1;
        let before = bad.clone();
        let err = rx
            .decrypt_in_place(b"", &mut bad, NoiseStage::TransportReceive)
            .unwrap_err();
        assert!(matches!(err, SignalError::NoiseDecrypt { counter: 0, .. }));
        assert_eq!(bad, before);
        assert_eq!(rx.next_counter(), 0);
        assert!(matches!(
            rx.decrypt(b"", &ct[..10], NoiseStage::TransportReceive),
            Err(SignalError::NoiseDecrypt { .. })
        ));
        assert_eq!(
            rx.decrypt(b"", &ct, NoiseStage::TransportReceive).unwrap(),
            b"x"
        );
    }

    #[test]
    fn nonce_layout_is_eight_zero_bytes_then_u32_be() {
        let nonce = CipherState::nonce(0x0102_0304);
        assert_eq!(nonce.as_slice(), &[0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn counter_never_wraps() {
        let key = [9u8; 32];
        let mut tx = CipherState::new(&key);
        let mut rx = CipherState::new(&key);
        tx.set_next_counter(u64::from(u32::MAX));
        rx.set_next_counter(u64::from(u32::MAX));
        let ct = tx.encrypt(b"", b"last", NoiseStage::TransportSend).unwrap();
        assert_eq!(
            rx.decrypt(b"", &ct, NoiseStage::TransportReceive).unwrap(),
            b"last"
        );
        assert!(matches!(
            tx.encrypt(b"", b"more", NoiseStage::TransportSend),
            Err(SignalError::NoiseCounterExhausted {
                stage: NoiseStage::TransportSend
            })
        ));
        assert!(matches!(
            rx.decrypt(b"", &ct, NoiseStage::TransportReceive),
            Err(SignalError::NoiseCounterExhausted {
                stage: NoiseStage::TransportReceive
            })
        ));
    }

    #[test]
    fn debug_redacts_the_key() {
        let shown = format!("{:?}", CipherState::new(&[0x42; 32]));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("42, 42"));
    }
}
