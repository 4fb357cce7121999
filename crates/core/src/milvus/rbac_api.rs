//! Users, roles, grants and privilege groups over gRPC (`--rbac`).
//!
//! Owns: the RBAC calls the core makes and, for every call the tool makes,
//! which privilege on which object Milvus checks ([`required_privilege`]),
//! so that a refusal names both.
//! Does not own: what is backed up or restored ([`crate::ops::rbac`]).

use async_trait::async_trait;
use base64::Engine;
use milvus::proto::milvus as pb;

use crate::error::Result;
use crate::milvus::{check_status, MilvusClient};

/// The RBAC calls; [`crate::milvus::Milvus::rbac`] hands them out where the server
/// connection has them.
#[async_trait]
pub trait MilvusRbac: Send + Sync {
    /// The whole RBAC metadata in one call (`BackupRBAC`, Milvus ≥ 2.4);
    /// `Unsupported` on older servers.
    async fn backup_rbac(&self) -> Result<pb::RbacMeta>;
    /// Every user with its roles (`SelectUser`).
    async fn select_users(&self) -> Result<Vec<pb::UserResult>>;
    /// Every role (`SelectRole`).
    async fn select_roles(&self) -> Result<Vec<String>>;
    /// Every grant of one role (`SelectGrant`).
    async fn select_grants(&self, role: &str) -> Result<Vec<pb::GrantEntity>>;
    /// Privilege groups (Milvus ≥ 2.5); `Unsupported` on older servers.
    async fn list_privilege_groups(&self) -> Result<Vec<pb::PrivilegeGroupInfo>>;
    async fn create_role(&self, role: &str) -> Result<()>;
    /// Creates a user with a plain-text password.
    async fn create_user(&self, user: &str, password: &str) -> Result<()>;
    async fn add_user_to_role(&self, user: &str, role: &str) -> Result<()>;
    async fn grant(&self, grant: &pb::GrantEntity) -> Result<()>;
    async fn create_privilege_group(&self, group: &str, privileges: &[String]) -> Result<()>;
}

/// The privilege Milvus checks for an RPC, and the object kind it checks it
/// on (from the `privilege_ext_obj` options of Milvus's protos, 2.3 names).
pub fn required_privilege(rpc: &str) -> Option<(&'static str, &'static str)> {
    Some(match rpc {
        "ShowCollections" => ("Global", "ShowCollections"),
        "ListDatabases" => ("Global", "ListDatabases"),
        "DescribeCollection" => ("Global", "DescribeCollection"),
        "DescribeIndex" => ("Collection", "IndexDetail"),
        "Flush" => ("Collection", "Flush"),
        "GetFlushState" => ("Collection", "GetFlushState"),
        "GetLoadState" => ("Collection", "GetLoadState"),
        "ShowPartitions" => ("Collection", "ShowPartitions"),
        "GetCollectionStatistics" => ("Collection", "GetStatistics"),
        "CreateAlias" => ("Global", "CreateAlias"),
        "CreateCollection" => ("Global", "CreateCollection"),
        "CreateDatabase" => ("Global", "CreateDatabase"),
        "DropCollection" => ("Global", "DropCollection"),
        "CreateIndex" => ("Collection", "CreateIndex"),
        "DropIndex" => ("Collection", "DropIndex"),
        "CreatePartition" => ("Collection", "CreatePartition"),
        "LoadCollection" => ("Collection", "Load"),
        "ReleaseCollection" => ("Collection", "Release"),
        "Import" => ("Collection", "Import"),
        "Query" => ("Collection", "Query"),
        "Insert" => ("Collection", "Insert"),
        "BackupRBAC" => ("Global", "BackupRBAC"),
        "SelectUser" => ("User", "SelectUser"),
        "SelectRole" | "SelectGrant" | "ListCredUsers" => ("Global", "SelectOwnership"),
        "ListPrivilegeGroups" => ("Global", "ListPrivilegeGroups"),
        "CreateRole" | "CreateCredential" => ("Global", "CreateOwnership"),
        "OperateUserRole" | "OperatePrivilege" => ("Global", "ManageOwnership"),
        "CreatePrivilegeGroup" => ("Global", "CreatePrivilegeGroup"),
        "OperatePrivilegeGroup" => ("Global", "OperatePrivilegeGroup"),
        _ => return None,
    })
}

/// What a refused call needed, for the error: `privilege `X` on Collection
/// `db.c``. `what` is the call as messages name it: the RPC first, then
/// the object in backquotes when there is one (`DescribeCollection of
/// `db.c``).
pub fn privilege_hint(what: &str) -> Option<String> {
    let rpc = what.split_whitespace().next()?;
    let (object_type, privilege) = required_privilege(rpc)?;
    let object = match object_type {
        "Global" => "*".to_string(),
        _ => what
            .split('`')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_else(|| "*".to_string()),
    };
    Some(format!(
        "the connecting user needs privilege `{privilege}` on {object_type} `{object}`"
    ))
}

#[async_trait]
impl MilvusRbac for MilvusClient {
    async fn backup_rbac(&self) -> Result<pb::RbacMeta> {
        let resp = self
            .call(
                "BackupRBAC",
                "",
                pb::BackupRbacMetaRequest::default(),
                |mut c, r| async move { c.backup_rbac(r).await },
            )
            .await?;
        check_status(resp.status.as_ref(), "BackupRBAC")?;
        Ok(resp.rbac_meta.unwrap_or_default())
    }

    async fn select_users(&self) -> Result<Vec<pb::UserResult>> {
        let req = pb::SelectUserRequest {
            include_role_info: true,
            ..Default::default()
        };
        let resp = self
            .call("SelectUser", "", req, |mut c, r| async move {
                c.select_user(r).await
            })
            .await?;
        check_status(resp.status.as_ref(), "SelectUser")?;
        Ok(resp.results)
    }

    async fn select_roles(&self) -> Result<Vec<String>> {
        let req = pb::SelectRoleRequest::default();
        let resp = self
            .call("SelectRole", "", req, |mut c, r| async move {
                c.select_role(r).await
            })
            .await?;
        check_status(resp.status.as_ref(), "SelectRole")?;
        Ok(resp
            .results
            .into_iter()
            .filter_map(|r| r.role.map(|r| r.name))
            .collect())
    }

    async fn select_grants(&self, role: &str) -> Result<Vec<pb::GrantEntity>> {
        let req = pb::SelectGrantRequest {
            entity: Some(pb::GrantEntity {
                role: Some(pb::RoleEntity {
                    name: role.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let what = format!("SelectGrant of role `{role}`");
        let resp = self
            .call(
                &what,
                "",
                req,
                |mut c, r| async move { c.select_grant(r).await },
            )
            .await?;
        check_status(resp.status.as_ref(), &what)?;
        Ok(resp.entities)
    }

    async fn list_privilege_groups(&self) -> Result<Vec<pb::PrivilegeGroupInfo>> {
        let resp = self
            .call(
                "ListPrivilegeGroups",
                "",
                pb::ListPrivilegeGroupsRequest::default(),
                |mut c, r| async move { c.list_privilege_groups(r).await },
            )
            .await?;
        check_status(resp.status.as_ref(), "ListPrivilegeGroups")?;
        Ok(resp.privilege_groups)
    }

    async fn create_role(&self, role: &str) -> Result<()> {
        let req = pb::CreateRoleRequest {
            entity: Some(pb::RoleEntity {
                name: role.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let what = format!("CreateRole `{role}`");
        let status = self
            .call(
                &what,
                "",
                req,
                |mut c, r| async move { c.create_role(r).await },
            )
            .await?;
        check_status(Some(&status), &what)
    }

    async fn create_user(&self, user: &str, password: &str) -> Result<()> {
        // Milvus takes the password base64-encoded ("ciphertext").
        let req = pb::CreateCredentialRequest {
            username: user.to_string(),
            password: base64::engine::general_purpose::STANDARD.encode(password),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("CreateCredential of user `{user}`"),
            "",
            req,
            create_credential
        )
    }

    async fn add_user_to_role(&self, user: &str, role: &str) -> Result<()> {
        let req = pb::OperateUserRoleRequest {
            username: user.to_string(),
            role_name: role.to_string(),
            r#type: pb::OperateUserRoleType::AddUserToRole as i32,
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("OperateUserRole (add user `{user}` to role `{role}`)"),
            "",
            req,
            operate_user_role
        )
    }

    async fn grant(&self, grant: &pb::GrantEntity) -> Result<()> {
        let req = pb::OperatePrivilegeRequest {
            entity: Some(grant.clone()),
            r#type: pb::OperatePrivilegeType::Grant as i32,
            ..Default::default()
        };
        let what = format!(
            "OperatePrivilege (grant to role `{}`)",
            grant.role.as_ref().map(|r| r.name.as_str()).unwrap_or("")
        );
        // The database of a grant travels in the `dbname` header on 2.3.
        let db = grant.db_name.as_str();
        let db = if db == "*" { "" } else { db };
        status_rpc!(self, what, db, req, operate_privilege)
    }

    async fn create_privilege_group(&self, group: &str, privileges: &[String]) -> Result<()> {
        let req = pb::CreatePrivilegeGroupRequest {
            group_name: group.to_string(),
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("CreatePrivilegeGroup `{group}`"),
            "",
            req,
            create_privilege_group
        )?;
        if privileges.is_empty() {
            return Ok(());
        }
        let req = pb::OperatePrivilegeGroupRequest {
            group_name: group.to_string(),
            privileges: privileges
                .iter()
                .map(|p| pb::PrivilegeEntity { name: p.clone() })
                .collect(),
            r#type: pb::OperatePrivilegeGroupType::AddPrivilegesToGroup as i32,
            ..Default::default()
        };
        status_rpc!(
            self,
            format!("OperatePrivilegeGroup (add privileges to `{group}`)"),
            "",
            req,
            operate_privilege_group
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_privilege_and_object() {
        assert_eq!(
            privilege_hint("DescribeIndex of `db1.c1`").as_deref(),
            Some("the connecting user needs privilege `IndexDetail` on Collection `db1.c1`")
        );
        assert_eq!(
            privilege_hint("SelectGrant of role `r1`").as_deref(),
            Some("the connecting user needs privilege `SelectOwnership` on Global `*`")
        );
        assert_eq!(privilege_hint("GetVersion"), None);
    }
}
