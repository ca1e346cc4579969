//! Each rule of the layout check shown on a planted crate: it reports what it must, and
//! nothing where the layout is sound.

use crate::{check_crate, Exception, Report, Rules, ACTORS, NODE};

/// No exceptions, no backends: the rules every crate gets.
const PLAIN: Rules = Rules {
    exceptions: &[],
    backends: &[],
    choosers: &[],
    forbidden: &[],
};

/// Writes `files` (paths from the workspace root) in a new directory and checks the crate
/// at `src` there.
fn planted(src: &str, rules: &Rules, files: &[(&str, &str)]) -> Report {
    let root = tempfile::tempdir().expect("a temporary directory");
    for (path, text) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, text).expect("a written file");
    }
    let report = check_crate(root.path(), src, rules);
    eprint!("{report}");
    report
}

/// A file of `lines` lines: a `//!` line and functions.
fn lines(lines: usize) -> String {
    let mut text = String::from("//! A file of many lines.\n");
    (1..lines).for_each(|i| text.push_str(&format!("pub fn f{i}() {{}}\n")));
    text
}

#[test]
fn a_planted_circle_is_found() {
    // a -> b by a `use`, b -> c by a path in a function body, c -> a by a path in a macro's
    // tokens: each edge is needed for the circle; d only uses it
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            (
                "actors/src/lib.rs",
                "//! Root.\npub mod a;\npub mod b;\npub mod c;\nmod d;\n",
            ),
            (
                "actors/src/a.rs",
                "//! A.\nuse crate::b::B;\npub fn f(_: B) {}\n",
            ),
            (
                "actors/src/b.rs",
                "//! B.\npub struct B;\npub fn g() {\n    let _ = crate::c::C;\n}\n",
            ),
            (
                "actors/src/c.rs",
                "//! C.\npub struct C;\nmacro_rules! run {\n    ($e:expr) => { $e };\n}\n\
                 pub fn h() {\n    run!({ super::a::f(crate::b::B) });\n}\n\
                 #[macro_export]\nmacro_rules! shout {\n    () => {};\n}\n",
            ),
            (
                "actors/src/d.rs",
                "//! D.\nuse crate::a::f;\nfn x() {\n    crate::shout!();\n}\n",
            ),
        ],
    );
    let files = ["actors/src/a.rs", "actors/src/b.rs", "actors/src/c.rs"];
    assert_eq!(report.circles.len(), 1);
    assert_eq!(report.circles[0].0, files);
    let edges = &report.circles[0].1;
    assert!(edges.contains(&"actors/src/a.rs -> actors/src/b.rs: B (line 2)".to_owned()));
    assert!(edges.contains(&"actors/src/b.rs -> actors/src/c.rs: C (line 4)".to_owned()));
    assert!(edges.contains(&"actors/src/c.rs -> actors/src/a.rs: f (line 7)".to_owned()));
    // a `#[macro_export]` macro is `crate::shout`, and comes from the file defining it
    let shout = "actors/src/d.rs -> actors/src/c.rs: shout (line 4)".to_owned();
    assert!(report.edges.contains(&shout), "{:?}", report.edges);
}

#[test]
fn re_exports_make_no_circle() {
    // store/mod.rs only declares and re-exports its children (and uses them); a child
    // imports a sibling's item through the re-export
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            (
                "actors/src/lib.rs",
                "//! Root.\npub mod store;\npub fn go() -> store::Token {\n    crate::store::make(&store::User)\n}\n",
            ),
            (
                "actors/src/store/mod.rs",
                "//! Store.\nmod tokens;\nmod users;\npub use tokens::{mint as make, Token};\n\
                 pub use self::users::*;\npub fn first() -> Token {\n    make(&User)\n}\n",
            ),
            (
                "actors/src/store/tokens.rs",
                "//! Tokens.\nuse super::User;\npub struct Token;\npub fn mint(_: &User) -> Token {\n    Token\n}\n",
            ),
            ("actors/src/store/users.rs", "//! Users.\npub struct User;\n"),
        ],
    );
    assert!(report.is_clean());
    for edge in [
        "actors/src/lib.rs -> actors/src/store/tokens.rs: Token, mint (line 3)",
        "actors/src/lib.rs -> actors/src/store/users.rs: User (line 4)",
        "actors/src/store/tokens.rs -> actors/src/store/users.rs: User (line 2)",
        "actors/src/store/mod.rs -> actors/src/store/tokens.rs: Token, mint (line 4)",
    ] {
        assert!(
            report.edges.contains(&edge.to_owned()),
            "{edge} in {:?}",
            report.edges
        );
    }
}

#[test]
fn test_code_makes_no_circle() {
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            ("actors/src/lib.rs", "//! Root.\nmod a;\nmod b;\n"),
            (
                "actors/src/a.rs",
                "//! A.\nuse crate::b::B;\npub struct A(B);\n",
            ),
            (
                "actors/src/b.rs",
                "//! B.\npub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n    \
                 #[test]\n    fn t() {\n        let _ = A(super::B);\n    }\n}\n\
                 #[cfg(all(test, unix))]\nfn helper() -> crate::a::A {\n    crate::a::A(B)\n}\n",
            ),
        ],
    );
    assert!(report.is_clean());
}

#[test]
fn a_local_variable_named_like_a_module_makes_no_edge() {
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            (
                "actors/src/lib.rs",
                "//! Root.\nmod local;\npub trait Spawner {}\npub fn f(local: u8) -> u8 {\n    local\n}\n",
            ),
            ("actors/src/local.rs", "//! Local.\nuse super::Spawner;\n"),
        ],
    );
    assert!(report.is_clean());
    assert_eq!(
        report.edges,
        ["actors/src/local.rs -> actors/src/lib.rs: Spawner (line 2)"]
    );
}

#[test]
fn a_file_without_a_doc_line_is_reported() {
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            (
                "actors/src/lib.rs",
                "\n\n//! Root, after blank lines.\nmod a;\nmod b;\n",
            ),
            ("actors/src/a.rs", "// A plain comment.\npub struct A;\n"),
            ("actors/src/b.rs", "/// An item's doc.\npub struct B;\n"),
        ],
    );
    assert_eq!(report.missing_doc, ["actors/src/a.rs", "actors/src/b.rs"]);
}

#[test]
fn a_long_file_is_reported_but_not_its_tests() {
    let mut with_tests = lines(300);
    with_tests.push_str("#[cfg(test)]\nmod tests {\n");
    with_tests.push_str(&"    // a test line\n".repeat(397));
    with_tests.push_str("}\n");
    assert_eq!(with_tests.lines().count(), 700);
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            (
                "actors/src/lib.rs",
                "//! Root.\nmod long;\nmod full;\nmod tested;\n",
            ),
            ("actors/src/long.rs", &lines(501)),
            ("actors/src/full.rs", &lines(500)),
            ("actors/src/tested.rs", &with_tests),
        ],
    );
    assert_eq!(
        report.too_long,
        [("actors/src/long.rs".to_owned(), 501, 500)]
    );
}

#[test]
fn exceptions_allow_a_long_file_and_cannot_go_stale() {
    let exceptions = [
        Exception {
            path: "actors/src/long.rs",
            max: 600,
            reason: "planted",
        },
        Exception {
            path: "actors/src/short.rs",
            max: 600,
            reason: "planted",
        },
        Exception {
            path: "actors/src/gone.rs",
            max: 600,
            reason: "planted",
        },
    ];
    let rules = Rules {
        exceptions: &exceptions,
        ..PLAIN
    };
    let report = planted(
        "actors/src",
        &rules,
        &[
            ("actors/src/lib.rs", "//! Root.\nmod long;\nmod short;\n"),
            ("actors/src/long.rs", &lines(550)),
            ("actors/src/short.rs", &lines(20)),
        ],
    );
    assert!(report.too_long.is_empty());
    assert_eq!(
        report.stale_exceptions,
        [
            "actors/src/short.rs: 20 lines, no longer needs its exception (planted)",
            "actors/src/gone.rs: not in the crate",
        ]
    );
}

#[test]
fn a_backend_import_outside_the_chooser_is_reported() {
    let report = planted(
        "actors/src",
        &ACTORS,
        &[
            ("actors/src/lib.rs", "//! Root.\npub mod server;\npub mod spawner;\n"),
            ("actors/src/spawner/mod.rs", "//! Spawner.\npub mod backends;\npub mod local;\npub trait Spawner {}\n"),
            (
                "actors/src/spawner/local.rs",
                "//! Local.\nmod helper;\npub struct LocalProcessSpawner;\nimpl super::Spawner for LocalProcessSpawner {}\n",
            ),
            (
                "actors/src/spawner/local/helper.rs",
                "//! Its own submodule.\npub fn one() -> super::LocalProcessSpawner {\n    super::LocalProcessSpawner\n}\n",
            ),
            (
                "actors/src/spawner/backends.rs",
                "//! The chooser.\npub fn choose() -> Box<dyn super::Spawner> {\n    \
                 Box::new(super::local::LocalProcessSpawner)\n}\n",
            ),
            ("actors/src/server.rs", "//! Server.\nuse crate::spawner::local::LocalProcessSpawner;\n"),
        ],
    );
    assert_eq!(
        report.backend_imports,
        ["actors/src/server.rs -> actors/src/spawner/local.rs: LocalProcessSpawner (line 2)"]
    );
}

#[test]
fn a_node_mention_of_the_local_backend_is_reported() {
    let report = planted(
        "node/src",
        &NODE,
        &[(
            "node/src/lib.rs",
            "//! Root.\nuse galilean_actors::spawner::local as backend;\n\
             pub fn f() {\n    let _ = galilean_actors::spawner::LocalProcessSpawner::new();\n}\n",
        )],
    );
    assert_eq!(
        report.backend_imports,
        [
            "node/src/lib.rs:2: `galilean_actors::spawner::local` names `spawner::local`",
            "node/src/lib.rs:4: `galilean_actors::spawner::LocalProcessSpawner::new` names `LocalProcessSpawner`",
        ]
    );
}

#[test]
fn a_path_into_nothing_and_a_stray_file_are_reported() {
    let report = planted(
        "actors/src",
        &PLAIN,
        &[
            (
                "actors/src/lib.rs",
                "//! Root.\nmod a;\npub fn f() {\n    crate::a::gone();\n}\n",
            ),
            ("actors/src/a.rs", "//! A.\n"),
            ("actors/src/stray.rs", "//! No `mod` reaches this.\n"),
            (
                "actors/src/main.rs",
                "//! Another crate: skipped.\nuse crate::nothing;\n",
            ),
        ],
    );
    assert_eq!(
        report.unresolved,
        ["actors/src/lib.rs:4: `crate::a::gone` names nothing in the crate"]
    );
    assert_eq!(
        report.unreadable,
        ["actors/src/stray.rs: no `mod` declaration reaches this file"]
    );
}
