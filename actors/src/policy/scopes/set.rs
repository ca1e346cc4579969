//! [`ScopeSet`]: the scopes one entity holds, expanded from raw scopes (roles, tokens)
//! with their sub-scopes and resolved filters (JupyterHub's `expand_scopes`), and the
//! check of a request against them (its `has_scope` and `needs_scope`).

use std::collections::{BTreeMap, BTreeSet};

use galilean_proto::scopes::{INHERIT, SELF, SELF_SCOPES};

use super::catalog::{Catalog, ScopeError};
use super::filter::{
    split, written, Access, Filter, FilterKind, Membership, ScopeOwner, Target, Written,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Held {
    All,
    Some(BTreeSet<Filter>),
}

/// Expanded scopes: each base scope held unfiltered or with a set of filters (an
/// unfiltered hold absorbs any filtered one, as JupyterHub's `reduce_scopes` does).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    pub(super) held: BTreeMap<String, Held>,
}

/// The filter a bare `!user`, `!service` or `!server` stands for: the owning user; the
/// issuing service, else the owning service; the issuing server. `None`: nothing to
/// stand for, and JupyterHub drops the scope (with a warning).
fn resolve(kind: FilterKind, owner: &ScopeOwner, issuer: Option<&Filter>) -> Option<Filter> {
    match (kind, owner, issuer) {
        (FilterKind::User, ScopeOwner::User(u), _) => Some(Filter::User(u.clone())),
        (FilterKind::Service, _, Some(f @ Filter::Service(_))) => Some(f.clone()),
        (FilterKind::Service, ScopeOwner::Service(s), _) => Some(Filter::Service(s.clone())),
        (FilterKind::Server, _, Some(f @ Filter::Server(_))) => Some(f.clone()),
        _ => None,
    }
}

impl ScopeSet {
    /// [`ScopeSet::expand_in`] with JupyterHub's scopes only.
    pub fn expand(
        raw: &[impl AsRef<str>],
        owner: &ScopeOwner,
        issuer: Option<&Filter>,
    ) -> Result<ScopeSet, ScopeError> {
        ScopeSet::expand_in(&Catalog::builtin(), raw, owner, issuer)
    }

    /// Expands raw scopes (as in roles and token records) for `owner`, whose tokens were
    /// issued by `issuer` (an OAuth client's server or service), as JupyterHub's
    /// `expand_scopes`: each scope with all its sub-scopes under the same filter, except
    /// that a `!server` filter drops the `read:users*` scopes (`read:servers!server=a/b`
    /// does not grant `read:users:name!server=a/b`); bare filters resolved (see
    /// [`Filter`]'s kinds), or the scope dropped when there is nothing to resolve them
    /// to; `self` as a user's own scopes (nothing for a service). `inherit` is kept as a
    /// scope of its own, as JupyterHub keeps it: a token holding it is resolved by
    /// [`token_scopes`](super::token_scopes).
    pub fn expand_in(
        catalog: &Catalog,
        raw: &[impl AsRef<str>],
        owner: &ScopeOwner,
        issuer: Option<&Filter>,
    ) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for r in raw {
            let (base, written) = catalog.read(r.as_ref())?;
            if base == SELF && written.is_none() {
                if let ScopeOwner::User(u) = owner {
                    for s in SELF_SCOPES {
                        set.add(s, Some(Filter::User(u.clone())));
                    }
                }
                continue;
            }
            let filter = match written {
                None => None,
                Some(Written::Exact(f)) => Some(f),
                Some(Written::Bare(kind)) => match resolve(kind, owner, issuer) {
                    Some(f) => Some(f),
                    None => continue,
                },
            };
            let names = if base == SELF || base == INHERIT {
                // a filtered metascope means nothing, and JupyterHub keeps it as written
                BTreeSet::from([base.to_owned()])
            } else {
                catalog
                    .expand_names(base)
                    .ok_or_else(|| ScopeError::Unknown(base.to_owned()))?
            };
            let under_server = matches!(filter, Some(Filter::Server(_)));
            for name in names {
                if under_server && name.starts_with("read:user") {
                    continue;
                }
                set.add(&name, filter.clone());
            }
        }
        Ok(set)
    }

    /// Reads scopes that are already expanded (`read:users!user=alice`), as JupyterHub's
    /// `parse_scopes`: no sub-scopes added, no bare filters.
    pub fn from_expanded(scopes: &[impl AsRef<str>]) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for s in scopes {
            let s = s.as_ref();
            match split(s) {
                (base, None) => set.add(base, None),
                (base, Some(text)) => match written(text) {
                    Some(Written::Exact(f)) => set.add(base, Some(f)),
                    _ => return Err(ScopeError::BadFilter(s.to_owned())),
                },
            }
        }
        Ok(set)
    }

    /// Checks that every raw scope is known and well-formed: [`Catalog::validate`] of
    /// JupyterHub's scopes.
    pub fn validate(raw: &[impl AsRef<str>]) -> Result<(), ScopeError> {
        Catalog::builtin().validate(raw)
    }

    pub(super) fn add(&mut self, base: &str, filter: Option<Filter>) {
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

    /// Whether `base` is held at all, with filters or without (JupyterHub's `has_scope`
    /// with `post_filter=True`).
    pub fn has_any(&self, base: &str) -> bool {
        self.held.contains_key(base)
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// [`ScopeSet::check_in`] without groups: `!group=` filters cover only their group.
    pub fn check(&self, base: &str, target: Target<'_>) -> Access {
        self.check_in(base, target, &())
    }

    /// Whether `base` is held for `target`, group filters resolved by `membership`
    /// (JupyterHub's `has_scope` with its database). A filtered scope allows nothing
    /// without a target ([`Target::Global`] is [`Access::Denied`], JupyterHub's 403); list
    /// endpoints read what a filtered scope lets them show with
    /// [`ScopeSet::visible`](ScopeSet::visible).
    pub fn check_in(&self, base: &str, target: Target<'_>, membership: &dyn Membership) -> Access {
        match self.held.get(base) {
            None => Access::Denied,
            Some(Held::All) => Access::Allowed,
            Some(Held::Some(_)) if target == Target::Global => Access::Denied,
            Some(Held::Some(fs)) if fs.iter().any(|f| f.matches(target, membership)) => {
                Access::Allowed
            }
            Some(Held::Some(_)) => Access::FilteredOut,
        }
    }

    /// [`ScopeSet::check_any_in`] without groups.
    pub fn check_any(&self, bases: &[&str], target: Target<'_>) -> Access {
        self.check_any_in(bases, target, &())
    }

    /// Whether any of `bases` allows `target` (JupyterHub's `needs_scope` with several
    /// scopes); else the most informative refusal.
    pub fn check_any_in(
        &self,
        bases: &[&str],
        target: Target<'_>,
        membership: &dyn Membership,
    ) -> Access {
        let mut best = Access::Denied;
        for b in bases {
            match self.check_in(b, target, membership) {
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
                Held::Some(fs) => out.extend(fs.iter().map(|f| format!("{base}{f}"))),
            }
        }
        out.sort();
        out
    }
}
