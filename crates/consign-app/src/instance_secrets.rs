//! Instance secrets: the keys every instance sharing the database must
//! agree on (the JWT signing key, the order-token key, the reply-address
//! key). Each is made on first use and stored sealed under the master
//! keyring; the API, the pages and the worker all open them here, so a
//! secret is sealed and opened with the same additional data everywhere.

use consign_db::secrets::{self, SealedSecret};
use consign_db::{Db, DbError};
use consign_payments::{Keyring, Sealed};

/// The name of the instance secret that signs per-thread reply addresses:
/// outbound email carries one, the inbound email webhook checks it.
pub const REPLY_KEY_SECRET: &str = "reply_address_key";

/// The instance secret called `name`, in the clear. The first call on a
/// database makes it (32 random bytes, hex); concurrent first calls agree
/// on one. Fails when storage fails or the stored secret does not open
/// under `keyring`.
pub async fn get(db: &Db, keyring: &Keyring, name: &str) -> Result<String, DbError> {
    let candidate = hex::encode(rand::random::<[u8; 32]>());
    let aad = consign_payments::keyring::instance_secret_aad(name);
    secrets::get_or_create_sealed(
        db,
        name,
        &candidate,
        |plaintext| {
            let sealed = keyring.seal(plaintext.as_bytes(), &aad);
            SealedSecret { key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext }
        },
        |stored| {
            let sealed = Sealed {
                key_id: stored.key_id.clone(),
                nonce: stored.nonce.clone(),
                ciphertext: stored.ciphertext.clone(),
            };
            Ok(String::from_utf8(keyring.open(&sealed, &aad)?)?)
        },
    )
    .await
}
