//! API tokens (§2.1): the `Authorization: token|bearer` header, and a secret resolved to
//! an identity from the local replica only. The scopes are the token's grant
//! (`policy::tokens`), the same ones token listings show, resolved once per replica
//! version and kept until the replica changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap};
use galilean_actors::policy::tokens::{token_grant, Grant};
use galilean_actors::replica::State;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::Replica;
use galilean_proto::records::TokenRecord;
use galilean_proto::time::now_micros;
use galilean_storage::Version;

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

/// Token checks against the replica. A token's identity is resolved once per replica
/// version and cached by hash: expanding its scopes (its owner's roles, the token's own
/// list, the issuing client's filter) allocates a set per scope, too much to repeat on
/// every request. Any applied change to the replica makes every entry stale, so an answer
/// is never older than the replica it would have been computed from. Keyed by hash: no
/// secret is kept.
pub struct Tokens {
    replica: Arc<Replica>,
    /// The services from config, with whether each is an administrator.
    service_admins: HashMap<String, bool>,
    resolved: RwLock<HashMap<String, Cached>>,
}

struct Cached {
    version: Version,
    expires_at: Option<i64>,
    identity: Arc<Identity>,
}

impl Tokens {
    /// More entries than this and the cache starts over (stale entries are only
    /// overwritten otherwise).
    const MAX_ENTRIES: usize = 100_000;

    pub fn new(replica: Arc<Replica>, service_admins: HashMap<String, bool>) -> Tokens {
        Tokens {
            replica,
            service_admins,
            resolved: RwLock::default(),
        }
    }

    /// Resolves a token secret: owner, expiry, effective scopes. `None` for an unknown,
    /// expired or ownerless token.
    pub fn identify(&self, secret: &str) -> Option<Identity> {
        let hash = sha256_hex(secret);
        let now = now_micros();
        let version = self.replica.read(|s| s.version);
        if let Some(hit) = self.cached(&hash, version, now) {
            return hit;
        }
        let (version, expires_at, identity) = self.replica.read(|s| {
            let tok = s.tokens.get(&hash)?;
            let grant = self.grant(s, tok)?;
            let identity = Identity {
                owner: tok.owner.clone(),
                admin: grant.admin,
                scopes: Arc::new(grant.scopes),
                token_id: Some(tok.id),
                token_hash: Some(hash.clone()),
                session_id: tok.session_id.clone(),
                via_cookie: false,
            };
            Some((s.version, tok.expires_at, Arc::new(identity)))
        })?;
        self.keep(&hash, version, expires_at, identity.clone());
        if expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        Some((*identity).clone())
    }

    /// What `tok` holds by the replica's `state`: what its checks enforce, and what token
    /// listings show. `None` when its owner no longer exists.
    pub fn grant(&self, state: &State, tok: &TokenRecord) -> Option<Grant> {
        token_grant(state, tok, |name| self.service_admins.get(name).copied())
    }

    /// The cached answer for `hash` at `version`, if there is one.
    fn cached(&self, hash: &str, version: Version, now: i64) -> Option<Option<Identity>> {
        let map = self.resolved.read().unwrap_or_else(|e| e.into_inner());
        let c = map.get(hash).filter(|c| c.version == version)?;
        if c.expires_at.is_some_and(|e| e <= now) {
            return Some(None);
        }
        Some(Some((*c.identity).clone()))
    }

    fn keep(&self, hash: &str, version: Version, expires_at: Option<i64>, identity: Arc<Identity>) {
        let mut map = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_ENTRIES && !map.contains_key(hash) {
            map.clear();
        }
        let cached = Cached {
            version,
            expires_at,
            identity,
        };
        crate::set_entry(&mut map, hash, cached);
    }
}
