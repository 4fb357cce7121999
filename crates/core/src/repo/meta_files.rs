//! Reading a backup's meta files: JSON, opened first when sealed
//! (encrypted with the storage's key). A missing file is `None`; one that
//! does not parse is damage ([`crate::ErrorKind::Corrupt`]), never a
//! failed storage.

use crate::codec::key;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::root_key;
use crate::storage::Storage;

/// Reads a meta file, opening it with the storage's key when it is sealed.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<Option<T>> {
    Ok(read_json_sealed(storage, key).await?.map(|(v, _)| v))
}

/// [`read_json`], and whether the file was sealed (encrypted).
pub(crate) async fn read_json_sealed<T: serde::de::DeserializeOwned>(
    storage: &Storage,
    key: &str,
) -> Result<Option<(T, bool)>> {
    match storage.read(key).await {
        Ok(bytes) => {
            let sealed = key::is_sealed(&bytes);
            serde_json::from_slice(&open_meta(storage, bytes, key).await?)
            .map(|v| Some((v, sealed)))
            .map_err(|e| {
                Error::corrupt(format!(
                    "`{key}` is damaged: it is not a valid backup meta file ({e}) — restore from another backup; `milvus-backup verify` names every damaged file"
                ))
                .at("key", key)
            })
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A meta file's bytes, opened when sealed.
pub(crate) async fn open_meta(storage: &Storage, bytes: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    if !key::is_sealed(&bytes) {
        return Ok(bytes);
    }
    let k = root_key::opening_key(storage, what).await?;
    key::open(bytes, Some(&k), what)
}
