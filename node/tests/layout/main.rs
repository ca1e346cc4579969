//! The layout check: keeps the file structure of `actors/src` and `node/src` honest. For
//! each crate: no import circles between files; every file opens with a `//!` line saying
//! what it owns; no file over 500 lines outside its `#[cfg(test)]` code (unless listed in
//! [`EXCEPTIONS`]); and no library code that picks a concrete spawner backend itself.
//!
//! `modules` reads a crate (its module tree, what each module defines and imports, every
//! path each file mentions), `resolve` follows each path to the file defining what it
//! names, `graph` finds the circles. Every rule is first shown to fail on a planted crate
//! (`self_tests`). The checks on the real crates print their whole report to stderr.

mod graph;
mod modules;
mod resolve;
mod self_tests;
mod syntax;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// The most lines a file may have outside its `#[cfg(test)]` code.
const MAX_LINES: usize = 500;

/// A file allowed more than [`MAX_LINES`] lines.
struct Exception {
    /// From the workspace root: `actors/src/router/calls.rs`.
    path: &'static str,
    /// Its allowed maximum (lines outside `#[cfg(test)]` code).
    max: usize,
    /// Why it cannot be split (the file's `//!` says so too).
    reason: &'static str,
}

/// Files allowed more than [`MAX_LINES`] lines. An entry must also say why in the file's
/// own `//!` comment, where its readers look. An entry for a file that no longer needs it
/// (500 lines or fewer) or no longer exists fails the check, so the table cannot go stale.
const EXCEPTIONS: &[Exception] = &[];

/// The concrete spawner backends: only [`BACKEND_CHOOSERS`] (and the backend's own
/// submodules) may import them.
const BACKENDS: &[&str] = &["actors/src/spawner/local.rs"];

/// The files that choose a spawner backend. A path here need not exist yet.
const BACKEND_CHOOSERS: &[&str] = &["actors/src/spawner/backends.rs"];

/// Paths node code may not mention: the node chooses a backend through actors' chooser.
const NODE_FORBIDDEN: &[&str] = &["LocalProcessSpawner", "spawner::local"];

struct Rules<'a> {
    exceptions: &'a [Exception],
    backends: &'a [&'a str],
    choosers: &'a [&'a str],
    forbidden: &'a [&'a str],
}

const ACTORS: Rules = Rules {
    exceptions: EXCEPTIONS,
    backends: BACKENDS,
    choosers: BACKEND_CHOOSERS,
    forbidden: &[],
};

const NODE: Rules = Rules {
    exceptions: EXCEPTIONS,
    backends: BACKENDS,
    choosers: BACKEND_CHOOSERS,
    forbidden: NODE_FORBIDDEN,
};

/// What the check found in one crate; files are named from the workspace root.
#[derive(Default)]
struct Report {
    src: String,
    /// Every file-to-file edge, `a -> b: names (line n)` (not printed).
    edges: Vec<String>,
    /// Each circle: its files, and the edges inside it.
    circles: Vec<(Vec<String>, Vec<String>)>,
    missing_doc: Vec<String>,
    /// Files over their limit: the file, its lines, its limit.
    too_long: Vec<(String, usize, usize)>,
    stale_exceptions: Vec<String>,
    backend_imports: Vec<String>,
    unresolved: Vec<String>,
    /// Files the check could not read as part of the crate.
    unreadable: Vec<String>,
    /// Binaries' files, not checked (a note, not a failure).
    skipped: Vec<String>,
}

impl Report {
    fn is_clean(&self) -> bool {
        self.circles.is_empty()
            && self.missing_doc.is_empty()
            && self.too_long.is_empty()
            && self.stale_exceptions.is_empty()
            && self.backend_imports.is_empty()
            && self.unresolved.is_empty()
            && self.unreadable.is_empty()
    }
}

/// Runs every rule on the crate whose sources are at `root/src`.
fn check_crate(root: &Path, src: &str, rules: &Rules) -> Report {
    let krate = modules::load(root, src);
    let found = resolve::edges(&krate);
    let mut report = Report {
        src: src.to_owned(),
        edges: found
            .edges
            .iter()
            .map(|(&pair, e)| show(&krate, pair, e))
            .collect(),
        unresolved: found.unresolved.clone(),
        unreadable: krate.problems.clone(),
        skipped: krate.skipped.clone(),
        ..Report::default()
    };
    circles(&krate, &found, &mut report);
    docs_and_lengths(&krate, src, rules, &mut report);
    backends(&krate, &found, rules, &mut report);
    report
}

/// `a -> b: the names a takes from b (line of the first)`.
fn show(krate: &modules::Crate, (a, b): (usize, usize), edge: &resolve::Edge) -> String {
    let names: Vec<&str> = edge.names.iter().map(String::as_str).collect();
    let (a, b) = (&krate.files[a].rel, &krate.files[b].rel);
    format!("{a} -> {b}: {} (line {})", names.join(", "), edge.line)
}

/// Rule 1: no import circles between files.
fn circles(krate: &modules::Crate, found: &resolve::Edges, report: &mut Report) {
    let pairs: BTreeSet<(usize, usize)> = found.edges.keys().copied().collect();
    for circle in graph::circles(krate.files.len(), &pairs) {
        let mut files: Vec<String> = circle.iter().map(|&f| krate.files[f].rel.clone()).collect();
        files.sort();
        let inside = (found.edges.iter())
            .filter(|((a, b), _)| circle.contains(a) && circle.contains(b))
            .map(|(&pair, e)| show(krate, pair, e));
        report.circles.push((files, inside.collect()));
    }
}

/// Rules 2 and 3: a `//!` first line; at most [`MAX_LINES`] lines outside tests, or the
/// file's exception, and no stale exceptions.
fn docs_and_lengths(krate: &modules::Crate, src: &str, rules: &Rules, report: &mut Report) {
    for file in &krate.files {
        if !file.has_doc {
            report.missing_doc.push(file.rel.clone());
        }
        let exception = rules.exceptions.iter().find(|e| e.path == file.rel);
        let allowed = exception.map_or(MAX_LINES, |e| e.max);
        if file.lines > allowed {
            report
                .too_long
                .push((file.rel.clone(), file.lines, allowed));
        }
    }
    let ours = rules
        .exceptions
        .iter()
        .filter(|e| e.path.starts_with(&format!("{src}/")));
    for exception in ours {
        let stale = match krate.files.iter().find(|f| f.rel == exception.path) {
            None => format!("{}: not in the crate", exception.path),
            Some(f) if f.lines <= MAX_LINES => format!(
                "{}: {} lines, no longer needs its exception ({})",
                f.rel, f.lines, exception.reason
            ),
            Some(_) => continue,
        };
        report.stale_exceptions.push(stale);
    }
}

/// Rule 4: only the choosers (and a backend's own submodules) import a concrete backend;
/// no path names a forbidden one.
fn backends(krate: &modules::Crate, found: &resolve::Edges, rules: &Rules, report: &mut Report) {
    for (&(a, b), edge) in &found.edges {
        let (from, to) = (krate.files[a].rel.as_str(), krate.files[b].rel.as_str());
        let own_submodule = from.starts_with(&format!("{}/", to.trim_end_matches(".rs")));
        if rules.backends.contains(&to) && !rules.choosers.contains(&from) && !own_submodule {
            report.backend_imports.push(show(krate, (a, b), edge));
        }
    }
    for mention in &krate.mentions {
        let path = mention.path.segments.join("::");
        for word in rules.forbidden {
            if format!("::{path}::").contains(&format!("::{word}::")) {
                let at = format!("{}:{}", krate.files[mention.file].rel, mention.path.line);
                report
                    .backend_imports
                    .push(format!("{at}: `{path}` names `{word}`"));
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_clean() {
            "every rule holds"
        } else {
            "rules broken"
        };
        writeln!(f, "layout of {}: {verdict}", self.src)?;
        if !self.skipped.is_empty() {
            writeln!(f, "  not checked (binaries): {}", self.skipped.join(", "))?;
        }
        for (files, edges) in &self.circles {
            writeln!(
                f,
                "  import circle of {} files: {}",
                files.len(),
                files.join(", ")
            )?;
            edges.iter().try_for_each(|e| writeln!(f, "    {e}"))?;
        }
        let mut list = |title: &str, items: &[String]| -> fmt::Result {
            if !items.is_empty() {
                writeln!(f, "  {title}:")?;
                items.iter().try_for_each(|i| writeln!(f, "    {i}"))?;
            }
            Ok(())
        };
        list("files without a `//!` first line", &self.missing_doc)?;
        let long: Vec<String> = (self.too_long.iter())
            .map(|(file, lines, max)| {
                format!("{file}: {lines} lines outside tests (at most {max})")
            })
            .collect();
        list("files too long", &long)?;
        list("stale entries in EXCEPTIONS", &self.stale_exceptions)?;
        list(
            "concrete spawner backend imported outside BACKEND_CHOOSERS",
            &self.backend_imports,
        )?;
        list("in-crate paths that lead nowhere", &self.unresolved)?;
        list("files not read", &self.unreadable)
    }
}

/// Checks a real crate of the workspace, printing the whole report.
fn holds(src: &str, rules: &Rules) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let report = check_crate(root, src, rules);
    eprint!("{report}");
    assert!(
        report.is_clean(),
        "the layout rules do not hold in {src}: the report is above"
    );
}

#[test]

fn actors_layout_holds() {
    holds("actors/src", &ACTORS);
}

#[test]

fn node_layout_holds() {
    holds("node/src", &NODE);
}
