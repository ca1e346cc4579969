//! What a token may do: its owner's scopes now, narrowed by the token's own scopes and
//! the OAuth client that issued it (§4.4 of the protocol reference). The check that
//! enforces a token and the listings that show it both ask [`token_grant`], so a token
//! is listed with exactly the scopes it is held to.

use galilean_proto::records::{Owner, TokenRecord};

use crate::policy::rbac::Rbac;
use crate::policy::scopes::{self, Filter, ScopeOwner, ScopeSet};
use crate::replica::State;

/// What a token holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub owner: ScopeOwner,
    /// The owner is an administrator (a user with `admin`, or an admin service).
    pub admin: bool,
    pub scopes: ScopeSet,
}

/// What the owner of a token, a user or a service, holds now by the replica's `state`
/// and the roles of `rbac` (a user: its roles, its groups' roles, and the shares granted
/// to it or its groups): `(scopes, admin)`. `None` when there is no such owner.
pub fn owner_grant(state: &State, rbac: &Rbac, owner: &Owner) -> Option<(ScopeSet, bool)> {
    match owner {
        Owner::User(u) => {
            let admin = state.users.get(u)?.admin;
            let mut scopes = rbac.user_scopes(u, admin, state.groups_of(u));
            // what was shared with the user or its groups (§4.4)
            for share in state.shares_held_by(u) {
                scopes.union(&rbac.expand_for_user(&share.scopes, u));
            }
            Some((scopes, admin))
        }
        Owner::Service(n) => Some((rbac.service_scopes(n)?, rbac.service_admin(n)?)),
    }
}

/// The grant of `tok` by the replica's `state` and the scopes `rbac` knows, given what
/// its owner holds now (`owner_grant`).
pub fn token_grant(
    state: &State,
    rbac: &Rbac,
    tok: &TokenRecord,
    owner_scopes: &ScopeSet,
    admin: bool,
) -> Grant {
    let owner = match &tok.owner {
        Owner::User(u) => ScopeOwner::User(u.clone()),
        Owner::Service(n) => ScopeOwner::Service(n.clone()),
    };
    let scopes = scopes::token_scopes_in(
        rbac.catalog(),
        &tok.scopes,
        &owner,
        owner_scopes,
        issuer(state, &tok.client_id).as_ref(),
        state,
    );
    Grant {
        owner,
        admin,
        scopes,
    }
}

/// The filter the OAuth client `client_id` puts on the tokens it issues: its server's,
/// or its service's; none for the hub's own tokens.
fn issuer(state: &State, client_id: &str) -> Option<Filter> {
    let c = state.clients.get(client_id)?;
    if let Some((u, srv)) = &c.server {
        Some(Filter::Server(format!("{u}/{srv}")))
    } else {
        c.service.as_ref().map(|n| Filter::Service(n.clone()))
    }
}
