//! The route table: which backend serves which URL prefix.
//!
//! A [`RouteTable`] is an immutable snapshot. Whoever owns the desired routes (the node,
//! fed by the store's change feed) builds a new table and publishes it with
//! [`tokio::sync::watch::Sender::send`]; request handlers read it through a
//! [`RouteReader`], which keeps its own `Arc` of the current table and only touches the
//! channel when the channel's version counter (an atomic) says a newer table exists. The
//! request path therefore takes no lock.
//!
//! Lookup is a longest-prefix match at path-segment boundaries, as CHP's trie does it, but
//! with one hash probe per candidate depth: the table remembers which prefix depths exist
//! (two segments for `/user/<name>/`, three for `/user/<name>/<server>/`) and tries the
//! request path cut at each of them, longest first. A prefix matches only a path that
//! continues past its trailing slash: `/user/alice` does not match `/user/alice/` (the hub
//! answers it with a redirect).
//!
//! Prefixes are compared in a canonical escaping, JupyterHub's `quote(name, safe="@~")` per
//! segment, so `/user/a%40b/` and `/user/a@b/` are the same route and an escaped `/` in a
//! name (`%2F`) never splits a segment. The forwarded path itself is never rewritten.
//! Dot segments (`..`) are not resolved: a path is routed by its literal prefix, and the
//! backend that receives it authenticates the request like any other.
//!
//! [`diff`] is the pure comparison the route reconciler uses to count and fix drift.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::sync::watch;

/// The bytes JupyterHub leaves literal in a URL name: Python's `quote(name, safe="@~")`.
const NAME_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'@');

/// Whose traffic a route carries: a user's server, `""` being the default server.
///
/// Names are unescaped, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub user: String,
    pub server: String,
}

impl RouteKey {
    pub fn new(user: impl Into<String>, server: impl Into<String>) -> RouteKey {
        RouteKey {
            user: user.into(),
            server: server.into(),
        }
    }

    /// The routespec JupyterHub gives this server under `base_url` (`P`, starting and
    /// ending with `/`): `P + "user/" + esc(user) + "/"`, plus `esc(server) + "/"` for a
    /// named server (§1.3).
    pub fn prefix(&self, base_url: &str) -> String {
        let mut prefix =
            String::with_capacity(base_url.len() + self.user.len() + self.server.len() + 8);
        prefix.push_str(base_url);
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str("user/");
        prefix.extend(utf8_percent_encode(&self.user, NAME_ESCAPE));
        prefix.push('/');
        if !self.server.is_empty() {
            prefix.extend(utf8_percent_encode(&self.server, NAME_ESCAPE));
            prefix.push('/');
        }
        prefix
    }
}

/// One route: requests whose path starts with `prefix` go to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// URL prefix as it appears in URLs (escaped), starting and ending with `/`, e.g.
    /// `/user/alice/` or `/user/alice/nb1/`.
    pub prefix: String,
    /// Backend origin, e.g. `http://127.0.0.1:41123`. A path here is prepended to the
    /// forwarded path, as CHP does; JupyterHub never sets one.
    pub target: String,
    /// Whose server this is, for activity.
    pub key: RouteKey,
}

impl Route {
    pub fn new(prefix: impl Into<String>, target: impl Into<String>, key: RouteKey) -> Route {
        Route {
            prefix: prefix.into(),
            target: target.into(),
            key,
        }
    }
}

/// An immutable snapshot of every route this node serves.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Canonical prefix (see [`canonical_path`]) → route.
    by_prefix: HashMap<String, Arc<Route>>,
    /// Distinct prefix depths present (number of segments), longest first.
    depths: Vec<usize>,
}

impl RouteTable {
    /// A table without routes.
    pub fn empty() -> RouteTable {
        RouteTable::default()
    }

    /// Builds a table. A prefix missing its leading or trailing `/` gets one (CHP treats
    /// `/user/alice` and `/user/alice/` as the same route). When two routes have the same
    /// prefix, the last one wins.
    pub fn from_routes<I: IntoIterator<Item = Route>>(routes: I) -> RouteTable {
        let mut by_prefix = HashMap::new();
        for mut route in routes {
            if !route.prefix.starts_with('/') {
                route.prefix.insert(0, '/');
            }
            if !route.prefix.ends_with('/') {
                route.prefix.push('/');
            }
            let canonical = canonical_path(&route.prefix).into_owned();
            if let Some(old) = by_prefix.insert(canonical, Arc::new(route)) {
                tracing::warn!(prefix = %old.prefix, target = %old.target, "duplicate route prefix, keeping the last");
            }
        }
        let mut depths: Vec<usize> = by_prefix.keys().map(|p| depth(p)).collect();
        depths.sort_unstable_by(|a, b| b.cmp(a));
        depths.dedup();
        RouteTable { by_prefix, depths }
    }

    /// The route whose prefix is the longest segment-aligned prefix of `path` (the path
    /// part of a request URI, without query), if any.
    pub fn lookup(&self, path: &str) -> Option<Arc<Route>> {
        let deepest = *self.depths.first()?;
        let cut = cut_segments(path, deepest)?;
        let canonical = canonical_path(cut);
        for &d in &self.depths {
            // The prefix of depth d ends at the (d + 1)-th slash.
            let Some((end, _)) = canonical.match_indices('/').nth(d) else {
                continue;
            };
            if let Some(route) = self.by_prefix.get(&canonical[..=end]) {
                return Some(route.clone());
            }
        }
        None
    }

    /// The route with exactly this prefix.
    pub fn get(&self, prefix: &str) -> Option<&Arc<Route>> {
        self.by_prefix.get(canonical_path(prefix).as_ref())
    }

    /// Every route, sorted by prefix.
    pub fn routes(&self) -> Vec<Arc<Route>> {
        let mut routes: Vec<Arc<Route>> = self.by_prefix.values().cloned().collect();
        routes.sort_unstable_by(|a, b| a.prefix.cmp(&b.prefix));
        routes
    }

    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

impl FromIterator<Route> for RouteTable {
    fn from_iter<I: IntoIterator<Item = Route>>(routes: I) -> RouteTable {
        RouteTable::from_routes(routes)
    }
}

/// A route whose prefix stayed but whose target or key changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    pub old: Arc<Route>,
    pub new: Arc<Route>,
}

/// What it takes to turn one table into another; each list is sorted by prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDiff {
    pub added: Vec<Arc<Route>>,
    pub removed: Vec<Arc<Route>>,
    pub changed: Vec<RouteChange>,
}

impl RouteDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Number of routes added, removed or changed.
    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }
}

/// Compares two tables by prefix (in canonical escaping). Pure.
pub fn diff(old: &RouteTable, new: &RouteTable) -> RouteDiff {
    let mut out = RouteDiff::default();
    for (prefix, route) in &new.by_prefix {
        match old.by_prefix.get(prefix) {
            None => out.added.push(route.clone()),
            Some(before) if before != route => out.changed.push(RouteChange {
                old: before.clone(),
                new: route.clone(),
            }),
            Some(_) => {}
        }
    }
    for (prefix, route) in &old.by_prefix {
        if !new.by_prefix.contains_key(prefix) {
            out.removed.push(route.clone());
        }
    }
    out.added.sort_unstable_by(|a, b| a.prefix.cmp(&b.prefix));
    out.removed.sort_unstable_by(|a, b| a.prefix.cmp(&b.prefix));
    out.changed
        .sort_unstable_by(|a, b| a.new.prefix.cmp(&b.new.prefix));
    out
}

/// A channel for publishing tables, starting with `initial`.
pub fn route_channel(initial: RouteTable) -> (watch::Sender<Arc<RouteTable>>, RouteReader) {
    let (tx, rx) = watch::channel(Arc::new(initial));
    (tx, RouteReader::new(rx))
}

/// A reader of the published route table for one task or connection.
///
/// `watch::Receiver::borrow` takes a (read) lock; a `RouteReader` keeps the last table it
/// saw and checks only the channel's version counter, an atomic load, before each lookup.
/// Clone one per connection; a clone shares nothing mutable with the original. Inside a
/// hyper `service_fn` (an `Fn`), hold the connection's reader in a `RefCell`: it is `Send`,
/// the lookup happens before the returned future, and only that connection touches it.
#[derive(Debug, Clone)]
pub struct RouteReader {
    rx: watch::Receiver<Arc<RouteTable>>,
    current: Arc<RouteTable>,
    /// Set once every sender is gone; the last table then stays.
    closed: bool,
}

impl RouteReader {
    pub fn new(mut rx: watch::Receiver<Arc<RouteTable>>) -> RouteReader {
        let current = rx.borrow_and_update().clone();
        RouteReader {
            rx,
            current,
            closed: false,
        }
    }

    /// The newest published table.
    pub fn table(&mut self) -> &Arc<RouteTable> {
        if !self.closed {
            match self.rx.has_changed() {
                Ok(false) => {}
                Ok(true) => self.current = self.rx.borrow_and_update().clone(),
                Err(_) => {
                    // Every sender is gone; a last value may still be unseen.
                    self.current = self.rx.borrow_and_update().clone();
                    self.closed = true;
                }
            }
        }
        &self.current
    }

    /// [`RouteTable::lookup`] in the newest published table.
    pub fn lookup(&mut self, path: &str) -> Option<Arc<Route>> {
        self.table().lookup(path)
    }
}

/// Number of segments in a prefix that starts and ends with `/`: `/` is 0,
/// `/user/alice/` is 2.
fn depth(prefix: &str) -> usize {
    prefix
        .bytes()
        .filter(|&b| b == b'/')
        .count()
        .saturating_sub(1)
}

/// `path` up to and including the slash that ends its `segments`-th segment, or up to its
/// last slash when it has fewer; `None` when it does not start with `/`.
fn cut_segments(path: &str, segments: usize) -> Option<&str> {
    if !path.starts_with('/') {
        return None;
    }
    let end = match path.match_indices('/').nth(segments) {
        Some((end, _)) => end,
        None => path.rfind('/')?,
    };
    Some(&path[..=end])
}

/// Re-escapes every segment of `path` the way JupyterHub escapes names, so that two
/// spellings of the same name compare equal. Borrows when nothing needs changing, which is
/// the common case.
fn canonical_path(path: &str) -> Cow<'_, str> {
    let is_canonical = path.bytes().all(|b| {
        b == b'/' || b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'@')
    });
    if is_canonical {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let decoded: Vec<u8> = percent_decode_str(segment).collect();
        out.extend(percent_encoding::percent_encode(&decoded, NAME_ESCAPE));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn canonical_path_reescapes_segments() {
        assert!(matches!(canonical_path("/user/alice/"), Cow::Borrowed(_)));
        assert_eq!(canonical_path("/user/a%40b/"), "/user/a@b/");
        assert_eq!(canonical_path("/user/a%2fb/x"), "/user/a%2Fb/x");
        assert_eq!(canonical_path("/user/a b:c/"), "/user/a%20b%3Ac/");
        assert_eq!(canonical_path("/user/%E2%82%AC/"), "/user/%E2%82%AC/");
    }

    #[test]
    fn cut_segments_stops_at_the_requested_depth() {
        assert_eq!(
            cut_segments("/user/alice/nb1/lab/tree", 3),
            Some("/user/alice/nb1/")
        );
        assert_eq!(cut_segments("/user/alice/lab", 3), Some("/user/alice/"));
        assert_eq!(cut_segments("/user/alice", 3), Some("/user/"));
        assert_eq!(cut_segments("*", 3), None);
    }

    #[test]
    fn depth_counts_segments() {
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/user/alice/"), 2);
        assert_eq!(depth("/user/alice/nb1/"), 3);
    }
}
