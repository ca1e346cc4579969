//! Roles (§4.3, §4.4 of the protocol reference): the default roles and the deployment's
//! own, who holds each (every user `user`, administrators `admin`, and whom the config
//! names: users, groups, services), and the scopes a user or a service holds through
//! them. Built once from the config; the replica supplies who is an administrator and
//! who is in which group.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use galilean_proto::scopes::{ADMIN_ROLE_SCOPES, SELF, SERVER_ROLE_SCOPES, TOKEN_ROLE_SCOPES};

use crate::policy::scopes::{Catalog, ScopeOwner, ScopeSet};

/// A role as the config defines it (JupyterHub's `load_roles` entry).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleSpec {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub services: Vec<String>,
}

/// The default roles' names.
pub const USER: &str = "user";
pub const ADMIN: &str = "admin";
pub const SERVER: &str = "server";
pub const TOKEN: &str = "token";

/// Every role, and who holds it.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    catalog: Catalog,
    /// Role name → its scopes (default roles included, as redefined).
    scopes: BTreeMap<String, Vec<String>>,
    descriptions: BTreeMap<String, Option<String>>,
    by_user: HashMap<String, BTreeSet<String>>,
    by_group: HashMap<String, BTreeSet<String>>,
    by_service: HashMap<String, BTreeSet<String>>,
    /// The services of the config, with whether each is an administrator.
    services: HashMap<String, bool>,
}

fn strings(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|s| s.to_string()).collect()
}

impl Rbac {
    /// The default roles, `roles` (which may redefine a default role's scopes, never who
    /// holds it), and the config's services with whether each is an administrator.
    /// `roles` are trusted to be valid (the config checked them).
    pub fn new(catalog: Catalog, roles: &[RoleSpec], services: HashMap<String, bool>) -> Rbac {
        let mut rbac = Rbac {
            catalog,
            services,
            ..Rbac::default()
        };
        for (name, scopes) in [
            (USER, vec![SELF.to_owned()]),
            (ADMIN, strings(ADMIN_ROLE_SCOPES)),
            (SERVER, strings(SERVER_ROLE_SCOPES)),
            (TOKEN, strings(TOKEN_ROLE_SCOPES)),
        ] {
            rbac.scopes.insert(name.to_owned(), scopes);
            rbac.descriptions.insert(name.to_owned(), None);
        }
        for role in roles {
            rbac.scopes.insert(role.name.clone(), role.scopes.clone());
            rbac.descriptions
                .insert(role.name.clone(), role.description.clone());
            for (holders, names) in [
                (&mut rbac.by_user, &role.users),
                (&mut rbac.by_group, &role.groups),
                (&mut rbac.by_service, &role.services),
            ] {
                for n in names {
                    holders
                        .entry(n.clone())
                        .or_default()
                        .insert(role.name.clone());
                }
            }
        }
        rbac
    }

    /// The default roles only, no services: for tests and tools.
    pub fn builtin() -> Rbac {
        Rbac::new(Catalog::builtin(), &[], HashMap::new())
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The raw scopes of role `name`, if it exists.
    pub fn role_scopes(&self, name: &str) -> Option<&[String]> {
        self.scopes.get(name).map(Vec::as_slice)
    }

    /// The roles a user holds itself (its groups' apart), as its model lists them.
    pub fn user_roles(&self, name: &str, admin: bool) -> Vec<String> {
        let mut roles: BTreeSet<String> = self.by_user.get(name).cloned().unwrap_or_default();
        roles.insert(USER.to_owned());
        if admin {
            roles.insert(ADMIN.to_owned());
        }
        roles.into_iter().collect()
    }

    /// The roles of a group.
    pub fn group_roles(&self, name: &str) -> Vec<String> {
        self.by_group
            .get(name)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The roles of a service of the config; `None` when there is no such service.
    pub fn service_roles(&self, name: &str) -> Option<Vec<String>> {
        let admin = *self.services.get(name)?;
        let mut roles: BTreeSet<String> = self.by_service.get(name).cloned().unwrap_or_default();
        if admin {
            roles.insert(ADMIN.to_owned());
        }
        Some(roles.into_iter().collect())
    }

    /// Whether service `name` exists and is an administrator.
    pub fn service_admin(&self, name: &str) -> Option<bool> {
        self.services.get(name).copied()
    }

    /// The raw scopes of `roles`, together.
    fn raw_scopes<'a>(&'a self, roles: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut raw = BTreeSet::new();
        for r in roles {
            if let Some(scopes) = self.scopes.get(r) {
                raw.extend(scopes.iter().cloned());
            }
        }
        raw.into_iter().collect()
    }

    /// `raw` expanded for `owner` with this deployment's scopes. The config's roles were
    /// checked against the same catalog, so this cannot fail; if it did, the owner would
    /// hold nothing, never more, and the log says why.
    fn expand(&self, raw: &[String], owner: ScopeOwner) -> ScopeSet {
        ScopeSet::expand_in(&self.catalog, raw, &owner, None).unwrap_or_else(|e| {
            tracing::error!(?owner, "the roles' scopes do not expand: {e}");
            ScopeSet::default()
        })
    }

    /// What a user holds through its roles and its groups' roles (§4.4; shares apart).
    pub fn user_scopes(&self, name: &str, admin: bool, groups: &BTreeSet<String>) -> ScopeSet {
        let mut roles: BTreeSet<String> = self.user_roles(name, admin).into_iter().collect();
        for g in groups {
            if let Some(r) = self.by_group.get(g) {
                roles.extend(r.iter().cloned());
            }
        }
        let raw = self.raw_scopes(&roles);
        self.expand(&raw, ScopeOwner::User(name.to_owned()))
    }

    /// `raw` scopes (a share's) expanded for user `name` with this deployment's scopes.
    pub fn expand_for_user(&self, raw: &[String], name: &str) -> ScopeSet {
        self.expand(raw, ScopeOwner::User(name.to_owned()))
    }

    /// What a service holds through its roles; `None` when there is no such service.
    pub fn service_scopes(&self, name: &str) -> Option<ScopeSet> {
        let roles = self.service_roles(name)?;
        let raw = self.raw_scopes(&roles);
        Some(self.expand(&raw, ScopeOwner::Service(name.to_owned())))
    }

    /// Every role: name, description and raw scopes, in name order.
    pub fn roles(&self) -> impl Iterator<Item = (&str, Option<&str>, &[String])> {
        self.scopes.iter().map(|(name, scopes)| {
            let description = self.descriptions.get(name).and_then(|d| d.as_deref());
            (name.as_str(), description, scopes.as_slice())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::scopes::{Access, Target};

    fn culler() -> RoleSpec {
        RoleSpec {
            name: "idle-culler".into(),
            scopes: strings(&[
                "list:users",
                "read:users:activity",
                "read:servers",
                "delete:servers",
            ]),
            services: vec!["idle-culler".into()],
            ..RoleSpec::default()
        }
    }

    fn rbac(roles: &[RoleSpec]) -> Rbac {
        let services = HashMap::from([
            ("idle-culler".to_owned(), false),
            ("boss".to_owned(), true),
            ("plain".to_owned(), false),
        ]);
        Rbac::new(Catalog::builtin(), roles, services)
    }

    #[test]
    fn a_service_holds_its_roles_and_no_more() {
        let r = rbac(&[culler()]);
        let s = r.service_scopes("idle-culler").unwrap();
        assert_eq!(s.check("list:users", Target::Global), Access::Allowed);
        assert_eq!(
            s.check("delete:servers", Target::User("alice")),
            Access::Allowed
        );
        assert_eq!(s.check("admin:users", Target::Global), Access::Denied);
        assert_eq!(r.service_roles("idle-culler").unwrap(), vec!["idle-culler"]);
        assert!(r.service_scopes("plain").unwrap().to_strings().is_empty());
        assert!(r.service_scopes("nobody").is_none());
        let boss = r.service_scopes("boss").unwrap();
        assert_eq!(boss.check("admin:users", Target::Global), Access::Allowed);
        assert_eq!(r.service_roles("boss").unwrap(), vec!["admin"]);
    }

    #[test]
    fn a_user_holds_its_roles_and_its_groups_roles() {
        let graders = RoleSpec {
            name: "graders".into(),
            scopes: strings(&["read:users!group=physics", "list:users"]),
            groups: vec!["teachers".into()],
            ..RoleSpec::default()
        };
        let viewer = RoleSpec {
            name: "viewer".into(),
            scopes: strings(&["read:hub"]),
            users: vec!["alice".into()],
            ..RoleSpec::default()
        };
        let r = rbac(&[graders, viewer]);
        let none = BTreeSet::new();
        let alice = r.user_scopes("alice", false, &none);
        assert_eq!(alice.check("read:hub", Target::Global), Access::Allowed);
        assert_eq!(alice.check("list:users", Target::Global), Access::Denied);
        assert_eq!(r.user_roles("alice", false), vec!["user", "viewer"]);
        let teachers = BTreeSet::from(["teachers".to_owned()]);
        let bob = r.user_scopes("bob", false, &teachers);
        assert_eq!(bob.check("list:users", Target::Global), Access::Allowed);
        // a group's role is not the user's own role
        assert_eq!(r.user_roles("bob", false), vec!["user"]);
        assert_eq!(r.group_roles("teachers"), vec!["graders"]);
        assert_eq!(r.user_roles("bob", true), vec!["admin", "user"]);
    }

    #[test]
    fn custom_scopes_of_roles_reach_their_holders() {
        let custom = BTreeMap::from([(
            "custom:grades:read".to_owned(),
            crate::policy::scopes::CustomScope {
                description: Some("read grades".into()),
                subscopes: vec![],
            },
        )]);
        let grader = RoleSpec {
            name: "grader".into(),
            scopes: strings(&["custom:grades:read"]),
            users: vec!["alice".into()],
            services: vec!["boss".into()],
            ..RoleSpec::default()
        };
        let r = Rbac::new(
            Catalog::with_custom(&custom).unwrap(),
            &[grader],
            HashMap::from([("boss".to_owned(), true)]),
        );
        let alice = r.user_scopes("alice", false, &BTreeSet::new());
        assert_eq!(
            alice.check("custom:grades:read", Target::Global),
            Access::Allowed
        );
        let boss = r.service_scopes("boss").unwrap();
        assert_eq!(
            boss.check("custom:grades:read", Target::Global),
            Access::Allowed
        );
        assert_eq!(boss.check("admin:users", Target::Global), Access::Allowed);
    }

    #[test]
    fn a_redefined_default_role_changes_its_scopes_not_its_holders() {
        let user = RoleSpec {
            name: USER.into(),
            scopes: strings(&["self", "access:services"]),
            ..RoleSpec::default()
        };
        let r = rbac(&[user]);
        let carol = r.user_scopes("carol", false, &BTreeSet::new());
        assert_eq!(
            carol.check("access:services", Target::Service("x")),
            Access::Allowed
        );
        assert_eq!(
            carol.check("read:users", Target::User("carol")),
            Access::Allowed
        );
        assert_eq!(r.user_roles("carol", false), vec!["user"]);
    }
}
