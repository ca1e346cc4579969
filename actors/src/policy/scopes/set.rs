//! [`ScopeSet`]: the scopes one entity holds, expanded from raw scopes (roles, tokens)
//! with their sub-scopes and resolved filters, and the check of a request against them.

use std::collections::{BTreeMap, BTreeSet};

use galilean_proto::scopes::{self, INHERIT, SELF, SELF_SCOPES};

use super::catalog::{parse_one, Catalog, ScopeError};
use super::filter::{Access, Filter, ScopeOwner, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Held {
    All,
    Some(BTreeSet<Filter>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    pub(super) held: BTreeMap<String, Held>,
}

impl ScopeSet {
    /// Expands raw scopes (as in roles and token records) for `owner`. `self` becomes the
    /// user's own scopes; `inherit` must be resolved by the caller (see [`token_scopes`](super::token_scopes)).
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

    /// Checks that every raw scope is known and well-formed: [`Catalog::validate`] of
    /// JupyterHub's scopes.
    pub fn validate(raw: &[impl AsRef<str>]) -> Result<(), ScopeError> {
        Catalog::builtin().validate(raw)
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
                        out.push(format!("{base}{f}"));
                    }
                }
            }
        }
        out.sort();
        out
    }
}
