//! `Identity`: who is asking, as every check sees it: the owner (a user or a service),
//! whether an administrator, the scopes it holds, and the token or cookie it came with.

use std::sync::Arc;

use galilean_actors::policy::scopes::ScopeSet;
use galilean_proto::records::Owner;

/// An authenticated requester.
#[derive(Debug, Clone)]
pub struct Identity {
    pub owner: Owner,
    pub admin: bool,
    /// Shared: a token's identity is resolved once per replica version (`auth::Tokens`).
    pub scopes: Arc<ScopeSet>,
    /// The token used (`None` for cookie authentication).
    pub token_id: Option<u64>,
    pub token_hash: Option<String>,
    pub session_id: Option<String>,
    pub via_cookie: bool,
}

impl Identity {
    pub fn user_name(&self) -> Option<&str> {
        match &self.owner {
            Owner::User(u) => Some(u),
            Owner::Service(_) => None,
        }
    }
}
