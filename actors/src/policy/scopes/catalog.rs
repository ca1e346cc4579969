//! Which scopes exist: JupyterHub's (§4.1, the table in `galilean_proto::scopes`) and a
//! deployment's custom ones (JupyterHub's `custom_scopes`, checked as its
//! `define_custom_scopes` does), and the check of raw scopes (as written in roles and
//! tokens) against them (its `_check_scopes_exist`).

use std::collections::{BTreeMap, BTreeSet};

use galilean_proto::scopes::{self, INHERIT, SELF};

use super::filter::{split, written, Written};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// `all`, JupyterHub's draft name for `inherit`.
    #[error("Draft scope 'all' is now called 'inherit'")]
    AllIsInherit,
    #[error("Scope '{0}' does not exist")]
    Unknown(String),
    #[error(
        "Scope filter in scope '{0}' does not exist: filters are !user, !service, !server, \
         !user=<name>, !group=<name>, !service=<name> and !server=<user>/<server>"
    )]
    BadFilter(String),
    /// A `custom_scopes` entry JupyterHub would refuse; the text says why.
    #[error("{0}")]
    BadCustom(String),
}

/// A deployment's `custom_scopes` entry (JupyterHub's `custom_scopes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomScope {
    /// Shown on the OAuth consent page. Required: `None` (the key is missing) is refused,
    /// as JupyterHub refuses it; an empty text is accepted, as JupyterHub accepts it.
    pub description: Option<String>,
    /// Direct sub-scopes: other custom scopes of the same `custom_scopes` only.
    pub subscopes: Vec<String>,
}

/// Every scope a deployment knows: JupyterHub's (§4.1) and its custom ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    custom: BTreeMap<String, CustomScope>,
}

/// JupyterHub's rule for custom scope names, in its words.
const CUSTOM_NAME_RULE: &str = "Custom scopes must start with `custom:` and contain only \
    lowercase ascii letters, numbers, hyphen, underscore, colon, and asterisk (-_:*). \
    The part after `custom:` must start with a letter or number. \
    Scopes may not end with a hyphen or colon.";

/// JupyterHub's pattern `^custom:[a-z0-9][a-z0-9_\-\*:]+[a-z0-9_\*]$`.
fn custom_name_ok(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("custom:") else {
        return false;
    };
    let first = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let middle = |c: &u8| first(c) || matches!(c, b'_' | b'-' | b'*' | b':');
    let last = |c: &u8| first(c) || matches!(c, b'_' | b'*');
    match rest.as_bytes() {
        [f, m @ .., l] if !m.is_empty() => first(f) && m.iter().all(middle) && last(l),
        _ => false,
    }
}

/// One of JupyterHub's own scope names (metascopes and its consent-only pseudo-scope
/// included).
fn builtin(name: &str) -> bool {
    scopes::subscopes(name).is_some() || [SELF, INHERIT, "(no_scope)"].contains(&name)
}

impl Catalog {
    /// JupyterHub's scopes only.
    pub fn builtin() -> Catalog {
        Catalog::default()
    }

    /// JupyterHub's scopes and `custom`, refused as JupyterHub refuses them: a name of
    /// JupyterHub's own, a name that breaks its pattern, a missing description, a
    /// sub-scope that is not custom, or one not defined in `custom`. Unlike JupyterHub
    /// (whose expansion would then recurse without end), custom scopes that are their own
    /// sub-scopes are refused too.
    pub fn with_custom(custom: &BTreeMap<String, CustomScope>) -> Result<Catalog, ScopeError> {
        let bad = |text: String| Err(ScopeError::BadCustom(text));
        for (name, def) in custom {
            if builtin(name) {
                return bad(format!(
                    "Cannot redefine scope {name}: it is one of JupyterHub's scopes"
                ));
            }
            if !custom_name_ok(name) {
                return bad(format!("Invalid scope name: '{name}'. {CUSTOM_NAME_RULE}"));
            }
            if def.description.is_none() {
                return bad(format!("scope {name} missing key 'description'"));
            }
            for sub in &def.subscopes {
                if custom.contains_key(sub) {
                    continue;
                }
                return bad(if builtin(sub) {
                    format!(
                        "non-custom subscope {sub} in {name} is not allowed. Custom scopes \
                         may only have custom subscopes. Roles should be used to assign \
                         multiple scopes together."
                    )
                } else {
                    format!("subscope {sub} in {name} not found. All scopes must be defined.")
                });
            }
        }
        for name in custom.keys() {
            if let Some(path) = cycle_from(custom, name) {
                return bad(format!(
                    "custom scope {name} is its own subscope: {}",
                    path.join(" -> ")
                ));
            }
        }
        Ok(Catalog {
            custom: custom.clone(),
        })
    }

    /// The deployment's custom scopes.
    pub fn custom(&self) -> &BTreeMap<String, CustomScope> {
        &self.custom
    }

    /// Whether `base` (no filter) is a scope here; `self` and `inherit` are metascopes,
    /// not scopes.
    pub fn knows(&self, base: &str) -> bool {
        scopes::subscopes(base).is_some() || self.custom.contains_key(base)
    }

    /// Checks that every raw scope is known here and well-formed, as JupyterHub checks
    /// the scopes of roles and tokens: `self` and `inherit` are accepted, `all` is
    /// refused as renamed, a filter must be bare `!user`, `!service` or `!server`, or
    /// `!user=`, `!group=`, `!service=`, `!server=` with a name.
    pub fn validate(&self, raw: &[impl AsRef<str>]) -> Result<(), ScopeError> {
        raw.iter()
            .try_for_each(|r| self.read(r.as_ref()).map(|_| ()))
    }

    /// A raw scope's base (checked) and written filter (checked).
    pub(super) fn read<'a>(&self, raw: &'a str) -> Result<(&'a str, Option<Written>), ScopeError> {
        let (base, filter) = split(raw);
        if base == "all" {
            return Err(ScopeError::AllIsInherit);
        }
        if !(self.knows(base) || base == SELF || base == INHERIT) {
            return Err(ScopeError::Unknown(raw.to_owned()));
        }
        match filter {
            None => Ok((base, None)),
            Some(text) => written(text)
                .map(|w| (base, Some(w)))
                .ok_or_else(|| ScopeError::BadFilter(raw.to_owned())),
        }
    }

    /// `base` and all its sub-scopes, recursively; `None` when `base` is not a scope here.
    pub(super) fn expand_names(&self, base: &str) -> Option<BTreeSet<String>> {
        if !self.knows(base) {
            return None;
        }
        let mut out = BTreeSet::new();
        let mut todo = vec![base.to_owned()];
        while let Some(name) = todo.pop() {
            if out.contains(&name) {
                continue;
            }
            if let Some(subs) = scopes::subscopes(&name) {
                todo.extend(subs.iter().map(|s| s.to_string()));
            } else if let Some(def) = self.custom.get(&name) {
                todo.extend(def.subscopes.iter().cloned());
            }
            out.insert(name);
        }
        Some(out)
    }
}

/// A chain of sub-scopes leading from `start` back to it, if there is one.
fn cycle_from(custom: &BTreeMap<String, CustomScope>, start: &str) -> Option<Vec<String>> {
    fn walk(
        custom: &BTreeMap<String, CustomScope>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let here = path.last().cloned().unwrap_or_default();
        for sub in custom.get(&here).map_or(&[][..], |d| &d.subscopes[..]) {
            path.push(sub.clone());
            if sub == start || (seen.insert(sub.clone()) && walk(custom, start, path, seen)) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(custom, start, &mut path, &mut BTreeSet::new()).then_some(path)
}
