//! API tokens (§2.1): the `Authorization: token|bearer` header, and a secret resolved to
//! an identity from the local replica only. The scopes are the token's grant
//! (`policy::tokens`), the same ones token listings show, resolved once and kept until
//! grants change or the token goes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap};
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::policy::tokens::{token_grant, Grant};
use galilean_actors::replica::State;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::Replica;
use galilean_proto::records::TokenRecord;
use galilean_proto::time::now_micros;

use crate::auth::grants::Grants;
use crate::auth::identity::Identity;

/// The token of an `Authorization: token X` or `Bearer X` header.
pub fn header_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
    if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")) {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

/// Token checks against the replica. A token's identity is resolved once and cached by
/// hash: expanding its scopes (its owner's roles, the token's own list, the issuing
/// client's filter) allocates a set per scope, too much to repeat on every request. An
/// entry holds while the replica's grants generation is the one it was resolved at and
/// the token's record is still there: a change of anyone's grants makes every entry
/// stale, a token's deletion its own, and other writes (new tokens, activity, servers)
/// none. Keyed by hash: no secret is kept.
pub struct Tokens {
    replica: Arc<Replica>,
    grants: Arc<Grants>,
    resolved: RwLock<HashMap<String, Cached>>,
}

struct Cached {
    generation: u64,
    token_id: u64,
    expires_at: Option<i64>,
    identity: Arc<Identity>,
}

impl Tokens {
    /// More entries than this and the cache starts over (stale entries are only
    /// overwritten otherwise).
    const MAX_ENTRIES: usize = 100_000;

    pub fn new(replica: Arc<Replica>, grants: Arc<Grants>) -> Tokens {
        Tokens {
            replica,
            grants,
            resolved: RwLock::default(),
        }
    }

    /// What owners hold through their roles and groups.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Resolves a token secret: owner, expiry, effective scopes. `None` for an unknown,
    /// expired or ownerless token.
    pub fn identify(&self, secret: &str) -> Option<Identity> {
        let hash = sha256_hex(secret);
        let now = now_micros();
        let (generation, token_id) = self.replica.read(|s| {
            let id = s.tokens.get(&hash).map(|t| t.id);
            (s.grants_generation, id)
        });
        let token_id = token_id?;
        if let Some(hit) = self.cached(&hash, generation, token_id, now) {
            return hit;
        }
        let (generation, expires_at, identity) = self.replica.read(|s| {
            let tok = s.tokens.get(&hash)?;
            let grant = self.grant(s, tok)?;
            if !still_reaches_its_client(s, tok, &grant) {
                return None;
            }
            let identity = Identity {
                owner: tok.owner.clone(),
                admin: grant.admin,
                scopes: Arc::new(grant.scopes),
                token_id: Some(tok.id),
                token_hash: Some(hash.clone()),
                session_id: tok.session_id.clone(),
                via_cookie: false,
            };
            Some((s.grants_generation, tok.expires_at, Arc::new(identity)))
        })?;
        self.keep(&hash, generation, expires_at, identity.clone());
        if expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        Some((*identity).clone())
    }

    /// What `tok` holds by the replica's `state`: what its checks enforce, and what token
    /// listings show. `None` when its owner no longer exists.
    pub fn grant(&self, state: &State, tok: &TokenRecord) -> Option<Grant> {
        let held = self.grants.held(state, &tok.owner)?;
        Some(token_grant(
            state,
            self.grants.rbac(),
            tok,
            &held.scopes,
            held.admin,
        ))
    }

    /// The cached answer for `hash`, if it still holds.
    fn cached(
        &self,
        hash: &str,
        generation: u64,
        token_id: u64,
        now: i64,
    ) -> Option<Option<Identity>> {
        let map = self.resolved.read().unwrap_or_else(|e| e.into_inner());
        let c = map
            .get(hash)
            .filter(|c| c.generation == generation && c.token_id == token_id)?;
        if c.expires_at.is_some_and(|e| e <= now) {
            return Some(None);
        }
        Some(Some((*c.identity).clone()))
    }

    fn keep(&self, hash: &str, generation: u64, expires_at: Option<i64>, identity: Arc<Identity>) {
        let Some(token_id) = identity.token_id else {
            return;
        };
        let mut map = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES && !map.contains_key(hash) {
            map.clear();
        }
        let cached = Cached {
            generation,
            token_id,
            expires_at,
            identity,
        };
        crate::set_entry(&mut map, hash, cached);
    }
}

/// Whether an OAuth token's owner may still use the client that issued it: a token
/// issued for a server or a service exists only to use it, so when its owner loses that
/// access (a share revoked, a role or group gone) or the client is gone, the token is
/// refused altogether, `GET /hub/api/user` included. JupyterHub keeps answering such a
/// token with its identity; Galilean refuses it, so a revocation is complete at once.
/// The hub's own tokens (client `jupyterhub`) are not tied to a client.
fn still_reaches_its_client(state: &State, tok: &TokenRecord, grant: &Grant) -> bool {
    if tok.client_id == "jupyterhub" {
        return true;
    }
    let Some(client) = state.clients.get(&tok.client_id) else {
        return false;
    };
    let (base, target) = if let Some((user, server)) = &client.server {
        ("access:servers", Target::Server { user, server })
    } else if let Some(service) = &client.service {
        ("access:services", Target::Service(service))
    } else {
        return true;
    };
    grant.scopes.check_in(base, target, state) == Access::Allowed
}
