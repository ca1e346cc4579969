//! The keyspace: every record's key, as tuple-encoded prefixes.
//!
//! | key | value |
//! | --- | --- |
//! | `("u", user)` | [`UserRecord`](galilean_proto::records::UserRecord) |
//! | `("s", user, server)` | [`ServerRecord`](galilean_proto::records::ServerRecord) |
//! | `("t", sha256 hex of the secret)` | [`TokenRecord`](galilean_proto::records::TokenRecord) |
//! | `("c", client id)` | [`OAuthClientRecord`](galilean_proto::records::OAuthClientRecord) |
//! | `("code", sha256 hex of the code)` | [`OAuthCodeRecord`](galilean_proto::records::OAuthCodeRecord) |
//! | `("g", group)` | [`GroupRecord`](galilean_proto::records::GroupRecord) |
//! | `("gm", group, user)` | empty: `user` is a member of `group` |
//! | `("ug", user, group)` | empty: the same membership, found from the user (not in the replica) |
//! | `("sh", owner, server, "u"/"g", name)` | [`ShareRecord`](galilean_proto::records::ShareRecord) |
//! | `("shr", "u"/"g", name, owner, server)` | empty: the same share, found from its recipient (not in the replica) |
//! | `("sc", sha256 hex of the code)` | [`ShareCodeRecord`](galilean_proto::records::ShareCodeRecord) |
//! | `("scs", owner, server, sha256 hex)` | empty: the code, found from its server (not in the replica) |
//! | `("as", user)` | the user's `auth_state`: a Fernet token of its JSON (`crypt`) |
//! | `("m", name)` | hub metadata: the cookie secret, id sequences, the live set, draining marks |
//! | `("lease",)` | the leader lease of nodes that share a store (FoundationDB); not in the replica |

use galilean_proto::records::ShareWith;
use galilean_storage::tuple::{self, Element};

pub const USER: &str = "u";
pub const SERVER: &str = "s";
pub const TOKEN: &str = "t";
pub const CLIENT: &str = "c";
pub const CODE: &str = "code";
pub const META: &str = "m";
pub const GROUP: &str = "g";
pub const MEMBER: &str = "gm";
pub const USER_GROUP: &str = "ug";
pub const AUTH_STATE: &str = "as";
pub const SHARE: &str = "sh";
pub const SHARE_TO: &str = "shr";
pub const SHARE_CODE: &str = "sc";
pub const SHARE_CODE_OF: &str = "scs";

fn with_parts(with: &ShareWith) -> (&'static str, &str) {
    match with {
        ShareWith::User(n) => ("u", n),
        ShareWith::Group(n) => ("g", n),
    }
}

fn pack(parts: &[&str]) -> Vec<u8> {
    let elems: Vec<Element> = parts.iter().map(|p| Element::from(*p)).collect();
    tuple::pack(&elems)
}

pub fn user(name: &str) -> Vec<u8> {
    pack(&[USER, name])
}

pub fn server(user: &str, server: &str) -> Vec<u8> {
    pack(&[SERVER, user, server])
}

/// Every server of one user.
pub fn servers_of(user: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[SERVER, user]))
}

pub fn token(hash_hex: &str) -> Vec<u8> {
    pack(&[TOKEN, hash_hex])
}

pub fn client(client_id: &str) -> Vec<u8> {
    pack(&[CLIENT, client_id])
}

pub fn code(hash_hex: &str) -> Vec<u8> {
    pack(&[CODE, hash_hex])
}

/// Every OAuth code.
pub fn codes() -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[CODE]))
}

pub fn group(name: &str) -> Vec<u8> {
    pack(&[GROUP, name])
}

/// `user`'s membership of `group`, as the group holds it.
pub fn member(group: &str, user: &str) -> Vec<u8> {
    pack(&[MEMBER, group, user])
}

/// Every member of `group`.
pub fn members_of(group: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[MEMBER, group]))
}

/// `user`'s membership of `group`, as the user holds it.
pub fn user_group(user: &str, group: &str) -> Vec<u8> {
    pack(&[USER_GROUP, user, group])
}

/// Every group `user` is in.
pub fn groups_of(user: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[USER_GROUP, user]))
}

/// `user`'s encrypted `auth_state`.
pub fn auth_state(user: &str) -> Vec<u8> {
    pack(&[AUTH_STATE, user])
}

/// The share of `owner`'s server `server` with `with`.
pub fn share(owner: &str, server: &str, with: &ShareWith) -> Vec<u8> {
    let (kind, name) = with_parts(with);
    pack(&[SHARE, owner, server, kind, name])
}

/// Every share of one server.
pub fn shares_of_server(owner: &str, server: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[SHARE, owner, server]))
}

/// Every share of one owner's servers.
pub fn shares_of_owner(owner: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[SHARE, owner]))
}

/// The share of `owner`'s `server` with `with`, as its recipient holds it.
pub fn share_to(with: &ShareWith, owner: &str, server: &str) -> Vec<u8> {
    let (kind, name) = with_parts(with);
    pack(&[SHARE_TO, kind, name, owner, server])
}

/// Every share granted to `with`.
pub fn shares_to(with: &ShareWith) -> (Vec<u8>, Vec<u8>) {
    let (kind, name) = with_parts(with);
    tuple::range(&pack(&[SHARE_TO, kind, name]))
}

pub fn share_code(hash_hex: &str) -> Vec<u8> {
    pack(&[SHARE_CODE, hash_hex])
}

/// The code `hash_hex` of `owner`'s `server`, as the server holds it.
pub fn share_code_of(owner: &str, server: &str, hash_hex: &str) -> Vec<u8> {
    pack(&[SHARE_CODE_OF, owner, server, hash_hex])
}

/// Every code of one server.
pub fn share_codes_of_server(owner: &str, server: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[SHARE_CODE_OF, owner, server]))
}

/// Every code of one owner's servers.
pub fn share_codes_of_owner(owner: &str) -> (Vec<u8>, Vec<u8>) {
    tuple::range(&pack(&[SHARE_CODE_OF, owner]))
}

pub fn meta(name: &str) -> Vec<u8> {
    pack(&[META, name])
}

/// The counter of an id sequence (`users`, `tokens`).
pub fn sequence(seq: &str) -> Vec<u8> {
    meta(&format!("seq.{seq}"))
}

/// The meta name of the live set ([`LiveSet`](galilean_proto::live::LiveSet)).
pub const LIVE_KEY: &str = "live";

/// The meta name that marks member `id` as draining (`galilean cluster drain`): the
/// leader leaves it out of the live set, so its users move to the other members. It is
/// cleared when the node starts again.
pub fn draining_key(id: u64) -> String {
    format!("{DRAINING_PREFIX}{id}")
}

/// What every draining mark's meta name starts with.
pub const DRAINING_PREFIX: &str = "draining/";

/// The leader lease's key (`galilean_storage::lease`): renewed several times a second,
/// so kept out of the replica's state.
pub fn leader_lease() -> Vec<u8> {
    pack(&["lease"])
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    User(String),
    Server(String, String),
    Token(String),
    Client(String),
    Code(String),
    Meta(String),
    Group(String),
    /// `(group, user)`.
    Member(String, String),
    /// `(user, group)`.
    UserGroup(String, String),
    /// `(owner, server, recipient)`.
    Share(String, String, ShareWith),
    /// `(recipient, owner, server)`.
    ShareTo(ShareWith, String, String),
    ShareCode(String),
    AuthState(String),
    /// `(owner, server, hash)`.
    ShareCodeOf(String, String, String),
    Other,
}

fn share_with(kind: &str, name: &str) -> Option<ShareWith> {
    match kind {
        "u" => Some(ShareWith::User(name.to_owned())),
        "g" => Some(ShareWith::Group(name.to_owned())),
        _ => None,
    }
}

/// Decodes a key of this keyspace.
pub fn classify(key: &[u8]) -> KeyKind {
    let Ok(elems) = tuple::unpack(key) else {
        return KeyKind::Other;
    };
    let strs: Vec<&str> = elems.iter().filter_map(|e| e.as_str()).collect();
    if strs.len() != elems.len() {
        return KeyKind::Other;
    }
    match strs.as_slice() {
        [USER, u] => KeyKind::User((*u).to_owned()),
        [SERVER, u, s] => KeyKind::Server((*u).to_owned(), (*s).to_owned()),
        [TOKEN, h] => KeyKind::Token((*h).to_owned()),
        [CLIENT, c] => KeyKind::Client((*c).to_owned()),
        [CODE, h] => KeyKind::Code((*h).to_owned()),
        [META, m] => KeyKind::Meta((*m).to_owned()),
        [GROUP, g] => KeyKind::Group((*g).to_owned()),
        [MEMBER, g, u] => KeyKind::Member((*g).to_owned(), (*u).to_owned()),
        [USER_GROUP, u, g] => KeyKind::UserGroup((*u).to_owned(), (*g).to_owned()),
        [SHARE, o, s, k, n] => match share_with(k, n) {
            Some(with) => KeyKind::Share((*o).to_owned(), (*s).to_owned(), with),
            None => KeyKind::Other,
        },
        [SHARE_TO, k, n, o, s] => match share_with(k, n) {
            Some(with) => KeyKind::ShareTo(with, (*o).to_owned(), (*s).to_owned()),
            None => KeyKind::Other,
        },
        [SHARE_CODE, h] => KeyKind::ShareCode((*h).to_owned()),
        [AUTH_STATE, u] => KeyKind::AuthState((*u).to_owned()),
        [SHARE_CODE_OF, o, s, h] => {
            KeyKind::ShareCodeOf((*o).to_owned(), (*s).to_owned(), (*h).to_owned())
        }
        _ => KeyKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_classify_back() {
        assert_eq!(classify(&user("alice")), KeyKind::User("alice".into()));
        assert_eq!(
            classify(&server("alice", "nb1")),
            KeyKind::Server("alice".into(), "nb1".into())
        );
        assert_eq!(classify(&token("ab")), KeyKind::Token("ab".into()));
        assert_eq!(classify(&group("g")), KeyKind::Group("g".into()));
        assert_eq!(
            classify(&member("g", "alice")),
            KeyKind::Member("g".into(), "alice".into())
        );
        assert_eq!(
            classify(&user_group("alice", "g")),
            KeyKind::UserGroup("alice".into(), "g".into())
        );
        assert_eq!(classify(b"junk\xff"), KeyKind::Other);
        let bob = ShareWith::User("bob".into());
        assert_eq!(
            classify(&share("alice", "", &bob)),
            KeyKind::Share("alice".into(), String::new(), bob.clone())
        );
        assert_eq!(
            classify(&share_to(&bob, "alice", "nb")),
            KeyKind::ShareTo(bob, "alice".into(), "nb".into())
        );
        assert_eq!(classify(&share_code("h")), KeyKind::ShareCode("h".into()));
    }

    #[test]
    fn the_code_range_holds_every_code_and_no_client() {
        let (b, e) = codes();
        let within = |k: &[u8]| k >= b.as_slice() && k < e.as_slice();
        assert!(within(&code("00")) && within(&code("ff")) && within(&code("")));
        assert!(!within(&client("code")) && !within(&client("codex")));
        assert!(!within(&token("ab")) && !within(&meta("code")));
    }

    #[test]
    fn servers_of_one_user_do_not_include_a_longer_name() {
        let (b, e) = servers_of("al");
        let k = server("alice", "");
        assert!(!(k.as_slice() >= b.as_slice() && k.as_slice() < e.as_slice()));
        let k = server("al", "x");
        assert!(k.as_slice() >= b.as_slice() && k.as_slice() < e.as_slice());
    }
}
