//! Checks of files a server-side copy left without a SHA-256 (see
//! [`crate::model::meta::Check`]): a cheap one against the stored ETag, and
//! `verify --deep`'s full read, which checks the bytes against the copy's
//! ETag (an MD5) and records their SHA-256 in the manifest so later deep
//! checks compare SHA-256 like any other file.

use futures::AsyncReadExt;
use md5::{Digest as _, Md5};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::model::layout;
use crate::model::meta::{Manifest, ManifestFile};
use crate::storage::{s3copy, Storage};

/// Whether deep verify must hash this file itself: stored as Milvus wrote
/// it, by a copy that recorded no SHA-256.
pub fn lacks_sha256(f: &ManifestFile) -> bool {
    f.sha256.is_empty() && f.encoding.is_plain()
}

/// The plain check's extra: a file whose copy recorded an ETag must still
/// have it (a rewritten object gets a new one). `None` when sound.
pub fn etag_problem(f: &ManifestFile, stored_etag: Option<&str>) -> Option<String> {
    match (&f.etag, stored_etag) {
        (Some(want), Some(got)) if want != got => Some(format!(
            "changed since the backup was made (ETag {got}, the copy had {want})"
        )),
        _ => None,
    }
}

/// Reads `key` in full: its SHA-256 when its size and (where it is an MD5)
/// the copy's ETag match the manifest, else what is wrong. The outer error
/// is trouble reading (not found included).
pub async fn hash_file(
    storage: &Storage,
    key: &str,
    f: &ManifestFile,
) -> Result<std::result::Result<String, String>> {
    let mut reader = storage.open_read(key).await?;
    let (mut sha, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| storage.io_error(&format!("reading `{key}`"), key, e))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        size += n as u64;
    }
    if size != f.size {
        return Ok(Err(format!("size {size}, manifest says {}", f.size)));
    }
    if let Some(etag) = f.etag.as_deref().filter(|e| s3copy::etag_is_md5(e)) {
        let got = hex::encode(md5.finalize());
        if got != etag {
            return Ok(Err(format!(
                "content changed since the backup was made (MD5 {got}, the copy's ETag was {etag})"
            )));
        }
    }
    Ok(Ok(hex::encode(sha.finalize())))
}

/// Records SHA-256s that a deep check computed (`path` → hex) in the
/// backup's manifest, keeping `summary.json`'s checksum of it true. Left
/// alone when the manifest is sealed or no longer the one the summary
/// recorded (an edit is reported, never blessed). Returns how many were
/// stored.
pub async fn store_sha256s(
    storage: &Storage,
    name: &str,
    hashes: &[(String, String)],
) -> Result<usize> {
    if hashes.is_empty() {
        return Ok(0);
    }
    let key = layout::backup_meta_file(name, layout::MANIFEST);
    let bytes = storage.read(&key).await?;
    if crate::codec::key::is_sealed(&bytes) {
        return Ok(0);
    }
    let summary_key = layout::backup_meta_file(name, layout::SUMMARY);
    let Some(mut summary) =
        crate::repo::meta_files::read_json::<crate::model::meta::Summary>(storage, &summary_key)
            .await?
    else {
        return Ok(0);
    };
    let current = hex::encode(Sha256::digest(&bytes));
    if summary
        .meta_sha256
        .get(layout::MANIFEST)
        .is_some_and(|want| *want != current)
    {
        return Ok(0);
    }
    let mut manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(ErrorKind::Corrupt, format!("`{key}` is damaged: {e}")).at("key", &key)
    })?;
    let mut stored = 0;
    for (path, sha) in hashes {
        if let Some(f) = manifest
            .files
            .iter_mut()
            .find(|f| &f.path == path && f.sha256.is_empty())
        {
            f.sha256 = sha.clone();
            stored += 1;
        }
    }
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::internal(format!("encoding the manifest of {name}: {e}")))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    storage.write(&key, bytes).await?;
    if !summary.meta_sha256.is_empty() {
        summary
            .meta_sha256
            .insert(layout::MANIFEST.to_string(), sha);
        let bytes = serde_json::to_vec_pretty(&summary)
            .map_err(|e| Error::internal(format!("encoding the summary of {name}: {e}")))?;
        storage.write(&summary_key, bytes).await?;
    }
    Ok(stored)
}
