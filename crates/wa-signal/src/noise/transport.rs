//! The post-handshake transport: AES-256-GCM frames with empty AD and one counter per direction.

use wa_proto::frame::{LENGTH_PREFIX_LEN, MAX_FRAME_LEN, encode_frame_with};

use super::NoiseStage;
use super::cipher::{CipherState, TAG_LEN};
use crate::error::{Result, SignalError};

/// The largest plaintext that fits one frame (the frame body is plaintext plus the 16-byte tag).
pub const MAX_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

/// An established Noise transport: a [`TransportSender`] and a [`TransportReceiver`], each with
/// its own key and its own nonce counter starting at 0.
///
/// Produced by [`AcceptedServerHello::finish`](super::AcceptedServerHello::finish) (client) or
/// `AwaitingClientFinish::read_client_finish` (the test server, feature `test-util`). Use [`into_split`](Self::into_split) to give the halves to separate reader and
/// writer tasks. After any error the connection must be dropped.
#[derive(Debug)]
pub struct NoiseTransport {
    /// Encrypts outgoing frames.
    pub sender: TransportSender,
    /// Decrypts incoming frames.
    pub receiver: TransportReceiver,
    handshake_hash: [u8; 32],
}

impl NoiseTransport {
    pub(crate) fn new(send: CipherState, receive: CipherState, handshake_hash: [u8; 32]) -> Self {
        Self {
            sender: TransportSender { cipher: send },
            receiver: TransportReceiver { cipher: receive },
            handshake_hash,
        }
    }

    /// The final handshake hash `h` (public; identifies this session, usable for channel
    /// binding).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// Encrypts `plaintext` into a whole frame (3-byte length ‖ ciphertext ‖ tag). See
    /// [`TransportSender::encrypt_frame`].
    pub fn encrypt_frame(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.sender.encrypt_frame(plaintext)
    }

    /// Decrypts one frame body (as returned by
    /// [`FrameDecoder::next_frame`](super::FrameDecoder::next_frame)). See
    /// [`TransportReceiver::decrypt`].
    pub fn decrypt(&mut self, frame_body: &[u8]) -> Result<Vec<u8>> {
        self.receiver.decrypt(frame_body)
    }

    /// The two halves, for separate reader and writer tasks.
    pub fn into_split(self) -> (TransportSender, TransportReceiver) {
        (self.sender, self.receiver)
    }
}

/// The sending half of a transport.
#[derive(Debug)]
pub struct TransportSender {
    cipher: CipherState,
}

impl TransportSender {
    /// Encrypts `plaintext` (for WhatsApp: an encoded binary node with its leading flag byte)
    /// with the next counter and returns the whole frame: 3-byte big-endian length ‖
    /// ciphertext ‖ tag.
    ///
    /// Fails with [`SignalError::NoiseFrameTooLarge`] when `plaintext` is longer than
    /// [`MAX_PLAINTEXT_LEN`], and with [`SignalError::NoiseCounterExhausted`] after 2^32 frames.
    pub fn encrypt_frame(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(LENGTH_PREFIX_LEN + plaintext.len() + TAG_LEN);
        self.encrypt_frame_into(plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`encrypt_frame`](Self::encrypt_frame), appending the frame to `out` (reuse one
    /// buffer to avoid an allocation per frame). On error `out` is left as it was.
    pub fn encrypt_frame_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(SignalError::NoiseFrameTooLarge {
                len: plaintext.len() + TAG_LEN,
                max: MAX_FRAME_LEN,
            });
        }
        // Encrypted in place behind the length prefix; `out` is restored on error.
        encode_frame_with(out, |out| {
            let start = out.len();
            out.extend_from_slice(plaintext);
            self.cipher
                .encrypt_tail(&[], out, start, NoiseStage::TransportSend)
        })
    }

    /// The counter the next frame will be encrypted with (= frames sent so far).
    pub fn next_counter(&self) -> u64 {
        self.cipher.next_counter()
    }

    #[cfg(test)]
    pub(crate) fn cipher_mut(&mut self) -> &mut CipherState {
        &mut self.cipher
    }
}

/// The receiving half of a transport.
#[derive(Debug)]
pub struct TransportReceiver {
    cipher: CipherState,
}

impl TransportReceiver {
    /// Decrypts one frame body (without its length prefix) with the next counter.
    ///
    /// A tampered, truncated, replayed or reordered frame fails with
    /// [`SignalError::NoiseDecrypt`] (the counter does not advance); after 2^32 frames every
    /// call fails with [`SignalError::NoiseCounterExhausted`].
    pub fn decrypt(&mut self, frame_body: &[u8]) -> Result<Vec<u8>> {
        self.cipher
            .decrypt(&[], frame_body, NoiseStage::TransportReceive)
    }

    /// Like [`decrypt`](Self::decrypt), in place: `buf` holds the frame body and is left holding
    /// the plaintext (unchanged on error).
    pub fn decrypt_in_place(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        self.cipher
            .decrypt_in_place(&[], buf, NoiseStage::TransportReceive)
    }

    /// The counter the next frame must have been encrypted with (= frames received so far).
    pub fn next_counter(&self) -> u64 {
        self.cipher.next_counter()
    }

    #[cfg(test)]
    pub(crate) fn cipher_mut(&mut self) -> &mut CipherState {
        &mut self.cipher
    }
}
