//! How `create --rbac` and `restore --rbac` show users and roles.

use milvus_backup_core::ops::rbac::{RbacAction, RbacCounts, RbacPlan};

/// `Users and roles: 3 user(s), 2 role(s), 5 grant(s), 0 privilege group(s)`.
pub fn counts_line(c: &RbacCounts) -> String {
    format!(
        "  Users and roles: {} user(s), {} role(s), {} grant(s), {} privilege group(s)",
        c.users, c.roles, c.grants, c.privilege_groups
    )
}

/// One line per item that is created or skipped, then the totals; the
/// existing ones are only counted.
pub fn print_plan(plan: &RbacPlan, dry_run: bool) {
    for item in &plan.items {
        let what = match item.action {
            RbacAction::Create if dry_run => "create",
            RbacAction::Create => "not done",
            RbacAction::Created => "created",
            RbacAction::Skipped => "SKIPPED",
            RbacAction::Existing => continue,
        };
        let why = item
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        println!("  {} `{}`: {what}{why}", item.kind.label(), item.name);
    }
    let created = if dry_run {
        format!("{} to create", plan.to_create)
    } else {
        format!("{} created", plan.created)
    };
    println!(
        "  Users and roles: {created}, {} existing (left as they are), {} skipped",
        plan.existing, plan.skipped
    );
}
