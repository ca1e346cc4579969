//! Random secrets and their hashes: API token secrets, OAuth codes, and the SHA-256 a
//! secret is stored and looked up under.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Hex SHA-256, for token and code lookups.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new API token secret: 32 lowercase hex characters (128 random bits), like
/// JupyterHub's `uuid4().hex`.
pub fn new_token_secret() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A random string of letters and digits (OAuth codes and access tokens).
pub fn random_alnum(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
