//! Galilean's own cases for the scope engine.

use super::*;

fn alice() -> ScopeOwner {
    ScopeOwner::User("alice".into())
}

#[test]
fn self_expands_to_user_filtered_scopes() {
    let s = user_scopes("alice", false);
    assert_eq!(
        s.check("read:users", Target::User("alice")),
        Access::Allowed
    );
    assert_eq!(
        s.check("read:users", Target::User("bob")),
        Access::FilteredOut
    );
    assert_eq!(s.check("list:users", Target::Global), Access::Denied);
    assert_eq!(
        s.check(
            "access:servers",
            Target::Server {
                user: "alice",
                server: "nb"
            }
        ),
        Access::Allowed
    );
    assert_eq!(s.to_strings().len(), 15);
}

#[test]
fn admin_holds_unfiltered_scopes() {
    let s = user_scopes("root", true);
    assert_eq!(s.check("admin:users", Target::User("x")), Access::Allowed);
    assert_eq!(
        s.check("read:users:name", Target::User("x")),
        Access::Allowed
    );
    assert_eq!(
        s.check("admin:server_state", Target::Global),
        Access::Allowed
    );
}

#[test]
fn server_token_scopes_match_jupyterhub() {
    let owner = user_scopes("alice", false);
    let issuer = Filter::Server("alice/".into());
    let raw: Vec<String> = vec!["users:activity!user".into(), "access:servers!server".into()];
    let s = token_scopes(&raw, &alice(), &owner, Some(&issuer));
    assert_eq!(
        s.to_strings(),
        vec![
            "access:servers!server=alice/",
            "read:users:activity!user=alice",
            "read:users:groups!user=alice",
            "read:users:name!user=alice",
            "users:activity!user=alice",
        ]
    );
}

#[test]
fn oauth_token_for_own_server() {
    let owner = user_scopes("alice", false);
    let issuer = Filter::Server("alice/".into());
    let raw: Vec<String> = vec![
        "read:users:name!user".into(),
        "read:users:groups!user".into(),
    ];
    let s = token_scopes(&raw, &alice(), &owner, Some(&issuer));
    assert_eq!(
        s.to_strings(),
        vec![
            "access:servers!server=alice/",
            "read:users:groups!user=alice",
            "read:users:name!user=alice",
        ]
    );
}

#[test]
fn token_cannot_exceed_owner() {
    let owner = user_scopes("alice", false);
    let raw: Vec<String> = vec!["admin:users".into(), "read:users!user=bob".into()];
    let s = token_scopes(&raw, &alice(), &owner, None);
    assert_eq!(
        s.check("admin:users", Target::User("alice")),
        Access::Denied
    );
    assert_ne!(s.check("read:users", Target::User("bob")), Access::Allowed);
}

#[test]
fn intersection_narrows_user_to_server() {
    let a = ScopeSet::expand(&["access:servers!user=alice"], &alice(), None).unwrap();
    let b = ScopeSet::expand(&["access:servers!server=alice/nb1"], &alice(), None).unwrap();
    assert_eq!(
        a.intersect(&b).to_strings(),
        vec!["access:servers!server=alice/nb1"]
    );
    assert_eq!(
        b.intersect(&a).to_strings(),
        vec!["access:servers!server=alice/nb1"]
    );
}

#[test]
fn unknown_and_malformed_scopes_are_rejected() {
    assert!(ScopeSet::validate(&["read:nope"]).is_err());
    assert!(ScopeSet::validate(&["read:users!planet=x"]).is_err());
    assert!(ScopeSet::validate(&["read:users!user="]).is_err());
    assert!(ScopeSet::validate(&["read:users!user=bob", "inherit", "self"]).is_ok());
}

#[test]
fn server_filter_drops_read_users_subscopes() {
    let s = ScopeSet::expand(&["read:servers!server=alice/nb"], &alice(), None).unwrap();
    assert_eq!(s.to_strings(), vec!["read:servers!server=alice/nb"]);
}

#[test]
fn service_without_role_can_only_identify() {
    let owner = ScopeOwner::Service("culler".into());
    let s = token_scopes(
        &["inherit".into()],
        &owner,
        &service_scopes("culler", false),
        None,
    );
    assert!(s.to_strings().is_empty());
    let s = token_scopes(&[], &owner, &service_scopes("culler", false), None);
    assert_eq!(s.to_strings(), vec!["read:services:name!service=culler"]);
}
