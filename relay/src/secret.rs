//! The relay's secret key and what it protects.
//!
//! Twitch access and refresh tokens are stored encrypted (ChaCha20-Poly1305,
//! a fresh random nonce per value) so a copied database file does not hand
//! out a channel. The key comes from `TAU_SECRET_KEY`, or is generated on
//! first start and kept in `TAU_SECRET_KEY_FILE` (mode 0600).

use std::path::Path;

use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit},
    ChaCha20Poly1305, Key, Nonce,
};
use rand::RngCore;

/// Length of the key in bytes (256 bits).
const KEY_LEN: usize = 32;
/// ChaCha20-Poly1305 nonce length.
const NONCE_LEN: usize = 12;

/// A 256-bit symmetric key. Never printed: `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<hidden>)")
    }
}

/// Errors reading or using the key.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or written.
    #[error("secret key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds something that is not a key.
    #[error("secret key file {path}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A ciphertext was tampered with or made with another key.
    #[error("stored secret cannot be decrypted (was TAU_SECRET_KEY changed?)")]
    Decrypt,
}

impl SecretKey {
    /// Parses 64 hex characters.
    pub fn from_hex(hex_key: &str) -> Result<SecretKey, String> {
        let bytes =
            hex::decode(hex_key.trim()).map_err(|_| "must be 64 hex characters".to_string())?;
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| "must be 64 hex characters (32 bytes)".to_string())?;
        Ok(SecretKey(array))
    }

    /// A fresh random key.
    pub fn generate() -> SecretKey {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        SecretKey(key)
    }

    /// Uses `configured` if given, else reads `file`, else creates `file` with a new key.
    pub fn load_or_create(configured: Option<&str>, file: &Path) -> Result<SecretKey, SecretError> {
        if let Some(hex_key) = configured {
            return SecretKey::from_hex(hex_key).map_err(|reason| SecretError::Malformed {
                path: "TAU_SECRET_KEY".into(),
                reason,
            });
        }
        let path = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => {
                SecretKey::from_hex(&text).map_err(|reason| SecretError::Malformed { path, reason })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::generate();
                write_private(file, &hex::encode(key.0))
                    .map_err(|source| SecretError::Io { path, source })?;
                tracing::info!(file = %file.display(), "generated a new secret key (set TAU_SECRET_KEY to manage it yourself)");
                Ok(key)
            }
            Err(source) => Err(SecretError::Io { path, source }),
        }
    }

    /// Encrypts `plaintext`; the result is base64 text safe to store.
    pub fn seal(&self, plaintext: &str) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD_NO_PAD.encode(out)
    }

    /// Decrypts what [`SecretKey::seal`] produced.
    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let bytes = STANDARD_NO_PAD
            .decode(sealed)
            .map_err(|_| SecretError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| SecretError::Decrypt)
    }
}

fn write_private(file: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(file)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_detects_tampering() {
        let key = SecretKey::generate();
        let sealed = key.seal("oauth-access-token");
        assert_ne!(
            sealed,
            key.seal("oauth-access-token"),
            "nonce must differ each time"
        );
        assert_eq!(key.open(&sealed).unwrap(), "oauth-access-token");
        assert!(
            SecretKey::generate().open(&sealed).is_err(),
            "another key must fail"
        );
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(key.open(std::str::from_utf8(&tampered).unwrap()).is_err());
    }

    #[test]
    fn generated_key_is_persisted_and_reused() {
        let dir = std::env::temp_dir().join(format!("tau-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret.key");
        let first = SecretKey::load_or_create(None, &file).unwrap();
        let second = SecretKey::load_or_create(None, &file).unwrap();
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{first:?}").contains(&hex::encode(first.0)));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
