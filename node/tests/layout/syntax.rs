//! Small readings of `syn`'s syntax for the layout check: whether attributes make code
//! test-only, the name an item defines, the leaves of a `use` tree, and the paths written
//! in a macro's tokens.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::{Attribute, Item, Meta, UseTree};

use crate::modules::{Binding, Mentioned};

/// `#[cfg(test)]`, or a `cfg` that needs `test` (`all(test, ...)`).
pub fn is_test_cfg(attrs: &[Attribute]) -> bool {
    fn needs_test(meta: &Meta) -> bool {
        match meta {
            Meta::Path(p) => p.is_ident("test"),
            Meta::List(list) => {
                let args = list.parse_args_with(
                    syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated,
                );
                let args: Vec<Meta> = args.map(|a| a.into_iter().collect()).unwrap_or_default();
                if list.path.is_ident("all") {
                    args.iter().any(needs_test)
                } else if list.path.is_ident("any") {
                    !args.is_empty() && args.iter().all(needs_test)
                } else {
                    false
                }
            }
            Meta::NameValue(_) => false,
        }
    }
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<Meta>().is_ok_and(|m| needs_test(&m)))
}

pub fn has_attr(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.path().is_ident(name))
}

pub fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The name an item defines in its module (modules and `use`s are handled apart).
pub fn defined_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.unraw().to_string())
}

/// The leaves of a use tree: what each binds, its full path, and its line.
pub fn use_leaves(
    tree: &UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Binding, Vec<String>, usize)>,
) {
    let full = |prefix: &Vec<String>, ident: &syn::Ident| {
        let mut p = prefix.clone();
        if ident != "self" {
            p.push(ident.unraw().to_string());
        }
        p
    };
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.unraw().to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) => {
            let path = full(prefix, &n.ident);
            let name = path.last().cloned().unwrap_or_default();
            out.push((Binding::Name(name), path, n.ident.span().start().line));
        }
        UseTree::Rename(r) => {
            let binding = match r.rename.unraw().to_string() {
                n if n == "_" => Binding::Nothing,
                n => Binding::Name(n),
            };
            out.push((binding, full(prefix, &r.ident), r.ident.span().start().line));
        }
        UseTree::Glob(g) => {
            let line = g.star_token.span.start().line;
            out.push((Binding::Glob, prefix.clone(), line));
        }
        UseTree::Group(g) => g.items.iter().for_each(|t| use_leaves(t, prefix, out)),
    }
}

/// The `a::b::c` paths in a macro's tokens (`$crate::x` gives `["$crate", "x"]`); paths
/// with a leading `::`, and `$var::x`, are skipped.
pub fn token_paths(tokens: TokenStream, out: &mut Vec<Mentioned>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let is_sep = |i: usize| {
        matches!((tokens.get(i), tokens.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
    };
    let is_dollar =
        |i: usize| matches!(tokens.get(i), Some(TokenTree::Punct(p)) if p.as_char() == '$');
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => token_paths(g.stream(), out),
            TokenTree::Ident(first) => {
                let after_sep = i >= 2 && is_sep(i - 2);
                let dollar = i >= 1 && is_dollar(i - 1);
                let mut segments = vec![first.unraw().to_string()];
                if dollar {
                    segments[0].insert(0, '$');
                }
                let line = first.span().start().line;
                while is_sep(i + 1) {
                    let Some(TokenTree::Ident(next)) = tokens.get(i + 3) else {
                        break;
                    };
                    segments.push(next.unraw().to_string());
                    i += 3;
                }
                let metavariable = dollar && segments[0] != "$crate";
                if segments.len() > 1 && !after_sep && !metavariable {
                    out.push(Mentioned {
                        segments,
                        global: false,
                        line,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
}
