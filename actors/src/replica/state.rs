//! What the replica holds: every record decoded, the indexes the hot paths read (users
//! by id, group members both ways, tokens by owner and by expiry), and the generations
//! that tell caches when what they derived went stale.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use galilean_proto::codec::decode;
use galilean_proto::records::{
    GroupRecord, OAuthClientRecord, Owner, ServerRecord, ShareCodeRecord, ShareRecord, ShareWith,
    TokenRecord, UserRecord,
};
use galilean_proto::time::Micros;
use galilean_storage::tuple;
use galilean_storage::{ChangeBatch, Mutation, Version};

use crate::policy::scopes::Membership;
use crate::replica::shares::Shares;
use crate::store::keys::{self, KeyKind};

/// Everything the replica holds. Cheap to read under a short read lock; never held
/// across an await.
#[derive(Debug, Default)]
pub struct State {
    pub users: BTreeMap<String, Arc<UserRecord>>,
    /// User id → the same record as in `users`: the users in the API's default order,
    /// for paging without a sort.
    pub users_by_id: BTreeMap<u64, Arc<UserRecord>>,
    pub servers: BTreeMap<(String, String), Arc<ServerRecord>>,
    /// Tokens by hex SHA-256 of their secret.
    pub tokens: HashMap<String, Arc<TokenRecord>>,
    /// Token id → hash.
    pub token_ids: HashMap<u64, String>,
    /// Owner → the hashes of its tokens.
    pub tokens_by_owner: HashMap<Owner, BTreeSet<String>>,
    /// (expiry, hash) of every token that expires, soonest first: the purge of expired
    /// tokens finds them without a walk over every token.
    pub tokens_by_expiry: BTreeSet<(Micros, String)>,
    pub clients: HashMap<String, Arc<OAuthClientRecord>>,
    pub groups: BTreeMap<String, Arc<GroupRecord>>,
    /// Group → its members.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// User → the groups it is in (the same memberships as `members`).
    pub user_groups: HashMap<String, BTreeSet<String>>,
    pub shares: Shares,
    /// User → its encrypted `auth_state` (a Fernet token).
    pub auth_states: HashMap<String, Arc<str>>,
    pub meta: HashMap<String, Vec<u8>>,
    /// Increases whenever a server record changes, and never decreases (the route table
    /// rebuilds on it, and is stamped with it).
    pub servers_generation: u64,
    /// Increases whenever something that grants scopes changes: a user's `admin`, a
    /// group, a membership, a share. Scopes resolved from the replica stay valid while it holds
    /// (a token's own record is checked apart: its deletion revokes it alone).
    pub grants_generation: u64,
    pub version: Version,
}

static NO_GROUPS: BTreeSet<String> = BTreeSet::new();

impl State {
    pub(super) fn apply_set(&mut self, key: &[u8], value: &[u8]) {
        match keys::classify(key) {
            KeyKind::User(name) => {
                if let Ok(rec) = decode::<UserRecord>(value) {
                    let rec = Arc::new(rec);
                    match self.users.insert(name, rec.clone()) {
                        Some(old) => {
                            if old.id != rec.id {
                                self.unindex(&old);
                            }
                            if old.admin != rec.admin || old.id != rec.id {
                                self.grants_generation += 1;
                            }
                        }
                        // a user made again under an old name holds what that name was
                        // granted (its groups, its roles) afresh
                        None => self.grants_generation += 1,
                    }
                    self.users_by_id.insert(rec.id, rec);
                }
            }
            KeyKind::Server(u, s) => {
                if let Ok(rec) = decode::<ServerRecord>(value) {
                    self.servers.insert((u, s), Arc::new(rec));
                    self.servers_generation += 1;
                }
            }
            KeyKind::Token(hash) => {
                if let Ok(rec) = decode::<TokenRecord>(value) {
                    self.token_ids.insert(rec.id, hash.clone());
                    self.tokens_by_owner
                        .entry(rec.owner.clone())
                        .or_default()
                        .insert(hash.clone());
                    let expires_at = rec.expires_at;
                    if let Some(e) = expires_at {
                        self.tokens_by_expiry.insert((e, hash.clone()));
                    }
                    if let Some(old) = self.tokens.insert(hash.clone(), Arc::new(rec)) {
                        if let Some(e) = old.expires_at.filter(|e| Some(*e) != expires_at) {
                            self.tokens_by_expiry.remove(&(e, hash));
                        }
                    }
                }
            }
            KeyKind::Client(id) => {
                if let Ok(rec) = decode::<OAuthClientRecord>(value) {
                    self.clients.insert(id, Arc::new(rec));
                }
            }
            KeyKind::Group(name) => {
                if let Ok(rec) = decode::<GroupRecord>(value) {
                    self.groups.insert(name, Arc::new(rec));
                    self.grants_generation += 1;
                }
            }
            KeyKind::Member(group, user) => {
                self.user_groups
                    .entry(user.clone())
                    .or_default()
                    .insert(group.clone());
                self.members.entry(group).or_default().insert(user);
                self.grants_generation += 1;
            }
            KeyKind::Share(..) => {
                if let Ok(rec) = decode::<ShareRecord>(value) {
                    self.shares.set_share(rec);
                    self.grants_generation += 1;
                }
            }
            KeyKind::ShareCode(hash) => {
                if let Ok(rec) = decode::<ShareCodeRecord>(value) {
                    self.shares.set_code(hash, rec);
                }
            }
            KeyKind::AuthState(user) => {
                if let Ok(token) = std::str::from_utf8(value) {
                    self.auth_states.insert(user, Arc::from(token));
                }
            }
            KeyKind::Meta(name) => {
                self.meta.insert(name, value.to_vec());
            }
            KeyKind::Code(_)
            | KeyKind::UserGroup(..)
            | KeyKind::ShareTo(..)
            | KeyKind::ShareCodeOf(..)
            | KeyKind::Other => {}
        }
    }

    /// Takes `old` (a record just replaced or removed) out of the id index, unless its
    /// id now belongs to another user's record.
    fn unindex(&mut self, old: &UserRecord) {
        if self
            .users_by_id
            .get(&old.id)
            .is_some_and(|r| r.name == old.name)
        {
            self.users_by_id.remove(&old.id);
        }
    }

    fn apply_clear(&mut self, key: &[u8]) {
        match keys::classify(key) {
            KeyKind::User(name) => {
                if let Some(old) = self.users.remove(&name) {
                    self.unindex(&old);
                }
            }
            KeyKind::Server(u, s) => {
                if self.servers.remove(&(u, s)).is_some() {
                    self.servers_generation += 1;
                }
            }
            KeyKind::Token(hash) => {
                if let Some(rec) = self.tokens.remove(&hash) {
                    self.token_ids.remove(&rec.id);
                    if let Some(e) = rec.expires_at {
                        self.tokens_by_expiry.remove(&(e, hash.clone()));
                    }
                    if let Some(hashes) = self.tokens_by_owner.get_mut(&rec.owner) {
                        hashes.remove(&hash);
                        if hashes.is_empty() {
                            self.tokens_by_owner.remove(&rec.owner);
                        }
                    }
                }
            }
            KeyKind::Client(id) => {
                self.clients.remove(&id);
            }
            KeyKind::Group(name) => {
                if self.groups.remove(&name).is_some() {
                    self.grants_generation += 1;
                }
            }
            KeyKind::Member(group, user) => self.unmember(&group, &user),
            KeyKind::Share(owner, server, with) => {
                if self.shares.clear_share(&owner, &server, &with) {
                    self.grants_generation += 1;
                }
            }
            KeyKind::ShareCode(hash) => self.shares.clear_code(&hash),
            KeyKind::AuthState(user) => {
                self.auth_states.remove(&user);
            }
            KeyKind::Meta(name) => {
                self.meta.remove(&name);
            }
            KeyKind::Code(_)
            | KeyKind::UserGroup(..)
            | KeyKind::ShareTo(..)
            | KeyKind::ShareCodeOf(..)
            | KeyKind::Other => {}
        }
    }

    fn unmember(&mut self, group: &str, user: &str) {
        let mut removed = false;
        if let Some(users) = self.members.get_mut(group) {
            removed = users.remove(user);
            if users.is_empty() {
                self.members.remove(group);
            }
        }
        if let Some(groups) = self.user_groups.get_mut(user) {
            groups.remove(group);
            if groups.is_empty() {
                self.user_groups.remove(user);
            }
        }
        if removed {
            self.grants_generation += 1;
        }
    }

    /// Clears `[begin, end)`. The ranges the hub clears (a user's servers, a group's
    /// members) are found through their maps; any other range by every key held.
    fn apply_clear_range(&mut self, begin: &[u8], end: &[u8]) {
        let whole_prefix =
            end.len() == begin.len() + 1 && end.starts_with(begin) && end.last() == Some(&0xff);
        let parts: Option<Vec<String>> = whole_prefix
            .then(|| tuple::unpack(begin).ok())
            .flatten()
            .and_then(|elems| {
                elems
                    .iter()
                    .map(|e| e.as_str().map(str::to_owned))
                    .collect()
            });
        match parts.as_deref() {
            Some([kind, user]) if kind == keys::SERVER => {
                let doomed: Vec<(String, String)> = self
                    .servers_of(user)
                    .map(|s| (s.user.clone(), s.name.clone()))
                    .collect();
                for k in doomed {
                    self.apply_clear(&keys::server(&k.0, &k.1));
                }
            }
            Some([kind, group]) if kind == keys::MEMBER => {
                let doomed = self.members.get(group).cloned().unwrap_or_default();
                for user in doomed {
                    self.unmember(group, &user);
                }
            }
            // not held in the replica
            Some([kind, ..])
                if [keys::USER_GROUP, keys::SHARE_TO, keys::SHARE_CODE_OF]
                    .contains(&kind.as_str()) => {}
            _ => {
                let doomed: Vec<Vec<u8>> = self
                    .all_keys()
                    .into_iter()
                    .filter(|k| k.as_slice() >= begin && k.as_slice() < end)
                    .collect();
                for k in doomed {
                    self.apply_clear(&k);
                }
            }
        }
    }

    pub(super) fn apply(&mut self, batch: &ChangeBatch) {
        for m in &batch.mutations {
            match m {
                Mutation::Set { key, value } => self.apply_set(key, value),
                Mutation::Clear { key } => self.apply_clear(key),
                Mutation::ClearRange { begin, end } => self.apply_clear_range(begin, end),
            }
        }
        self.version = batch.version;
    }

    fn all_keys(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        out.extend(self.users.keys().map(|u| keys::user(u)));
        out.extend(self.servers.keys().map(|(u, s)| keys::server(u, s)));
        out.extend(self.tokens.keys().map(|h| keys::token(h)));
        out.extend(self.clients.keys().map(|c| keys::client(c)));
        out.extend(self.groups.keys().map(|g| keys::group(g)));
        for (g, users) in &self.members {
            out.extend(users.iter().map(|u| keys::member(g, u)));
        }
        out.extend(
            self.shares
                .all()
                .map(|sh| keys::share(&sh.owner, &sh.server, &sh.with)),
        );
        out.extend(self.shares.all_codes().map(|(h, _)| keys::share_code(h)));
        out.extend(self.auth_states.keys().map(|u| keys::auth_state(u)));
        out.extend(self.meta.keys().map(|m| keys::meta(m)));
        out
    }

    /// A digest of everything held (records as the store encodes them, in key order):
    /// two replicas at the same version have the same digest unless they diverged.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut put = |key: &[u8], value: Option<Vec<u8>>| {
            h.update((key.len() as u64).to_be_bytes());
            h.update(key);
            let value = value.unwrap_or_default();
            h.update((value.len() as u64).to_be_bytes());
            h.update(&value);
        };
        fn enc<T: serde::Serialize>(record: &T) -> Option<Vec<u8>> {
            rmp_serde::to_vec_named(record).ok()
        }
        for (name, rec) in &self.users {
            put(&keys::user(name), enc(rec.as_ref()));
        }
        for ((u, s), rec) in &self.servers {
            put(&keys::server(u, s), enc(rec.as_ref()));
        }
        let mut tokens: Vec<_> = self.tokens.iter().collect();
        tokens.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (hash, rec) in tokens {
            put(&keys::token(hash), enc(rec.as_ref()));
        }
        let mut clients: Vec<_> = self.clients.iter().collect();
        clients.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (id, rec) in clients {
            put(&keys::client(id), enc(rec.as_ref()));
        }
        for (name, rec) in &self.groups {
            put(&keys::group(name), enc(rec.as_ref()));
        }
        for (g, users) in &self.members {
            for u in users {
                put(&keys::member(g, u), None);
            }
        }
        for sh in self.shares.all() {
            put(
                &keys::share(&sh.owner, &sh.server, &sh.with),
                enc(sh.as_ref()),
            );
        }
        let mut codes: Vec<_> = self.shares.all_codes().collect();
        codes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (hash, rec) in codes {
            put(&keys::share_code(hash), enc(rec.as_ref()));
        }
        let mut states: Vec<_> = self.auth_states.iter().collect();
        states.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (user, token) in states {
            put(&keys::auth_state(user), Some(token.as_bytes().to_vec()));
        }
        let mut meta: Vec<_> = self.meta.iter().collect();
        meta.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (name, value) in meta {
            put(&keys::meta(name), Some(value.clone()));
        }
        hex::encode(h.finalize())
    }

    /// Servers of one user, by server name.
    pub fn servers_of<'a>(
        &'a self,
        user: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ServerRecord>> + 'a {
        self.servers
            .range((user.to_owned(), String::new())..)
            .take_while(move |((u, _), _)| u == user)
            .map(|(_, s)| s)
    }

    /// The tokens of `owner`, with their hashes.
    pub fn tokens_of<'a>(
        &'a self,
        owner: &Owner,
    ) -> impl Iterator<Item = (&'a String, &'a Arc<TokenRecord>)> + 'a {
        self.tokens_by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|h| self.tokens.get(h).map(|t| (h, t)))
    }

    /// The tokens expired by `now` (an expiry at or before it), soonest expired first.
    pub fn expired_tokens(
        &self,
        now: Micros,
    ) -> impl Iterator<Item = (&String, &Arc<TokenRecord>)> + '_ {
        self.tokens_by_expiry
            .iter()
            .take_while(move |(e, _)| *e <= now)
            .filter_map(|(_, h)| self.tokens.get(h).map(|t| (h, t)))
    }

    /// The groups `user` is in, by name.
    pub fn groups_of(&self, user: &str) -> &BTreeSet<String> {
        self.user_groups.get(user).unwrap_or(&NO_GROUPS)
    }

    /// The shares `user` holds: granted to it, and to its groups.
    pub fn shares_held_by<'a>(
        &'a self,
        user: &str,
    ) -> impl Iterator<Item = &'a Arc<ShareRecord>> + 'a {
        let own = self.shares.to(&ShareWith::User(user.to_owned()));
        let groups = self
            .groups_of(user)
            .iter()
            .flat_map(|g| self.shares.to(&ShareWith::Group(g.clone())));
        own.chain(groups)
    }

    /// The members of `group`, by name.
    pub fn members_of(&self, group: &str) -> &BTreeSet<String> {
        self.members.get(group).unwrap_or(&NO_GROUPS)
    }
}

impl Membership for State {
    fn in_group(&self, user: &str, group: &str) -> bool {
        self.user_groups
            .get(user)
            .is_some_and(|groups| groups.contains(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use galilean_proto::codec::encode;
    use galilean_proto::records::FORMAT;

    fn batch(version: Version, mutations: Vec<Mutation>) -> ChangeBatch {
        ChangeBatch { version, mutations }
    }

    fn set(key: Vec<u8>, value: Vec<u8>) -> Mutation {
        Mutation::Set { key, value }
    }

    fn group(name: &str) -> Vec<u8> {
        encode(&GroupRecord {
            v: FORMAT,
            id: 1,
            name: name.into(),
            properties: "{}".into(),
            created: 0,
        })
        .unwrap()
    }

    #[test]
    fn memberships_are_indexed_both_ways_and_cleared_with_their_range() {
        let mut s = State::default();
        s.apply(&batch(
            1,
            vec![
                set(keys::group("physics"), group("physics")),
                set(keys::member("physics", "alice"), vec![]),
                set(keys::member("physics", "bob"), vec![]),
                set(keys::member("chem", "alice"), vec![]),
            ],
        ));
        assert!(s.in_group("alice", "physics"));
        assert!(s.in_group("alice", "chem"));
        assert_eq!(s.members_of("physics").len(), 2);
        let before = s.grants_generation;
        let (begin, end) = keys::members_of("physics");
        s.apply(&batch(
            2,
            vec![
                Mutation::Clear {
                    key: keys::group("physics"),
                },
                Mutation::ClearRange { begin, end },
            ],
        ));
        assert!(!s.in_group("alice", "physics"));
        assert!(!s.in_group("bob", "physics"));
        assert!(s.in_group("alice", "chem"));
        assert!(s.groups_of("bob").is_empty());
        assert!(s.grants_generation > before);
        assert_eq!(s.version, 2);
    }

    #[test]
    fn a_user_s_servers_are_cleared_by_their_range_and_no_other_s() {
        let mut s = State::default();
        let server = |u: &str, n: &str| {
            encode(&ServerRecord {
                v: FORMAT,
                user: u.into(),
                name: n.into(),
                display_name: n.into(),
                phase: galilean_proto::records::ServerPhase::Stopped,
                instance: 0,
                started: None,
                last_activity: None,
                user_options: "null".into(),
                target: None,
                spawner: Default::default(),
                token_id: None,
                last_failure: None,
            })
            .unwrap()
        };
        s.apply(&batch(
            1,
            vec![
                set(keys::server("al", "a"), server("al", "a")),
                set(keys::server("al", ""), server("al", "")),
                set(keys::server("alice", ""), server("alice", "")),
            ],
        ));
        let generation = s.servers_generation;
        let (begin, end) = keys::servers_of("al");
        s.apply(&batch(2, vec![Mutation::ClearRange { begin, end }]));
        assert_eq!(s.servers.len(), 1);
        assert!(s.servers.contains_key(&("alice".into(), String::new())));
        assert!(s.servers_generation > generation);
    }

    #[test]
    fn tokens_are_found_by_owner_and_leave_the_index_when_deleted() {
        let token = |id: u64, owner: &str| {
            encode(&TokenRecord {
                v: FORMAT,
                id,
                prefix: "abcd".into(),
                owner: Owner::User(owner.into()),
                scopes: vec![],
                note: String::new(),
                created: 0,
                last_activity: None,
                expires_at: None,
                session_id: None,
                client_id: "jupyterhub".into(),
            })
            .unwrap()
        };
        let mut s = State::default();
        s.apply(&batch(
            1,
            vec![
                set(keys::token("h1"), token(1, "alice")),
                set(keys::token("h2"), token(2, "alice")),
                set(keys::token("h3"), token(3, "bob")),
            ],
        ));
        let alice = Owner::User("alice".into());
        let ids = |s: &State| -> Vec<u64> { s.tokens_of(&alice).map(|(_, t)| t.id).collect() };
        assert_eq!(ids(&s), vec![1, 2]);
        s.apply(&batch(
            2,
            vec![Mutation::Clear {
                key: keys::token("h1"),
            }],
        ));
        assert_eq!(ids(&s), vec![2]);
        s.apply(&batch(
            3,
            vec![Mutation::Clear {
                key: keys::token("h2"),
            }],
        ));
        assert!(ids(&s).is_empty());
        assert!(!s.tokens_by_owner.contains_key(&alice));
    }

    #[test]
    fn expired_tokens_are_found_by_expiry_until_they_are_deleted() {
        let token = |id: u64, expires_at: Option<i64>, last_activity: Option<i64>| {
            encode(&TokenRecord {
                v: FORMAT,
                id,
                prefix: "abcd".into(),
                owner: Owner::User("alice".into()),
                scopes: vec![],
                note: String::new(),
                created: 0,
                last_activity,
                expires_at,
                session_id: None,
                client_id: "jupyterhub".into(),
            })
            .unwrap()
        };
        let mut s = State::default();
        s.apply(&batch(
            1,
            vec![
                set(keys::token("late"), token(1, Some(300), None)),
                set(keys::token("never"), token(2, None, None)),
                set(keys::token("soon"), token(3, Some(100), None)),
            ],
        ));
        let expired = |s: &State, now: i64| -> Vec<u64> {
            s.expired_tokens(now).map(|(_, t)| t.id).collect()
        };
        assert!(expired(&s, 99).is_empty());
        assert_eq!(expired(&s, 100), vec![3]);
        assert_eq!(expired(&s, i64::MAX), vec![3, 1]);
        // a rewrite (its activity) keeps it indexed once
        s.apply(&batch(
            2,
            vec![set(keys::token("soon"), token(3, Some(100), Some(50)))],
        ));
        assert_eq!(expired(&s, i64::MAX), vec![3, 1]);
        assert_eq!(s.tokens_by_expiry.len(), 2);
        s.apply(&batch(
            3,
            vec![Mutation::Clear {
                key: keys::token("soon"),
            }],
        ));
        assert_eq!(expired(&s, i64::MAX), vec![1]);
        assert_eq!(s.tokens_by_expiry.len(), 1);
    }

    #[test]
    fn activity_on_a_user_leaves_grants_alone_and_admin_does_not() {
        let user = |admin: bool, activity: Option<i64>| {
            encode(&UserRecord {
                v: FORMAT,
                id: 1,
                name: "alice".into(),
                admin,
                created: 0,
                last_activity: activity,
                cookie_id: "c".into(),
            })
            .unwrap()
        };
        let mut s = State::default();
        s.apply(&batch(1, vec![set(keys::user("alice"), user(false, None))]));
        let g = s.grants_generation;
        s.apply(&batch(
            2,
            vec![set(keys::user("alice"), user(false, Some(5)))],
        ));
        assert_eq!(s.grants_generation, g);
        s.apply(&batch(
            3,
            vec![set(keys::user("alice"), user(true, Some(5)))],
        ));
        assert!(s.grants_generation > g);
    }
}
