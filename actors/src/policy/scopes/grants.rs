//! What users, services and tokens hold (§4.3, §4.4 of the protocol reference): the
//! default roles' scopes expanded for their owner, and a token's scopes narrowed to what
//! its owner holds.

use galilean_proto::scopes::{ADMIN_ROLE_SCOPES, INHERIT, SELF};

use super::filter::{Filter, ScopeOwner};
use super::set::ScopeSet;

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
