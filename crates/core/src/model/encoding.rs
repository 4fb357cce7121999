//! How one stored file is encoded (compression, encryption) and what a
//! stored file is expected to be: the types the manifest records. The
//! encoders themselves are in [`crate::codec`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Compression of stored files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Zstd,
    Gzip,
}

impl Compression {
    pub fn parse(name: &str) -> Result<Compression> {
        match name.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd),
            "gzip" => Ok(Compression::Gzip),
            _ => Err(Error::invalid_input(format!(
                "unknown compression `{name}` — use zstd, gzip or none"
            ))),
        }
    }

    pub fn is_none(&self) -> bool {
        *self == Compression::None
    }

    /// Levels each algorithm accepts.
    pub fn check_level(&self, level: i32) -> Result<()> {
        let (lo, hi) = match self {
            Compression::None => return Ok(()),
            Compression::Zstd => (-7, 22),
            Compression::Gzip => (1, 9),
        };
        if (lo..=hi).contains(&level) {
            Ok(())
        } else {
            Err(Error::invalid_input(format!(
                "compression level {level} is out of range for {self:?} ({lo}..={hi})"
            )))
        }
    }
}

/// How one stored file is encoded; the default is "as Milvus wrote it".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Encoding {
    #[serde(skip_serializing_if = "Compression::is_none")]
    pub compression: Compression,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

impl Encoding {
    pub fn is_plain(&self) -> bool {
        self.compression.is_none() && !self.encrypted
    }
}

/// What a stored file should be, from the manifest.
#[derive(Debug, Clone, Default)]
pub struct Expected<'a> {
    pub size: u64,
    pub sha256: &'a str,
    pub encoding: Encoding,
    pub raw_size: Option<u64>,
    pub raw_sha256: Option<&'a str>,
}
