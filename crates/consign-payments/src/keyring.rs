//! Sealing secrets at rest: AES-256-GCM under a master key.
//!
//! A keyring holds one or more 256-bit keys, each with an id; the last one
//! listed is the newest and seals every new write, and any listed key opens
//! what it sealed, so keys rotate by adding a new one, re-sealing
//! (`consign admin rotate-keys`), then dropping the old one. Each sealed
//! value stores its key id, a random 96-bit nonce and the ciphertext (with
//! its tag); the associated data names the tenant and the purpose, so a
//! value copied to another brand or another use does not open.
//!
//! Keys are written `id:hex` (64 hex digits), several separated by commas
//! or new lines; a bare 64-digit hex string is the key `k1`.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// A sealed value as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Which key sealed it.
    pub key_id: String,
    /// 12 bytes, hex.
    pub nonce: String,
    /// Ciphertext and tag, hex.
    pub ciphertext: String,
}

/// What can go wrong with keys. Messages never include key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The key text is not `id:hex64[,…]`.
    #[error("master key: {0}")]
    Invalid(String),
    /// The value was sealed under a key this keyring does not have.
    #[error("no master key with id {0}")]
    UnknownKey(String),
    /// Wrong key, wrong associated data, or tampered ciphertext.
    #[error("sealed value does not open (wrong key, tenant or purpose, or altered)")]
    Open,
    /// Reading or writing the key file failed.
    #[error("master key file {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// One or more master keys; see the module docs.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Parses `id:hex[,id:hex…]` (oldest first) or one bare hex key.
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys = Vec::new();
        for entry in text.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty() && !e.starts_with('#')) {
            let (id, hex_key) = match entry.split_once(':') {
                Some((id, key)) => (id.trim().to_owned(), key.trim()),
                None => ("k1".to_owned(), entry),
            };
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(KeyringError::Invalid("key ids are letters, digits, - and _".into()));
            }
            let bytes = hex::decode(hex_key).map_err(|_| KeyringError::Invalid(format!("key {id} is not hex")))?;
            if bytes.len() != 32 {
                return Err(KeyringError::Invalid(format!("key {id} must be 32 bytes (64 hex digits)")));
            }
            if keys.iter().any(|(existing, _)| *existing == id) {
                return Err(KeyringError::Invalid(format!("key id {id} is listed twice")));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyringError::Invalid(id.clone()))?;
            keys.push((id, cipher));
        }
        if keys.is_empty() {
            return Err(KeyringError::Invalid("no key given".into()));
        }
        Ok(Self { keys })
    }

    /// A fresh random key line, `id:hex`.
    pub fn generate_line(id: &str) -> String {
        let key: [u8; 32] = rand::random();
        format!("{id}:{}", hex::encode(key))
    }

    /// Reads the key file, creating it with one random key and owner-only
    /// permissions (0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyringError> {
        let file_error = |detail: String| KeyringError::File { path: path.display().to_string(), detail };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| file_error(e.to_string()))?;
                }
                let line = Self::generate_line(&format!("k{}", chrono_like_stamp()));
                write_owner_only(path, &format!("{line}\n"), true).map_err(|e| file_error(e.to_string()))?;
                // Another instance may have won the race to create it: read
                // whatever is there now.
                let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
                Self::parse(&text)
            }
            Err(error) => Err(file_error(error.to_string())),
        }
    }

    /// Appends a new random key to the key file; it becomes the newest.
    pub fn add_key_to_file(path: &Path) -> Result<String, KeyringError> {
        let file_error = |detail: String| KeyringError::File { path: path.display().to_string(), detail };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let existing = Self::parse(&text)?;
        let mut id = format!("k{}", chrono_like_stamp());
        while existing.keys.iter().any(|(k, _)| *k == id) {
            id.push('b');
        }
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&Self::generate_line(&id));
        text.push('\n');
        write_owner_only(path, &text, false).map_err(|e| file_error(e.to_string()))?;
        Ok(id)
    }

    /// The id of the key new writes use.
    pub fn newest_id(&self) -> &str {
        &self.keys.last().expect("a keyring has at least one key").0
    }

    /// Seals `plaintext` under the newest key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Sealed {
        let (key_id, cipher) = self.keys.last().expect("a keyring has at least one key");
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let ciphertext = cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: aad.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        Sealed { key_id: key_id.clone(), nonce: hex::encode(nonce_bytes), ciphertext: hex::encode(ciphertext) }
    }

    /// Opens a sealed value with the key that sealed it; `aad` must be the
    /// one it was sealed with.
    pub fn open(&self, sealed: &Sealed, aad: &str) -> Result<Vec<u8>, KeyringError> {
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.key_id)
            .ok_or_else(|| KeyringError::UnknownKey(sealed.key_id.clone()))?;
        let nonce_bytes: [u8; 12] =
            hex::decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or(KeyringError::Open)?;
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| KeyringError::Open)?;
        cipher
            .decrypt(&Nonce::from(nonce_bytes), Payload { msg: &ciphertext, aad: aad.as_bytes() })
            .map_err(|_| KeyringError::Open)
    }
}

/// What an instance secret (the JWT signing key, the order-token key, …)
/// is sealed to: its name, so one secret's value does not open as another.
pub fn instance_secret_aad(name: &str) -> String {
    format!("instance_secret:{name}")
}

/// Seconds since the epoch: key ids sort by creation.
fn chrono_like_stamp() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn write_owner_only(path: &Path, text: &str, create_new: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file.write_all(text.as_bytes()),
        Err(error) if create_new && error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        hex::encode([byte; 32])
    }

    #[test]
    fn sealed_values_open_only_with_the_same_tenant_and_purpose() {
        let keyring = Keyring::parse(&key(1)).unwrap();
        let sealed = keyring.seal(b"sk_live_123", "org:brand:stripe");
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.ciphertext.contains(&hex::encode(b"sk_live_123")));
        assert_eq!(keyring.open(&sealed, "org:brand:stripe").unwrap(), b"sk_live_123");
        assert!(matches!(keyring.open(&sealed, "org:other-brand:stripe"), Err(KeyringError::Open)));
        let mut tampered = sealed.clone();
        tampered.ciphertext.replace_range(0..2, if &sealed.ciphertext[0..2] == "00" { "01" } else { "00" });
        assert!(keyring.open(&tampered, "org:brand:stripe").is_err());
    }

    #[test]
    fn new_writes_use_the_newest_key_and_old_values_still_open() {
        let old = Keyring::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed_old = old.seal(b"secret", "aad");
        let rotated = Keyring::parse(&format!("k1:{}, k2:{}", key(1), key(2))).unwrap();
        assert_eq!(rotated.newest_id(), "k2");
        assert_eq!(rotated.open(&sealed_old, "aad").unwrap(), b"secret");
        let sealed_new = rotated.seal(b"secret", "aad");
        assert_eq!(sealed_new.key_id, "k2");
        assert!(matches!(old.open(&sealed_new, "aad"), Err(KeyringError::UnknownKey(_))));
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let error = Keyring::parse("k1:abcd").unwrap_err().to_string();
        assert!(!error.contains("abcd"), "{error}");
        assert!(Keyring::parse("").is_err());
        assert!(Keyring::parse(&format!("k1:{},k1:{}", key(1), key(2))).is_err());
        assert!(format!("{:?}", Keyring::parse(&key(7)).unwrap()).contains("k1"));
        assert!(!format!("{:?}", Keyring::parse(&key(7)).unwrap()).contains(&key(7)));
    }

    #[test]
    fn the_key_file_is_created_once_with_owner_only_permissions() {
        let dir = std::env::temp_dir().join(format!("consign-keyring-{}", rand::random::<u64>()));
        let path = dir.join("master.key");
        let first = Keyring::load_or_create(&path).unwrap();
        let sealed = first.seal(b"x", "aad");
        let again = Keyring::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, "aad").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let added = Keyring::add_key_to_file(&path).unwrap();
        let rotated = Keyring::load_or_create(&path).unwrap();
        assert_eq!(rotated.newest_id(), added);
        assert_eq!(rotated.open(&sealed, "aad").unwrap(), b"x");
        let _ = std::fs::remove_dir_all(dir);
    }
}
