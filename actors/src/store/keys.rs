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
//! | `("m", name)` | hub metadata: the cookie secret, id sequences, the live set, draining marks |
//! | `("lease",)` | the leader lease of nodes that share a store (FoundationDB); not in the replica |

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
    Other,
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
