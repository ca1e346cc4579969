//! What tokens hold (§4.4 of the protocol reference): a token's scopes narrowed to what
//! its owner holds (which `policy::rbac` resolves from roles), and which requested scopes a new token may be given (JupyterHub's
//! `get_scopes_for`, `_check_token_scopes` and `_resolve_requested_scopes`).

use std::collections::BTreeSet;

use galilean_proto::scopes::INHERIT;

use super::catalog::{Catalog, ScopeError};
use super::filter::{Filter, Membership, ScopeOwner};
use super::set::ScopeSet;

/// What a token needs to say whose it is (JupyterHub's `identify_scopes`): a user's name
/// and groups, or a service's name.
pub fn identify_scopes(owner: &ScopeOwner) -> ScopeSet {
    let mut set = ScopeSet::default();
    match owner {
        ScopeOwner::User(u) => {
            set.add("read:users:name", Some(Filter::User(u.clone())));
            set.add("read:users:groups", Some(Filter::User(u.clone())));
        }
        ScopeOwner::Service(s) => {
            set.add("read:services:name", Some(Filter::Service(s.clone())));
        }
    }
    set
}

/// [`token_scopes_in`] with JupyterHub's scopes only and no groups.
pub fn token_scopes(
    raw: &[String],
    owner: &ScopeOwner,
    owner_scopes: &ScopeSet,
    issuer: Option<&Filter>,
) -> ScopeSet {
    token_scopes_in(&Catalog::builtin(), raw, owner, owner_scopes, issuer, &())
}

/// The effective scopes of a token (§4.4): `inherit` → exactly the owner's scopes;
/// otherwise the token's scopes expanded, plus the issuing client's access scope (an
/// OAuth token may use what issued it) and the owner's identify scopes, intersected with
/// what the owner holds now. As in JupyterHub the identify scopes are intersected too: a
/// service with no role holds nothing (`GET /hub/api/user` lets any token read its own
/// identity by itself).
pub fn token_scopes_in(
    catalog: &Catalog,
    raw: &[impl AsRef<str>],
    owner: &ScopeOwner,
    owner_scopes: &ScopeSet,
    issuer: Option<&Filter>,
    membership: &dyn Membership,
) -> ScopeSet {
    if raw.iter().any(|s| s.as_ref() == INHERIT) {
        return owner_scopes.clone();
    }
    let mut set = ScopeSet::expand_in(catalog, raw, owner, issuer).unwrap_or_default();
    match issuer {
        Some(f @ Filter::Server(_)) => set.add("access:servers", Some(f.clone())),
        Some(f @ Filter::Service(_)) => set.add("access:services", Some(f.clone())),
        _ => {}
    }
    set.union(&identify_scopes(owner));
    set.intersect_in(owner_scopes, membership)
}

/// What a new token of `owner` with scopes `raw` would hold beyond `owner_scopes`, as
/// expanded scopes, sorted; JupyterHub's `_check_token_scopes` refuses the token when
/// this is not empty ("Not assigning requested scopes ... not held by User alice").
/// `inherit` asks for nothing beyond.
pub fn token_excess(
    catalog: &Catalog,
    raw: &[impl AsRef<str>],
    owner: &ScopeOwner,
    issuer: Option<&Filter>,
    owner_scopes: &ScopeSet,
    membership: &dyn Membership,
) -> Result<Vec<String>, ScopeError> {
    let raw: Vec<&str> = raw
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| *s != INHERIT)
        .collect();
    let token = ScopeSet::expand_in(catalog, &raw, owner, issuer)?;
    let kept: BTreeSet<String> = token
        .intersect_in(owner_scopes, membership)
        .to_strings()
        .into_iter()
        .collect();
    Ok(token
        .to_strings()
        .into_iter()
        .filter(|s| !kept.contains(s))
        .collect())
}

/// Which of the `requested` raw scopes a new token of `owner`, issued by `issuer`, may
/// get from the raw scopes on offer, `have` (JupyterHub's `_resolve_requested_scopes`,
/// for OAuth tokens and servers' tokens; `have` holds `inherit` when everything the
/// owner holds is on offer). Returns (allowed, disallowed). A scope in `have` as written
/// is allowed. Each other one is expanded and met with `have` expanded: held in full, it
/// is allowed as written (keeping a short form: `read:servers!server` when
/// `read:servers!user` is on offer); held in part, the part held is allowed, as expanded
/// scopes, and the scope stays disallowed; not held, it stays disallowed. A requested
/// scope that expands to nothing is allowed, as in JupyterHub.
pub fn resolve_requested_scopes(
    catalog: &Catalog,
    requested: &BTreeSet<String>,
    have: &BTreeSet<String>,
    owner: &ScopeOwner,
    issuer: Option<&Filter>,
    membership: &dyn Membership,
) -> Result<(BTreeSet<String>, BTreeSet<String>), ScopeError> {
    let mut allowed: BTreeSet<String> = requested.intersection(have).cloned().collect();
    let mut disallowed: BTreeSet<String> = requested.difference(have).cloned().collect();
    if disallowed.is_empty() {
        return Ok((allowed, disallowed));
    }
    let expand = |raw: &BTreeSet<String>| -> Result<ScopeSet, ScopeError> {
        ScopeSet::expand_in(catalog, &raw.iter().collect::<Vec<_>>(), owner, issuer)
    };
    let strings = |set: ScopeSet| -> BTreeSet<String> { set.to_strings().into_iter().collect() };
    let have = expand(have)?;
    let mut expanded_allowed = strings(expand(&allowed)?);
    for scope in disallowed.clone() {
        let wanted: BTreeSet<String> = strings(expand(&BTreeSet::from([scope.clone()]))?)
            .difference(&expanded_allowed)
            .cloned()
            .collect();
        let wanted_set = ScopeSet::from_expanded(&wanted.iter().collect::<Vec<_>>())?;
        let granted = strings(wanted_set.intersect_in(&have, membership));
        if granted == wanted {
            allowed.insert(scope.clone());
            disallowed.remove(&scope);
        } else if !granted.is_empty() {
            allowed.extend(granted);
        } else {
            continue;
        }
        expanded_allowed = strings(expand(&allowed)?);
    }
    Ok((allowed, disallowed))
}
