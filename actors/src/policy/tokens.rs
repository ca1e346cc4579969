//! What a token may do: its owner's scopes now, narrowed by the token's own scopes and
//! the OAuth client that issued it (§4.4 of the protocol reference). The check that
//! enforces a token and the listings that show it both ask [`token_grant`], so a token
//! is listed with exactly the scopes it is held to.

use galilean_proto::records::{Owner, TokenRecord};

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

/// The grant of `tok` by the replica's `state`; `service_admin` says whether a service
/// exists and is an admin (`None`: no such service). `None` when the token's owner no
/// longer exists: such a token grants nothing.
pub fn token_grant(
    state: &State,
    tok: &TokenRecord,
    service_admin: impl Fn(&str) -> Option<bool>,
) -> Option<Grant> {
    let (owner_scopes, admin, owner) = match &tok.owner {
        Owner::User(u) => {
            let admin = state.users.get(u)?.admin;
            (
                scopes::user_scopes(u, admin),
                admin,
                ScopeOwner::User(u.clone()),
            )
        }
        Owner::Service(n) => {
            let admin = service_admin(n)?;
            (
                scopes::service_scopes(n, admin),
                admin,
                ScopeOwner::Service(n.clone()),
            )
        }
    };
    let scopes = scopes::token_scopes(
        &tok.scopes,
        &owner,
        &owner_scopes,
        issuer(state, &tok.client_id).as_ref(),
    );
    Some(Grant {
        owner,
        admin,
        scopes,
    })
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
