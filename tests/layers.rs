//! Keeps the layering of `src/` true (ARCHITECTURE.md, Layers).
//!
//! Every `.rs` file under `src/` is read, its comments and string literals are blanked,
//! and each reference to another top-level module of the crate is collected: paths in
//! `use` declarations (groups included), inline `crate::x::y` paths, `super::` chains
//! that climb to the crate root, and crate-root re-exports of `lib.rs` (`crate::Error`
//! is `error`). Then three checks run over the module graph:
//!
//! - each module imports only what its layer allows (the table below);
//! - no import cycle between top-level modules;
//! - every top-level module has a place in the table.
//!
//! Only the standard library is used, so the check costs nothing to keep.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The directory the check reads.
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// No import of any other module of the crate.
const BOTTOM: &[&str] = &[
    "alloc",
    "crypto",
    "env",
    "document",
    "failure",
    "harden",
    "signals",
    "retry",
    "plaintext",
    "format",
    "exit",
    // lib.rs: the client crate re-exported for applications.
    "client",
];
/// The Vault and Kubernetes clients: their own error types, no exit codes.
const CLIENTS: &[&str] = &["vault", "kube"];
/// What the commands do, without the command line or the aggregate error.
const DOMAIN: &[&str] = &[
    "fault",
    "secret_format",
    "source",
    "agent",
    "seal",
    "rotate",
    "inject",
    "webhook",
    "audit",
];
/// The application: the aggregate error and exit codes, the flags, the wiring.
/// `app`, `testing` and `fuzzing` are lib.rs's facades for the binary, the integration
/// tests and the fuzz targets.
const APP: &[&str] = &["error", "cli", "commands", "app", "testing", "fuzzing"];

/// Files that are not modules of the library: the binary, and the root itself.
const NOT_MODULES: &[&str] = &["main.rs", "lib.rs"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Layer {
    Bottom,
    Clients,
    Domain,
    App,
}

fn layer_of(module: &str) -> Option<Layer> {
    [
        (BOTTOM, Layer::Bottom),
        (CLIENTS, Layer::Clients),
        (DOMAIN, Layer::Domain),
        (APP, Layer::App),
    ]
    .into_iter()
    .find(|(names, _)| names.contains(&module))
    .map(|(_, layer)| layer)
}

/// May a module of layer `from` import module `to` (of another module than itself)?
fn allowed(from: Layer, to: &str) -> bool {
    let Some(to) = layer_of(to) else {
        // An unknown target is reported on its own; only the app rule applies to it.
        return true;
    };
    match from {
        Layer::Bottom => false,
        Layer::Clients => to == Layer::Bottom,
        Layer::Domain => matches!(to, Layer::Bottom | Layer::Clients | Layer::Domain),
        Layer::App => true,
    }
}

// ---------------------------------------------------------------------------------------
// Reading the source
// ---------------------------------------------------------------------------------------

/// Replaces comments (line, block, doc) and the contents of string, raw-string and char
/// literals with spaces, keeping every newline so that line numbers stay right.
fn blank_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let is_ident = |ch: char| ch == '_' || ch.is_alphanumeric();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        // Line comment, doc comments included.
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        // Block comment; they nest.
        if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        let at_word_start = i == 0 || !is_ident(c[i - 1]);
        // Raw strings: r"..", r#".."#, br"..", cr#".."#.
        if at_word_start && matches!(ch, 'r' | 'b' | 'c') {
            let mut j = i;
            if ch != 'r' && c.get(j + 1) == Some(&'r') {
                j += 1;
            }
            if c[j] == 'r' {
                let mut k = j + 1;
                while c.get(k) == Some(&'#') {
                    k += 1;
                }
                if c.get(k) == Some(&'"') {
                    let hashes = k - (j + 1);
                    for &p in &c[i..=k] {
                        out.push(p);
                    }
                    i = k + 1;
                    while i < c.len() {
                        if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                            out.push('"');
                            out.extend(std::iter::repeat_n('#', hashes));
                            i += 1 + hashes;
                            break;
                        }
                        blank(&mut out, c[i]);
                        i += 1;
                    }
                    continue;
                }
            }
        }
        // Plain string (b"..", c".." have their prefix copied as an identifier char).
        if ch == '"' {
            out.push('"');
            i += 1;
            while i < c.len() {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    if let Some(&e) = c.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                    continue;
                }
                if c[i] == '"' {
                    out.push('"');
                    i += 1;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
            continue;
        }
        // Char literal ('x', '\n', '\u{..}', b'x'), not a lifetime ('a, 'static).
        if ch == '\'' {
            let end = if next == Some('\\') {
                (i + 3..c.len()).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.push('\'');
                for &p in &c[i + 1..end] {
                    blank(&mut out, p);
                }
                out.push('\'');
                i = end + 1;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Tokens with their 1-based line numbers, from blanked source.
fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '_' || ch.is_alphanumeric() {
            let start = i;
            while i < c.len() && (c[i] == '_' || c[i].is_alphanumeric()) {
                i += 1;
            }
            let mut word: String = c[start..i].iter().collect();
            // Raw identifier r#name: the name is what counts.
            if word == "r"
                && c.get(i) == Some(&'#')
                && c.get(i + 1).is_some_and(|n| n.is_alphabetic() || *n == '_')
            {
                i += 1;
                let s = i;
                while i < c.len() && (c[i] == '_' || c[i].is_alphanumeric()) {
                    i += 1;
                }
                word = c[s..i].iter().collect();
            }
            out.push((Tok::Ident(word), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// One path of a `use` tree, groups expanded: segments with their lines, and the name
/// it is bound to (`as` or the last segment).
#[derive(Debug, Clone, PartialEq)]
struct UsePath {
    segments: Vec<(String, usize)>,
    binding: Option<String>,
}

/// Expands the `use` tree that starts at `toks[*i]`, stopping at its `;`.
fn parse_use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: &[(String, usize)],
    out: &mut Vec<UsePath>,
) {
    let mut segments = prefix.to_vec();
    loop {
        match toks.get(*i) {
            Some((Tok::Path, _)) => *i += 1,
            Some((Tok::Punct('{'), _)) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some((Tok::Punct('}'), _)) => {
                            *i += 1;
                            return;
                        }
                        Some((Tok::Punct(','), _)) => *i += 1,
                        None => return,
                        _ => parse_use_tree(toks, i, &segments, out),
                    }
                }
            }
            Some((Tok::Punct('*'), line)) => {
                segments.push(("*".into(), *line));
                *i += 1;
                out.push(UsePath {
                    segments,
                    binding: None,
                });
                return;
            }
            Some((Tok::Ident(word), line)) if word != "as" => {
                segments.push((word.clone(), *line));
                *i += 1;
                if matches!(toks.get(*i), Some((Tok::Path, _))) {
                    continue;
                }
                let mut binding = segments.last().map(|(s, _)| s.clone());
                if binding.as_deref() == Some("self") {
                    binding = segments.iter().rev().nth(1).map(|(s, _)| s.clone());
                }
                if let Some((Tok::Ident(kw), _)) = toks.get(*i)
                    && kw == "as"
                {
                    *i += 1;
                    if let Some((Tok::Ident(alias), _)) = toks.get(*i) {
                        binding = Some(alias.clone());
                        *i += 1;
                    }
                }
                out.push(UsePath { segments, binding });
                return;
            }
            _ => return,
        }
    }
}

/// A path as written: either from a `use` tree or inline in code.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    segments: Vec<(String, usize)>,
    /// Depth of the module the path is written in (file depth plus enclosing inline
    /// `mod x { .. }` blocks); `super` climbs from there.
    depth: usize,
    binding: Option<String>,
    from_use: bool,
}

/// Every path of the file that may leave its module: all `use` paths, and inline paths
/// that start with `crate::` or `super::`. `file_depth` is 1 for `src/x.rs` and
/// `src/x/mod.rs`, 2 for `src/x/y.rs`, 0 for `src/lib.rs`.
fn written_paths(src: &str, file_depth: usize) -> Vec<Written> {
    let toks = tokens(&blank_comments_and_literals(src));
    let mut out = Vec::new();
    let mut braces = 0usize;
    // Brace depths at which an inline module was opened.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let depth = file_depth + inline_mods.len();
        let prev = i.checked_sub(1).map(|p| &toks[p].0);
        match &toks[i].0 {
            Tok::Punct('{') => {
                braces += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
                braces = braces.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some((Tok::Ident(_), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    braces += 1;
                    inline_mods.push(braces);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            // `use<'a>` is precise capturing, not an import.
            Tok::Ident(kw)
                if kw == "use" && !matches!(toks.get(i + 1), Some((Tok::Punct('<'), _))) =>
            {
                i += 1;
                let mut paths = Vec::new();
                while i < toks.len() && toks[i].0 != Tok::Punct(';') {
                    let before = i;
                    parse_use_tree(&toks, &mut i, &[], &mut paths);
                    if i == before {
                        i += 1;
                    }
                }
                out.extend(paths.into_iter().map(|p| Written {
                    segments: p.segments,
                    depth,
                    binding: p.binding,
                    from_use: true,
                }));
            }
            Tok::Ident(word)
                if (word == "crate" || word == "super")
                    && matches!(toks.get(i + 1), Some((Tok::Path, _)))
                    && !matches!(prev, Some(Tok::Path) | Some(Tok::Punct('$'))) =>
            {
                let mut segments = vec![(word.clone(), toks[i].1)];
                i += 1;
                while let (Some((Tok::Path, _)), Some((Tok::Ident(s), line))) =
                    (toks.get(i), toks.get(i + 1))
                {
                    segments.push((s.clone(), *line));
                    i += 2;
                }
                out.push(Written {
                    segments,
                    depth,
                    binding: None,
                    from_use: false,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// The top-level name a written path reaches at the crate root, with its line, if it
/// climbs there: `crate::x..`, or enough `super`s. In the root file (`depth` 0), a
/// `use` path is root-relative, so its first segment counts too.
fn root_name(w: &Written) -> Option<(String, usize)> {
    let segs = &w.segments;
    let first = segs.first()?;
    let rest = if first.0 == "crate" {
        &segs[1..]
    } else if first.0 == "super" {
        let ups = segs.iter().take_while(|(s, _)| s == "super").count();
        if ups < w.depth {
            return None;
        }
        &segs[ups..]
    } else if w.depth == 0 && w.from_use {
        if first.0 == "self" { &segs[1..] } else { segs }
    } else {
        return None;
    };
    rest.first().cloned()
}

// ---------------------------------------------------------------------------------------
// The graph
// ---------------------------------------------------------------------------------------

/// One reference from a file of module `from` to module `to`.
#[derive(Debug, Clone)]
struct Edge {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} -> {}",
            self.file, self.line, self.from, self.to
        )
    }
}

struct Graph {
    /// Every top-level module, with the first file found for it.
    modules: BTreeMap<String, String>,
    edges: Vec<Edge>,
    /// References that name neither a module nor a re-export of the root.
    unresolved: Vec<String>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules written inline at the top of a root file: `pub mod x { .. }`.
fn inline_modules(src: &str) -> Vec<String> {
    let toks = tokens(&blank_comments_and_literals(src));
    let mut out = Vec::new();
    let mut depth = 0usize;
    for (i, (tok, _)) in toks.iter().enumerate() {
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth = depth.saturating_sub(1),
            Tok::Ident(kw) if kw == "mod" && depth == 0 => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    out.push(name.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// `vault/client.rs` -> ("vault", 2); `vault/mod.rs` -> ("vault", 1); `seal.rs` -> ("seal", 1).
fn module_of(rel: &Path) -> (String, usize) {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let top = parts[0].trim_end_matches(".rs").to_string();
    let depth = if parts.last().is_some_and(|p| p == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    (top, depth)
}

/// Builds the graph from `(path relative to src, contents)` pairs.
fn graph_of(files: &[(String, String)]) -> Graph {
    let mut modules = BTreeMap::new();
    for (rel, _) in files {
        if NOT_MODULES.contains(&rel.as_str()) || rel.starts_with("bin/") {
            continue;
        }
        let (top, _) = module_of(Path::new(rel));
        modules.entry(top).or_insert_with(|| format!("src/{rel}"));
    }
    // Crate-root names re-exported by lib.rs: `pub use error::Error` makes `crate::Error`
    // a reference to `error`; `pub use secret_zero_client::exit` makes `crate::exit` a
    // reference outside the crate (below every layer), which is no edge at all.
    let mut root_aliases: BTreeMap<String, String> = BTreeMap::new();
    let mut external: BTreeSet<String> = BTreeSet::new();
    let mut external_glob = false;
    if let Some((_, lib)) = files.iter().find(|(rel, _)| rel == "lib.rs") {
        // Modules written inline in lib.rs (`pub mod x { .. }`) are top-level modules too;
        // their bodies are not checked, so keep them to re-exports.
        for name in inline_modules(lib) {
            modules
                .entry(name)
                .or_insert_with(|| "src/lib.rs".to_string());
        }
        for w in written_paths(lib, 0).into_iter().filter(|w| w.from_use) {
            let Some((top, _)) = root_name(&w) else {
                continue;
            };
            match w.binding.clone() {
                Some(binding) if modules.contains_key(&top) => {
                    root_aliases.insert(binding, top);
                }
                Some(binding) => {
                    external.insert(binding);
                }
                None if !modules.contains_key(&top) => external_glob = true,
                None => {}
            }
        }
    }
    let mut edges = Vec::new();
    let mut unresolved = Vec::new();
    for (rel, text) in files {
        if NOT_MODULES.contains(&rel.as_str()) || rel.starts_with("bin/") {
            continue;
        }
        let (from, depth) = module_of(Path::new(rel));
        for w in written_paths(text, depth) {
            let Some((name, line)) = root_name(&w) else {
                continue;
            };
            let to = if modules.contains_key(&name) {
                name
            } else if let Some(target) = root_aliases.get(&name) {
                target.clone()
            } else if external.contains(&name) || external_glob {
                continue;
            } else {
                unresolved.push(format!(
                    "src/{rel}:{line}: {from} -> crate::{name}: neither a top-level module nor a re-export of src/lib.rs"
                ));
                continue;
            };
            if to != from {
                edges.push(Edge {
                    file: format!("src/{rel}"),
                    line,
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    // One edge per file, line and target: `use crate::a::{B, C};` is one reference.
    edges.sort_by(|a, b| (&a.file, a.line, &a.to).cmp(&(&b.file, b.line, &b.to)));
    edges.dedup_by(|a, b| (&a.file, a.line, &a.to) == (&b.file, b.line, &b.to));
    Graph {
        modules,
        edges,
        unresolved,
    }
}

fn read_src() -> Graph {
    let root = Path::new(SRC);
    let mut paths = Vec::new();
    rs_files(root, &mut paths);
    assert!(!paths.is_empty(), "no .rs files under {SRC}");
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (rel, text)
        })
        .collect();
    graph_of(&files)
}

/// Every reference that breaks the layer table.
fn layer_violations(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for e in &g.edges {
        let app_only = APP.contains(&e.to.as_str());
        let ok = match layer_of(&e.from) {
            Some(layer) => allowed(layer, &e.to),
            // An unknown module is reported by `every_module_has_a_layer`; the one rule
            // that holds whatever its layer: only the app imports the app.
            None => !app_only,
        };
        if !ok {
            let why = match (layer_of(&e.from), layer_of(&e.to)) {
                (_, Some(Layer::App)) => {
                    "only the app layer imports cli, commands or error".to_string()
                }
                (Some(Layer::Bottom), _) => {
                    "a bottom module imports no other module of the crate".to_string()
                }
                (Some(from), Some(to)) => format!("{from:?} may not import {to:?}"),
                _ => "not allowed".to_string(),
            };
            out.push(format!("{e}  ({why})"));
        }
    }
    out
}

/// Every import cycle between top-level modules: each strongly connected component of
/// more than one module (Tarjan's DFS), with every reference inside it.
fn cycles(g: &Graph) -> Vec<String> {
    let mut adj: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &g.edges {
        adj.entry(&e.from).or_default().insert(&e.to);
    }
    struct Tarjan<'a> {
        adj: &'a BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        components: Vec<BTreeSet<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, m: &'a str) {
            let n = self.index.len();
            self.index.insert(m, n);
            self.low.insert(m, n);
            self.stack.push(m);
            for &next in self.adj.get(m).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[m].min(self.low[next]);
                    self.low.insert(m, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[m].min(self.index[next]);
                    self.low.insert(m, low);
                }
            }
            if self.low[m] == self.index[m] {
                let mut component = BTreeSet::new();
                while let Some(top) = self.stack.pop() {
                    component.insert(top);
                    if top == m {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
    let mut t = Tarjan {
        adj: &adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for m in g.modules.keys() {
        if !t.index.contains_key(m.as_str()) {
            t.visit(m);
        }
    }
    let mut out = Vec::new();
    let mut components: Vec<_> = t.components.into_iter().filter(|c| c.len() > 1).collect();
    components.sort();
    for c in components {
        let mut text = format!(
            "cycle among {}:",
            c.iter().copied().collect::<Vec<_>>().join(", ")
        );
        for e in g
            .edges
            .iter()
            .filter(|e| c.contains(e.from.as_str()) && c.contains(e.to.as_str()))
        {
            let _ = write!(text, "\n    {e}");
        }
        out.push(text);
    }
    out
}

fn unknown_modules(g: &Graph) -> Vec<String> {
    g.modules
        .iter()
        .filter(|(m, _)| layer_of(m).is_none())
        .map(|(m, file)| {
            format!(
                "{file}: module `{m}` has no layer: place it in BOTTOM, CLIENTS, DOMAIN or APP in \
                 tests/layers.rs (and see ARCHITECTURE.md, Layers)"
            )
        })
        .collect()
}

fn fail_if_any(what: &str, problems: &[String]) {
    if !problems.is_empty() {
        panic!(
            "{what} ({}):\n  {}\n",
            problems.len(),
            problems.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------------------
// The checks on src/
// ---------------------------------------------------------------------------------------

#[test]
fn every_import_respects_the_layers() {
    let g = read_src();
    let mut problems = layer_violations(&g);
    problems.extend(g.unresolved.iter().cloned());
    fail_if_any(
        "imports that break the layers of ARCHITECTURE.md (bottom < clients < domain < app)",
        &problems,
    );
}

#[test]
fn no_import_cycle_between_modules() {
    fail_if_any(
        "import cycles between top-level modules",
        &cycles(&read_src()),
    );
}

#[test]
fn every_module_has_a_layer() {
    fail_if_any(
        "top-level modules missing from the layer table",
        &unknown_modules(&read_src()),
    );
}

// ---------------------------------------------------------------------------------------
// The parser, on small inputs
// ---------------------------------------------------------------------------------------

/// The root names reached from one file at `depth`.
fn roots(src: &str, depth: usize) -> Vec<(String, usize)> {
    written_paths(src, depth)
        .iter()
        .filter_map(root_name)
        .collect()
}

fn names(src: &str, depth: usize) -> Vec<String> {
    roots(src, depth).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn parser_expands_use_groups() {
    assert_eq!(names("use crate::{a::b, c};", 1), ["a", "c"]);
    assert_eq!(
        names(
            "pub(crate) use crate::{a::{b, c::{d, e}}, f::*, g as h};",
            2
        ),
        ["a", "a", "a", "f", "g"]
    );
    assert_eq!(names("use crate::a::{self, B};", 1), ["a", "a"]);
    assert_eq!(names("use {crate::a, std::io};", 1), ["a"]);
    assert_eq!(
        names("use std::io::{self, Read};\nuse serde::Deserialize;", 1),
        Vec::<String>::new()
    );
}

#[test]
fn parser_reports_the_line_of_each_module_name() {
    let src = "use crate::{\n    a,\n    b::c,\n};\nfn f() {\n    crate::d::e();\n}\n";
    assert_eq!(
        roots(src, 1),
        [("a".into(), 2), ("b".into(), 3), ("d".into(), 6)]
    );
}

#[test]
fn parser_finds_inline_paths() {
    let src = "fn f() -> crate::x::Y { let _ = crate::z::w(1); Ok(crate::error::exit::OK) }";
    assert_eq!(names(src, 1), ["x", "z", "error"]);
    // In attributes too: they are code.
    assert_eq!(
        names(
            "#[arg(default_value = crate::vault::DEFAULT_ADDR)]\nstruct A;",
            2
        ),
        ["vault"]
    );
}

#[test]
fn parser_ignores_comments_and_strings() {
    let src = r####"
        // use crate::a;
        /// See [`crate::b`].
        //! Inner [`crate::c::D`].
        /* crate::d /* nested crate::e */ crate::f */
        const S: &str = "crate::g::h";
        const R: &str = r#"use crate::i; "quoted" crate::j"#;
        const C: char = '"';
        const Q: char = '\''; const QQ: &str = "it's crate::n";
        const B: &[u8] = b"crate::o"; const BR: &[u8] = br"crate::p";
        fn f<'a>(x: &'a str) -> &'a str { let _ = "\"crate::k"; x }
        macro_rules! m { () => { $crate::l::m() } }
        use crate::real;
    "####;
    assert_eq!(names(src, 1), ["real"]);
}

#[test]
fn parser_climbs_super_only_to_the_root() {
    // src/vault/client.rs: `super` is vault itself.
    assert_eq!(
        names("use super::error::VaultError;", 2),
        Vec::<String>::new()
    );
    // src/source.rs: `super` is the crate root.
    assert_eq!(names("use super::kube::Client;", 1), ["kube"]);
    // A test module inside src/source.rs: `super` is source.
    assert_eq!(
        names("mod tests {\n use super::*;\n}\nuse crate::x;", 1),
        ["x"]
    );
    // Two levels up from a test module in src/source.rs reach the root.
    assert_eq!(names("mod tests { use super::super::kube; }", 1), ["kube"]);
    assert_eq!(
        names("fn f() { super::super::vault::login(); }", 2),
        ["vault"]
    );
}

#[test]
fn parser_knows_precise_capturing_is_no_import() {
    assert_eq!(
        names(
            "fn f<'a>(x: &'a u8) -> impl Sized + use<'a> { crate::q::r(x) }",
            1
        ),
        ["q"]
    );
}

#[test]
fn graph_maps_files_to_modules_and_root_reexports() {
    let files = vec![
        ("lib.rs".to_string(), "mod error; mod agent; mod vault;\npub use error::Error;\npub use vault::{self as v, Login};".to_string()),
        ("main.rs".to_string(), "use secret_zero::testing::error::Error; use crate::agent;".to_string()),
        ("error.rs".to_string(), "use crate::vault::VaultError;".to_string()),
        ("agent/mod.rs".to_string(), "mod delivery;\nfn f() -> crate::Error { todo!() }".to_string()),
        ("agent/delivery.rs".to_string(), "use super::Agent;\nuse crate::Login;".to_string()),
        ("vault/mod.rs".to_string(), "use crate::agent::State;".to_string()),
    ];
    let g = graph_of(&files);
    assert_eq!(
        g.modules.keys().collect::<Vec<_>>(),
        ["agent", "error", "vault"]
    );
    let edges: Vec<String> = g.edges.iter().map(ToString::to_string).collect();
    assert_eq!(
        edges,
        [
            "src/agent/delivery.rs:2: agent -> vault",
            "src/agent/mod.rs:2: agent -> error",
            "src/error.rs:1: error -> vault",
            "src/vault/mod.rs:1: vault -> agent",
        ]
    );
    assert!(g.unresolved.is_empty(), "{:?}", g.unresolved);
    let violations = layer_violations(&g);
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(violations[0].starts_with("src/agent/mod.rs:2: agent -> error"));
    assert!(violations[1].starts_with("src/vault/mod.rs:1: vault -> agent"));
    let cycles = cycles(&g);
    assert_eq!(cycles.len(), 1, "{cycles:#?}");
    assert_eq!(
        cycles[0],
        "cycle among agent, error, vault:\n    src/agent/delivery.rs:2: agent -> vault\n    \
         src/agent/mod.rs:2: agent -> error\n    src/error.rs:1: error -> vault\n    \
         src/vault/mod.rs:1: vault -> agent"
    );
}

#[test]
fn graph_skips_reexports_of_other_crates_and_knows_inline_modules() {
    let files = vec![
        (
            "lib.rs".to_string(),
            "mod agent;\npub use secret_zero_client::{exit, Plaintext as Secret};\n\
             pub mod shim {\n    pub use secret_zero_client::json::*;\n}"
                .to_string(),
        ),
        (
            "agent/mod.rs".to_string(),
            "use crate::exit::OK;\nuse crate::Secret;\nfn f() { crate::shim::check(); }"
                .to_string(),
        ),
    ];
    let g = graph_of(&files);
    assert_eq!(g.modules.keys().collect::<Vec<_>>(), ["agent", "shim"]);
    let edges: Vec<String> = g.edges.iter().map(ToString::to_string).collect();
    assert_eq!(edges, ["src/agent/mod.rs:3: agent -> shim"]);
    assert!(g.unresolved.is_empty(), "{:?}", g.unresolved);
}

#[test]
fn graph_reports_unknown_names_and_modules() {
    let files = vec![
        ("lib.rs".to_string(), "mod odd;".to_string()),
        ("odd.rs".to_string(), "use crate::Nowhere;".to_string()),
    ];
    let g = graph_of(&files);
    assert_eq!(g.unresolved.len(), 1);
    assert!(g.unresolved[0].starts_with("src/odd.rs:1: odd -> crate::Nowhere"));
    let unknown = unknown_modules(&g);
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].contains("module `odd` has no layer"));
}
