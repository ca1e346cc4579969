//! The scopes two sets both hold (JupyterHub's `intersect_expanded_scopes`): for tokens
//! against their owner, and requested scopes against held ones.

use super::filter::Membership;
use super::set::{Held, ScopeSet};

impl ScopeSet {
    /// [`ScopeSet::intersect_in`] without groups: `!group=` filters meet only the same
    /// group (JupyterHub without a database, where this can grant less than intended).
    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        self.intersect_in(other, &())
    }

    /// The scopes held by both sets, the narrower filter winning: per base scope, an
    /// unfiltered hold meets the other side's filters; otherwise a filter on one side
    /// survives when the other side has one covering it, so `!user=u` meets
    /// `!server=u/s` as the server, and, with `membership`, `!group=g` meets `!user=u`
    /// as the user and `!server=u/s` as the server when `u` is in `g`. Groups meet
    /// groups only literally.
    pub fn intersect_in(&self, other: &ScopeSet, membership: &dyn Membership) -> ScopeSet {
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
                            if x.covers(y, membership) {
                                out.add(base, Some(y.clone()));
                            } else if y.covers(x, membership) {
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
