//! The crate as the layout check reads it: the module tree built from the files (from
//! `lib.rs`, following `mod` declarations), what each module defines and imports, every
//! path each file mentions (in `use`s, in code, and in the tokens of macro invocations),
//! and each file's lines outside `#[cfg(test)]` code. Code under `#[cfg(test)]` is not
//! read at all: it defines nothing and mentions nothing; its lines are not counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Attribute, Item};

use crate::syntax::{defined_name, has_attr, is_test_cfg, item_attrs, token_paths, use_leaves};

pub type ModId = usize;
pub type FileId = usize;

/// A file of the crate; one under `#[cfg(test)]` has 0 lines and only its `//!` checked.
pub struct SourceFile {
    /// The path from the workspace root, `actors/src/store/tokens.rs`: how reports name the file.
    pub rel: String,
    /// The first non-blank line is a `//!` line.
    pub has_doc: bool,
    /// Lines outside `#[cfg(test)]` items.
    pub lines: usize,
}

#[derive(Default)]
pub struct Module {
    pub parent: Option<ModId>,
    pub file: FileId,
    pub children: BTreeMap<String, ModId>,
    /// Items defined here, with the file defining them (a `#[macro_export]` macro is also
    /// listed in the crate root, with the file that holds it).
    pub items: BTreeMap<String, FileId>,
    pub imports: Vec<Import>,
}

/// What a `use` leaf binds in its module.
pub enum Binding {
    Name(String),
    Glob,
    /// `use x as _;`
    Nothing,
}

pub struct Import {
    pub binding: Binding,
    pub path: Mentioned,
}

/// A path as written: its segments (`super`, `crate`, names) and where.
#[derive(Clone)]
pub struct Mentioned {
    pub segments: Vec<String>,
    /// Starts with `::`: another crate.
    pub global: bool,
    pub line: usize,
}

/// A path some module's code mentions.
pub struct Mention {
    pub module: ModId,
    pub file: FileId,
    pub path: Mentioned,
}

#[derive(Default)]
pub struct Crate {
    pub files: Vec<SourceFile>,
    pub modules: Vec<Module>,
    pub mentions: Vec<Mention>,
    /// What stops the check from reading the crate: unparsable files, missing module
    /// files, files no `mod` reaches.
    pub problems: Vec<String>,
    /// `main.rs` and `bin/*.rs`: roots of other crates (binaries that use this one by
    /// name, so no in-crate edges), not checked.
    pub skipped: Vec<String>,
}

/// Reads the crate whose sources are at `root/src_rel` (`lib.rs` is the root; `main.rs`
/// and `bin/` are other crates and are skipped).
pub fn load(root: &Path, src_rel: &str) -> Crate {
    let mut krate = Crate::default();
    let src = root.join(src_rel);
    krate.modules.push(Module::default());
    let mut reader = Reader {
        krate: &mut krate,
        root,
        module: 0,
        file: 0,
        dir: src.clone(),
        blocks: 0,
        test_lines: 0,
    };
    reader.read_file(&src.join("lib.rs"), false);
    for path in rust_files(&src) {
        let rel = relative(root, &path);
        if path == src.join("main.rs") || path.starts_with(src.join("bin")) {
            krate.skipped.push(rel);
        } else if !krate.files.iter().any(|f| f.rel == rel) {
            krate
                .problems
                .push(format!("{rel}: no `mod` declaration reaches this file"));
        }
    }
    krate
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Walks one file's syntax, in the module `module`, whose child modules' files are in `dir`.
struct Reader<'a> {
    krate: &'a mut Crate,
    root: &'a Path,
    module: ModId,
    file: FileId,
    dir: PathBuf,
    /// How many blocks (function bodies...) deep: items there belong to no module.
    blocks: usize,
    /// Lines of `#[cfg(test)]` items met so far in the current file.
    test_lines: usize,
}

impl Reader<'_> {
    /// Reads a module's file; of a test-only file only its `//!` and the files its `mod`s
    /// bring in, so that every file is accounted for.
    fn read_file(&mut self, path: &Path, test_only: bool) {
        let rel = relative(self.root, path);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return self.krate.problems.push(format!("{rel}: cannot read: {e}")),
        };
        let first = text.lines().find(|l| !l.trim().is_empty());
        let has_doc = first.is_some_and(|l| l.starts_with("//!"));
        let lines = 0;
        self.krate.files.push(SourceFile {
            rel: rel.clone(),
            has_doc,
            lines,
        });
        let file = self.krate.files.len() - 1;
        if !test_only {
            self.krate.modules[self.module].file = file;
        }
        let ast = match syn::parse_file(&text) {
            Ok(ast) => ast,
            Err(e) => {
                let line = e.span().start().line;
                return self
                    .krate
                    .problems
                    .push(format!("{rel}:{line}: cannot parse: {e}"));
            }
        };
        let saved = (self.file, self.test_lines);
        (self.file, self.test_lines) = (file, 0);
        if test_only {
            self.discover(&ast.items);
        } else {
            ast.items.iter().for_each(|item| self.item(item));
            self.krate.files[file].lines = text.lines().count() - self.test_lines;
        }
        (self.file, self.test_lines) = saved;
    }

    /// The file of `mod name;` declared in a module whose children are in `self.dir`.
    fn module_file(&mut self, m: &syn::ItemMod) -> Option<PathBuf> {
        let name = m.ident.unraw().to_string();
        let here = &self.krate.files[self.file].rel;
        let line = m.ident.span().start().line;
        if has_attr(&m.attrs, "path") {
            let problem = format!("{here}:{line}: `#[path]` on `mod {name}` is not followed");
            self.krate.problems.push(problem);
            return None;
        }
        let candidates = [
            self.dir.join(format!("{name}.rs")),
            self.dir.join(&name).join("mod.rs"),
        ];
        let found = candidates.into_iter().find(|p| p.is_file());
        if found.is_none() {
            let problem = format!("{here}:{line}: no file for `mod {name};`");
            self.krate.problems.push(problem);
        }
        found
    }

    /// Follows the `mod` declarations of test-only code to the files they bring in.
    fn discover(&mut self, items: &[Item]) {
        for item in items {
            let Item::Mod(m) = item else { continue };
            let file = match m.content {
                Some(_) => None,
                None => self.module_file(m),
            };
            let dir = self.dir.join(m.ident.unraw().to_string());
            let saved = std::mem::replace(&mut self.dir, dir);
            match (&m.content, file) {
                (Some((_, inner)), _) => self.discover(inner),
                (None, Some(path)) => self.read_file(&path, true),
                (None, None) => {}
            }
            self.dir = saved;
        }
    }

    /// Counts the lines of a `#[cfg(test)]` item (skipped otherwise).
    fn skip_test(&mut self, span: proc_macro2::Span) {
        self.test_lines += span.end().line + 1 - span.start().line;
    }

    /// Reads a module-level item.
    fn item(&mut self, item: &Item) {
        if is_test_cfg(item_attrs(item)) {
            self.discover(std::slice::from_ref(item));
            return self.skip_test(item.span());
        }
        match item {
            Item::Mod(m) => self.module(m),
            Item::Use(u) => self.use_item(u),
            Item::Macro(m) if m.ident.is_some() => {
                let name = m
                    .ident
                    .as_ref()
                    .map(|i| i.unraw().to_string())
                    .unwrap_or_default();
                self.define(name.clone());
                if has_attr(&m.attrs, "macro_export") {
                    self.krate.modules[0].items.insert(name, self.file);
                }
                // a macro's own body: only `$crate::` paths mean the same wherever it expands
                let mut found = Vec::new();
                token_paths(m.mac.tokens.clone(), &mut found);
                for path in found.into_iter().filter(|p| p.segments[0] == "$crate") {
                    self.mention(path);
                }
            }
            _ => {
                if let Some(name) = defined_name(item) {
                    self.define(name);
                }
                visit::visit_item(self, item);
            }
        }
    }

    fn define(&mut self, name: String) {
        if self.blocks == 0 {
            self.krate.modules[self.module]
                .items
                .insert(name, self.file);
        }
    }

    fn module(&mut self, m: &syn::ItemMod) {
        let name = m.ident.unraw().to_string();
        let file = match m.content {
            Some(_) => None,
            None => match self.module_file(m) {
                Some(path) => Some(path),
                None => return,
            },
        };
        let module = Module {
            parent: Some(self.module),
            file: self.file,
            ..Module::default()
        };
        self.krate.modules.push(module);
        let id = self.krate.modules.len() - 1;
        self.krate.modules[self.module]
            .children
            .insert(name.clone(), id);
        let saved = (self.module, self.dir.clone(), self.blocks);
        (self.module, self.dir, self.blocks) = (id, self.dir.join(&name), 0);
        match (&m.content, file) {
            (Some((_, items)), _) => items.iter().for_each(|item| self.item(item)),
            (None, Some(path)) => self.read_file(&path, false),
            (None, None) => {}
        }
        (self.module, self.dir, self.blocks) = saved;
    }

    fn use_item(&mut self, u: &syn::ItemUse) {
        let mut leaves = Vec::new();
        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
        for (binding, segments, line) in leaves {
            let path = Mentioned {
                segments,
                global: u.leading_colon.is_some(),
                line,
            };
            self.mention(path.clone());
            self.krate.modules[self.module]
                .imports
                .push(Import { binding, path });
        }
    }

    fn mention(&mut self, path: Mentioned) {
        if !path.segments.is_empty() {
            let (module, file) = (self.module, self.file);
            self.krate.mentions.push(Mention { module, file, path });
        }
    }
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if self.blocks == 0 {
            self.item(item);
        } else if is_test_cfg(item_attrs(item)) {
            self.skip_test(item.span());
        } else if let Item::Use(u) = item {
            // a `use` inside a function is counted as the module's
            self.use_item(u);
        } else {
            // an item inside a function defines nothing in the module
            visit::visit_item(self, item);
        }
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.blocks += 1;
        visit::visit_block(self, block);
        self.blocks -= 1;
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return visit::visit_impl_item(self, item),
        };
        if is_test_cfg(attrs) {
            self.skip_test(item.span());
        } else {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path
            .segments
            .iter()
            .map(|s| s.ident.unraw().to_string())
            .collect();
        let (global, line) = (path.leading_colon.is_some(), path.span().start().line);
        self.mention(Mentioned {
            segments,
            global,
            line,
        });
        visit::visit_path(self, path);
    }

    fn visit_expr_path(&mut self, expr: &'ast syn::ExprPath) {
        match (expr.qself.is_none(), expr.path.get_ident()) {
            // a bare name may be a local variable; a name brought by a `use` has its edge
            // from the `use`
            (true, Some(_)) => {}
            _ => visit::visit_expr_path(self, expr),
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let mut found = Vec::new();
        token_paths(mac.tokens.clone(), &mut found);
        found.into_iter().for_each(|p| self.mention(p));
    }

    // `pub(crate)`, `pub(super)` name no item; attributes name none of this crate's items
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
    fn visit_attribute(&mut self, _: &'ast Attribute) {}
}
