//! What users and services hold now: their roles' scopes and their groups' (§4.4),
//! resolved from the replica and the roles of the config once per change of grants
//! (`State::grants_generation`) and kept until the next, so a check never resolves roles.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use galilean_actors::policy::rbac::Rbac;
use galilean_actors::policy::scopes::ScopeSet;
use galilean_actors::policy::tokens::owner_grant;
use galilean_actors::replica::State;
use galilean_proto::records::Owner;

/// What an owner holds: its scopes, and whether it is an administrator.
#[derive(Debug, Clone)]
pub struct Held {
    pub scopes: Arc<ScopeSet>,
    pub admin: bool,
}

/// The roles of the config and the owners' grants resolved from them, by generation.
pub struct Grants {
    rbac: Arc<Rbac>,
    resolved: RwLock<Resolved>,
}

#[derive(Default)]
struct Resolved {
    generation: u64,
    by_owner: HashMap<Owner, Held>,
}

impl Grants {
    /// More owners than this and the cache starts over.
    const MAX_ENTRIES: usize = 100_000;

    pub fn new(rbac: Arc<Rbac>) -> Grants {
        Grants {
            rbac,
            resolved: RwLock::default(),
        }
    }

    pub fn rbac(&self) -> &Rbac {
        &self.rbac
    }

    /// What `owner` holds by `state`; `None` when there is no such user or service.
    pub fn held(&self, state: &State, owner: &Owner) -> Option<Held> {
        let generation = state.grants_generation;
        {
            let r = self.resolved.read().unwrap_or_else(|e| e.into_inner());
            if r.generation == generation {
                if let Some(h) = r.by_owner.get(owner) {
                    return Some(h.clone());
                }
            }
        }
        let (scopes, admin) = owner_grant(state, &self.rbac, owner)?;
        let held = Held {
            scopes: Arc::new(scopes),
            admin,
        };
        let mut r = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        if generation > r.generation || r.by_owner.len() >= Self::MAX_ENTRIES {
            r.by_owner.clear();
            r.generation = generation;
        }
        // an older generation's answer is right for the caller, not for the cache
        if generation == r.generation {
            r.by_owner.insert(owner.clone(), held.clone());
        }
        Some(held)
    }
}
