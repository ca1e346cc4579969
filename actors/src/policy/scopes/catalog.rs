//! Which scopes exist: JupyterHub's (§4.1, the table in `galilean_proto::scopes`) and a
//! deployment's custom ones, and the check of raw scopes (as written in roles and
//! tokens) against them.

use std::collections::BTreeMap;

use galilean_proto::scopes::{self, INHERIT, SELF};

use super::filter::{Filter, ScopeOwner};

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
}

/// Splits `scope!kind=value` into its base and filter (resolving bare filters against
/// the owner and the issuing server/service).
pub(super) fn parse_one(
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
