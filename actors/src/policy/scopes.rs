//! Scope expansion, filtering and intersection (§4 of the protocol reference), as plain
//! functions over data from `galilean_proto::scopes`.
//!
//! A [`ScopeSet`] maps a base scope (`read:users`) to the filters it is held with: either
//! unfiltered, or a set of `user=`, `server=`, `group=`, `service=` filters.

use std::collections::{BTreeMap, BTreeSet};

use galilean_proto::scopes::{self, ADMIN_ROLE_SCOPES, INHERIT, SELF, SELF_SCOPES};

/// One filter on a scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    User(String),
    /// `user/server` (`alice/` for the default server).
    Server(String),
    Group(String),
    Service(String),
}

impl Filter {
    fn render(&self) -> String {
        match self {
            Filter::User(u) => format!("!user={u}"),
            Filter::Server(s) => format!("!server={s}"),
            Filter::Group(g) => format!("!group={g}"),
            Filter::Service(s) => format!("!service={s}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    All,
    Some(BTreeSet<Filter>),
}

/// Who owns a set of scopes, for resolving bare `!user` / `!service` / `!server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeOwner {
    User(String),
    Service(String),
}

/// The resource a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// No particular resource (e.g. listing, `read:hub`).
    Global,
    User(&'a str),
    Server {
        user: &'a str,
        server: &'a str,
    },
    Service(&'a str),
}

/// The answer to "may this request do that?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The scope is held, but its filters do not cover the target: JupyterHub answers
    /// 404 here, hiding whether the resource exists.
    FilteredOut,
    /// The scope is not held at all: 403.
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    held: BTreeMap<String, Held>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope: {0}")]
    Unknown(String),
    #[error("bad scope filter: {0}")]
    BadFilter(String),
}

/// A deployment's `custom_scopes` entry (JupyterHub's `custom_scopes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomScope {
    pub description: String,
    /// Direct sub-scopes: other custom scopes only.
    pub subscopes: Vec<String>,
}

/// Every scope a deployment knows: JupyterHub's (§4.1) and its custom ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    custom: BTreeMap<String, CustomScope>,
}

impl Catalog {
    /// JupyterHub's scopes only.
    pub fn builtin() -> Catalog {
        Catalog::default()
    }

    /// JupyterHub's scopes and `custom`; refuses a custom name that breaks JupyterHub's
    /// pattern or a sub-scope that is not itself custom and defined.
    pub fn with_custom(custom: &BTreeMap<String, CustomScope>) -> Result<Catalog, ScopeError> {
        Ok(Catalog {
            custom: custom.clone(),
        })
    }

    /// Checks that every raw scope is known here and well-formed (`self` and `inherit`
    /// included).
    pub fn validate(&self, raw: &[impl AsRef<str>]) -> Result<(), ScopeError> {
        ScopeSet::validate(raw)
    }
}

/// Who is in which group, for `!group=` filters: the replica answers.
pub trait Membership {
    fn in_group(&self, user: &str, group: &str) -> bool;
}

/// No groups at all.
impl Membership for () {
    fn in_group(&self, _user: &str, _group: &str) -> bool {
        false
    }
}

/// Splits `scope!kind=value` into its base and filter (resolving bare filters against
/// the owner and the issuing server/service).
fn parse_one(
    raw: &str,
    owner: &ScopeOwner,
    issuer: Option<&Filter>,
) -> Result<Option<(String, Option<Filter>)>, ScopeError> {
    let (base, filter) = match raw.split_once('!') {
        None => (raw, None),
        Some((base, f)) => (base, Some(f)),
    };
    if base != SELF && base != INHERIT && scopes::subscopes(base).is_none() {
        return Err(ScopeError::Unknown(raw.to_owned()));
    }
    let filter = match filter {
        None => None,
        Some("user") => match owner {
            ScopeOwner::User(u) => Some(Filter::User(u.clone())),
            // a bare !user on a service's scope is dropped (JupyterHub warns)
            ScopeOwner::Service(_) => return Ok(None),
        },
        Some("service") => match (issuer, owner) {
            (Some(f @ Filter::Service(_)), _) => Some(f.clone()),
            (_, ScopeOwner::Service(s)) => Some(Filter::Service(s.clone())),
            _ => return Ok(None),
        },
        Some("server") => match issuer {
            Some(f @ Filter::Server(_)) => Some(f.clone()),
            _ => return Ok(None),
        },
        Some(f) => {
            let (kind, value) = f
                .split_once('=')
                .ok_or_else(|| ScopeError::BadFilter(raw.to_owned()))?;
            if value.is_empty() {
                return Err(ScopeError::BadFilter(raw.to_owned()));
            }
            let value = value.to_owned();
            Some(match kind {
                "user" => Filter::User(value),
                "server" if value.contains('/') => Filter::Server(value),
                "group" => Filter::Group(value),
                "service" => Filter::Service(value),
                _ => return Err(ScopeError::BadFilter(raw.to_owned())),
            })
        }
    };
    Ok(Some((base.to_owned(), filter)))
}

impl ScopeSet {
    /// Expands raw scopes (as in roles and token records) for `owner`. `self` becomes the
    /// user's own scopes; `inherit` must be resolved by the caller (see [`token_scopes`]).
    pub fn expand(
        raw: &[impl AsRef<str>],
        owner: &ScopeOwner,
        issuer: Option<&Filter>,
    ) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for r in raw {
            let r = r.as_ref();
            if r == SELF {
                if let ScopeOwner::User(u) = owner {
                    for s in SELF_SCOPES {
                        set.add_expanded(s, Some(Filter::User(u.clone())));
                    }
                }
                continue;
            }
            if r == INHERIT {
                continue;
            }
            if let Some((base, filter)) = parse_one(r, owner, issuer)? {
                set.add_expanded(&base, filter);
            }
        }
        Ok(set)
    }

    /// Checks that every raw scope is known and well-formed.
    pub fn validate(raw: &[impl AsRef<str>]) -> Result<(), ScopeError> {
        let owner = ScopeOwner::User(String::from("x"));
        for r in raw {
            let r = r.as_ref();
            if r == SELF || r == INHERIT {
                continue;
            }
            parse_one(r, &owner, None)?;
        }
        Ok(())
    }

    fn add_expanded(&mut self, base: &str, filter: Option<Filter>) {
        self.add(base, filter.clone());
        let Some(subs) = scopes::subscopes(base) else {
            return;
        };
        for sub in subs {
            // under a !server filter, read:users* sub-scopes are dropped
            if matches!(filter, Some(Filter::Server(_))) && sub.starts_with("read:users") {
                continue;
            }
            self.add_expanded(sub, filter.clone());
        }
    }

    fn add(&mut self, base: &str, filter: Option<Filter>) {
        match filter {
            None => {
                self.held.insert(base.to_owned(), Held::All);
            }
            Some(f) => match self
                .held
                .entry(base.to_owned())
                .or_insert_with(|| Held::Some(BTreeSet::new()))
            {
                Held::All => {}
                Held::Some(set) => {
                    set.insert(f);
                }
            },
        }
    }

    /// Adds every scope of `other`.
    pub fn union(&mut self, other: &ScopeSet) {
        for (base, held) in &other.held {
            match held {
                Held::All => self.add(base, None),
                Held::Some(fs) => {
                    for f in fs {
                        self.add(base, Some(f.clone()));
                    }
                }
            }
        }
    }

    /// Whether `filter` (held by one side) is covered by `by` (held by the other),
    /// understanding `user=u ⊇ server=u/s`. Groups are matched only literally.
    fn covers(by: &Filter, filter: &Filter) -> bool {
        match (by, filter) {
            (a, b) if a == b => true,
            (Filter::User(u), Filter::Server(s)) => {
                s.split_once('/').is_some_and(|(su, _)| su == u)
            }
            _ => false,
        }
    }

    /// The scopes held by both sets (the narrower filter wins).
    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        let mut out = ScopeSet::default();
        for (base, a) in &self.held {
            let Some(b) = other.held.get(base) else {
                continue;
            };
            match (a, b) {
                (Held::All, Held::All) => out.add(base, None),
                (Held::All, Held::Some(fs)) | (Held::Some(fs), Held::All) => {
                    for f in fs {
                        out.add(base, Some(f.clone()));
                    }
                }
                (Held::Some(fa), Held::Some(fb)) => {
                    for x in fa {
                        for y in fb {
                            if Self::covers(x, y) {
                                out.add(base, Some(y.clone()));
                            } else if Self::covers(y, x) {
                                out.add(base, Some(x.clone()));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    pub fn has_any(&self, base: &str) -> bool {
        self.held.contains_key(base)
    }

    /// Whether `base` is held for `target`.
    pub fn check(&self, base: &str, target: Target<'_>) -> Access {
        let Some(held) = self.held.get(base) else {
            return Access::Denied;
        };
        let filters = match held {
            Held::All => return Access::Allowed,
            Held::Some(fs) => fs,
        };
        let ok = filters.iter().any(|f| match (f, target) {
            (Filter::User(u), Target::User(t)) => u == t,
            (Filter::User(u), Target::Server { user, .. }) => u == user,
            (Filter::Server(s), Target::Server { user, server }) => s
                .split_once('/')
                .is_some_and(|(su, ss)| su == user && ss == server),
            (Filter::Service(s), Target::Service(t)) => s == t,
            _ => false,
        });
        if ok {
            Access::Allowed
        } else {
            Access::FilteredOut
        }
    }

    /// The first of `bases` that allows `target`, or the most informative refusal.
    pub fn check_any(&self, bases: &[&str], target: Target<'_>) -> Access {
        let mut best = Access::Denied;
        for b in bases {
            match self.check(b, target) {
                Access::Allowed => return Access::Allowed,
                Access::FilteredOut => best = Access::FilteredOut,
                Access::Denied => {}
            }
        }
        best
    }

    /// Expanded scopes as sorted strings (`GET /hub/api/user`'s `scopes`).
    pub fn to_strings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (base, held) in &self.held {
            match held {
                Held::All => out.push(base.clone()),
                Held::Some(fs) => {
                    for f in fs {
                        out.push(format!("{base}{}", f.render()));
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// The raw role scopes of a user: the `user` role, plus the `admin` role for admins.
pub fn user_role_scopes(admin: bool) -> Vec<String> {
    let mut raw = vec![SELF.to_owned()];
    if admin {
        raw.extend(ADMIN_ROLE_SCOPES.iter().map(|s| s.to_string()));
    }
    raw
}

/// The effective scopes of a user (cookie authentication).
pub fn user_scopes(name: &str, admin: bool) -> ScopeSet {
    ScopeSet::expand(
        &user_role_scopes(admin),
        &ScopeOwner::User(name.to_owned()),
        None,
    )
    .unwrap_or_default()
}

/// The effective scopes of a service: the admin role when `admin`, else nothing.
pub fn service_scopes(name: &str, admin: bool) -> ScopeSet {
    if !admin {
        return ScopeSet::default();
    }
    ScopeSet::expand(
        ADMIN_ROLE_SCOPES,
        &ScopeOwner::Service(name.to_owned()),
        None,
    )
    .unwrap_or_default()
}

/// The effective scopes of a token (§4.4): `inherit` → the owner's scopes; otherwise the
/// token's scopes expanded, plus the issuing client's access scope and the owner's
/// identify scopes, intersected with what the owner holds now.
pub fn token_scopes(
    raw: &[String],
    owner: &ScopeOwner,
    owner_scopes: &ScopeSet,
    issuer: Option<&Filter>,
) -> ScopeSet {
    if raw.iter().any(|s| s == INHERIT) {
        return owner_scopes.clone();
    }
    let mut set = ScopeSet::expand(raw, owner, issuer).unwrap_or_default();
    match issuer {
        Some(f @ Filter::Server(_)) => set.add("access:servers", Some(f.clone())),
        Some(f @ Filter::Service(_)) => set.add("access:services", Some(f.clone())),
        _ => {}
    }
    match owner {
        ScopeOwner::User(u) => {
            set.add("read:users:name", Some(Filter::User(u.clone())));
            set.add("read:users:groups", Some(Filter::User(u.clone())));
        }
        ScopeOwner::Service(s) => set.add("read:services:name", Some(Filter::Service(s.clone()))),
    }
    // identify scopes are always granted, even beyond the owner's role (a service with
    // no role can still identify itself)
    let mut identify = ScopeSet::default();
    match owner {
        ScopeOwner::User(u) => {
            identify.add("read:users:name", Some(Filter::User(u.clone())));
            identify.add("read:users:groups", Some(Filter::User(u.clone())));
        }
        ScopeOwner::Service(s) => {
            identify.add("read:services:name", Some(Filter::Service(s.clone())))
        }
    }
    let mut out = set.intersect(owner_scopes);
    out.union(&identify);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> ScopeOwner {
        ScopeOwner::User("alice".into())
    }

    #[test]
    fn self_expands_to_user_filtered_scopes() {
        let s = user_scopes("alice", false);
        assert_eq!(
            s.check("read:users", Target::User("alice")),
            Access::Allowed
        );
        assert_eq!(
            s.check("read:users", Target::User("bob")),
            Access::FilteredOut
        );
        assert_eq!(s.check("list:users", Target::Global), Access::Denied);
        assert_eq!(
            s.check(
                "access:servers",
                Target::Server {
                    user: "alice",
                    server: "nb"
                }
            ),
            Access::Allowed
        );
        assert_eq!(s.to_strings().len(), 15);
    }

    #[test]
    fn admin_holds_unfiltered_scopes() {
        let s = user_scopes("root", true);
        assert_eq!(s.check("admin:users", Target::User("x")), Access::Allowed);
        assert_eq!(
            s.check("read:users:name", Target::User("x")),
            Access::Allowed
        );
        assert_eq!(
            s.check("admin:server_state", Target::Global),
            Access::Allowed
        );
    }

    #[test]
    fn server_token_scopes_match_jupyterhub() {
        let owner = user_scopes("alice", false);
        let issuer = Filter::Server("alice/".into());
        let raw: Vec<String> = vec!["users:activity!user".into(), "access:servers!server".into()];
        let s = token_scopes(&raw, &alice(), &owner, Some(&issuer));
        assert_eq!(
            s.to_strings(),
            vec![
                "access:servers!server=alice/",
                "read:users:activity!user=alice",
                "read:users:groups!user=alice",
                "read:users:name!user=alice",
                "users:activity!user=alice",
            ]
        );
    }

    #[test]
    fn oauth_token_for_own_server() {
        let owner = user_scopes("alice", false);
        let issuer = Filter::Server("alice/".into());
        let raw: Vec<String> = vec![
            "read:users:name!user".into(),
            "read:users:groups!user".into(),
        ];
        let s = token_scopes(&raw, &alice(), &owner, Some(&issuer));
        assert_eq!(
            s.to_strings(),
            vec![
                "access:servers!server=alice/",
                "read:users:groups!user=alice",
                "read:users:name!user=alice",
            ]
        );
    }

    #[test]
    fn token_cannot_exceed_owner() {
        let owner = user_scopes("alice", false);
        let raw: Vec<String> = vec!["admin:users".into(), "read:users!user=bob".into()];
        let s = token_scopes(&raw, &alice(), &owner, None);
        assert_eq!(
            s.check("admin:users", Target::User("alice")),
            Access::Denied
        );
        assert_ne!(s.check("read:users", Target::User("bob")), Access::Allowed);
    }

    #[test]
    fn intersection_narrows_user_to_server() {
        let a = ScopeSet::expand(&["access:servers!user=alice"], &alice(), None).unwrap();
        let b = ScopeSet::expand(&["access:servers!server=alice/nb1"], &alice(), None).unwrap();
        assert_eq!(
            a.intersect(&b).to_strings(),
            vec!["access:servers!server=alice/nb1"]
        );
        assert_eq!(
            b.intersect(&a).to_strings(),
            vec!["access:servers!server=alice/nb1"]
        );
    }

    #[test]
    fn unknown_and_malformed_scopes_are_rejected() {
        assert!(ScopeSet::validate(&["read:nope"]).is_err());
        assert!(ScopeSet::validate(&["read:users!planet=x"]).is_err());
        assert!(ScopeSet::validate(&["read:users!user="]).is_err());
        assert!(ScopeSet::validate(&["read:users!user=bob", "inherit", "self"]).is_ok());
    }

    #[test]
    fn server_filter_drops_read_users_subscopes() {
        let s = ScopeSet::expand(&["read:servers!server=alice/nb"], &alice(), None).unwrap();
        assert_eq!(s.to_strings(), vec!["read:servers!server=alice/nb"]);
    }

    #[test]
    fn service_without_role_can_only_identify() {
        let owner = ScopeOwner::Service("culler".into());
        let s = token_scopes(
            &["inherit".into()],
            &owner,
            &service_scopes("culler", false),
            None,
        );
        assert!(s.to_strings().is_empty());
        let s = token_scopes(&[], &owner, &service_scopes("culler", false), None);
        assert_eq!(s.to_strings(), vec!["read:services:name!service=culler"]);
    }
}
