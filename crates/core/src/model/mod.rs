//! The backup's data model: types only, no I/O. What the meta files hold
//! ([`meta`], the Go tool's layout plus our manifest and summary), every
//! object key of the layout ([`layout`]), how a stored file is encoded
//! ([`encoding`]) (a logical backup's too), users and roles
//! ([`rbac`]), a verification's record ([`verification`]), `list`'s rows
//! ([`listing`]), backup names ([`naming`]) and collection selections
//! ([`selection`]).
//!
//! Imports nothing of the crate but [`crate::error`]: every layer above
//! may use these types without depending on each other.

pub mod encoding;
pub mod layout;
pub mod listing;
pub mod meta;
pub mod naming;
pub mod rbac;
pub mod selection;
pub mod shard;
pub mod verification;
