//! Users, roles, grants and privilege groups as a backup records them
//! (`rbac_meta`, the Go tool's layout). Types only; reading them from
//! Milvus and restoring them is [`crate::ops::rbac`]'s.

use serde::{Deserialize, Serialize};

/// `rbac_meta` of `backup_meta.json` / `full_meta.json` (the Go tool's
/// `backuppb.RBACMeta`, encoding/json names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RbacMeta {
    pub users: Vec<UserInfo>,
    pub roles: Vec<Named>,
    pub grants: Vec<GrantEntity>,
    pub privilege_groups: Vec<PrivilegeGroupInfo>,
}

/// `RoleEntity`, `UserEntity`, `ObjectEntity`, `PrivilegeEntity`: a name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Named {
    pub name: String,
}

impl Named {
    pub(crate) fn new(name: &str) -> Named {
        Named {
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    pub user: String,
    /// What `BackupRBAC` gives (a hash on servers that have it; empty from
    /// the 2.3 calls). Never used to restore: Milvus takes plain text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    pub roles: Vec<Named>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct GrantorEntity {
    pub user: Named,
    pub privilege: Named,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct GrantEntity {
    pub role: Named,
    /// Object type: `Global`, `Collection`, `User`, ...
    pub object: Named,
    pub object_name: String,
    pub grantor: GrantorEntity,
    pub db_name: String,
}

impl GrantEntity {
    /// What makes two grants the same (the grantor does not).
    pub(crate) fn key(&self) -> (String, String, String, String, String) {
        (
            self.role.name.clone(),
            self.object.name.clone(),
            self.object_name.clone(),
            self.grantor.privilege.name.clone(),
            self.db_name.clone(),
        )
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{}: {} on {} {} in database {}",
            self.role.name,
            self.grantor.privilege.name,
            self.object.name,
            self.object_name,
            self.db_name
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivilegeGroupInfo {
    pub group_name: String,
    pub privileges: Vec<Named>,
}

impl RbacMeta {
    /// Counts for messages and `--json`.
    pub fn counts(&self) -> RbacCounts {
        RbacCounts {
            users: self.users.len(),
            roles: self.roles.len(),
            grants: self.grants.len(),
            privilege_groups: self.privilege_groups.len(),
        }
    }
}

/// How many of each a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RbacCounts {
    pub users: usize,
    pub roles: usize,
    pub grants: usize,
    pub privilege_groups: usize,
}
