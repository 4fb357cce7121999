//! What the last verification of a backup found, kept beside the backup
//! (`<backup>/meta/verification.json`, one per storage: a replicated copy
//! has its own), and shown by `list` and `get`: reading and writing the
//! record ([`crate::repo::catalog::record_verification`] also updates the
//! catalog index).
//!
//! A backup is verified again when it changed since (its manifest, or the
//! names and sizes of its files — a delete that rehomes shared files
//! changes both), or when the record is older than the policy's
//! `reverify_after` (a flipped bit keeps every size).

use crate::error::Result;
use crate::model::layout;
pub use crate::model::verification::{VerificationRecord, RECORD};
use crate::repo::meta_files;
use crate::storage::Storage;

/// The backup's fingerprint: its manifest and the names and sizes of its
/// own files and of the files it shares from its bases (an incremental
/// backup reads those too), the records themselves left out.
pub async fn fingerprint(storage: &Storage, name: &str) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let manifest = storage
        .read(&layout::backup_meta_file(name, layout::MANIFEST))
        .await
        .ok();
    let mut holders = std::collections::BTreeSet::from([name.to_string()]);
    if let Some(m) = manifest
        .as_deref()
        .and_then(|b| serde_json::from_slice::<crate::model::meta::Manifest>(b).ok())
    {
        holders.extend(m.files.iter().map(|f| f.holder(name).to_string()));
    }
    for holder in &holders {
        let record = layout::backup_meta_file(holder, RECORD);
        for o in storage.list(&layout::backup_dir(holder)).await? {
            if o.key != record {
                h.update(format!("{} {}\n", o.key, o.size));
            }
        }
    }
    if let Some(m) = &manifest {
        h.update(m);
    }
    Ok(hex::encode(h.finalize()))
}

pub async fn read(storage: &Storage, name: &str) -> Result<Option<VerificationRecord>> {
    match meta_files::read_json(storage, &layout::backup_meta_file(name, RECORD)).await {
        Ok(r) => Ok(r),
        // A damaged record is as good as none: verify again.
        Err(e) if e.kind() == crate::ErrorKind::Corrupt => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the record beside the backup (the index is not told).
pub(crate) async fn write_file(
    storage: &Storage,
    name: &str,
    record: &VerificationRecord,
) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| crate::Error::internal(format!("encoding a verification record: {e}")))?;
    storage
        .write(&layout::backup_meta_file(name, RECORD), bytes)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_changed_file_an_incremental_shares_changes_its_fingerprint() {
        let kit = crate::testkit::Kit::new();
        kit.milvus.add_collection("docs", &[5, 7], 1, 100).await;
        kit.create_backup("base").await;
        kit.create_incremental("inc", "base").await;
        let storage = &kit.ctx.backup_storage;
        let before = fingerprint(storage, "inc").await.unwrap();
        assert_eq!(before, fingerprint(storage, "inc").await.unwrap());
        let manifest: crate::model::meta::Manifest =
            meta_files::read_json(storage, &layout::backup_meta_file("inc", layout::MANIFEST))
                .await
                .unwrap()
                .unwrap();
        let shared = manifest
            .files
            .iter()
            .find(|f| f.holder("inc") == "base")
            .expect("a file kept by the base");
        let key = layout::join(&layout::backup_dir("base"), &shared.path);
        storage.write(&key, b"cut".to_vec()).await.unwrap();
        assert_ne!(before, fingerprint(storage, "inc").await.unwrap());
    }
}
