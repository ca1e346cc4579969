//! `auth_state` encryption with JupyterHub's keys (`JUPYTERHUB_CRYPT_KEY`: `;`-separated
//! 32-byte keys, each hex or base64; the first encrypts, every one decrypts) in
//! JupyterHub's format, Fernet tokens (`cryptography`'s `MultiFernet`): version byte
//! 0x80, the time, a random IV, AES-128-CBC with PKCS#7 padding under the key's second
//! half, and an HMAC-SHA256 under its first half over all of that, in URL-safe base64.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type Encryptor = cbc::Encryptor<aes::Aes128>;
type Decryptor = cbc::Decryptor<aes::Aes128>;

const VERSION: u8 = 0x80;

/// One Fernet key: the signing half and the encryption half.
#[derive(Clone)]
struct Key {
    signing: [u8; 16],
    encryption: [u8; 16],
}

/// The keys of `JUPYTERHUB_CRYPT_KEY`, in order. Never printed.
#[derive(Clone)]
pub struct CryptKeys {
    keys: Vec<Key>,
    fingerprint: String,
}

/// Two sets of keys are equal when their keys are, in order.
impl PartialEq for CryptKeys {
    fn eq(&self, other: &CryptKeys) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl std::fmt::Debug for CryptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CryptKeys({} keys, {})",
            self.keys.len(),
            self.fingerprint
        )
    }
}

/// Why a key or a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("JUPYTERHUB_CRYPT_KEY: key {0} is not 32 bytes of hex or base64")]
    BadKey(usize),
    #[error("JUPYTERHUB_CRYPT_KEY names no key")]
    NoKey,
    #[error("the encrypted auth_state does not decrypt with any of JUPYTERHUB_CRYPT_KEY's keys")]
    Undecryptable,
}

/// A key as JupyterHub reads one: 64 hex digits, else base64 (URL-safe or standard) of
/// 32 bytes.
fn key_bytes(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        URL_SAFE
            .decode(text)
            .or_else(|_| STANDARD.decode(text))
            .ok()?
    };
    bytes.try_into().ok()
}

impl CryptKeys {
    /// Reads `JUPYTERHUB_CRYPT_KEY`'s value.
    pub fn parse(text: &str) -> Result<CryptKeys, CryptError> {
        let mut keys = Vec::new();
        let mut digest = Sha256::new();
        for (i, part) in text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let bytes = key_bytes(part).ok_or(CryptError::BadKey(i + 1))?;
            digest.update(bytes);
            let (signing, encryption) = bytes.split_at(16);
            keys.push(Key {
                signing: signing.try_into().unwrap_or_default(),
                encryption: encryption.try_into().unwrap_or_default(),
            });
        }
        if keys.is_empty() {
            return Err(CryptError::NoKey);
        }
        let fingerprint = hex::encode(&digest.finalize()[..8]);
        Ok(CryptKeys { keys, fingerprint })
    }

    /// A digest of the keys, for comparing two nodes' keys without showing them.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `plain` as a Fernet token under the first key.
    pub fn encrypt(&self, plain: &[u8]) -> String {
        let key = &self.keys[0];
        let mut iv = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut iv);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let ciphertext = Encryptor::new(&key.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plain);
        let mut token = Vec::with_capacity(1 + 8 + 16 + ciphertext.len() + 32);
        token.push(VERSION);
        token.extend_from_slice(&now.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        let tag = mac(&key.signing, &token);
        token.extend_from_slice(&tag);
        URL_SAFE.encode(token)
    }

    /// The plain bytes of a Fernet token made with any of the keys.
    pub fn decrypt(&self, token: &str) -> Result<Vec<u8>, CryptError> {
        let raw = URL_SAFE
            .decode(token.trim())
            .map_err(|_| CryptError::Undecryptable)?;
        if raw.len() < 1 + 8 + 16 + 16 + 32 || raw[0] != VERSION {
            return Err(CryptError::Undecryptable);
        }
        let (body, tag) = raw.split_at(raw.len() - 32);
        for key in &self.keys {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.signing)
                .map_err(|_| CryptError::Undecryptable)?;
            m.update(body);
            if m.verify_slice(tag).is_err() {
                continue;
            }
            let iv: [u8; 16] = body[9..25]
                .try_into()
                .map_err(|_| CryptError::Undecryptable)?;
            return Decryptor::new(&key.encryption.into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(&body[25..])
                .map_err(|_| CryptError::Undecryptable);
        }
        Err(CryptError::Undecryptable)
    }
}

fn mac(key: &[u8; 16], data: &[u8]) -> [u8; 32] {
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes a key of any length
        Err(_) => return [0; 32],
    };
    m.update(data);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn a_token_decrypts_with_every_key_and_the_first_encrypts() {
        let old = CryptKeys::parse(K1).unwrap();
        let token = old.encrypt(br#"{"access_token": "x"}"#);
        let k2 = URL_SAFE.encode([7u8; 32]);
        let rotated = CryptKeys::parse(&format!("{k2};{K1}")).unwrap();
        assert_eq!(
            rotated.decrypt(&token).unwrap(),
            br#"{"access_token": "x"}"#
        );
        let newer = rotated.encrypt(b"y");
        assert_eq!(rotated.decrypt(&newer).unwrap(), b"y");
        assert_eq!(old.decrypt(&newer), Err(CryptError::Undecryptable));
        assert_ne!(old.fingerprint(), rotated.fingerprint());
        assert!(!format!("{rotated:?}").contains(&k2));
    }

    #[test]
    fn a_tampered_token_and_bad_keys_are_refused() {
        let keys = CryptKeys::parse(K1).unwrap();
        let token = keys.encrypt(b"secret");
        let mut raw = URL_SAFE.decode(&token).unwrap();
        let last = raw.len() - 40;
        raw[last] ^= 1;
        assert_eq!(
            keys.decrypt(&URL_SAFE.encode(raw)),
            Err(CryptError::Undecryptable)
        );
        assert_eq!(keys.decrypt("not a token"), Err(CryptError::Undecryptable));
        assert_eq!(CryptKeys::parse("").unwrap_err(), CryptError::NoKey);
        assert_eq!(
            CryptKeys::parse("short").unwrap_err(),
            CryptError::BadKey(1)
        );
        assert_eq!(
            CryptKeys::parse(&format!("{K1};xyz")).unwrap_err(),
            CryptError::BadKey(2)
        );
    }

    /// A token made by Python's `cryptography` (`Fernet(base64.urlsafe_b64encode(bytes(range(32)))).encrypt(b"hello")`)
    /// decrypts here: the format is JupyterHub's.
    #[test]
    fn a_token_of_python_s_fernet_decrypts() {
        let key = URL_SAFE.encode((0u8..32).collect::<Vec<u8>>());
        let keys = CryptKeys::parse(&key).unwrap();
        assert_eq!(keys.decrypt(PYTHON_TOKEN).unwrap(), b"hello");
    }

    const PYTHON_TOKEN: &str = "gAAAAABrF2ZjFil4OBquiApoib7rq_6wn-nzwnERxIUlghEEOW-kpQil0a4Po-QD5lX7w3DJMr8o3Zp5HVL_kHdQPV11qRpYGA==";
}
