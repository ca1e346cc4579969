//! JupyterHub 6's own scope test cases (jupyterhub/tests/test_scopes.py and
//! test_roles.py), as tables run against this engine. The facts are JupyterHub's; a
//! database-backed case is run with an in-test group table in its place. Where a case
//! had to change, or our answer differs on purpose, the comment above it says so.

use std::collections::{BTreeMap, BTreeSet};

use galilean_proto::scopes::SELF_SCOPES;

use super::*;

/// Group → members, standing in for JupyterHub's database.
struct Groups(BTreeMap<&'static str, Vec<&'static str>>);

impl Membership for Groups {
    fn in_group(&self, user: &str, group: &str) -> bool {
        self.0.get(group).is_some_and(|m| m.contains(&user))
    }
}

fn groups(table: &[(&'static str, &[&'static str])]) -> Groups {
    Groups(table.iter().map(|(g, m)| (*g, m.to_vec())).collect())
}

/// Already-expanded scopes, read as JupyterHub's `parse_scopes` reads them.
fn parsed(scopes: &[&str]) -> ScopeSet {
    ScopeSet::from_expanded(scopes).unwrap()
}

fn strings(set: &ScopeSet) -> BTreeSet<String> {
    set.to_strings().into_iter().collect()
}

fn owned(scopes: &[&str]) -> BTreeSet<String> {
    scopes.iter().map(|s| s.to_string()).collect()
}

fn user(name: &str) -> ScopeOwner {
    ScopeOwner::User(name.to_owned())
}

fn service(name: &str) -> ScopeOwner {
    ScopeOwner::Service(name.to_owned())
}

/// The request a filtered scope string asks about, as JupyterHub's `has_scope` reads it.
fn target_of(scope: &str) -> (&str, Target<'_>) {
    let Some((base, filter)) = scope.split_once('!') else {
        return (scope, Target::Global);
    };
    let (kind, value) = filter.split_once('=').unwrap();
    let target = match kind {
        "user" => Target::User(value),
        "server" => {
            let (user, server) = value.split_once('/').unwrap();
            Target::Server { user, server }
        }
        "group" => Target::Group(value),
        "service" => Target::Service(value),
        other => panic!("no such filter {other}"),
    };
    (base, target)
}

type Intersection = (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

// test_scopes.py::test_intersect_expanded_scopes (no database). JupyterHub also checks that
// it warns when a user on one side and a group on the other could not be resolved; we do
// not warn.
const INTERSECT_EXPANDED: &[Intersection] = &[
    (&[], &[], &[]),
    (&[], &["users"], &[]),
    (&["users!user=x", "users!group=y"], &[], &[]),
    (
        &["users!user=x", "users!user=y", "users!group=y"],
        &["users!user=x"],
        &["users!user=x"],
    ),
    (
        &["users!user=x", "users!group=y"],
        &["users!user=x", "users!group=y", "users!user=z"],
        &["users!user=x", "users!group=y"],
    ),
    (&["users!group=y", "users!user=z"], &["users!user=x"], &[]),
    (
        &["users!group=y", "users!user=z"],
        &["users!server=x/y"],
        &[],
    ),
    (
        &["users!group=y", "users!user=x"],
        &["users!server=x/y"],
        &["users!server=x/y"],
    ),
    (
        &["read:servers!user=abc"],
        &["read:servers!server=abc/xyz"],
        &["read:servers!server=abc/xyz"],
    ),
    (
        &["read:servers!user=abc"],
        &["read:servers!server=abcd/xyz"],
        &[],
    ),
];

#[test]
fn intersect_expanded_scopes() {
    for (left, right, expected) in INTERSECT_EXPANDED {
        for (a, b) in [(left, right), (right, left)] {
            let got = parsed(a).intersect(&parsed(b));
            assert_eq!(strings(&got), owned(expected), "{a:?} & {b:?}");
        }
    }
}

type GroupIntersection = (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    &'static [(&'static str, &'static [&'static str])],
);

// test_scopes.py::test_intersect_groups (the database's groups as a table).
const INTERSECT_GROUPS: &[GroupIntersection] = &[
    (
        &["users!group=gx"],
        &["users!user=ux"],
        &["users!user=ux"],
        &[("gx", &["ux"])],
    ),
    (
        &["read:users!group=gx"],
        &["read:users!user=nosuchuser"],
        &[],
        &[],
    ),
    (
        &["read:users!group=gx"],
        &["read:users!server=nosuchuser/server"],
        &[],
        &[],
    ),
    (
        &["read:users!group=gx"],
        &["read:users!server=ux/server"],
        &["read:users!server=ux/server"],
        &[("gx", &["ux"])],
    ),
    (
        &["read:users!group=gx"],
        &["read:users!server=ux/server", "read:users!user=uy"],
        &["read:users!server=ux/server"],
        &[("gx", &["ux"]), ("gy", &["uy"])],
    ),
    (
        &["read:users!group=gy"],
        &["read:users!server=ux/server", "read:users!user=uy"],
        &["read:users!user=uy"],
        &[("gx", &["ux"]), ("gy", &["uy"])],
    ),
    // the group > user > server hierarchy
    (
        &["read:servers!server=ux/server", "read:servers!group=gy"],
        &["read:servers!server=uy/server", "read:servers!user=ux"],
        &[
            "read:servers!server=ux/server",
            "read:servers!server=uy/server",
        ],
        &[("gx", &["ux"]), ("gy", &["uy"])],
    ),
    // the group > user hierarchy
    (
        &["read:servers!user=ux", "read:servers!group=gy"],
        &["read:servers!user=uy", "read:servers!group=gx"],
        &["read:servers!user=ux", "read:servers!user=uy"],
        &[("gx", &["ux"]), ("gy", &["uy"])],
    ),
];

#[test]
fn intersect_groups() {
    for (left, right, expected, table) in INTERSECT_GROUPS {
        let membership = groups(table);
        for (a, b) in [(left, right), (right, left)] {
            let got = parsed(a).intersect_in(&parsed(b), &membership);
            assert_eq!(strings(&got), owned(expected), "{a:?} & {b:?}");
        }
    }
}

type TokenCase = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

// test_scopes.py::test_resolve_token_permissions: a token of `temp_user_1`, whose only
// role has the first scopes, with a role of the second scopes; the third are what the
// token holds (identify scopes included, intersected like the rest). No groups exist.
const TOKEN_PERMISSIONS: &[TokenCase] = &[
    (
        "no_filter",
        &["users:activity"],
        &["users:activity"],
        &["users:activity", "read:users:activity"],
    ),
    (
        "valid_own_filter",
        &["read:users:activity"],
        &["read:users:activity!user"],
        &["read:users:activity!user=temp_user_1"],
    ),
    (
        "valid_other_filter",
        &["read:users:activity"],
        &["read:users:activity!user=otheruser"],
        &["read:users:activity!user=otheruser"],
    ),
    (
        "no_filter_owner_filter",
        &["read:users:activity!user"],
        &["read:users:activity"],
        &["read:users:activity!user=temp_user_1"],
    ),
    (
        "valid_own_filter",
        &["read:users:activity!user"],
        &["read:users:activity!user"],
        &["read:users:activity!user=temp_user_1"],
    ),
    (
        "invalid_filter",
        &["read:users:activity!user"],
        &["read:users:activity!user=otheruser"],
        &[],
    ),
    (
        "subscopes_cross_filter",
        &["users!user=x"],
        &["read:users:name"],
        &["read:users:name!user=x"],
    ),
    (
        "multiple_user_filter",
        &["users!user=x", "users!user=y"],
        &["read:users:name!user=x"],
        &["read:users:name!user=x"],
    ),
    (
        "no_intersection_group_user",
        &["users!group=y"],
        &["users!user=x"],
        &[],
    ),
    // JupyterHub writes `servers!server=x`, a server filter without `/`, which we refuse
    // as malformed; `x/` (x's default server) keeps the case's sense
    (
        "no_intersection_user_server",
        &["servers!user=y"],
        &["servers!server=x/"],
        &[],
    ),
    (
        "users_and_groups_both",
        &["users!group=x", "users!user=y"],
        &["read:users:name!group=x", "read:users!user=y"],
        &[
            "read:users:name!group=x",
            "read:users!user=y",
            "read:users:name!user=y",
            "read:users:groups!user=y",
            "read:users:activity!user=y",
        ],
    ),
    (
        "users_and_groups_user_only",
        &["users!group=x", "users!user=y"],
        &["read:users:name!group=z", "read:users!user=y"],
        &[
            "read:users!user=y",
            "read:users:name!user=y",
            "read:users:groups!user=y",
            "read:users:activity!user=y",
        ],
    ),
];

#[test]
fn resolve_token_permissions() {
    let owner = user("temp_user_1");
    let catalog = Catalog::builtin();
    for (name, role, token, expected) in TOKEN_PERMISSIONS {
        let owner_scopes = ScopeSet::expand(role, &owner, None).unwrap();
        let got = token_scopes_in(&catalog, token, &owner, &owner_scopes, None, &groups(&[]));
        assert_eq!(strings(&got), owned(expected), "{name}");
    }
}

/// For the expansion cases: the user, their server `salmon`, and a service.
const U: &str = "sal";
const SERVER: &str = "sal/salmon";
const SERVICE: &str = "mockservice";

/// JupyterHub's `_expand_self_scope`: these, expanded, each with `!user=<name>`.
const SELF_RAW: &[&str] = &[
    "read:users",
    "users:shares",
    "read:shares",
    "users:activity",
    "servers",
    "tokens",
    "access:servers",
];

fn self_scopes(name: &str) -> BTreeSet<String> {
    SELF_SCOPES
        .iter()
        .map(|s| format!("{s}!user={name}"))
        .collect()
}

/// `{user}`, `{server}`, `{service}` in a case's scopes.
fn fill(scopes: &[&str]) -> BTreeSet<String> {
    scopes
        .iter()
        .map(|s| {
            s.replace("{user}", U)
                .replace("{server}", SERVER)
                .replace("{service}", SERVICE)
        })
        .collect()
}

/// The issuing client of a case: the user's server when the scopes mention `server`,
/// else the service (as JupyterHub's tests choose).
fn issuer_for(scopes: &[&[&str]], mark: &str) -> Filter {
    if scopes.iter().any(|s| s.iter().any(|s| s.contains(mark))) {
        Filter::Server(SERVER.to_owned())
    } else {
        Filter::Service(SERVICE.to_owned())
    }
}

// test_scopes.py::test_expand_scopes: `*` stands for the user's `self` scopes.
const EXPAND_SCOPES: &[(&[&str], &[&str])] = &[
    (&["read:users:name!user"], &["read:users:name!user={user}"]),
    (
        &["users:activity!user"],
        &[
            "read:users:activity!user={user}",
            "users:activity!user={user}",
        ],
    ),
    (&["self"], &["*"]),
    (
        &["access:services", "access:services!service=x"],
        &["access:services"],
    ),
    (
        &["access:services!service"],
        &["access:services!service={service}"],
    ),
    (
        &["access:servers!server"],
        &["access:servers!server={server}"],
    ),
];

#[test]
fn expand_scopes() {
    for (raw, expected) in EXPAND_SCOPES {
        let issuer = issuer_for(&[*raw], "server");
        let raw: Vec<String> = fill(raw).into_iter().collect();
        let got = ScopeSet::expand(&raw, &user(U), Some(&issuer)).unwrap();
        let mut want = fill(expected);
        if want.remove("*") {
            want.extend(self_scopes(U));
        }
        assert_eq!(strings(&got), want, "{raw:?}");
    }
}

// test_roles.py::test_get_expanded_scopes: a role's scopes expanded (owner: none there,
// any here, as no case has a bare filter).
const EXPANDED_ROLE_SCOPES: &[(&[&str], &[&str])] = &[
    (
        &["admin:users"],
        &[
            "admin:users",
            "admin:auth_state",
            "users",
            "delete:users",
            "list:users",
            "read:users",
            "users:activity",
            "read:users:name",
            "read:users:groups",
            "read:roles:users",
            "read:users:activity",
        ],
    ),
    (
        &["users"],
        &[
            "users",
            "list:users",
            "read:users",
            "users:activity",
            "read:users:name",
            "read:users:groups",
            "read:users:activity",
        ],
    ),
    (
        &["read:users"],
        &[
            "read:users",
            "read:users:name",
            "read:users:groups",
            "read:users:activity",
        ],
    ),
    (&["read:servers"], &["read:servers", "read:users:name"]),
    (
        &["admin:groups"],
        &[
            "admin:groups",
            "groups",
            "delete:groups",
            "list:groups",
            "read:groups",
            "read:roles:groups",
            "read:groups:name",
        ],
    ),
    (
        &["admin:groups", "read:servers"],
        &[
            "admin:groups",
            "groups",
            "delete:groups",
            "list:groups",
            "read:groups",
            "read:roles:groups",
            "read:groups:name",
            "read:servers",
            "read:users:name",
        ],
    ),
    (
        &["tokens!group=hobbits"],
        &["tokens!group=hobbits", "read:tokens!group=hobbits"],
    ),
    (
        &["admin:services"],
        &[
            "read:roles:services",
            "read:services:name",
            "admin:services",
            "list:services",
            "read:services",
        ],
    ),
];

#[test]
fn get_expanded_scopes() {
    for (raw, expected) in EXPANDED_ROLE_SCOPES {
        let got = ScopeSet::expand(raw, &service("anyone"), None).unwrap();
        assert_eq!(strings(&got), owned(expected), "{raw:?}");
    }
}

// test_scopes.py::_expand_self_scope and test_user_filter_expansion: `self` is the seven
// scopes above expanded with `!user=<name>`, the same as asking for them with a bare
// `!user`; and test_metascope_self_expansion: `self` is nothing for a service.
#[test]
fn self_scope_expansion() {
    let alice = user("alice");
    let from_raw: Vec<String> = SELF_RAW.iter().map(|s| format!("{s}!user")).collect();
    let expected = self_scopes("alice");
    for raw in [from_raw, vec!["self".to_owned()]] {
        let got = ScopeSet::expand(&raw, &alice, None).unwrap();
        assert_eq!(strings(&got), expected, "{raw:?}");
    }
    assert!(ScopeSet::expand(&["self"], &service("svc"), None)
        .unwrap()
        .is_empty());
    let svc = service("svc");
    let owner = ScopeSet::expand(&["self"], &svc, None).unwrap();
    let token = token_scopes(&["inherit".to_owned()], &svc, &owner, None);
    assert!(token.is_empty());
}

// test_scopes.py::test_metascope_inherit_expansion: an `inherit` token holds exactly its
// owner's scopes; a token with no scopes at most the owner's identify scopes.
#[test]
fn metascope_inherit_expansion() {
    let owner = user("alice");
    let held = ScopeSet::expand(&["self"], &owner, None).unwrap();
    assert_eq!(
        token_scopes(&["inherit".to_owned()], &owner, &held, None),
        held
    );
    let none = token_scopes(&[], &owner, &held, None);
    assert!(strings(&none).is_subset(&strings(&identify_scopes(&owner))));
    assert!(!none.is_empty());
}

type Requested = (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

// test_scopes.py::test_resolve_requested_scopes: (requested, have, allowed, disallowed);
// the issuing client is the user's server when a scope mentions `!server`, else a
// service.
const RESOLVE_REQUESTED: &[Requested] = &[
    (
        &["read:users:name!user"],
        &["read:users:name!user={user}"],
        &["read:users:name!user"],
        &[],
    ),
    (
        &["read:servers!server"],
        &["read:servers!user"],
        &["read:servers!server"],
        &[],
    ),
    (
        &["read:servers!server={server}"],
        &["read:servers"],
        &["read:servers!server={server}"],
        &[],
    ),
    (
        &["admin:servers!server"],
        &["read:servers"],
        &["read:servers!server={server}"],
        &["admin:servers!server"],
    ),
    (
        &["admin:servers", "read:users"],
        &["read:users"],
        &["read:users"],
        &["admin:servers"],
    ),
];

#[test]
fn resolve_requested() {
    let catalog = Catalog::builtin();
    for (requested, have, allowed, disallowed) in RESOLVE_REQUESTED {
        let issuer = issuer_for(&[*requested, *have], "!server");
        let got = resolve_requested_scopes(
            &catalog,
            &fill(requested),
            &fill(have),
            &user(U),
            Some(&issuer),
            &groups(&[]),
        )
        .unwrap();
        assert_eq!(got, (fill(allowed), fill(disallowed)), "{requested:?}");
    }
}

// test_scopes.py::test_has_scope: USER is in GROUP; the held scopes are expanded first.
// A scope without a filter asks about no particular resource.
const HAS_SCOPE: &[(&str, &str, bool)] = &[
    // exact matches
    ("read:users", "read:users", true),
    ("read:users!user=USER", "read:users!user=USER", true),
    (
        "read:servers!server=USER/x",
        "read:servers!server=USER/x",
        true,
    ),
    ("read:groups!group=GROUP", "read:groups!group=GROUP", true),
    // subscopes
    ("read:users:name", "read:users", true),
    // subscopes with matching filter
    ("read:users:name!user=USER", "read:users!user=USER", true),
    ("read:users!user=USER", "read:users!group=GROUP", true),
    ("read:users!user=USER", "read:users", true),
    ("read:servers!server=USER/x", "read:servers", true),
    ("read:servers!server=USER/x", "servers!server=USER/x", true),
    ("read:servers!server=USER/x", "servers!user=USER", true),
    ("read:servers!server=USER/x", "servers!group=GROUP", true),
    // shouldn't match
    ("read:users", "read:users!user=USER", false),
    ("read:users", "read:users!user=USER", false),
    ("read:users!user=USER", "read:users!user=other", false),
    ("read:users!user=USER", "read:users!group=other", false),
    (
        "read:servers!server=USER/x",
        "servers!server=other/x",
        false,
    ),
    ("read:servers!server=USER/x", "servers!user=other", false),
    ("read:servers!server=USER/x", "servers!group=other", false),
    ("servers!server=USER/x", "read:servers!server=USER/x", false),
];

#[test]
fn has_scope() {
    let membership = groups(&[("GROUP", &["USER"])]);
    for (scope, have, ok) in HAS_SCOPE {
        let held = ScopeSet::expand(&[have], &user("USER"), None).unwrap();
        let (base, target) = target_of(scope);
        let got = held.check_in(base, target, &membership) == Access::Allowed;
        assert_eq!(got, *ok, "{scope} with {have}");
    }
}

// test_scopes.py::test_has_scope_post_filter: held at all, with or without filters. Its
// fourth case (a filtered scope asked with post_filter raises ValueError) has no
// counterpart: `visible` takes a base scope only.
const HAS_SCOPE_POST_FILTER: &[(&str, &str, bool)] = &[
    ("read:users", "read:users", true),
    ("read:users", "read:users!user=x", true),
    ("read:users", "read:groups!user=x", false),
];

#[test]
fn has_scope_post_filter() {
    for (scope, have, ok) in HAS_SCOPE_POST_FILTER {
        let held = parsed(&[have]);
        assert_eq!(
            held.visible(scope) != Visible::None,
            *ok,
            "{scope} with {have}"
        );
        assert_eq!(held.has_any(scope), *ok, "{scope} with {have}");
    }
}

/// A handler method of test_scope_method_access: its required scope and target.
fn method_target<'a>(method: &str, args: &'a [&'a str]) -> (&'static str, Target<'a>) {
    match method {
        "user_thing" => ("users", Target::User(args[0])),
        "server_thing" => (
            "servers",
            Target::Server {
                user: args[0],
                server: args[1],
            },
        ),
        "group_thing" => ("read:groups", Target::Group(args[0])),
        "service_thing" => ("read:services", Target::Service(args[0])),
        "other_thing" => ("users", Target::Global),
        other => panic!("no method {other}"),
    }
}

type MethodCase = (
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
    bool,
);

// test_scopes.py::test_scope_method_access, whose handlers hold their scopes as given (no
// expansion). `post_filter` needs `users` held at all, then `users!user=gob`. A server
// named None there is the empty name here (the answer is the same).
const METHOD_ACCESS: &[MethodCase] = &[
    (&["users"], "user_thing", &["user"], true),
    (&["users"], "user_thing", &["michael"], true),
    (&[""], "user_thing", &["michael"], false),
    (&["read:users"], "user_thing", &["gob"], false),
    (&["read:users"], "user_thing", &["michael"], false),
    (&["users!user=george"], "user_thing", &["george"], true),
    (&["users!user=george"], "user_thing", &["fake_user"], false),
    (&["users!user=george"], "user_thing", &["oscar"], false),
    (
        &["users!user=george", "users!user=oscar"],
        "user_thing",
        &["oscar"],
        true,
    ),
    (&["servers"], "server_thing", &["user1", "server_1"], true),
    (&["servers"], "server_thing", &["user1", ""], true),
    (&["servers"], "server_thing", &["user1", ""], true),
    (
        &["servers!server=maeby/bluth"],
        "server_thing",
        &["maeby", "bluth"],
        true,
    ),
    (
        &["servers!server=maeby/bluth"],
        "server_thing",
        &["gob", "bluth"],
        false,
    ),
    (
        &["servers!server=maeby/bluth"],
        "server_thing",
        &["maybe", "bluth2"],
        false,
    ),
    (&["read:services"], "service_thing", &["service1"], true),
    (
        &["users!user=george", "read:groups!group=bluths"],
        "group_thing",
        &["bluths"],
        true,
    ),
    (
        &["users!user=george", "read:groups!group=bluths"],
        "group_thing",
        &["george"],
        false,
    ),
    (
        &["groups!group=george", "read:groups!group=bluths"],
        "group_thing",
        &["george"],
        false,
    ),
    (&["users"], "other_thing", &["gob"], true),
    (&["read:users"], "other_thing", &["gob"], false),
    (&["users!user=gob"], "other_thing", &["gob"], false),
    (&["users!user=gob"], "post_filter", &[], true),
    (&["users!user=maeby"], "post_filter", &[], false),
];

#[test]
fn scope_method_access() {
    for (held, method, args, ok) in METHOD_ACCESS {
        let held = parsed(held);
        let got = if *method == "post_filter" {
            held.has_any("users") && held.check("users", Target::User("gob")) == Access::Allowed
        } else {
            let (base, target) = method_target(method, args);
            held.check(base, target) == Access::Allowed
        };
        assert_eq!(got, *ok, "{method}{args:?}");
    }
}

// test_scopes.py::test_double_scoped_method_succeeds and _denials: a handler needing
// both `users` and `read:services`.
#[test]
fn double_scoped_method() {
    let both = |held: &ScopeSet| {
        ["users", "read:services"]
            .iter()
            .all(|b| held.check(b, Target::Global) == Access::Allowed)
    };
    assert!(both(&parsed(&["users", "read:services"])));
    assert!(!both(&parsed(&["users", "read:groups"])));
}

// test_scopes.py::test_scope_constructor, test_scope_precendence, test_scope_check_*,
// test_scope_filters and test_scope_parse_server_name: held scopes as given.
#[test]
fn scope_checks_on_parsed_scopes() {
    let held = parsed(&["users", "read:users!user=george", "read:users!user=michael"]);
    assert_eq!(held.visible("users"), Visible::All);
    assert_eq!(
        held.visible("read:users"),
        Visible::Some {
            users: owned(&["george", "michael"]),
            groups: BTreeSet::new(),
            servers: BTreeSet::new(),
            services: BTreeSet::new(),
        }
    );
    let held = parsed(&["read:users!user=maeby", "read:users"]);
    assert_eq!(held.visible("read:users"), Visible::All);

    let held = parsed(&["read:users"]);
    assert_eq!(held.check("read:users", Target::Global), Access::Allowed);
    assert_eq!(
        held.check("read:users", Target::User("maeby")),
        Access::Allowed
    );

    let held = parsed(&["read:users!user=maeby"]);
    assert_ne!(held.check("read:users", Target::Global), Access::Allowed);
    assert_ne!(
        held.check("read:users", Target::User("gob")),
        Access::Allowed
    );
    let gob_server = Target::Server {
        user: "gob",
        server: "server",
    };
    assert_ne!(held.check("read:users", gob_server), Access::Allowed);

    let held = parsed(&[
        "read:users",
        "read:users!group=bluths",
        "read:users!user=maeby",
    ]);
    assert_eq!(
        held.check("read:users", Target::Group("bluth")),
        Access::Allowed
    );
    assert_eq!(
        held.check("read:users", Target::User("maeby")),
        Access::Allowed
    );

    let held = parsed(&["servers!server=maeby/server1", "read:users!user=maeby"]);
    let target = Target::Server {
        user: "maeby",
        server: "server1",
    };
    assert_eq!(held.check("servers", target), Access::Allowed);
}

// test_scopes.py::test_expand_groups, test_request_user_outside_group and
// test_request_fake_user: `GET /users/{name}` with `read:users!user=martha` and
// `read:users!group=bluth` (200), or a user outside them (404: held, filtered out).
#[test]
fn expand_groups() {
    let membership = groups(&[("bluth", &["michael", "gob"]), ("stuff", &[])]);
    let held = ScopeSet::expand(
        &[
            "read:users!user=martha",
            "read:users!group=bluth",
            "read:groups",
        ],
        &user("x"),
        None,
    )
    .unwrap();
    for (name, ok) in [
        ("martha", true),
        ("michael", true),
        ("gob", true),
        ("tobias", false),
        ("ann", false),
    ] {
        let want = if ok {
            Access::Allowed
        } else {
            Access::FilteredOut
        };
        assert_eq!(
            held.check_in("read:users", Target::User(name), &membership),
            want,
            "{name}"
        );
    }
    let held = ScopeSet::expand(&["read:users!group=stuff"], &user("x"), None).unwrap();
    for name in ["hello", "annyong"] {
        let got = held.check_in("read:users", Target::User(name), &membership);
        assert_eq!(got, Access::FilteredOut, "{name}");
    }
}

/// What a list endpoint answers for a held `base`: 403, or the items it keeps.
fn listed<'a>(
    held: &ScopeSet,
    base: &str,
    items: &[&'a str],
    keep: impl Fn(&Visible, &str) -> bool,
) -> Result<Vec<&'a str>, u16> {
    let visible = held.visible(base);
    let allowed = list_filter_kinds(base).is_none_or(|kinds| visible.only(kinds));
    if visible == Visible::None || !allowed {
        return Err(403);
    }
    Ok(items
        .iter()
        .copied()
        .filter(|i| keep(&visible, i))
        .collect())
}

type ListCase = (
    &'static [&'static str],
    Result<&'static [&'static str], u16>,
);

// test_scopes.py::test_list_users_filter: in-1 and in-2 are in GROUP. JupyterHub writes
// `list:users!server=irrelevant`, which we refuse as malformed (a server filter needs
// `/`); the case keeps its sense with a well-formed server.
const LIST_USERS: &[ListCase] = &[
    (
        &["list:users"],
        Ok(&["in-1", "in-2", "out-1", "out-2", "admin", "user"]),
    ),
    (&["read:users"], Err(403)),
    (&["list:users!server=irrelevant/x"], Err(403)),
    (&["list:users!user=nosuchuser"], Ok(&[])),
    (&["list:users!group=nosuchgroup"], Ok(&[])),
    (&["list:users!user=out-2"], Ok(&["out-2"])),
    (&["list:users!group=GROUP"], Ok(&["in-1", "in-2"])),
    (
        &["list:users!group=GROUP", "list:users!user=out-2"],
        Ok(&["in-1", "in-2", "out-2"]),
    ),
];

#[test]
fn list_users_filter() {
    let membership = groups(&[("GROUP", &["in-1", "in-2"])]);
    let users = ["in-1", "in-2", "out-1", "out-2", "admin", "user"];
    for (scopes, expected) in LIST_USERS {
        let held = ScopeSet::expand(scopes, &service("lister"), None).unwrap();
        let got = listed(&held, "list:users", &users, |v, u| v.user(u, &membership));
        assert_eq!(got, expected.map(|e| e.to_vec()), "{scopes:?}");
    }
}

// test_scopes.py::test_list_groups_filter (a prefix must not match).
const LIST_GROUPS: &[ListCase] = &[
    (&["list:groups"], Ok(&["group1", "group2", "group3"])),
    (&["read:groups"], Err(403)),
    (&["list:groups!user=irrelevant"], Err(403)),
    (&["list:groups!group=nosuchgroup"], Ok(&[])),
    (&["list:groups!group=group1"], Ok(&["group1"])),
    (
        &["list:groups!group=group1", "list:groups!group=group2"],
        Ok(&["group1", "group2"]),
    ),
    (&["list:groups!group=group"], Ok(&[])),
];

#[test]
fn list_groups_filter() {
    let all = ["group1", "group2", "group3"];
    for (scopes, expected) in LIST_GROUPS {
        let held = ScopeSet::expand(scopes, &service("lister"), None).unwrap();
        let got = listed(&held, "list:groups", &all, |v, g| v.group(g));
        assert_eq!(got, expected.map(|e| e.to_vec()), "{scopes:?}");
    }
}

// test_scopes.py::test_service_filter, test_user_filter_with_group and
// test_group_scope_filter.
#[test]
fn list_filters_by_service_and_group() {
    let held = ScopeSet::expand(&["list:services!service=cull_idle"], &user("u"), None).unwrap();
    let got = listed(
        &held,
        "list:services",
        &["cull_idle", "user_service"],
        |v, s| v.service(s),
    );
    assert_eq!(got, Ok(vec!["cull_idle"]));

    let membership = groups(&[("sitwell", &["temp_user_1", "temp_user_2"])]);
    let held = ScopeSet::expand(&["list:users!group=sitwell"], &user("temp_user_1"), None).unwrap();
    let users = ["temp_user_1", "temp_user_2", "temp_user_3"];
    let got = listed(&held, "list:users", &users, |v, u| v.user(u, &membership));
    assert_eq!(got, Ok(vec!["temp_user_1", "temp_user_2"]));

    let held = ScopeSet::expand(
        &["list:groups!group=sitwell", "list:groups!group=bluth"],
        &user("u"),
        None,
    )
    .unwrap();
    let got = listed(
        &held,
        "list:groups",
        &["sitwell", "bluth", "austero"],
        |v, g| v.group(g),
    );
    assert_eq!(got, Ok(vec!["sitwell", "bluth"]));
}

fn custom(defs: &[(&str, Option<&str>, &[&str])]) -> BTreeMap<String, CustomScope> {
    defs.iter()
        .map(|(name, description, subscopes)| {
            let def = CustomScope {
                description: description.map(str::to_owned),
                subscopes: subscopes.iter().map(|s| s.to_string()).collect(),
            };
            (name.to_string(), def)
        })
        .collect()
}

type CustomCase = &'static [(&'static str, Option<&'static str>, &'static [&'static str])];

// test_scopes.py::test_custom_scopes. Its third case (an unknown key beside the
// description, which JupyterHub ignores with a warning) is the config's business here:
// our config refuses unknown keys.
const CUSTOM_GOOD: &[CustomCase] = &[
    &[("custom:okay", Some("simple custom scope"), &[])],
    &[
        ("custom:parent", Some("parent"), &["custom:child"]),
        ("custom:child", Some("child"), &[]),
    ],
    &[("custom:extra", Some("I have extra info"), &[])],
];

// test_scopes.py::test_custom_scopes_bad. Its last case (sub-scopes not a list) cannot be
// written here: the type holds a list.
const CUSTOM_BAD: &[CustomCase] = &[
    &[("read:users", Some("Can't override"), &[])],
    &[("custom:empty", None, &[])],
    &[("notcustom:prefix", None, &[])],
    &[("custom:!illegal", None, &[])],
    &[(
        "custom:badsubscope",
        Some("non-custom subscope not allowed"),
        &["read:users"],
    )],
    &[(
        "custom:nosubscope",
        Some("subscope not defined"),
        &["custom:undefined"],
    )],
];

#[test]
fn custom_scopes() {
    for defs in CUSTOM_GOOD {
        let catalog = Catalog::with_custom(&custom(defs)).unwrap();
        for (name, ..) in *defs {
            assert!(catalog.knows(name), "{name}");
            catalog.validate(&[name]).unwrap();
        }
    }
    for defs in CUSTOM_BAD {
        let got = Catalog::with_custom(&custom(defs));
        assert!(
            matches!(got, Err(ScopeError::BadCustom(_))),
            "{defs:?}: {got:?}"
        );
    }
}

// test_roles.py::test_scope_existence: the scopes of a role.
#[test]
fn scope_existence() {
    ScopeSet::validate(&["users", "users!user=charlie", "admin:groups", "read:tokens"]).unwrap();
    for bad in ["uses", "users:activities"] {
        assert_eq!(
            ScopeSet::validate(&[bad]),
            Err(ScopeError::Unknown(bad.to_owned()))
        );
    }
    let bad = "groups!goup=class-A";
    assert_eq!(
        ScopeSet::validate(&[bad]),
        Err(ScopeError::BadFilter(bad.to_owned()))
    );
}
