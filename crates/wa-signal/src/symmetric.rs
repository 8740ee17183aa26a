//! The symmetric primitives of the profile: HMAC-SHA256, HKDF-SHA256 and AES-256-CBC with
//! PKCS#7 padding. Thin, typed wrappers over RustCrypto.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{Result, SignalError};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `parts` (concatenated) under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .expect("HMAC-SHA256 accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF-SHA256 (extract with `salt`, expand with `info`) into `N` bytes.
pub(crate) fn hkdf_sha256<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut okm = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .expect("HKDF output lengths used here are far below 255 * 32 bytes");
    okm
}

/// AES-256-CBC encryption with PKCS#7 padding.
pub(crate) fn aes_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext)
}

/// AES-256-CBC decryption with PKCS#7 padding; bad length or padding is an invalid message.
pub(crate) fn aes_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(SignalError::InvalidMessage(format!(
            "ciphertext length {} is not a positive multiple of the AES block size",
            ciphertext.len()
        )));
    }
    cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map_err(|_| SignalError::InvalidMessage("bad PKCS#7 padding".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(mac[..8], [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]);
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm: [u8; 42] = hkdf_sha256(&salt, &ikm, &info);
        assert_eq!(okm[..6], [0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac]);
        assert_eq!(okm[40..], [0x58, 0x65]);
    }

    #[test]
    fn cbc_round_trips_and_rejects_bad_input() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0xabu8; len];
            let ct = aes_cbc_encrypt(&key, &iv, &pt);
            assert_eq!(ct.len() % 16, 0);
            assert_eq!(aes_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        }
        assert!(aes_cbc_decrypt(&key, &iv, &[]).is_err());
        assert!(aes_cbc_decrypt(&key, &iv, &[1; 15]).is_err());
        let mut ct = aes_cbc_encrypt(&key, &iv, b"hello");
        ct[15] ^= 0xff;
        assert!(aes_cbc_decrypt(&key, &iv, &ct).is_err());
    }
}
