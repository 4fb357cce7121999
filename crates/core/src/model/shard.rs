//! `--shard K/N`: one of N processes (Kubernetes Indexed Job pods, or
//! processes on one machine) doing its part of a logical backup or
//! restore. K counts from 0, as Kubernetes's `JOB_COMPLETION_INDEX` does.
//! The work is cut into units (key ranges of an export, files of a
//! restore) in one order every shard sees, and unit `i` is shard
//! `i mod N`'s.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Most shards one backup or restore is cut into.
pub const MAX_SHARDS: usize = 1024;

impl Shard {
    /// Whether unit `i` (in the order every shard sees) is this shard's.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    /// `K/N`, K from 0 to N-1.
    fn from_str(s: &str) -> Result<Shard> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "--shard `{s}`: {why} — give K/N with K from 0 to N-1 (e.g. 0/4 … 3/4, as Kubernetes's JOB_COMPLETION_INDEX counts)"
            ))
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(bad(&format!("N must be 1 to {MAX_SHARDS}")));
        }
        if index >= count {
            return Err(bad("K counts from 0, so it must be below N"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_zero_and_share_units_round_robin() {
        let s: Shard = "1/4".parse().unwrap();
        assert_eq!(s, Shard { index: 1, count: 4 });
        assert_eq!(s.to_string(), "1/4");
        let owned: Vec<usize> = (0..10).filter(|&i| s.owns(i)).collect();
        assert_eq!(owned, [1, 5, 9]);
        for bad in ["4/4", "1", "a/4", "0/0", "-1/4", "1/x", "0/5000"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("--shard") && e.contains("K/N"), "{bad}: {e}");
        }
    }
}
