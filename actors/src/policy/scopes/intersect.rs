//! The scopes two sets both hold (JupyterHub's `intersect_expanded_scopes`): for tokens
//! against their owner, and requested scopes against held ones.

use super::filter::Filter;
use super::set::{Held, ScopeSet};

impl ScopeSet {
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
}
