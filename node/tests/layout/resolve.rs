//! Which file each mentioned path leads to. A path is followed segment by segment through
//! the module tree; a name a module only imports (`pub use child::Item;`, globs too) is
//! followed to the file that defines it, so re-exports make no edge back. A path into the
//! crate that cannot be followed is an error, never skipped.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::modules::{Binding, Crate, FileId, Mentioned, ModId};

#[derive(Clone, Copy)]
enum Target {
    Module(ModId),
    /// Defined in this file (with the name's later segments: variants, methods).
    Item(FileId),
    /// Another crate, or a name that is not a module path (a local variable).
    Outside,
}

/// File A uses file B (A ≠ B): the names A takes from B and the first line doing so.
#[derive(Default)]
pub struct Edge {
    pub names: BTreeSet<String>,
    pub line: usize,
}

pub struct Edges {
    pub edges: BTreeMap<(FileId, FileId), Edge>,
    /// `file:line: path` of in-crate paths that lead nowhere.
    pub unresolved: Vec<String>,
}

/// The file-to-file edges made by every path the crate mentions.
pub fn edges(krate: &Crate) -> Edges {
    let mut out = Edges {
        edges: BTreeMap::new(),
        unresolved: Vec::new(),
    };
    let mut resolver = Resolver {
        krate,
        busy: HashSet::new(),
    };
    for mention in &krate.mentions {
        match resolver.path(mention.module, &mention.path) {
            Ok(Some((target, name))) => {
                let to = match target {
                    Target::Module(m) => krate.modules[m].file,
                    Target::Item(f) => f,
                    Target::Outside => continue,
                };
                if to != mention.file {
                    let edge = out.edges.entry((mention.file, to)).or_default();
                    if edge.names.is_empty() || mention.path.line < edge.line {
                        edge.line = mention.path.line;
                    }
                    edge.names.insert(name);
                }
            }
            Ok(None) => {}
            Err(()) => out.unresolved.push(format!(
                "{}:{}: `{}` names nothing in the crate",
                krate.files[mention.file].rel,
                mention.path.line,
                mention.path.segments.join("::")
            )),
        }
    }
    out
}

/// Ok(None): out of the crate; Ok(Some(target, name as defined)); Err: leads nowhere.
type Resolved = Result<Option<(Target, String)>, ()>;

struct Resolver<'a> {
    krate: &'a Crate,
    /// Names being looked up, so that import loops end.
    busy: HashSet<(ModId, String)>,
}

impl Resolver<'_> {
    /// Follows a path mentioned in `module`: Ok(None) when it leads out of the crate (or is
    /// no module path), the target and the name taken from it, or Err when it starts in the
    /// crate and leads nowhere.
    fn path(&mut self, module: ModId, path: &Mentioned) -> Resolved {
        let segs = &path.segments;
        if path.global {
            return Ok(None);
        }
        let modules = &self.krate.modules;
        let (target, rest) = match segs[0].as_str() {
            "crate" | "$crate" => (Target::Module(0), 1),
            "self" => (Target::Module(module), 1),
            "super" => {
                let mut m = module;
                let supers = segs.iter().take_while(|s| *s == "super").count();
                for _ in 0..supers {
                    m = modules[m].parent.ok_or(())?;
                }
                (Target::Module(m), supers)
            }
            first => match self.lookup(module, first) {
                None | Some((Target::Outside, _)) => return Ok(None),
                Some((t, name)) => return self.walk(t, name, &segs[1..]),
            },
        };
        self.walk(target, segs[rest - 1].clone(), &segs[rest..])
    }

    /// Follows `rest` from `target` (reached by `name`) down to a module or item.
    fn walk(&mut self, mut target: Target, mut name: String, rest: &[String]) -> Resolved {
        for seg in rest {
            let Target::Module(m) = target else { break };
            (target, name) = self.lookup(m, seg).ok_or(())?;
        }
        Ok(Some((target, name)))
    }

    /// What `name` is in `module` (and its name where defined): a child module, an item
    /// defined there, or what an import (named, then glob) brings in.
    fn lookup(&mut self, module: ModId, name: &str) -> Option<(Target, String)> {
        let krate = self.krate;
        let m = &krate.modules[module];
        if let Some(&child) = m.children.get(name) {
            return Some((Target::Module(child), name.to_owned()));
        }
        if let Some(&file) = m.items.get(name) {
            return Some((Target::Item(file), name.to_owned()));
        }
        if !self.busy.insert((module, name.to_owned())) {
            return None;
        }
        let named = m
            .imports
            .iter()
            .find(|i| matches!(&i.binding, Binding::Name(n) if n == name));
        let mut found = named.map(|import| match self.path(module, &import.path) {
            Ok(Some(found)) => found,
            // another crate, or an import reported where it is written
            _ => (Target::Outside, name.to_owned()),
        });
        if found.is_none() {
            let globs = m
                .imports
                .iter()
                .filter(|i| matches!(i.binding, Binding::Glob));
            for import in globs {
                found = match self.path(module, &import.path) {
                    Ok(Some((Target::Module(g), _))) => self.lookup(g, name),
                    // another crate's glob may bring any name
                    Ok(None) => Some((Target::Outside, name.to_owned())),
                    // an enum's variants, or a glob reported where it is written
                    _ => None,
                };
                if found.is_some() {
                    break;
                }
            }
        }
        self.busy.remove(&(module, name.to_owned()));
        found
    }
}
