//! Users, roles, grants and privilege groups in a backup (`--rbac`).
//!
//! Owns: the backup's `rbac_meta` (the Go tool's layout, so either tool
//! reads the other's), reading it from Milvus (`BackupRBAC` where the server
//! has it, `SelectUser`/`SelectRole`/`SelectGrant` otherwise), the password
//! file, and the additive restore: what is missing is created, what exists
//! is left alone (no password is changed, no grant removed, an existing
//! user's roles are not touched), users without a password are skipped.
//! Does not own: the gRPC calls ([`crate::milvus::rbac_api`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::milvus::proto::milvus as pb;
use crate::milvus::rbac_api::MilvusRbac;
use crate::milvus::Milvus;
pub use crate::model::rbac::{
    GrantEntity, GrantorEntity, Named, PrivilegeGroupInfo, RbacCounts, RbacMeta, UserInfo,
};

/// Conversions to and from Milvus's messages.
impl GrantEntity {
    fn to_pb(&self) -> pb::GrantEntity {
        pb::GrantEntity {
            role: Some(pb::RoleEntity {
                name: self.role.name.clone(),
                ..Default::default()
            }),
            object: Some(pb::ObjectEntity {
                name: self.object.name.clone(),
            }),
            object_name: self.object_name.clone(),
            grantor: Some(pb::GrantorEntity {
                user: None,
                privilege: Some(pb::PrivilegeEntity {
                    name: self.grantor.privilege.name.clone(),
                }),
            }),
            db_name: self.db_name.clone(),
        }
    }

    fn from_pb(g: pb::GrantEntity) -> GrantEntity {
        let grantor = g.grantor.unwrap_or_default();
        GrantEntity {
            role: Named::new(&g.role.map(|r| r.name).unwrap_or_default()),
            object: Named::new(&g.object.map(|o| o.name).unwrap_or_default()),
            object_name: g.object_name,
            grantor: GrantorEntity {
                user: Named::new(&grantor.user.map(|u| u.name).unwrap_or_default()),
                privilege: Named::new(&grantor.privilege.map(|p| p.name).unwrap_or_default()),
            },
            db_name: g.db_name,
        }
    }
}

impl RbacMeta {
    fn from_pb(m: pb::RbacMeta) -> RbacMeta {
        RbacMeta {
            users: m
                .users
                .into_iter()
                .map(|u| UserInfo {
                    user: u.user,
                    password: u.password,
                    roles: u.roles.iter().map(|r| Named::new(&r.name)).collect(),
                })
                .collect(),
            roles: m.roles.iter().map(|r| Named::new(&r.name)).collect(),
            grants: m.grants.into_iter().map(GrantEntity::from_pb).collect(),
            privilege_groups: m
                .privilege_groups
                .into_iter()
                .map(|g| PrivilegeGroupInfo {
                    group_name: g.group_name,
                    privileges: g.privileges.iter().map(|p| Named::new(&p.name)).collect(),
                })
                .collect(),
        }
    }
}

fn api(client: &dyn Milvus) -> Result<&dyn MilvusRbac> {
    client.rbac().ok_or_else(|| {
        Error::unsupported(format!(
            "Milvus at {} offers no user and role calls",
            client.address()
        ))
    })
}

/// Reads every user (with its roles), role, grant and privilege group.
pub async fn collect(client: &dyn Milvus) -> Result<RbacMeta> {
    let api = api(client)?;
    match api.backup_rbac().await {
        Ok(m) => return Ok(RbacMeta::from_pb(m)),
        Err(e) if e.kind() == ErrorKind::Unsupported => {}
        Err(e) => return Err(e),
    }
    let users = api
        .select_users()
        .await?
        .into_iter()
        .map(|u| UserInfo {
            user: u.user.map(|u| u.name).unwrap_or_default(),
            password: String::new(),
            roles: u.roles.iter().map(|r| Named::new(&r.name)).collect(),
        })
        .collect();
    let roles = api.select_roles().await?;
    let mut grants = Vec::new();
    for role in &roles {
        grants.extend(
            api.select_grants(role)
                .await?
                .into_iter()
                .map(GrantEntity::from_pb),
        );
    }
    let privilege_groups = match api.list_privilege_groups().await {
        Ok(groups) => groups
            .into_iter()
            .map(|g| PrivilegeGroupInfo {
                group_name: g.group_name,
                privileges: g.privileges.iter().map(|p| Named::new(&p.name)).collect(),
            })
            .collect(),
        Err(e) if e.kind() == ErrorKind::Unsupported => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(RbacMeta {
        users,
        roles: roles.iter().map(|r| Named::new(r)).collect(),
        grants,
        privilege_groups,
    })
}

/// Reads `user:password` lines (the first `:` splits; blank lines and
/// lines starting with `#` are ignored). Errors name the line, never a
/// password.
pub fn read_password_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidInput
        };
        Error::new(
            kind,
            format!(
                "cannot read --rbac-user-password-file `{}`: {e}",
                path.display()
            ),
        )
    })?;
    parse_passwords(&text).map_err(|line| {
        Error::invalid_input(format!(
            "--rbac-user-password-file `{}` line {line}: expected `user:password`",
            path.display()
        ))
    })
}

/// The password file's text; `Err(line number)` of a malformed line.
fn parse_passwords(text: &str) -> std::result::Result<BTreeMap<String, String>, usize> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, password)) if !user.trim().is_empty() && !password.is_empty() => {
                out.insert(user.trim().to_string(), password.to_string());
            }
            _ => return Err(i + 1),
        }
    }
    Ok(out)
}

/// What kind of thing an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RbacKind {
    PrivilegeGroup,
    Role,
    Grant,
    User,
    UserRole,
}

impl RbacKind {
    /// For messages: `role`, `user-role binding`, ...
    pub fn label(self) -> &'static str {
        match self {
            RbacKind::PrivilegeGroup => "privilege group",
            RbacKind::Role => "role",
            RbacKind::Grant => "grant",
            RbacKind::User => "user",
            RbacKind::UserRole => "user-role binding",
        }
    }
}

/// What a restore does (plan) or did (report) with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RbacAction {
    /// Planned: missing on the target, will be created.
    Create,
    /// Done: created.
    Created,
    /// On the target already: left as it is.
    Existing,
    /// Not restored; `reason` says why.
    Skipped,
}

/// One role, user, grant, user-role binding or privilege group.
#[derive(Clone, Serialize)]
pub struct RbacItem {
    pub kind: RbacKind,
    pub name: String,
    pub action: RbacAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    op: Op,
}

impl std::fmt::Debug for RbacItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the password
        f.debug_struct("RbacItem")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("action", &self.action)
            .field("reason", &self.reason)
            .finish()
    }
}

#[derive(Clone)]
enum Op {
    None,
    Group(String, Vec<String>),
    Role(String),
    Grant(Box<GrantEntity>),
    User(String, String),
    Bind(String, String),
}

/// The RBAC part of a restore plan, and (with actions done) of its stats.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RbacPlan {
    pub created: usize,
    pub existing: usize,
    pub skipped: usize,
    /// Items to create (planned: `create`; done: `created`).
    pub to_create: usize,
    pub items: Vec<RbacItem>,
}

impl RbacPlan {
    fn push(&mut self, kind: RbacKind, name: String, action: RbacAction, op: Op) {
        self.push_why(kind, name, action, None, op)
    }

    fn push_why(
        &mut self,
        kind: RbacKind,
        name: String,
        action: RbacAction,
        reason: Option<String>,
        op: Op,
    ) {
        self.items.push(RbacItem {
            kind,
            name,
            action,
            reason,
            op,
        });
        self.recount();
    }

    fn recount(&mut self) {
        let n = |a| self.items.iter().filter(|i| i.action == a).count();
        self.created = n(RbacAction::Created);
        self.existing = n(RbacAction::Existing);
        self.skipped = n(RbacAction::Skipped);
        self.to_create = n(RbacAction::Create);
    }

    /// The skipped items, for messages.
    pub fn skipped_items(&self) -> impl Iterator<Item = &RbacItem> {
        self.items
            .iter()
            .filter(|i| i.action == RbacAction::Skipped)
    }
}

/// Compares the backup's RBAC with the target's and decides each item.
/// `target_groups` is `None` when the target has no privilege groups.
pub fn diff(
    backup: &RbacMeta,
    target: &RbacMeta,
    target_groups: bool,
    passwords: Option<&BTreeMap<String, String>>,
) -> RbacPlan {
    let mut plan = RbacPlan::default();
    let skipped_groups = plan.diff_groups(backup, target, target_groups);
    plan.diff_roles(backup, target);
    plan.diff_grants(backup, target, &skipped_groups);
    plan.diff_users(backup, target, passwords);
    plan
}

impl RbacPlan {
    /// Privilege groups; the names of those skipped (their grants are too).
    fn diff_groups(
        &mut self,
        backup: &RbacMeta,
        target: &RbacMeta,
        target_groups: bool,
    ) -> BTreeSet<String> {
        use RbacAction::*;
        let plan = self;
        let mut skipped_groups = BTreeSet::new();
        for g in &backup.privilege_groups {
            let privileges: Vec<String> = g.privileges.iter().map(|p| p.name.clone()).collect();
            let name = format!("{} ({})", g.group_name, privileges.join(", "));
            if target
                .privilege_groups
                .iter()
                .any(|t| t.group_name == g.group_name)
            {
                plan.push(RbacKind::PrivilegeGroup, name, Existing, Op::None);
            } else if !target_groups {
                skipped_groups.insert(g.group_name.clone());
                plan.push_why(
                    RbacKind::PrivilegeGroup,
                    name,
                    Skipped,
                    Some("the target Milvus has no privilege groups (Milvus < 2.5)".into()),
                    Op::None,
                );
            } else {
                plan.push(
                    RbacKind::PrivilegeGroup,
                    name,
                    Create,
                    Op::Group(g.group_name.clone(), privileges),
                );
            }
        }
        skipped_groups
    }

    fn diff_roles(&mut self, backup: &RbacMeta, target: &RbacMeta) {
        use RbacAction::*;
        let plan = self;
        let target_roles: BTreeSet<&str> = target.roles.iter().map(|r| r.name.as_str()).collect();
        for r in &backup.roles {
            if target_roles.contains(r.name.as_str()) {
                plan.push(RbacKind::Role, r.name.clone(), Existing, Op::None);
            } else {
                plan.push(
                    RbacKind::Role,
                    r.name.clone(),
                    Create,
                    Op::Role(r.name.clone()),
                );
            }
        }
    }

    fn diff_grants(
        &mut self,
        backup: &RbacMeta,
        target: &RbacMeta,
        skipped_groups: &BTreeSet<String>,
    ) {
        use RbacAction::*;
        let plan = self;
        let target_grants: BTreeSet<_> = target.grants.iter().map(GrantEntity::key).collect();
        let mut seen = BTreeSet::new();
        for g in &backup.grants {
            if !seen.insert(g.key()) {
                continue;
            }
            if target_grants.contains(&g.key()) {
                plan.push(RbacKind::Grant, g.describe(), Existing, Op::None);
            } else if skipped_groups.contains(&g.grantor.privilege.name) {
                plan.push_why(
                    RbacKind::Grant,
                    g.describe(),
                    Skipped,
                    Some(format!(
                        "privilege group `{}` is not restored",
                        g.grantor.privilege.name
                    )),
                    Op::None,
                );
            } else {
                plan.push(
                    RbacKind::Grant,
                    g.describe(),
                    Create,
                    Op::Grant(Box::new(g.clone())),
                );
            }
        }
    }

    /// Users (created only with a password) and their roles (bound only to
    /// users this restore creates).
    fn diff_users(
        &mut self,
        backup: &RbacMeta,
        target: &RbacMeta,
        passwords: Option<&BTreeMap<String, String>>,
    ) {
        use RbacAction::*;
        let plan = self;
        let target_users: BTreeMap<&str, &UserInfo> =
            target.users.iter().map(|u| (u.user.as_str(), u)).collect();
        for u in &backup.users {
            let existing = target_users.get(u.user.as_str());
            let user_action = if existing.is_some() {
                plan.push(RbacKind::User, u.user.clone(), Existing, Op::None);
                Existing
            } else {
                match passwords.and_then(|p| p.get(&u.user)) {
                    Some(password) => {
                        plan.push(
                            RbacKind::User,
                            u.user.clone(),
                            Create,
                            Op::User(u.user.clone(), password.clone()),
                        );
                        Create
                    }
                    None => {
                        let why = if passwords.is_some() {
                            "no password for it in --rbac-user-password-file"
                        } else {
                            "no --rbac-user-password-file given (Milvus cannot hand out passwords)"
                        };
                        plan.push_why(
                            RbacKind::User,
                            u.user.clone(),
                            Skipped,
                            Some(why.into()),
                            Op::None,
                        );
                        Skipped
                    }
                }
            };
            for r in &u.roles {
                let name = format!("{} -> {}", u.user, r.name);
                match (user_action, existing) {
                    (Existing, Some(t)) if t.roles.iter().any(|tr| tr.name == r.name) => {
                        plan.push(RbacKind::UserRole, name, Existing, Op::None)
                    }
                    (Existing, _) => plan.push_why(
                        RbacKind::UserRole,
                        name,
                        Skipped,
                        Some(format!(
                            "user `{}` exists on the target: its roles are left as they are",
                            u.user
                        )),
                        Op::None,
                    ),
                    (Create, _) => plan.push(
                        RbacKind::UserRole,
                        name,
                        Create,
                        Op::Bind(u.user.clone(), r.name.clone()),
                    ),
                    _ => plan.push_why(
                        RbacKind::UserRole,
                        name,
                        Skipped,
                        Some(format!("user `{}` is not restored", u.user)),
                        Op::None,
                    ),
                }
            }
        }
    }
}

/// Plans the RBAC part of a restore into `client`.
pub async fn plan(
    client: &dyn Milvus,
    backup: &RbacMeta,
    password_file: Option<&Path>,
) -> Result<RbacPlan> {
    let passwords = password_file.map(read_password_file).transpose()?;
    let target = collect(client).await?;
    let groups = match api(client)?.list_privilege_groups().await {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::Unsupported => false,
        Err(e) => return Err(e),
    };
    Ok(diff(backup, &target, groups, passwords.as_ref()))
}

/// Creates what the plan creates, in order: privilege groups, roles,
/// grants, users, user-role bindings. Returns the plan with what was done.
pub async fn execute(client: &dyn Milvus, plan: &RbacPlan) -> Result<RbacPlan> {
    let api = api(client)?;
    let mut done = plan.clone();
    for item in done.items.iter_mut() {
        if item.action != RbacAction::Create {
            continue;
        }
        match &item.op {
            Op::None => continue,
            Op::Group(name, privileges) => api.create_privilege_group(name, privileges).await?,
            Op::Role(name) => api.create_role(name).await?,
            Op::Grant(g) => api.grant(&g.to_pb()).await?,
            Op::User(user, password) => api.create_user(user, password).await?,
            Op::Bind(user, role) => api.add_user_to_role(user, role).await?,
        }
        item.action = RbacAction::Created;
    }
    done.recount();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: &str, privilege: &str) -> GrantEntity {
        GrantEntity {
            role: Named::new(role),
            object: Named::new("Collection"),
            object_name: "*".into(),
            grantor: GrantorEntity {
                user: Named::new("root"),
                privilege: Named::new(privilege),
            },
            db_name: "default".into(),
        }
    }

    fn user(name: &str, roles: &[&str]) -> UserInfo {
        UserInfo {
            user: name.into(),
            password: String::new(),
            roles: roles.iter().map(|r| Named::new(r)).collect(),
        }
    }

    #[test]
    fn passwords_parse_and_malformed_lines_are_named() {
        let p = parse_passwords("# comment\nalice:pw:with:colons\r\n\nbob:x\n").unwrap();
        assert_eq!(p["alice"], "pw:with:colons");
        assert_eq!(p["bob"], "x");
        assert_eq!(parse_passwords("alice:ok\nnocolon\n"), Err(2));
        assert_eq!(parse_passwords("carol:\n"), Err(1));
    }

    #[test]
    fn diff_creates_missing_keeps_existing_and_skips_users_without_password() {
        let backup = RbacMeta {
            users: vec![
                user("root", &[]),
                user("alice", &["reader"]),
                user("bob", &["reader"]),
                user("carol", &["writer"]),
            ],
            roles: vec![
                Named::new("admin"),
                Named::new("reader"),
                Named::new("writer"),
            ],
            grants: vec![grant("reader", "Query"), grant("writer", "Insert")],
            privilege_groups: vec![PrivilegeGroupInfo {
                group_name: "g1".into(),
                privileges: vec![Named::new("Query")],
            }],
        };
        let target = RbacMeta {
            users: vec![user("root", &[]), user("carol", &[])],
            roles: vec![Named::new("admin"), Named::new("writer")],
            grants: vec![grant("writer", "Insert")],
            privilege_groups: vec![],
        };
        let passwords = BTreeMap::from([("alice".to_string(), "pw".to_string())]);
        let plan = diff(&backup, &target, false, Some(&passwords));
        let action = |kind, name: &str| {
            plan.items
                .iter()
                .find(|i| i.kind == kind && i.name == name)
                .map(|i| i.action)
                .unwrap_or_else(|| panic!("no {kind:?} {name}"))
        };
        use RbacAction::*;
        assert_eq!(action(RbacKind::Role, "reader"), Create);
        assert_eq!(action(RbacKind::Role, "writer"), Existing);
        assert_eq!(action(RbacKind::Role, "admin"), Existing);
        assert_eq!(
            action(
                RbacKind::Grant,
                "reader: Query on Collection * in database default"
            ),
            Create
        );
        assert_eq!(
            action(
                RbacKind::Grant,
                "writer: Insert on Collection * in database default"
            ),
            Existing
        );
        assert_eq!(action(RbacKind::User, "root"), Existing);
        assert_eq!(action(RbacKind::User, "alice"), Create);
        assert_eq!(action(RbacKind::User, "bob"), Skipped);
        // an existing user's roles are not changed
        assert_eq!(action(RbacKind::User, "carol"), Existing);
        assert_eq!(action(RbacKind::UserRole, "carol -> writer"), Skipped);
        assert_eq!(action(RbacKind::UserRole, "alice -> reader"), Create);
        assert_eq!(action(RbacKind::UserRole, "bob -> reader"), Skipped);
        assert_eq!(action(RbacKind::PrivilegeGroup, "g1 (Query)"), Skipped);
        assert_eq!(plan.to_create, 4);
        assert_eq!(plan.skipped, 4);
        // the plan as JSON never holds a password
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("\"pw\""), "{json}");
        assert!(!format!("{plan:?}").contains("\"pw\""));
    }

    #[test]
    fn go_layout_round_trips() {
        // A Go tool's rbac_meta (encoding/json, empty fields left out).
        let go = r#"{"users":[{"user":"u1","password":"$2a$10$hash","roles":[{"name":"r1"}]}],
            "roles":[{"name":"r1"}],
            "grants":[{"role":{"name":"r1"},"object":{"name":"Collection"},"object_name":"c1",
                       "grantor":{"user":{"name":"root"},"privilege":{"name":"Insert"}},"db_name":"default"}],
            "privilege_groups":[{"group_name":"g1","privileges":[{"name":"Query"}]}]}"#;
        let m: RbacMeta = serde_json::from_str(go).unwrap();
        assert_eq!(m.users[0].roles[0].name, "r1");
        assert_eq!(m.grants[0].grantor.privilege.name, "Insert");
        assert_eq!(m.grants[0].object_name, "c1");
        assert_eq!(m.privilege_groups[0].privileges[0].name, "Query");
        let back: RbacMeta = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
