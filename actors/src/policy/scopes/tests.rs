//! Galilean's own cases for the scope engine; JupyterHub's are in `ported`.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn alice() -> ScopeOwner {
    ScopeOwner::User("alice".into())
}

// The default roles as the tests here need them, without groups or config roles
// (`policy::rbac` holds them for the hub).

fn user_role_scopes(admin: bool) -> Vec<String> {
    let mut raw = vec![galilean_proto::scopes::SELF.to_owned()];
    if admin {
        raw.extend(
            galilean_proto::scopes::ADMIN_ROLE_SCOPES
                .iter()
                .map(|s| s.to_string()),
        );
    }
    raw
}

fn user_scopes(name: &str, admin: bool) -> ScopeSet {
    ScopeSet::expand(
        &user_role_scopes(admin),
        &ScopeOwner::User(name.to_owned()),
        None,
    )
    .unwrap()
}

fn service_scopes(name: &str, admin: bool) -> ScopeSet {
    if !admin {
        return ScopeSet::default();
    }
    let raw = galilean_proto::scopes::ADMIN_ROLE_SCOPES;
    ScopeSet::expand(raw, &ScopeOwner::Service(name.to_owned()), None).unwrap()
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
fn service_without_role_holds_nothing() {
    // as in JupyterHub: even its identify scopes are met with what it holds (none);
    // GET /hub/api/user lets it read its own identity by itself
    let owner = ScopeOwner::Service("culler".into());
    let none = service_scopes("culler", false);
    let s = token_scopes(&["inherit".into()], &owner, &none, None);
    assert!(s.is_empty());
    let s = token_scopes(&[], &owner, &none, None);
    assert!(s.is_empty());
    let s = token_scopes(&[], &owner, &service_scopes("culler", true), None);
    assert_eq!(s.to_strings(), vec!["read:services:name!service=culler"]);
}

fn groups(user: &str, group: &str) -> bool {
    matches!(
        (user, group),
        ("alice" | "bob", "physics") | ("carol", "chemistry")
    )
}

#[test]
fn group_filters_cover_members_and_their_servers() {
    let s = ScopeSet::expand(&["read:users!group=physics"], &alice(), None).unwrap();
    let check = |t| s.check_in("read:users", t, &groups);
    assert_eq!(check(Target::User("bob")), Access::Allowed);
    assert_eq!(check(Target::User("carol")), Access::FilteredOut);
    let bob_nb = Target::Server {
        user: "bob",
        server: "nb",
    };
    assert_eq!(check(bob_nb), Access::Allowed);
    assert_eq!(check(Target::Group("physics")), Access::Allowed);
    assert_eq!(check(Target::Group("chemistry")), Access::FilteredOut);
    // without membership, a group filter covers only its group
    assert_eq!(
        s.check("read:users", Target::User("bob")),
        Access::FilteredOut
    );
    assert_eq!(
        s.check("read:users", Target::Group("physics")),
        Access::Allowed
    );
}

#[test]
fn a_filtered_scope_allows_nothing_without_a_target() {
    // JupyterHub's needs_scope: 403 for a scope held only with filters
    let s = ScopeSet::expand(&["admin:users!user=alice"], &alice(), None).unwrap();
    assert_eq!(s.check("admin:users", Target::Global), Access::Denied);
    assert_eq!(
        s.check_any(&["read:hub", "admin:users"], Target::Global),
        Access::Denied
    );
    assert_eq!(
        s.check("admin:users", Target::User("alice")),
        Access::Allowed
    );
}

#[test]
fn intersection_resolves_groups_with_membership() {
    let a = ScopeSet::expand(&["read:users!group=physics"], &alice(), None).unwrap();
    let b = ScopeSet::expand(
        &["read:users!user=bob", "read:users!user=carol"],
        &alice(),
        None,
    )
    .unwrap();
    let want = vec![
        "read:users!user=bob",
        "read:users:activity!user=bob",
        "read:users:groups!user=bob",
        "read:users:name!user=bob",
    ];
    assert_eq!(a.intersect_in(&b, &groups).to_strings(), want);
    assert_eq!(b.intersect_in(&a, &groups).to_strings(), want);
    assert!(a.intersect(&b).is_empty());
}

#[test]
fn all_is_refused_as_renamed() {
    assert_eq!(ScopeSet::validate(&["all"]), Err(ScopeError::AllIsInherit));
    assert_eq!(
        ScopeError::AllIsInherit.to_string(),
        "Draft scope 'all' is now called 'inherit'"
    );
}

#[test]
fn bare_and_valued_filters_are_well_formed() {
    let ok = [
        "read:users!user",
        "read:users!user=bob",
        "access:servers!server",
        "access:servers!server=bob/",
        "read:groups!group=physics",
        "access:services!service",
        "access:services!service=culler",
        "self",
        "inherit",
    ];
    ScopeSet::validate(&ok).unwrap();
    for bad in [
        "read:users!group",
        "read:users!server=bob",
        "read:users!service=",
        "read:users!users=bob",
        "read:users!",
    ] {
        assert_eq!(
            ScopeSet::validate(&[bad]),
            Err(ScopeError::BadFilter(bad.to_owned())),
            "{bad}"
        );
    }
}

fn custom(defs: &[(&str, &[&str])]) -> BTreeMap<String, CustomScope> {
    defs.iter()
        .map(|(name, subs)| {
            let def = CustomScope {
                description: Some(format!("about {name}")),
                subscopes: subs.iter().map(|s| s.to_string()).collect(),
            };
            (name.to_string(), def)
        })
        .collect()
}

#[test]
fn custom_scope_names_follow_jupyterhubs_pattern() {
    for ok in [
        "custom:abc",
        "custom:jupyter_server:read:*",
        "custom:0-a_",
        "custom:a:b*",
    ] {
        Catalog::with_custom(&custom(&[(ok, &[])])).unwrap();
    }
    for bad in [
        "custom:ab",
        "custom:_abc",
        "custom:abc-",
        "custom:abc:",
        "custom:Abc",
        "custom:a b",
        "custom",
        "self",
        "inherit",
    ] {
        let got = Catalog::with_custom(&custom(&[(bad, &[])]));
        assert!(matches!(got, Err(ScopeError::BadCustom(_))), "{bad}");
    }
}

#[test]
fn custom_scopes_expand_to_their_subscopes_under_the_same_filter() {
    let catalog = Catalog::with_custom(&custom(&[
        ("custom:jupyter:read", &["custom:jupyter:read:contents"]),
        ("custom:jupyter:read:contents", &[]),
    ]))
    .unwrap();
    catalog
        .validate(&["custom:jupyter:read!server=alice/", "read:users"])
        .unwrap();
    assert_eq!(
        Catalog::builtin().validate(&["custom:jupyter:read"]),
        Err(ScopeError::Unknown("custom:jupyter:read".into()))
    );
    let s = ScopeSet::expand_in(&catalog, &["custom:jupyter:read!user"], &alice(), None).unwrap();
    assert_eq!(
        s.to_strings(),
        vec![
            "custom:jupyter:read!user=alice",
            "custom:jupyter:read:contents!user=alice",
        ]
    );
}

#[test]
fn custom_scopes_may_not_be_their_own_subscopes() {
    let got = Catalog::with_custom(&custom(&[
        ("custom:aaa", &["custom:bbb"]),
        ("custom:bbb", &["custom:ccc"]),
        ("custom:ccc", &["custom:aaa"]),
    ]));
    assert_eq!(
        got,
        Err(ScopeError::BadCustom(
            "custom scope custom:aaa is its own subscope: \
             custom:aaa -> custom:bbb -> custom:ccc -> custom:aaa"
                .into()
        ))
    );
}

#[test]
fn a_server_filter_drops_every_read_users_scope() {
    // JupyterHub drops the base scope too when it is one of read:users*
    let s = ScopeSet::expand(&["read:users!server=alice/nb"], &alice(), None).unwrap();
    assert!(s.is_empty());
    let s = ScopeSet::expand(&["servers!server=alice/nb"], &alice(), None).unwrap();
    assert_eq!(
        s.to_strings(),
        vec![
            "delete:servers!server=alice/nb",
            "read:servers!server=alice/nb",
            "servers!server=alice/nb",
            "start:servers!server=alice/nb",
        ]
    );
}

#[test]
fn bare_filters_without_a_target_drop_the_scope() {
    let culler = ScopeOwner::Service("culler".into());
    let s = ScopeSet::expand(
        &[
            "read:users!user",
            "access:servers!server",
            "read:services!service",
        ],
        &culler,
        None,
    )
    .unwrap();
    assert_eq!(
        s.to_strings(),
        vec![
            "read:services!service=culler",
            "read:services:name!service=culler",
        ]
    );
    // an issuing service wins over the owning one
    let issuer = Filter::Service("dashboard".into());
    let s = ScopeSet::expand(&["access:services!service"], &culler, Some(&issuer)).unwrap();
    assert_eq!(s.to_strings(), vec!["access:services!service=dashboard"]);
}

#[test]
fn expanded_scopes_read_back_as_they_are() {
    let s = ScopeSet::from_expanded(&["users!user=bob", "read:users"]).unwrap();
    assert_eq!(s.to_strings(), vec!["read:users", "users!user=bob"]);
    assert!(ScopeSet::from_expanded(&["users!user"]).is_err());
}

#[test]
fn visible_names_what_list_filters_cover() {
    let s = ScopeSet::expand(
        &[
            "list:users!user=dave",
            "list:users!group=physics",
            "read:servers!server=carol/nb",
        ],
        &alice(),
        None,
    )
    .unwrap();
    let v = s.visible("list:users");
    assert!(v.only(list_filter_kinds("list:users").unwrap()));
    assert!(!v.only(list_filter_kinds("list:groups").unwrap()));
    assert_eq!(
        v.kinds(),
        [FilterKind::User, FilterKind::Group].into_iter().collect()
    );
    for (user, shown) in [("dave", true), ("bob", true), ("carol", false)] {
        assert_eq!(v.user(user, &groups), shown, "{user}");
    }
    assert!(v.server("bob", "", &groups));
    assert!(!v.server("carol", "nb", &groups));
    let servers = s.visible("read:servers");
    assert!(servers.server("carol", "nb", &()));
    assert!(!servers.server("carol", "other", &()));
    assert!(!servers.user("carol", &()));
    assert_eq!(s.visible("list:groups"), Visible::None);
    assert!(!Visible::None.user("dave", &()));
    assert!(Visible::All.group("anything") && Visible::All.only(&[]));
    assert_eq!(list_filter_kinds("list:services"), None);
}

#[test]
fn token_excess_names_what_the_owner_lacks() {
    let owner = user_scopes("alice", false);
    let catalog = Catalog::builtin();
    let excess = |raw: &[&str]| token_excess(&catalog, raw, &alice(), None, &owner, &groups);
    assert_eq!(excess(&["inherit"]), Ok(vec![]));
    assert_eq!(
        excess(&["read:users!user", "tokens!user=alice"]),
        Ok(vec![])
    );
    assert_eq!(
        excess(&["read:users:name!user=bob", "read:tokens!user=alice"]),
        Ok(vec!["read:users:name!user=bob".to_owned()])
    );
    assert_eq!(
        excess(&["nope"]),
        Err(ScopeError::Unknown("nope".to_owned()))
    );
    // a group's members are the owner's to give when the owner holds them
    let owner = ScopeSet::expand(&["read:users!group=physics"], &alice(), None).unwrap();
    let got = token_excess(
        &catalog,
        &["read:users:name!user=bob"],
        &alice(),
        None,
        &owner,
        &groups,
    );
    assert_eq!(got, Ok(vec![]));
}

#[test]
fn tokens_meet_group_filters_with_membership() {
    let owner = ScopeSet::expand(&["self", "read:users!group=physics"], &alice(), None).unwrap();
    let raw = [
        "read:users:activity!user=bob",
        "read:users:activity!user=carol",
    ];
    let s = token_scopes_in(&Catalog::builtin(), &raw, &alice(), &owner, None, &groups);
    assert_eq!(
        s.to_strings(),
        vec![
            "read:users:activity!user=bob",
            "read:users:groups!user=alice",
            "read:users:name!user=alice",
        ]
    );
}

#[test]
fn requested_scopes_resolve_against_what_is_on_offer() {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let catalog = Catalog::builtin();
    let resolve = |requested: &[&str], have: &[&str]| {
        resolve_requested_scopes(
            &catalog,
            &set(requested),
            &set(have),
            &alice(),
            None,
            &groups,
        )
        .unwrap()
    };
    // as written
    assert_eq!(
        resolve(&["inherit", "read:users"], &["inherit"]),
        (set(&["inherit"]), set(&["read:users"]))
    );
    // through group membership
    assert_eq!(
        resolve(&["read:users!user=bob"], &["read:users!group=physics"]),
        (set(&["read:users!user=bob"]), set(&[]))
    );
    // in part: the part held, expanded
    assert_eq!(
        resolve(&["users!user=bob"], &["read:users:name"]),
        (set(&["read:users:name!user=bob"]), set(&["users!user=bob"]))
    );
    // a scope that expands to nothing is allowed, as JupyterHub allows it
    assert_eq!(
        resolve(&["read:users!server=bob/"], &[]),
        (set(&["read:users!server=bob/"]), set(&[]))
    );
}
