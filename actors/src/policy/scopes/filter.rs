//! The vocabulary of scope checks: a scope's [`Filter`], who owns a set of scopes
//! ([`ScopeOwner`]), what a request targets ([`Target`]), the answer ([`Access`]), who is
//! in which group ([`Membership`]), and how a filter is written after a scope's `!`.

use std::fmt;

/// One filter on a scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    User(String),
    /// `user/server` (`alice/` for the default server).
    Server(String),
    Group(String),
    Service(String),
}

/// What a filter names: the word after a scope's `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterKind {
    User,
    Server,
    Group,
    Service,
}

impl FilterKind {
    /// As written: `user`, `server`, `group`, `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKind::User => "user",
            FilterKind::Server => "server",
            FilterKind::Group => "group",
            FilterKind::Service => "service",
        }
    }
}

impl Filter {
    pub fn kind(&self) -> FilterKind {
        match self {
            Filter::User(_) => FilterKind::User,
            Filter::Server(_) => FilterKind::Server,
            Filter::Group(_) => FilterKind::Group,
            Filter::Service(_) => FilterKind::Service,
        }
    }

    /// The name after `=`: `alice`, `alice/nb1`.
    pub fn value(&self) -> &str {
        match self {
            Filter::User(v) | Filter::Server(v) | Filter::Group(v) | Filter::Service(v) => v,
        }
    }

    /// Whether a request at `target` passes this filter: a user and their servers pass
    /// `!user=` and `!group=` (as a member); a server passes its own `!server=`; a group
    /// or a service passes only its own filter.
    pub(super) fn matches(&self, target: Target<'_>, membership: &dyn Membership) -> bool {
        match (self, target) {
            (Filter::User(u), Target::User(t)) => u == t,
            (Filter::User(u), Target::Server { user, .. }) => u == user,
            (Filter::Server(s), Target::Server { user, server }) => {
                s.split_once('/') == Some((user, server))
            }
            (Filter::Group(g), Target::User(t)) => membership.in_group(t, g),
            (Filter::Group(g), Target::Server { user, .. }) => membership.in_group(user, g),
            (Filter::Group(g), Target::Group(t)) => g == t,
            (Filter::Service(s), Target::Service(t)) => s == t,
            _ => false,
        }
    }

    /// Whether everything `other` lets through, this filter lets through too, as
    /// JupyterHub's intersection understands it: the same filter, a user's server under
    /// `!user=`, a member or a member's server under `!group=` (groups themselves only
    /// literally).
    pub(super) fn covers(&self, other: &Filter, membership: &dyn Membership) -> bool {
        match (self, other) {
            (a, b) if a == b => true,
            (Filter::User(u), Filter::Server(s)) => server_user(s) == u,
            (Filter::Group(g), Filter::User(u)) => membership.in_group(u, g),
            (Filter::Group(g), Filter::Server(s)) => membership.in_group(server_user(s), g),
            _ => false,
        }
    }
}

impl fmt::Display for Filter {
    /// As written after a scope: `!user=alice`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "!{}={}", self.kind().as_str(), self.value())
    }
}

/// The user of `user/server`.
pub(super) fn server_user(server: &str) -> &str {
    server.split_once('/').map_or(server, |(user, _)| user)
}

/// A filter as written in a raw scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Written {
    /// `!user`, `!service`, `!server`: resolved against the owner or the issuing client.
    Bare(FilterKind),
    Exact(Filter),
}

/// `read:users!user=alice` → (`read:users`, `Some("user=alice")`).
pub(super) fn split(raw: &str) -> (&str, Option<&str>) {
    match raw.split_once('!') {
        None => (raw, None),
        Some((base, filter)) => (base, Some(filter)),
    }
}

/// Reads what follows a scope's `!`: a bare `user`, `service` or `server`, or
/// `kind=value` with a value (`user/server` for a server). `None` when malformed.
pub(super) fn written(text: &str) -> Option<Written> {
    let Some((kind, value)) = text.split_once('=') else {
        return match text {
            "user" => Some(Written::Bare(FilterKind::User)),
            "service" => Some(Written::Bare(FilterKind::Service)),
            "server" => Some(Written::Bare(FilterKind::Server)),
            _ => None,
        };
    };
    if value.is_empty() {
        return None;
    }
    let value = value.to_owned();
    Some(Written::Exact(match kind {
        "user" => Filter::User(value),
        "server" if value.contains('/') => Filter::Server(value),
        "group" => Filter::Group(value),
        "service" => Filter::Service(value),
        _ => return None,
    }))
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
    Group(&'a str),
    Service(&'a str),
}

/// The answer to "may this request do that?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The scope is held, but its filters do not cover the target: JupyterHub answers
    /// 404 here, hiding whether the resource exists.
    FilteredOut,
    /// The scope is not held at all (or, for [`Target::Global`], held only with
    /// filters): 403.
    Denied,
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

/// A function of (user, group).
impl<F: Fn(&str, &str) -> bool> Membership for F {
    fn in_group(&self, user: &str, group: &str) -> bool {
        self(user, group)
    }
}
