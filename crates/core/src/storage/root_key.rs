//! The key that opens a backup storage's files: the configured one, or the
//! root key that `backup.encryption.password` unlocks.
//!
//! A password never seals files itself (scrypt for each file would cost a
//! second each). It unlocks the storage's root key, an age X25519 identity
//! kept as [`layout::ROOT_KEY`] and sealed with age's scrypt recipient;
//! files are sealed for that identity exactly as for a configured key. So
//! scrypt runs once per backup root and process, and changing the password
//! ([`change_password`]) rewraps that one object.
//!
//! The first `create --encrypt` with a password makes the root key: its
//! plan picks a new identity ([`sealing_key`]), and before anything is
//! sealed for it, `execute` stores it ([`store_root_key`]) only if absent,
//! read back, so two first creates never seal for two keys.
//! A password change writes the rewrapped key to [`layout::ROOT_KEY_NEXT`],
//! then replaces the root key, then removes the copy: when interrupted, one
//! of the two objects opens with each password, and unlocking tries both.

use serde::Serialize;

use crate::codec::key::{self, Key, KeySource, UnwrapError};
use crate::config::Secret;
use crate::error::{Error, ErrorKind, Result};
use crate::model::layout;
use crate::storage::Storage;

/// The key that opens the sealed file `what` of `storage`.
pub async fn opening_key(storage: &Storage, what: &str) -> Result<Key> {
    match storage.key_source() {
        None => Err(key::missing_key(what)),
        Some(KeySource::Key(k)) => Ok(k.clone()),
        Some(KeySource::Password { password, unlocked }) => unlocked
            .get_or_try_init(|| async {
                unlock(storage, password)
                    .await?
                    .ok_or_else(|| no_root_key(storage, what))
            })
            .await
            .cloned(),
    }
}

/// The key new backups are sealed for.
#[derive(Debug, Clone)]
pub struct SealingKey {
    pub key: Key,
    /// A password's first root key, not stored yet: [`store_root_key`]
    /// before anything is sealed for it.
    pub new_root: bool,
}

/// The key new backups are sealed for, when one is configured; with a
/// password, the root key it unlocks, or a new one when the storage has
/// none yet. Writes nothing (a plan may be only printed).
pub async fn sealing_key(storage: &Storage) -> Result<Option<SealingKey>> {
    let (password, unlocked) = match storage.key_source() {
        None => return Ok(None),
        Some(KeySource::Key(k)) => {
            return Ok(Some(SealingKey {
                key: k.clone(),
                new_root: false,
            }))
        }
        Some(KeySource::Password { password, unlocked }) => (password, unlocked),
    };
    if let Some(key) = unlocked.get() {
        return Ok(Some(SealingKey {
            key: key.clone(),
            new_root: false,
        }));
    }
    Ok(Some(match unlock(storage, password).await? {
        Some(key) => SealingKey {
            key: unlocked.get_or_init(|| async { key }).await.clone(),
            new_root: false,
        },
        None => {
            let mut key = Key::parse(&Key::generate().0, "a new key")?;
            key.from_password = true;
            SealingKey {
                key,
                new_root: true,
            }
        }
    }))
}

/// What `key passwd` did.
#[derive(Debug, Clone, Serialize)]
pub struct PasswdStats {
    /// The root key's object, relative to the backup root.
    pub object: String,
    /// The root key's recipient: unchanged, as are the backups.
    pub recipient: String,
}

/// Rewraps the root key of `storage` (unlocked with the configured
/// password) for `new`; no backup file changes.
pub async fn change_password(storage: &Storage, new: &Secret) -> Result<PasswdStats> {
    let Some(KeySource::Password { password, .. }) = storage.key_source() else {
        return Err(Error::invalid_input(
            "`key passwd` needs the current password: set MILVUS_BACKUP_PASSWORD or backup.encryption.password",
        ));
    };
    if new.is_empty() {
        return Err(Error::invalid_input(
            "the new password is empty — give it with --new-password-file or MILVUS_BACKUP_NEW_PASSWORD",
        ));
    }
    if new == password {
        return Err(Error::invalid_input(
            "the new password is the current one — nothing to change",
        ));
    }
    let key = unlock(storage, password).await?.ok_or_else(|| {
        Error::not_found(format!(
            "{} has no root key ({}) yet — the first `create --encrypt` with a password makes it",
            storage.spec().describe(),
            layout::ROOT_KEY
        ))
    })?;
    let wrapped = wrap(&key, new).await?;
    storage
        .write(layout::ROOT_KEY_NEXT, wrapped.clone())
        .await?;
    // What was stored must open with the new password before it replaces
    // the only copy that opens with the old one.
    let stored = storage.read(layout::ROOT_KEY_NEXT).await?;
    match open(stored, new).await? {
        Ok(k) if k.recipient() == key.recipient() => {}
        _ => {
            return Err(Error::internal(format!(
                "the rewrapped root key read back from {} does not open with the new password — nothing was changed; retry",
                layout::ROOT_KEY_NEXT
            )))
        }
    }
    storage.write(layout::ROOT_KEY, wrapped).await?;
    storage.delete(layout::ROOT_KEY_NEXT).await?;
    Ok(PasswdStats {
        object: layout::ROOT_KEY.to_string(),
        recipient: key.recipient(),
    })
}

/// The root key the password opens; `None` when the storage has none.
async fn unlock(storage: &Storage, password: &Secret) -> Result<Option<Key>> {
    let mut failure = None;
    // The root key, then the rewrapped copy an interrupted change left.
    for object in [layout::ROOT_KEY, layout::ROOT_KEY_NEXT] {
        let bytes = match storage.read(object).await {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match open(bytes, password).await? {
            Ok(key) => return Ok(Some(key)),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        None => Ok(None),
        Some(UnwrapError::WrongPassword) => Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the password (MILVUS_BACKUP_PASSWORD, backup.encryption.password) does not unlock the root key {} of {} — set the password the backups there were made with (it changes only with `milvus-backup key passwd`)",
                layout::ROOT_KEY,
                storage.spec().describe()
            ),
        )),
        Some(UnwrapError::Damaged(detail)) => Err(Error::corrupt(format!(
            "the root key {} of {} is damaged ({detail}) — put back a copy of it: the password-encrypted backups there cannot be opened without it",
            layout::ROOT_KEY,
            storage.spec().describe()
        ))),
    }
}

/// Stores a new root key (a [`SealingKey::new_root`]) wrapped with the
/// configured password, unless the storage got one meanwhile: then nothing
/// may be sealed for `key`, and the caller is told to retry.
pub async fn store_root_key(storage: &Storage, key: &Key) -> Result<()> {
    let Some(KeySource::Password { password, unlocked }) = storage.key_source() else {
        return Err(Error::internal("a root key is stored only for a password"));
    };
    let wrapped = wrap(key, password).await?;
    if storage
        .write_if_absent(layout::ROOT_KEY, wrapped.clone())
        .await?
        // Read back: where writes are not conditional, the last one wins.
        && storage.read(layout::ROOT_KEY).await? == wrapped
    {
        let _ = unlocked.set(key.clone());
        tracing::info!(
            "made the root key {} of {} ({})",
            layout::ROOT_KEY,
            storage.spec().describe(),
            key.recipient()
        );
        return Ok(());
    }
    Err(Error::conflict(format!(
        "another process made the root key {} of {} at the same time — retry: the next run uses that key",
        layout::ROOT_KEY,
        storage.spec().describe()
    ))
    .temporary(true))
}

/// A `what` is sealed, and the storage has no root key for the password.
fn no_root_key(storage: &Storage, what: &str) -> Error {
    Error::invalid_input(format!(
        "`{what}` is encrypted, but {} has no root key ({}) for the password to unlock — the backup was made with a key: set MILVUS_BACKUP_ENCRYPTION_KEY or backup.encryption.keyFile to it instead of the password",
        storage.spec().describe(),
        layout::ROOT_KEY
    ))
}

/// Scrypt takes about a second: off the async threads.
async fn wrap(key: &Key, password: &Secret) -> Result<Vec<u8>> {
    let (key, password) = (key.clone(), password.clone());
    blocking(move || key::wrap(&key, password.expose())).await
}

async fn open(bytes: Vec<u8>, password: &Secret) -> Result<Result<Key, UnwrapError>> {
    let password = password.clone();
    blocking(move || key::unwrap(&bytes, password.expose())).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("the key derivation stopped: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Side, StorageSpec};

    /// The same in-memory store, as another process with `password` sees it.
    fn with_password(store: &Storage, password: &str) -> Storage {
        store
            .clone()
            .with_key(Some(KeySource::password(Secret::new(password))))
    }

    #[tokio::test]
    async fn a_password_makes_one_root_key_and_only_it_opens_it() {
        let store = Storage::open(StorageSpec::memory(Side::Backup, "b")).unwrap();
        let s = with_password(&store, "first");
        let first = sealing_key(&s).await.unwrap().unwrap();
        assert!(first.new_root);
        assert_eq!(
            store.stat(layout::ROOT_KEY).await.unwrap(),
            None,
            "a plan writes nothing"
        );
        store_root_key(&s, &first.key).await.unwrap();
        assert!(store.stat(layout::ROOT_KEY).await.unwrap().is_some());
        // Cached: no second unlock in this process.
        let again = sealing_key(&s).await.unwrap().unwrap();
        assert!(!again.new_root);
        assert_eq!(again.key.recipient(), first.key.recipient());

        // Another process: the same key, with the same password only.
        let other = with_password(&store, "first");
        let k = opening_key(&other, "m").await.unwrap();
        assert_eq!(k.recipient(), first.key.recipient());
        let wrong = with_password(&store, "second");
        let e = opening_key(&wrong, "m").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("MILVUS_BACKUP_PASSWORD"), "{e}");
        let e = sealing_key(&wrong).await.unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::PermissionDenied,
            "never a second root key"
        );

        // Two first creates: the second one to store is refused.
        let late = Key::parse(&Key::generate().0, "t").unwrap();
        let e = store_root_key(&with_password(&store, "first"), &late)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let k = opening_key(&with_password(&store, "first"), "m")
            .await
            .unwrap();
        assert_eq!(k.recipient(), first.key.recipient());

        // No root key at all: a sealed file names the key settings.
        let empty = Storage::open(StorageSpec::memory(Side::Backup, "e")).unwrap();
        let e = opening_key(&with_password(&empty, "x"), "b/meta/full_meta.json")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no root key"), "{e}");
    }

    #[tokio::test]
    async fn changing_the_password_rewraps_the_same_key_and_survives_interruption() {
        let store = Storage::open(StorageSpec::memory(Side::Backup, "b")).unwrap();
        let s = with_password(&store, "old");
        let e = change_password(&s, &Secret::new("new")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "no root key yet: {e}");
        let key = sealing_key(&s).await.unwrap().unwrap().key;
        store_root_key(&s, &key).await.unwrap();

        let stats = change_password(&s, &Secret::new("new")).await.unwrap();
        assert_eq!(stats.recipient, key.recipient());
        assert_eq!(store.stat(layout::ROOT_KEY_NEXT).await.unwrap(), None);
        let k = opening_key(&with_password(&store, "new"), "m")
            .await
            .unwrap();
        assert_eq!(k.recipient(), key.recipient());
        let e = opening_key(&with_password(&store, "old"), "m")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);

        // Interrupted after the new wrap was written: both passwords open it.
        let next = wrap(&key, &Secret::new("newer")).await.unwrap();
        store.write(layout::ROOT_KEY_NEXT, next).await.unwrap();
        for pw in ["new", "newer"] {
            let k = opening_key(&with_password(&store, pw), "m").await.unwrap();
            assert_eq!(k.recipient(), key.recipient(), "{pw}");
        }
        // A torn root key (local storage) is no loss while the copy opens.
        store
            .write(layout::ROOT_KEY, b"age-encryption.org/v1\n-> scr".to_vec())
            .await
            .unwrap();
        let k = opening_key(&with_password(&store, "newer"), "m")
            .await
            .unwrap();
        assert_eq!(k.recipient(), key.recipient());
        let e = opening_key(&with_password(&store, "new"), "m")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");

        let e = change_password(&with_password(&store, "newer"), &Secret::new("newer"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nothing to change"), "{e}");
    }
}
