//! What a list endpoint may show (`GET /users`, `/groups`, `/services`): a list scope
//! held unfiltered shows everything, a filtered one only what its filters name
//! (JupyterHub's `post_filter` and `check_scope_filter`).

use std::collections::BTreeSet;

use super::filter::{Filter, FilterKind, Membership};
use super::set::{Held, ScopeSet};

/// Which items a scope covers, for keeping exactly the visible items of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// The scope is not held: the endpoint answers 403.
    None,
    /// Held unfiltered: everything.
    All,
    /// Held with filters: the items they name.
    Some {
        users: BTreeSet<String>,
        groups: BTreeSet<String>,
        /// `user/server`.
        servers: BTreeSet<String>,
        services: BTreeSet<String>,
    },
}

/// The filters JupyterHub's list endpoints accept on their list scope; a list scope held
/// with another kind of filter is refused with 403 (`GET /users` with
/// `list:users!server=a/b` does not list everyone). `list:services` takes any filter and
/// shows the services named.
pub const LIST_FILTER_KINDS: &[(&str, &[FilterKind])] = &[
    ("list:users", &[FilterKind::User, FilterKind::Group]),
    ("list:groups", &[FilterKind::Group]),
];

/// The filters a list endpoint accepts on `base` (see [`LIST_FILTER_KINDS`]); `None`:
/// no restriction.
pub fn list_filter_kinds(base: &str) -> Option<&'static [FilterKind]> {
    LIST_FILTER_KINDS
        .iter()
        .find(|(b, _)| *b == base)
        .map(|(_, kinds)| *kinds)
}

impl ScopeSet {
    /// What `base` covers. A list endpoint takes [`Visible::None`] as 403, refuses a
    /// scope whose filters are not [`Visible::only`] of its [`list_filter_kinds`], and
    /// keeps the items [`Visible::user`] (or `group`, `server`, `service`) accepts.
    pub fn visible(&self, base: &str) -> Visible {
        let filters = match self.held.get(base) {
            None => return Visible::None,
            Some(Held::All) => return Visible::All,
            Some(Held::Some(fs)) => fs,
        };
        let (mut users, mut groups, mut servers, mut services) = Default::default();
        for f in filters {
            let into: &mut BTreeSet<String> = match f {
                Filter::User(_) => &mut users,
                Filter::Group(_) => &mut groups,
                Filter::Server(_) => &mut servers,
                Filter::Service(_) => &mut services,
            };
            into.insert(f.value().to_owned());
        }
        Visible::Some {
            users,
            groups,
            servers,
            services,
        }
    }
}

impl Visible {
    /// The kinds of filter this scope is held with (none for [`Visible::All`]).
    pub fn kinds(&self) -> BTreeSet<FilterKind> {
        let Visible::Some {
            users,
            groups,
            servers,
            services,
        } = self
        else {
            return BTreeSet::new();
        };
        [
            (users, FilterKind::User),
            (groups, FilterKind::Group),
            (servers, FilterKind::Server),
            (services, FilterKind::Service),
        ]
        .into_iter()
        .filter(|(names, _)| !names.is_empty())
        .map(|(_, kind)| kind)
        .collect()
    }

    /// Whether every filter is of one of `kinds`.
    pub fn only(&self, kinds: &[FilterKind]) -> bool {
        self.kinds().iter().all(|k| kinds.contains(k))
    }

    /// Whether user `name` is covered: named, or a member of a named group.
    pub fn user(&self, name: &str, membership: &dyn Membership) -> bool {
        match self {
            Visible::None => false,
            Visible::All => true,
            Visible::Some { users, groups, .. } => {
                users.contains(name) || groups.iter().any(|g| membership.in_group(name, g))
            }
        }
    }

    /// Whether server `user/server` is covered: named, or its user is.
    pub fn server(&self, user: &str, server: &str, membership: &dyn Membership) -> bool {
        match self {
            Visible::Some { servers, .. } if servers.contains(&format!("{user}/{server}")) => true,
            _ => self.user(user, membership),
        }
    }

    /// Whether group `name` is covered: named.
    pub fn group(&self, name: &str) -> bool {
        match self {
            Visible::None => false,
            Visible::All => true,
            Visible::Some { groups, .. } => groups.contains(name),
        }
    }

    /// Whether service `name` is covered: named.
    pub fn service(&self, name: &str) -> bool {
        match self {
            Visible::None => false,
            Visible::All => true,
            Visible::Some { services, .. } => services.contains(name),
        }
    }
}
