//! Tests of `[[roles]]`, `[[groups]]` and `[custom_scopes]`: what they read, JupyterHub's
//! rules for them, and every refusal named by its key (as `galilean config check` shows
//! it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

fn file() -> PathBuf {
    PathBuf::from("/etc/galilean/galilean.toml")
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, &file(), &BTreeMap::new())
}

fn errors(text: &str) -> Vec<(String, String)> {
    let e = parse(text).expect_err("config should be rejected");
    e.errors.into_iter().map(|e| (e.key, e.message)).collect()
}

/// The one error for `key`, panicking if there is not exactly one.
fn error_for(errs: &[(String, String)], key: &str) -> String {
    let found: Vec<_> = errs.iter().filter(|(k, _)| k == key).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one error for {key}, got {errs:#?}"
    );
    found[0].1.clone()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const SERVICE: &str = "[[services]]\nname = \"idle-culler\"\n";

#[test]
fn roles_groups_and_custom_scopes_are_read() {
    let text = format!(
        r#"{SERVICE}
        [[roles]]
        name = "idle-culler"
        description = "cull idle servers"
        scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
        users = ["ada"]
        groups = ["staff"]
        services = ["idle-culler"]

        [[roles]]
        name = "physics-teacher"
        scopes = ["read:users!group=physics", "admin:servers!group=physics"]

        [[groups]]
        name = "physics"
        users = ["alice", "bob"]
        properties = {{ course = "PHY101" }}

        [[groups]]
        name = "staff"

        [custom_scopes."custom:grades:read"]
        description = "read grades"

        [custom_scopes."custom:grades"]
        description = "read and write grades"
        subscopes = ["custom:grades:read"]
        "#
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.roles,
        [
            RoleConfig {
                name: "idle-culler".into(),
                description: Some("cull idle servers".into()),
                scopes: strings(&[
                    "list:users",
                    "read:users:activity",
                    "read:servers",
                    "delete:servers"
                ]),
                users: strings(&["ada"]),
                groups: strings(&["staff"]),
                services: strings(&["idle-culler"]),
            },
            RoleConfig {
                name: "physics-teacher".into(),
                description: None,
                scopes: strings(&["read:users!group=physics", "admin:servers!group=physics"]),
                users: vec![],
                groups: vec![],
                services: vec![],
            },
        ]
    );
    assert_eq!(c.groups.len(), 2);
    assert_eq!(c.groups[0].name, "physics");
    assert_eq!(c.groups[0].users, ["alice", "bob"]);
    assert_eq!(
        serde_json::Value::Object(c.groups[0].properties.clone()),
        json!({"course": "PHY101"})
    );
    assert_eq!(
        c.groups[1],
        GroupConfig {
            name: "staff".into(),
            users: vec![],
            properties: serde_json::Map::new(),
        }
    );
    assert_eq!(
        c.custom_scopes,
        BTreeMap::from([
            (
                "custom:grades".to_owned(),
                CustomScope {
                    description: Some("read and write grades".into()),
                    subscopes: strings(&["custom:grades:read"]),
                }
            ),
            (
                "custom:grades:read".to_owned(),
                CustomScope {
                    description: Some("read grades".into()),
                    subscopes: vec![],
                }
            ),
        ])
    );
    assert_eq!(
        c.scopes_catalog(),
        &Catalog::with_custom(&c.custom_scopes).unwrap()
    );
}

#[test]
fn without_the_sections_there_are_no_roles_groups_or_custom_scopes() {
    let c = parse("").unwrap();
    assert!(c.roles.is_empty() && c.groups.is_empty() && c.custom_scopes.is_empty());
    assert_eq!(c.scopes_catalog(), &Catalog::builtin());
    assert_eq!(
        Config {
            source: PathBuf::new(),
            ..c
        },
        Config::default_for_tests(Path::new("galilean-data"))
    );
}

/// JupyterHub's `create_role`: without `scopes` a new role has none (it warns).
#[test]
fn a_role_needs_only_a_name_and_then_grants_nothing() {
    let c = parse("[[roles]]\nname = \"nobody\"\n").unwrap();
    assert_eq!(
        c.roles,
        [RoleConfig {
            name: "nobody".into(),
            description: None,
            scopes: vec![],
            users: vec![],
            groups: vec![],
            services: vec![],
        }]
    );
}

#[test]
fn role_mistakes_are_each_reported_with_their_key() {
    let text = format!(
        r#"{SERVICE}
        [[roles]]
        name = "Teachers"
        scopes = ["read:users", "read:nope", "all", "read:users!planet=mars", 7]
        users = ["", "ada"]
        groups = [""]
        services = ["idle-culler", "announcer"]
        members = ["ada"]

        [[roles]]
        description = "no name"

        [[roles]]
        name = "grader"

        [[roles]]
        name = "grader"
        scopes = "read:users"
        description = 3

        [[roles]]
        name = "ab"
        "#
    );
    let errs = errors(&text);
    assert!(error_for(&errs, "roles[0].name").starts_with("invalid role name \"Teachers\""));
    assert_eq!(
        error_for(&errs, "roles[0].scopes[1]"),
        "Scope 'read:nope' does not exist"
    );
    assert_eq!(
        error_for(&errs, "roles[0].scopes[2]"),
        "Draft scope 'all' is now called 'inherit'"
    );
    assert!(error_for(&errs, "roles[0].scopes[3]").contains("read:users!planet=mars"));
    assert_eq!(
        error_for(&errs, "roles[0].scopes[4]"),
        "expected a string, found an integer"
    );
    assert_eq!(
        error_for(&errs, "roles[0].users[0]"),
        "user names must not be empty"
    );
    assert_eq!(
        error_for(&errs, "roles[0].groups[0]"),
        "group names must not be empty"
    );
    assert_eq!(
        error_for(&errs, "roles[0].services[1]"),
        "no [[services]] entry is named \"announcer\""
    );
    assert_eq!(
        error_for(&errs, "roles[0].members"),
        "unknown key (expected one of: name, description, scopes, users, groups, services)"
    );
    assert_eq!(
        error_for(&errs, "roles[1].name"),
        "missing: every role needs a name"
    );
    assert_eq!(
        error_for(&errs, "roles[3].name"),
        "duplicate role name \"grader\" (also roles[2])"
    );
    assert_eq!(
        error_for(&errs, "roles[3].scopes"),
        "expected an array of strings, found a string"
    );
    assert_eq!(
        error_for(&errs, "roles[3].description"),
        "expected a string, found an integer"
    );
    assert!(error_for(&errs, "roles[4].name").starts_with("invalid role name \"ab\""));
    assert_eq!(errs.len(), 14, "{errs:#?}");
}

#[test]
fn roles_and_groups_of_the_wrong_shape_are_reported() {
    let errs = errors("roles = { name = \"x\" }\ngroups = [1]\ncustom_scopes = []\n");
    assert_eq!(
        error_for(&errs, "roles"),
        "expected an array of tables ([[roles]]), found a table"
    );
    assert_eq!(
        error_for(&errs, "groups[0]"),
        "expected a table, found an integer"
    );
    assert!(error_for(&errs, "custom_scopes").starts_with("expected a table of scope definitions"));
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

/// `jupyterhub/app.py`, `init_role_creation`: an entry naming a default role is merged
/// into it, so what it leaves out keeps the default's value; `jupyterhub/roles.py`,
/// `create_role`: the admin role's description and scopes cannot differ from the
/// default's; `init_role_assignment`: its users, groups and services are assigned as for
/// any role.
#[test]
fn default_roles_may_be_redefined_as_jupyterhub_allows() {
    let admin_scopes: Vec<String> = galilean_proto::scopes::ADMIN_ROLE_SCOPES
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    let text = format!(
        r#"{SERVICE}
        [[roles]]
        name = "user"
        scopes = ["self", "access:services"]

        [[roles]]
        name = "server"
        description = "the server's own token"

        [[roles]]
        name = "token"
        scopes = ["read:users:name!user"]
        users = ["ada"]

        [[roles]]
        name = "admin"
        description = "Elevated privileges (can do anything)"
        scopes = [{}]
        users = ["ada"]
        services = ["idle-culler"]
        "#,
        admin_scopes.join(", ")
    );
    let c = parse(&text).unwrap();
    let role = |name: &str| c.roles.iter().find(|r| r.name == name).unwrap();
    assert_eq!(role("user").scopes, ["self", "access:services"]);
    assert_eq!(
        role("user").description.as_deref(),
        Some("Standard user privileges")
    );
    assert_eq!(
        role("server").scopes,
        ["users:activity!user", "access:servers!server"]
    );
    assert_eq!(
        role("server").description.as_deref(),
        Some("the server's own token")
    );
    assert_eq!(role("token").scopes, ["read:users:name!user"]);
    assert_eq!(role("token").users, ["ada"]);
    assert_eq!(
        role("admin").scopes,
        galilean_proto::scopes::ADMIN_ROLE_SCOPES
    );
    assert_eq!(role("admin").users, ["ada"]);
    assert_eq!(role("admin").services, ["idle-culler"]);

    // holders only: the admin role keeps its description and scopes
    let c = parse("[[roles]]\nname = \"admin\"\ngroups = [\"staff\"]\n").unwrap();
    assert_eq!(c.roles[0].scopes, galilean_proto::scopes::ADMIN_ROLE_SCOPES);
    assert_eq!(
        c.roles[0].description.as_deref(),
        Some("Elevated privileges (can do anything)")
    );
}

#[test]
fn the_admin_roles_scopes_and_description_cannot_change() {
    let errs =
        errors("[[roles]]\nname = \"admin\"\ndescription = \"root\"\nscopes = [\"admin:users\"]\n");
    assert!(error_for(&errs, "roles[0].scopes")
        .starts_with("the admin role's scopes cannot be changed"));
    assert!(error_for(&errs, "roles[0].description")
        .starts_with("the admin role's description cannot be changed"));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    // JupyterHub compares the lists as written: its scopes in another order are refused
    let mut reordered: Vec<String> = galilean_proto::scopes::ADMIN_ROLE_SCOPES
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    reordered.reverse();
    let text = format!(
        "[[roles]]\nname = \"admin\"\nscopes = [{}]\n",
        reordered.join(", ")
    );
    assert!(error_for(&errors(&text), "roles[0].scopes").contains("in this order"));
}

#[test]
fn group_properties_become_json() {
    let text = r#"
        [[groups]]
        name = "physics"
        [groups.properties]
        course = "PHY101"
        credits = 5
        weight = 0.5
        open = true
        starts = 2026-09-01T09:00:00Z
        rooms = ["A1", 2, { floor = 3 }]
        [groups.properties.teacher]
        name = "Ada"
    "#;
    let c = parse(text).unwrap();
    assert_eq!(
        serde_json::Value::Object(c.groups[0].properties.clone()),
        json!({
            "course": "PHY101",
            "credits": 5,
            "weight": 0.5,
            "open": true,
            "starts": "2026-09-01T09:00:00Z",
            "rooms": ["A1", 2, {"floor": 3}],
            "teacher": {"name": "Ada"},
        })
    );
}

#[test]
fn group_mistakes_are_each_reported_with_their_key() {
    let text = r#"
        [[groups]]
        name = "physics"
        users = ["alice", ""]
        members = ["bob"]

        [[groups]]
        name = "physics"
        properties = "PHY101"

        [[groups]]
        users = ["cy"]

        [[groups]]
        name = ""
        properties = { a = { b = [1.0, nan] }, c = inf }
    "#;
    let errs = errors(text);
    assert_eq!(
        error_for(&errs, "groups[0].users[1]"),
        "user names must not be empty"
    );
    assert_eq!(
        error_for(&errs, "groups[0].members"),
        "unknown key (expected one of: name, users, properties)"
    );
    assert_eq!(
        error_for(&errs, "groups[1].name"),
        "duplicate group name \"physics\" (also groups[0])"
    );
    assert_eq!(
        error_for(&errs, "groups[1].properties"),
        "expected a table, found a string"
    );
    assert_eq!(
        error_for(&errs, "groups[2].name"),
        "missing: every group needs a name"
    );
    assert_eq!(
        error_for(&errs, "groups[3].name"),
        "group names must not be empty"
    );
    assert!(error_for(&errs, "groups[3].properties.a.b[1]").contains("cannot be held in JSON"));
    assert!(error_for(&errs, "groups[3].properties.c").contains("cannot be held in JSON"));
    assert_eq!(errs.len(), 8, "{errs:#?}");
}

/// `jupyterhub/scopes.py`, `define_custom_scopes`.
#[test]
fn custom_scope_mistakes_are_each_reported_with_their_key() {
    let text = r#"
        [custom_scopes."grades:read"]
        description = "no custom: prefix"

        [custom_scopes."custom:grades"]
        subscopes = ["read:users", "custom:grades:write", "custom:grades:read", 1]
        label = "x"

        [custom_scopes."custom:grades:read"]
        description = "read grades"

        [custom_scopes."custom:x"]
        description = "a name too short"

        [[roles]]
        name = "grader"
        scopes = ["custom:grades:read", "custom:nope", "read:nope"]
    "#;
    let errs = errors(text);
    assert!(error_for(&errs, "custom_scopes.\"grades:read\"")
        .starts_with("invalid custom scope name \"grades:read\""));
    assert!(error_for(&errs, "custom_scopes.\"custom:x\"")
        .starts_with("invalid custom scope name \"custom:x\""));
    assert!(
        error_for(&errs, "custom_scopes.\"custom:grades\".description")
            .starts_with("missing: every custom scope needs a description")
    );
    assert!(
        error_for(&errs, "custom_scopes.\"custom:grades\".subscopes[0]")
            .starts_with("\"read:users\" is not a custom scope")
    );
    assert_eq!(
        error_for(&errs, "custom_scopes.\"custom:grades\".subscopes[1]"),
        "\"custom:grades:write\" is not defined in [custom_scopes]"
    );
    assert_eq!(
        error_for(&errs, "custom_scopes.\"custom:grades\".subscopes[3]"),
        "expected a string, found an integer"
    );
    assert_eq!(
        error_for(&errs, "custom_scopes.\"custom:grades\".label"),
        "unknown key (expected one of: description, subscopes)"
    );
    // the custom scopes were refused: the role's custom scope is not reported again, but
    // an undefined one is, and so is an unknown built-in one
    assert_eq!(
        error_for(&errs, "roles[0].scopes[1]"),
        "Scope 'custom:nope' does not exist"
    );
    assert_eq!(
        error_for(&errs, "roles[0].scopes[2]"),
        "Scope 'read:nope' does not exist"
    );
    assert_eq!(errs.len(), 9, "{errs:#?}");
}

/// Needs `Catalog::validate` to know custom scopes, which the `scopes` branch fills in.
#[test]
fn a_role_may_grant_custom_scopes() {
    let text = r#"
        [custom_scopes."custom:grades:read"]
        description = "read grades"

        [[roles]]
        name = "grader"
        scopes = ["custom:grades:read", "custom:grades:read!group=physics"]
    "#;
    let c = parse(text).unwrap();
    assert_eq!(
        c.roles[0].scopes,
        ["custom:grades:read", "custom:grades:read!group=physics"]
    );
    let errs = errors(&format!(
        "{text}\n[[roles]]\nname = \"other\"\nscopes = [\"custom:grades:write\"]\n"
    ));
    assert_eq!(
        error_for(&errs, "roles[1].scopes[0]"),
        "Scope 'custom:grades:write' does not exist"
    );
}

/// What `galilean config check` prints before it exits 2: a line per problem naming the
/// file, the key and, for a scope, the scope.
#[test]
fn config_check_names_the_bad_key_and_the_unknown_scope() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("galilean.toml");
    std::fs::write(
        &path,
        "[[roles]]\nname = \"grader\"\nscopes = [\"read:users\", \"read:grades\"]\ncolour = \"red\"\n\
         [[groups]]\nname = \"physics\"\nteacher = \"ada\"\n\
         [custom_scopes.\"custom:grades\"]\ndescription = \"grades\"\nsubscope = []\n",
    )
    .unwrap();
    let shown = Config::load(&path, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    let file = path.display();
    for line in [
        format!("{file}: roles[0].scopes[1]: Scope 'read:grades' does not exist"),
        format!("{file}: roles[0].colour: unknown key (expected one of: name, description, scopes, users, groups, services)"),
        format!("{file}: groups[0].teacher: unknown key (expected one of: name, users, properties)"),
        format!("{file}: custom_scopes.\"custom:grades\".subscope: unknown key (expected one of: description, subscopes)"),
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} missing from:\n{shown}");
    }
    assert_eq!(shown.lines().count(), 4, "{shown}");
}
