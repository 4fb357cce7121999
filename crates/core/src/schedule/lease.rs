//! One scheduler per backup root: the scheduler holds a lease object in
//! backup storage (`.milvus_backup_schedule/lease.json`), renewed while it
//! runs. Another server on the same root serves the API but does not
//! schedule until the lease expires.
//!
//! Object stores have no compare-and-swap here, so taking an expired lease
//! is write, wait, read back: of two servers that both wrote, the one whose
//! write landed last holds it, and the other sees that and backs off.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::storage::Storage;

pub const LEASE: &str = ".milvus_backup_schedule/lease.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lease {
    /// The holder's id (one per server process).
    pub holder: String,
    /// Host and pid, for people.
    pub host: String,
    pub renewed_at: u64,
    pub expires_at: u64,
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis() as u64
}

pub async fn read(storage: &Storage) -> Result<Option<Lease>> {
    match crate::repo::meta_files::read_json::<Lease>(storage, LEASE).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == crate::ErrorKind::Corrupt => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes or renews the lease for `holder`; `false` while another holds it.
pub async fn acquire(storage: &Storage, holder: &str, ttl: Duration) -> Result<bool> {
    let now = now_ms();
    let mine = Lease {
        holder: holder.to_string(),
        host: format!(
            "{} pid {}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            std::process::id()
        ),
        renewed_at: now,
        expires_at: now + ttl.as_millis() as u64,
    };
    let bytes = serde_json::to_vec_pretty(&mine).unwrap_or_default();
    match read(storage).await? {
        Some(l) if l.holder == holder => {
            storage.write(LEASE, bytes).await?;
            Ok(true)
        }
        Some(l) if l.expires_at > now => Ok(false),
        None => {
            if !storage.write_if_absent(LEASE, bytes).await? {
                return Ok(false);
            }
            settle(storage, holder).await
        }
        Some(_) => {
            storage.write(LEASE, bytes).await?;
            settle(storage, holder).await
        }
    }
}

/// After a write that may race another: who holds it once both landed.
async fn settle(storage: &Storage, holder: &str) -> Result<bool> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(read(storage).await?.is_some_and(|l| l.holder == holder))
}

/// Gives the lease up (on shutdown) so another server can take over at once.
pub async fn release(storage: &Storage, holder: &str) -> Result<()> {
    if read(storage).await?.is_some_and(|l| l.holder == holder) {
        storage.delete(LEASE).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Side, StorageSpec};

    #[tokio::test]
    async fn one_holder_until_it_expires() {
        let s = Storage::open(StorageSpec::memory(Side::Backup, "l")).unwrap();
        let ttl = Duration::from_millis(2500);
        assert!(acquire(&s, "a", ttl).await.unwrap());
        assert!(!acquire(&s, "b", ttl).await.unwrap());
        assert!(acquire(&s, "a", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(2600)).await;
        assert!(acquire(&s, "b", ttl).await.unwrap());
        assert!(!acquire(&s, "a", ttl).await.unwrap());
        release(&s, "b").await.unwrap();
        assert!(acquire(&s, "a", ttl).await.unwrap());
    }
}
