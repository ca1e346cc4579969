//! Tests of the whole config module: defaults, every key, errors and their keys, the
//! environment overrides, and each section's checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::services::parse_service_name;
use super::values::parse_base_url;
use super::*;

fn file() -> PathBuf {
    PathBuf::from("/etc/galilean/galilean.toml")
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, &file(), &BTreeMap::new())
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::parse(text, &file(), &env)
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

#[test]
fn an_empty_file_gives_every_default() {
    let config = parse("").unwrap();
    assert_eq!(config.source, file());
    assert_eq!(config.hub.bind_url.to_string(), "http://127.0.0.1:8000/");
    assert_eq!(config.hub.bind_url.authority(), "127.0.0.1:8000");
    assert_eq!(config.hub.base_url, "/");
    assert_eq!(config.hub.data_dir, Path::new("galilean-data"));
    assert!(!config.hub.cleanup_servers);
    assert!(config.hub.authenticate_prometheus);
    assert!(!config.hub.admin_access);
    assert!(!config.hub.allow_named_servers);
    assert_eq!(config.hub.named_server_limit_per_user, 0);
    assert!(config.hub.template_paths.is_empty());
    assert_eq!(
        config.hub.cookie_max_age,
        Duration::from_secs(14 * 24 * 3600)
    );
    assert_eq!(config.hub.public_url, None);
    assert_eq!(config.hub.log_level, LogLevel::Info);
    assert_eq!(config.hub.token_expires_in_max_seconds, 0);
    assert_eq!(config.hub.purge_expired_interval, Duration::from_secs(60));
    assert_eq!(config.authenticator.class, AuthenticatorClass::Dummy);
    assert_eq!(config.authenticator.password, None);
    assert!(
        config.authenticator.admin_users.is_empty()
            && config.authenticator.allowed_users.is_empty()
    );
    assert!(!config.authenticator.allow_all);
    assert_eq!(config.spawner.class, SpawnerClass::LocalProcess);
    assert_eq!(config.spawner.cmd, ["jupyterhub-singleuser"]);
    assert!(config.spawner.args.is_empty() && config.spawner.environment.is_empty());
    assert_eq!(
        config.spawner.home_dir_template,
        "galilean-data/home/{username}"
    );
    assert_eq!(config.spawner.start_timeout, Duration::from_secs(60));
    assert_eq!(config.spawner.http_timeout, Duration::from_secs(30));
    assert_eq!(config.spawner.stop_grace, Duration::from_secs(10));
    assert_eq!(config.spawner.concurrent_spawn_limit, 100);
    assert_eq!(config.spawner.default_url, None);
    assert!(config.services.is_empty());
    let defaults = Config::default_for_tests(Path::new("galilean-data"));
    assert_eq!(
        Config {
            source: PathBuf::new(),
            ..config
        },
        defaults
    );
}

#[test]
fn default_for_tests_puts_homes_under_the_data_dir() {
    let config = Config::default_for_tests(Path::new("/tmp/t1"));
    assert_eq!(config.hub.data_dir, Path::new("/tmp/t1"));
    assert_eq!(config.spawner.home_dir_template, "/tmp/t1/home/{username}");
}

#[test]
fn every_key_takes_a_non_default_value() {
    let text = r#"
            [hub]
            bind_url = "http://[::1]:9000"
            base_url = "jupyter"
            data_dir = "/var/lib/galilean"
            cleanup_servers = true
            allow_named_servers = true
            named_server_limit_per_user = 3
            template_paths = ["/etc/galilean/templates", "more"]
            cookie_max_age_days = 0.5
            public_url = "https://hub.example.org/jupyter/"
            log_level = "debug"
            token_expires_in_max_seconds = 3600
            authenticate_prometheus = false
            admin_access = true

            [authenticator]
            class = "dummy"
            password = "hunter2-correct-horse"
            admin_users = ["ada"]
            allowed_users = ["bob", "cy"]
            allow_all = true

            [spawner]
            class = "local-process"
            cmd = ["python3", "-m", "jupyterhub.singleuser"]
            args = ["--debug"]
            environment = { LANG = "C.UTF-8", "MY VAR" = "x" }
            home_dir_template = "/home/{username}/work"
            start_timeout = 120
            http_timeout = 2.5
            stop_grace = 3
            concurrent_spawn_limit = 7
            default_url = "/lab"

            [[services]]
            name = "idle-culler"
            api_token = "0123456789abcdef"
            admin = true

            [[services]]
            name = "announcements"
        "#;
    let c = parse(text).unwrap();
    assert_eq!(
        c.hub.bind_url,
        BindUrl {
            host: "::1".into(),
            port: 9000
        }
    );
    assert_eq!(c.hub.bind_url.to_string(), "http://[::1]:9000/");
    assert_eq!(c.hub.base_url, "/jupyter/");
    assert_eq!(c.hub.data_dir, Path::new("/var/lib/galilean"));
    assert!(c.hub.cleanup_servers && c.hub.allow_named_servers);
    assert_eq!(c.hub.named_server_limit_per_user, 3);
    assert_eq!(
        c.hub.template_paths,
        [
            PathBuf::from("/etc/galilean/templates"),
            PathBuf::from("more")
        ]
    );
    assert_eq!(c.hub.cookie_max_age, Duration::from_secs(12 * 3600));
    assert_eq!(
        c.hub.public_url.as_deref(),
        Some("https://hub.example.org/jupyter/")
    );
    assert_eq!(c.hub.log_level, LogLevel::Debug);
    assert_eq!(c.hub.log_level.as_str(), "debug");
    assert_eq!(c.hub.token_expires_in_max_seconds, 3600);
    assert!(!c.hub.authenticate_prometheus && c.hub.admin_access);
    assert_eq!(c.authenticator.class, AuthenticatorClass::Dummy);
    assert_eq!(
        c.authenticator.password.as_ref().map(Secret::expose),
        Some("hunter2-correct-horse")
    );
    assert_eq!(
        c.authenticator.admin_users,
        BTreeSet::from(["ada".to_owned()])
    );
    assert_eq!(
        c.authenticator.allowed_users,
        BTreeSet::from(["bob".to_owned(), "cy".to_owned()])
    );
    assert!(c.authenticator.allow_all);
    assert_eq!(c.spawner.class, SpawnerClass::LocalProcess);
    assert_eq!(c.spawner.cmd, ["python3", "-m", "jupyterhub.singleuser"]);
    assert_eq!(c.spawner.args, ["--debug"]);
    assert_eq!(c.spawner.environment["LANG"], "C.UTF-8");
    assert_eq!(c.spawner.environment["MY VAR"], "x");
    assert_eq!(c.spawner.home_dir_template, "/home/{username}/work");
    assert_eq!(c.spawner.start_timeout, Duration::from_secs(120));
    assert_eq!(c.spawner.http_timeout, Duration::from_millis(2500));
    assert_eq!(c.spawner.stop_grace, Duration::from_secs(3));
    assert_eq!(c.spawner.concurrent_spawn_limit, 7);
    assert_eq!(c.spawner.default_url.as_deref(), Some("/lab"));
    assert_eq!(c.services.len(), 2);
    assert_eq!(c.services[0].name, "idle-culler");
    assert_eq!(
        c.services[0].api_token.as_ref().map(Secret::expose),
        Some("0123456789abcdef")
    );
    assert!(c.services[0].admin);
    assert_eq!(
        c.services[1],
        ServiceConfig {
            name: "announcements".into(),
            api_token: None,
            admin: false
        }
    );
}

#[test]
fn the_class_names_serialize_as_written_in_the_config() {
    let value = |v| toml::Value::try_from(v).unwrap();
    assert_eq!(value(AuthenticatorClass::Dummy), toml::Value::from("dummy"));
    assert_eq!(
        toml::Value::try_from(SpawnerClass::LocalProcess).unwrap(),
        toml::Value::from("local-process")
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_key_and_the_file() {
    let text = r#"
            colour = "blue"

            [hub]
            bind_url = "http://127.0.0.1:8000/hub/"
            base_url = "http://example.org/hub/"
            cleanup_servers = "yes"
            authenticate_prometheus = "no"
            named_server_limit_per_user = -1
            log_level = "verbose"
            cookie_max_age_days = 0
            token_expires_in_max_seconds = -1
            listen = 1

            [authenticator]
            class = "pam"
            admin_users = "ada"

            [spawner]
            cmd = []
            home_dir_template = "/home/user"
            start_timeout = "60"
            stop_grace = -1
            concurrent_spawn_limit = 0
            environment = { LANG = 1 }

            [[services]]
            name = "a"
            api_token = "short"
            port = 8080

            [[services]]
            name = "a"

            [[services]]
            admin = "no"
        "#;
    let err = parse(text).unwrap_err();
    assert_eq!(err.file, file());
    let errs: Vec<(String, String)> = err
        .errors
        .iter()
        .map(|e| (e.key.clone(), e.message.clone()))
        .collect();
    assert!(error_for(&errs, "colour").starts_with("unknown key"));
    assert!(error_for(&errs, "hub.listen").starts_with("unknown key (expected one of: bind_url,"));
    assert!(error_for(&errs, "services[0].port").starts_with("unknown key"));
    assert_eq!(
        error_for(&errs, "hub.cleanup_servers"),
        "expected a boolean, found a string"
    );
    assert_eq!(
        error_for(&errs, "hub.authenticate_prometheus"),
        "expected a boolean, found a string"
    );
    assert_eq!(
        error_for(&errs, "spawner.start_timeout"),
        "expected a number, found a string"
    );
    assert_eq!(
        error_for(&errs, "authenticator.admin_users"),
        "expected an array of strings, found a string"
    );
    assert_eq!(
        error_for(&errs, "services[2].admin"),
        "expected a boolean, found a string"
    );
    assert_eq!(
        error_for(&errs, "spawner.environment.LANG"),
        "expected a string, found an integer"
    );
    assert!(error_for(&errs, "spawner.cmd").starts_with("must not be empty"));
    assert!(error_for(&errs, "spawner.home_dir_template").starts_with("must contain {username}"));
    assert!(error_for(&errs, "hub.base_url").contains("not a URL"));
    assert!(error_for(&errs, "hub.bind_url").contains("hub.base_url"));
    assert_eq!(
        error_for(&errs, "hub.named_server_limit_per_user"),
        "must be 0 or more"
    );
    assert!(error_for(&errs, "hub.log_level")
        .contains("\"error\", \"warn\", \"info\", \"debug\", \"trace\""));
    assert_eq!(
        error_for(&errs, "hub.cookie_max_age_days"),
        "must be greater than 0"
    );
    assert_eq!(
        error_for(&errs, "hub.token_expires_in_max_seconds"),
        "must be 0 or more"
    );
    assert_eq!(
        error_for(&errs, "authenticator.class"),
        "\"pam\" is not one of the accepted values: \"dummy\""
    );
    assert_eq!(
        error_for(&errs, "spawner.stop_grace"),
        "must be greater than 0"
    );
    assert_eq!(
        error_for(&errs, "spawner.concurrent_spawn_limit"),
        "must be 1 or more"
    );
    assert_eq!(
        error_for(&errs, "services[0].api_token"),
        "must be 8 to 64 characters long, found 5"
    );
    assert_eq!(
        error_for(&errs, "services[1].name"),
        "duplicate service name \"a\" (also services[0])"
    );
    assert_eq!(
        error_for(&errs, "services[2].name"),
        "missing: every service needs a name"
    );
    assert_eq!(errs.len(), 23, "{errs:#?}");

    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 23);
    assert!(
        shown
            .lines()
            .all(|l| l.starts_with("/etc/galilean/galilean.toml: ")),
        "{shown}"
    );
    let line =
        "/etc/galilean/galilean.toml: spawner.start_timeout: expected a number, found a string";
    assert!(shown.lines().any(|l| l == line), "{shown}");
    assert!(!shown.contains("short"), "the token must not be echoed");
}

#[test]
fn tables_and_services_of_the_wrong_shape_are_reported() {
    let errs = errors("hub = 1\nspawner = []\nservices = { name = \"x\" }\n");
    assert_eq!(
        error_for(&errs, "hub"),
        "expected a table, found an integer"
    );
    assert_eq!(
        error_for(&errs, "spawner"),
        "expected a table, found an array"
    );
    assert!(error_for(&errs, "services").starts_with("expected an array of tables"));
    let errs = errors("services = [\"x\"]\n");
    assert_eq!(
        error_for(&errs, "services[0]"),
        "expected a table, found a string"
    );
    let errs = errors("[hub]\ntemplate_paths = [\"ok\", 3, \"\"]\n\"odd.key\" = 1\n");
    assert_eq!(
        error_for(&errs, "hub.template_paths[1]"),
        "expected a string, found an integer"
    );
    assert_eq!(
        error_for(&errs, "hub.template_paths[2]"),
        "must not be empty"
    );
    assert!(error_for(&errs, "hub.\"odd.key\"").starts_with("unknown key"));
}

#[test]
fn bind_url_must_be_http_with_host_and_port_and_no_path() {
    let ok = |s: &str| BindUrl::parse(s).map(|u| u.to_string());
    assert_eq!(ok("http://0.0.0.0:8000").unwrap(), "http://0.0.0.0:8000/");
    assert_eq!(ok("http://localhost:0/").unwrap(), "http://localhost:0/");
    assert_eq!(ok("http://[::]:80/").unwrap(), "http://[::]:80/");
    for bad in [
        "https://127.0.0.1:8000/",
        "127.0.0.1:8000",
        "http://127.0.0.1/",
        "http://:8000/",
        "http://127.0.0.1:8000/hub/",
        "http://127.0.0.1:99999/",
        "http://user:pw@127.0.0.1:8000/",
        "http://127.0.0.1:8000/?x=1",
        "http://[zz]:80/",
        "http://a b:80/",
    ] {
        assert!(BindUrl::parse(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn base_url_gains_its_missing_slashes() {
    assert_eq!(parse_base_url("").unwrap(), "/");
    assert_eq!(parse_base_url("/").unwrap(), "/");
    assert_eq!(parse_base_url("hub").unwrap(), "/hub/");
    assert_eq!(parse_base_url("/a/b").unwrap(), "/a/b/");
    assert_eq!(parse_base_url("a/b/").unwrap(), "/a/b/");
    for bad in ["/a//b/", "/a/../b/", "/a b/", "/a?x/", "https://x/"] {
        assert!(parse_base_url(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn service_names_that_cannot_be_in_a_url_are_rejected() {
    for good in ["a", "idle-culler", "my.service", "a_b"] {
        assert!(parse_service_name(good).is_ok(), "{good}");
    }
    for bad in ["", "a/b", ".", "..", " a", "a ", "50%"] {
        assert!(
            parse_service_name(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn the_environment_wins_over_the_file() {
    let text = r#"
            [hub]
            bind_url = "http://127.0.0.1:8000/"
            data_dir = "from-file"
            [authenticator]
            password = "file-password"
            [[services]]
            name = "idle-culler"
            api_token = "file-token-123"
            [[services]]
            name = "other"
            api_token = "other-token-123"
        "#;
    let c = parse_env(
        text,
        &[
            ("GALILEAN_HUB_BIND_URL", "http://0.0.0.0:9999"),
            ("GALILEAN_HUB_DATA_DIR", "/srv/galilean"),
            ("GALILEAN_AUTHENTICATOR_PASSWORD", "env-password"),
            ("GALILEAN_SERVICE_IDLE_CULLER_API_TOKEN", "env-token-4567"),
        ],
    )
    .unwrap();
    assert_eq!(c.hub.bind_url.authority(), "0.0.0.0:9999");
    assert_eq!(c.hub.data_dir, Path::new("/srv/galilean"));
    assert_eq!(c.spawner.home_dir_template, "/srv/galilean/home/{username}");
    assert_eq!(c.authenticator.password.unwrap().expose(), "env-password");
    assert_eq!(
        c.services[0].api_token.as_ref().unwrap().expose(),
        "env-token-4567"
    );
    assert_eq!(
        c.services[1].api_token.as_ref().unwrap().expose(),
        "other-token-123"
    );

    // The environment alone is enough.
    let c = parse_env(
        "[[services]]\nname = \"x\"\n",
        &[("GALILEAN_SERVICE_X_API_TOKEN", "abcdefgh")],
    )
    .unwrap();
    assert_eq!(
        c.services[0].api_token.as_ref().unwrap().expose(),
        "abcdefgh"
    );
    assert_eq!(
        service_token_env_var("idle-culler"),
        "GALILEAN_SERVICE_IDLE_CULLER_API_TOKEN"
    );
}

#[test]
fn only_the_test_variable_sets_the_purge_interval() {
    let c = parse_env("", &[(ENV_TEST_PURGE_EXPIRED_INTERVAL, "0.5")]).unwrap();
    assert_eq!(c.hub.purge_expired_interval, Duration::from_millis(500));
    let errs = parse("[hub]\npurge_expired_interval = 1\n").unwrap_err();
    assert!(errs.errors[0].message.starts_with("unknown key"));
    for bad in ["0", "-1", "soon", "NaN"] {
        let err = parse_env("", &[(ENV_TEST_PURGE_EXPIRED_INTERVAL, bad)]).unwrap_err();
        assert_eq!(err.errors.len(), 1, "{bad}");
        assert!(
            err.errors[0]
                .message
                .starts_with("from GALILEAN_TEST_PURGE_EXPIRED_INTERVAL: "),
            "{bad}: {}",
            err.errors[0].message
        );
    }
}

#[test]
fn a_bad_environment_value_is_reported_with_its_variable() {
    let text = "[[services]]\nname = \"a-b\"\n[[services]]\nname = \"a_b\"\n";
    let env = [
        ("GALILEAN_HUB_BIND_URL", "https://0.0.0.0:1/"),
        ("GALILEAN_HUB_DATA_DIR", ""),
        ("GALILEAN_AUTHENTICATOR_PASSWORD", ""),
        ("GALILEAN_SERVICE_A_B_API_TOKEN", "tiny"),
    ];
    let err = parse_env(text, &env).unwrap_err();
    let errs: Vec<_> = err
        .errors
        .iter()
        .map(|e| (e.key.clone(), e.message.clone()))
        .collect();
    assert!(error_for(&errs, "hub.bind_url").starts_with("from GALILEAN_HUB_BIND_URL: https"));
    assert_eq!(
        error_for(&errs, "hub.data_dir"),
        "from GALILEAN_HUB_DATA_DIR: must not be empty"
    );
    assert!(error_for(&errs, "authenticator.password")
        .starts_with("from GALILEAN_AUTHENTICATOR_PASSWORD:"));
    assert_eq!(
        error_for(&errs, "services[0].api_token"),
        "from GALILEAN_SERVICE_A_B_API_TOKEN: must be 8 to 64 characters long, found 4"
    );
    assert!(error_for(&errs, "services[1].name").contains("both services[0] and this one"));
}

#[test]
fn debug_output_hides_secrets() {
    let text = r#"
            [authenticator]
            password = "file-password-secret"
            [[services]]
            name = "a"
            api_token = "token-aaaa-secret"
            [[services]]
            name = "b"
        "#;
    let c = parse_env(
        text,
        &[("GALILEAN_SERVICE_B_API_TOKEN", "token-bbbb-secret")],
    )
    .unwrap();
    let shown = format!("{c:?} {c:#?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("\"***\""));
    assert_eq!(
        c.services[1].api_token.as_ref().unwrap().expose(),
        "token-bbbb-secret"
    );
}

#[test]
fn services_may_not_share_a_token() {
    let text = r#"
            [[services]]
            name = "a"
            api_token = "same-token"
            [[services]]
            name = "b"
            api_token = "same-token"
        "#;
    let errs = errors(text);
    assert_eq!(
        error_for(&errs, "services[1].api_token"),
        "the same token as services[0]; each service needs its own"
    );
    assert_eq!(errs.len(), 1);
}

#[test]
fn a_syntax_error_names_its_line_and_column() {
    let err = parse("[hub]\nbase_url = \"/\"\nbind_url = \n").unwrap_err();
    assert_eq!(err.errors.len(), 1);
    let shown = err.to_string();
    assert!(
        shown.starts_with("/etc/galilean/galilean.toml: TOML syntax error at line 3, column"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 1);
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let path = Path::new("/nonexistent/galilean.toml");
    let err = Config::load(path, &BTreeMap::new()).unwrap_err();
    assert_eq!(err.file, path);
    let shown = err.to_string();
    assert!(
        shown.starts_with("/nonexistent/galilean.toml: cannot read the config file:"),
        "{shown}"
    );
}

#[test]
fn load_reads_the_file() {
    let dir = std::env::temp_dir().join(format!("galilean-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("galilean.toml");
    std::fs::write(&path, "[hub]\nallow_named_servers = true\n").unwrap();
    let c = Config::load(&path, &BTreeMap::new()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(c.hub.allow_named_servers);
    assert_eq!(c.source, path);
}

const CLUSTER: &str = r#"
[cluster]
node_id = 2
bind = "127.0.0.1:7103"
peers = ["1@127.0.0.1:7101", "2@127.0.0.1:7103", "3@127.0.0.1:7105"]
secret = "a-cluster-secret-of-some-length"
"#;

#[test]
fn a_cluster_section_defaults_storage_to_raft() {
    let c = parse(CLUSTER).unwrap();
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.node_id, 2);
    assert_eq!(cluster.bind, "127.0.0.1:7103");
    assert_eq!(cluster.peers.len(), 3);
    assert_eq!(
        cluster.peers[2],
        Peer {
            id: 3,
            addr: "127.0.0.1:7105".into()
        }
    );
    assert_eq!(c.storage.backend, StorageBackendKind::Raft);
    // without [cluster], the embedded store
    assert_eq!(parse("").unwrap().storage.backend, StorageBackendKind::Redb);
    assert!(parse("").unwrap().cluster.is_none());
}

#[test]
fn cluster_mistakes_are_each_reported() {
    let errs = errors(
        r#"
[cluster]
node_id = 0
bind = "nowhere"
peers = ["1@127.0.0.1:7101", "x@y", "1@127.0.0.1:7109"]
secret = "short"
[storage]
backend = "redb"
"#,
    );
    assert!(error_for(&errs, "cluster.node_id").contains("1"));
    assert!(error_for(&errs, "cluster.bind").contains("host:port"));
    assert!(error_for(&errs, "cluster.secret").contains("16"));
    assert!(
        errs.iter()
            .any(|(k, m)| k.starts_with("cluster.peers") && m.contains("x@y")),
        "{errs:#?}"
    );
    assert!(error_for(&errs, "storage.backend").contains("raft"));
    let errs = errors("[cluster]\nnode_id = 4\n");
    for key in ["cluster.bind", "cluster.peers", "cluster.secret"] {
        assert!(errs.iter().any(|(k, _)| k == key), "{key}: {errs:#?}");
    }
    let errs = errors(&CLUSTER.replace("node_id = 2", "node_id = 9"));
    assert!(error_for(&errs, "cluster.peers").contains("node_id = 9"));
    // two nodes on one port, or on adjacent ones (each takes its port and the next)
    for (two, three) in [
        ("127.0.0.1:7102", "127.0.0.1:7102"),
        ("127.0.0.1:7102", "127.0.0.1:7103"),
    ] {
        let text = CLUSTER.replace(
            r#"peers = ["1@127.0.0.1:7101", "2@127.0.0.1:7103", "3@127.0.0.1:7105"]"#,
            &format!(r#"peers = ["1@127.0.0.1:7110", "2@{two}", "3@{three}"]"#),
        );
        let errs = errors(&text);
        let message = error_for(&errs, "cluster.peers");
        assert!(
            message.contains("nodes 2") && message.contains("and 3"),
            "{message}"
        );
    }
    let errs = errors(&CLUSTER.replace("3@127.0.0.1:7105", "3@127.0.0.1:65535"));
    assert!(error_for(&errs, "cluster.peers").contains("65534"));
    // the same port on other hosts is how clusters are usually laid out
    let spread = CLUSTER.replace(
        r#"peers = ["1@127.0.0.1:7101", "2@127.0.0.1:7103", "3@127.0.0.1:7105"]"#,
        r#"peers = ["1@10.0.0.1:7103", "2@127.0.0.1:7103", "3@10.0.0.3:7103"]"#,
    );
    assert!(parse(&spread).is_ok());
    let errs = errors("[storage]\nbackend = \"raft\"\n");
    assert!(error_for(&errs, "storage.backend").contains("[cluster]"));
}

#[test]
fn spawner_ip_is_one_reachable_address() {
    assert_eq!(
        parse("").unwrap().spawner.ip,
        std::net::IpAddr::from([127, 0, 0, 1])
    );
    let c = parse("[spawner]\nip = \"10.0.0.7\"\n").unwrap();
    assert_eq!(c.spawner.ip, std::net::IpAddr::from([10, 0, 0, 7]));
    for (bad, says) in [
        ("0.0.0.0", "every address"),
        ("ff02::1", "multicast"),
        ("hub.local", "not an IP address"),
    ] {
        let errs = errors(&format!("[spawner]\nip = \"{bad}\"\n"));
        assert!(error_for(&errs, "spawner.ip").contains(says), "{errs:?}");
    }
}

#[test]
fn the_fdb_backend_and_its_keys() {
    let fdb = format!(
        "{CLUSTER}\n[storage]\nbackend = \"fdb\"\nfdb_cluster_file = \"/etc/fdb/hub.cluster\"\n"
    );
    if cfg!(feature = "fdb") {
        let c = parse(&fdb).unwrap();
        assert_eq!(c.storage.backend, StorageBackendKind::Fdb);
        assert_eq!(
            c.storage.fdb_cluster_file.as_deref(),
            Some(std::path::Path::new("/etc/fdb/hub.cluster"))
        );
        assert_eq!(c.storage.fdb_root, DEFAULT_FDB_ROOT);
        // one node on FoundationDB, without [cluster], is allowed
        let single = parse("[storage]\nbackend = \"fdb\"\nfdb_root = \"hub-a\"\n").unwrap();
        assert_eq!(single.storage.fdb_root, "hub-a");
    } else {
        let errs = errors(&fdb);
        assert!(error_for(&errs, "storage.backend").contains("--features fdb"));
    }
    let errs = errors("[storage]\nbackend = \"fdb\"\nfdb_root = \"\"\nfdb_cluster_file = 3\n");
    assert!(error_for(&errs, "storage.fdb_root").contains("empty"));
    assert!(error_for(&errs, "storage.fdb_cluster_file").contains("string"));
    let errs = errors("[storage]\nfdb_root = \"x\"\n");
    assert!(error_for(&errs, "storage.fdb_root").contains("only used with backend"));
}

#[test]
fn a_cluster_off_loopback_needs_tls_or_insecure() {
    let lan = CLUSTER.replace("bind = \"127.0.0.1:7103\"", "bind = \"10.0.0.2:7103\"");
    let errs = errors(&lan);
    let message = error_for(&errs, "cluster.bind");
    assert!(message.contains("cluster.insecure") && message.contains("[cluster.tls]"));
    let ok = lan.replace("[cluster]\n", "[cluster]\ninsecure = true\n");
    assert!(parse(&ok).unwrap().cluster.unwrap().insecure);
    let tls =
        format!("{lan}\n[cluster.tls]\ncert = \"n2.pem\"\nkey = \"n2-key.pem\"\nca = \"ca.pem\"\n");
    let c = parse(&tls).unwrap().cluster.unwrap();
    assert!(!c.insecure);
    assert_eq!(
        c.tls,
        Some(ClusterTls {
            cert: "n2.pem".into(),
            key: "n2-key.pem".into(),
            ca: "ca.pem".into(),
        })
    );
}

#[test]
fn cluster_tls_needs_all_three_files_and_no_other_key() {
    let bad = format!("{CLUSTER}\n[cluster.tls]\ncert = \"n.pem\"\nca = 5\nkeys = \"x\"\n");
    let errs = errors(&bad);
    assert!(error_for(&errs, "cluster.tls.key").contains("missing"));
    assert!(error_for(&errs, "cluster.tls.ca").contains("a string"));
    assert!(error_for(&errs, "cluster.tls.keys").contains("unknown key"));
}

#[test]
fn the_cluster_secret_can_come_from_the_environment() {
    let text = CLUSTER.replace("secret = \"a-cluster-secret-of-some-length\"\n", "");
    let env = BTreeMap::from([(
        ENV_CLUSTER_SECRET.to_owned(),
        "from-the-environment-123".to_owned(),
    )]);
    let c = Config::parse(&text, Path::new("hub.toml"), &env).unwrap();
    assert_eq!(
        c.cluster.unwrap().secret.expose(),
        "from-the-environment-123"
    );
}

#[test]
fn the_crypt_key_comes_from_the_environment_and_a_bad_one_is_named() {
    let text = "[hub]\n";
    assert!(parse(text).unwrap().crypt_keys.is_none());
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let c = parse_env(text, &[("JUPYTERHUB_CRYPT_KEY", key)]).unwrap();
    assert!(c.crypt_keys.is_some());
    let e = parse_env(text, &[("JUPYTERHUB_CRYPT_KEY", "too-short")]).unwrap_err();
    assert!(
        e.to_string()
            .contains("JUPYTERHUB_CRYPT_KEY: key 1 is not 32 bytes"),
        "{e}"
    );
    // keys are compared across a cluster by a digest that shows nothing of them
    let agreed = crate::settings::agreed(&c);
    let shown = &agreed["JUPYTERHUB_CRYPT_KEY"];
    assert!(
        shown.starts_with("fingerprint:") && !shown.contains(key),
        "{shown}"
    );
}
