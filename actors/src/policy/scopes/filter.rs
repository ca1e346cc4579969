//! The vocabulary of scope checks: a scope's [`Filter`], who owns a set of scopes
//! ([`ScopeOwner`]), what a request targets ([`Target`]), the answer ([`Access`]), and
//! who is in which group ([`Membership`]).

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

impl fmt::Display for Filter {
    /// As written after a scope: `!user=alice`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::User(u) => write!(f, "!user={u}"),
            Filter::Server(s) => write!(f, "!server={s}"),
            Filter::Group(g) => write!(f, "!group={g}"),
            Filter::Service(s) => write!(f, "!service={s}"),
        }
    }
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
