//! Tests of the proxy stages: pure tests of the route table, the diff and the activity
//! recorder here; end-to-end tests over real sockets in `end_to_end`, on the `harness` (a
//! small hyper front that routes with a [`RouteReader`] per connection and forwards with
//! [`Proxy`], and real backends).

use std::sync::Arc;

use super::activity::now_micros;
use super::*;

mod end_to_end;
mod harness;

// ---------------------------------------------------------------- pure: routes

pub(super) fn route(prefix: &str, target: &str, user: &str, server: &str) -> Route {
    Route::new(prefix, target, RouteKey::new(user, server))
}

fn sample_table() -> RouteTable {
    RouteTable::from_routes([
        route("/user/alice/", "http://127.0.0.1:1001", "alice", ""),
        route("/user/alice/nb1/", "http://127.0.0.1:1002", "alice", "nb1"),
        route("/user/bob/", "http://127.0.0.1:1003", "bob", ""),
        route("/user/a@b/", "http://127.0.0.1:1004", "a@b", ""),
        route("/user/x%2Fy/", "http://127.0.0.1:1005", "x/y", ""),
    ])
}

fn target_of(table: &RouteTable, path: &str) -> Option<String> {
    table.lookup(path).map(|r| r.target.clone())
}

#[test]
fn lookup_prefers_the_named_server() {
    let t = sample_table();
    assert_eq!(
        target_of(&t, "/user/alice/nb1/lab").as_deref(),
        Some("http://127.0.0.1:1002")
    );
    assert_eq!(
        target_of(&t, "/user/alice/nb1/").as_deref(),
        Some("http://127.0.0.1:1002")
    );
    assert_eq!(
        target_of(&t, "/user/alice/lab/tree/x.ipynb").as_deref(),
        Some("http://127.0.0.1:1001")
    );
    assert_eq!(
        target_of(&t, "/user/alice/").as_deref(),
        Some("http://127.0.0.1:1001")
    );
    // Without its slash `nb1` is a path inside the default server.
    assert_eq!(
        target_of(&t, "/user/alice/nb1").as_deref(),
        Some("http://127.0.0.1:1001")
    );
    assert_eq!(
        target_of(&t, "/user/alice/nb2/lab").as_deref(),
        Some("http://127.0.0.1:1001")
    );
}

#[test]
fn lookup_matches_only_at_segment_boundaries() {
    let t = sample_table();
    assert_eq!(target_of(&t, "/user/alice"), None);
    assert_eq!(target_of(&t, "/user/alicex/"), None);
    assert_eq!(target_of(&t, "/user/alicex/lab"), None);
    assert_eq!(target_of(&t, "/user/"), None);
    assert_eq!(target_of(&t, "/"), None);
    assert_eq!(target_of(&t, "/hub/api/users"), None);
    assert_eq!(target_of(&t, ""), None);
    assert_eq!(target_of(&t, "*"), None);
    assert_eq!(target_of(&t, "/services/alice/"), None);
}

#[test]
fn lookup_compares_names_in_canonical_escaping() {
    let t = sample_table();
    assert_eq!(
        target_of(&t, "/user/a@b/lab").as_deref(),
        Some("http://127.0.0.1:1004")
    );
    assert_eq!(
        target_of(&t, "/user/a%40b/lab").as_deref(),
        Some("http://127.0.0.1:1004")
    );
    assert_eq!(
        target_of(&t, "/user/x%2fy/lab").as_deref(),
        Some("http://127.0.0.1:1005")
    );
    assert_eq!(target_of(&t, "/user/x/y/lab"), None);
}

#[test]
fn lookup_in_an_empty_table_finds_nothing() {
    assert!(RouteTable::empty().lookup("/user/alice/").is_none());
}

#[test]
fn route_key_prefix_escapes_like_jupyterhub() {
    assert_eq!(RouteKey::new("alice", "").prefix("/"), "/user/alice/");
    assert_eq!(
        RouteKey::new("alice", "nb1").prefix("/jhub/"),
        "/jhub/user/alice/nb1/"
    );
    assert_eq!(
        RouteKey::new("a b@c/d~e", "é").prefix("/"),
        "/user/a%20b@c%2Fd~e/%C3%A9/"
    );
}

#[test]
fn from_routes_normalises_slashes_and_lists_sorted() {
    let t = RouteTable::from_routes([
        route("user/bob", "http://127.0.0.1:2", "bob", ""),
        route("/user/alice/", "http://127.0.0.1:1", "alice", ""),
    ]);
    let prefixes: Vec<String> = t.routes().iter().map(|r| r.prefix.clone()).collect();
    assert_eq!(prefixes, ["/user/alice/", "/user/bob/"]);
    assert_eq!(t.len(), 2);
    assert!(t.get("/user/bob/").is_some());
    assert_eq!(
        target_of(&t, "/user/bob/tree").as_deref(),
        Some("http://127.0.0.1:2")
    );
}

#[test]
fn route_reader_follows_the_channel() {
    let (tx, mut reader) = route_channel(RouteTable::empty());
    assert!(reader.lookup("/user/alice/").is_none());
    tx.send_replace(Arc::new(sample_table()));
    assert!(reader.lookup("/user/alice/").is_some());
    let mut clone = reader.clone();
    tx.send_replace(Arc::new(RouteTable::empty()));
    drop(tx);
    assert!(reader.lookup("/user/alice/").is_none());
    assert!(clone.lookup("/user/alice/").is_none());
}

// ---------------------------------------------------------------- pure: diff

#[test]
fn diff_reports_added_removed_and_changed() {
    let old = sample_table();
    let new = RouteTable::from_routes([
        route("/user/alice/", "http://127.0.0.1:1001", "alice", ""),
        route("/user/alice/nb1/", "http://127.0.0.1:9999", "alice", "nb1"),
        route("/user/carol/", "http://127.0.0.1:1006", "carol", ""),
        route("/user/a%40b/", "http://127.0.0.1:1004", "a@b", ""),
        route("/user/x%2Fy/", "http://127.0.0.1:1005", "x/y", ""),
    ]);
    let d = diff(&old, &new);
    let prefixes = |v: &[Arc<Route>]| v.iter().map(|r| r.prefix.clone()).collect::<Vec<_>>();
    assert_eq!(prefixes(&d.added), ["/user/carol/"]);
    assert_eq!(prefixes(&d.removed), ["/user/bob/"]);
    // `/user/a%40b/` is `/user/a@b/` respelled, but the spelling is part of the route.
    assert_eq!(d.changed.len(), 2);
    assert_eq!(d.changed[0].old.prefix, "/user/a@b/");
    assert_eq!(d.changed[0].new.prefix, "/user/a%40b/");
    assert_eq!(d.changed[1].old.target, "http://127.0.0.1:1002");
    assert_eq!(d.changed[1].new.target, "http://127.0.0.1:9999");
    assert_eq!(d.len(), 4);
    assert!(!d.is_empty());
}

#[test]
fn diff_of_equal_tables_is_empty() {
    assert!(diff(&sample_table(), &sample_table()).is_empty());
    assert!(diff(&RouteTable::empty(), &RouteTable::empty()).is_empty());
    let d = diff(&RouteTable::empty(), &sample_table());
    assert_eq!((d.added.len(), d.removed.len(), d.changed.len()), (5, 0, 0));
    let d = diff(&sample_table(), &RouteTable::empty());
    assert_eq!((d.added.len(), d.removed.len(), d.changed.len()), (0, 5, 0));
}

// ---------------------------------------------------------------- pure: activity

#[test]
fn activity_keeps_the_newest_time_per_key_until_taken() {
    let activity = ActivityRecorder::new();
    let alice = RouteKey::new("alice", "");
    let nb1 = RouteKey::new("alice", "nb1");
    activity.record_at(&alice, 100);
    activity.record_at(&alice, 50);
    activity.clone().record_at(&nb1, 70);
    activity.record_at(&nb1, 80);
    assert_eq!(activity.len(), 2);
    let taken = activity.take();
    assert_eq!(taken.get(&alice), Some(&100));
    assert_eq!(taken.get(&nb1), Some(&80));
    assert!(activity.is_empty());
    assert!(activity.take().is_empty());
    let before = now_micros();
    activity.record(&alice);
    assert!(activity.take()[&alice] >= before);
}
