//! The module graph points one way (issue 17): lower layers never name higher ones, so there is
//! no cycle between goway's top-level modules, and none between the runtime's submodules.
//!
//! The layers, lowest first (a module may name modules of its own layer or of lower ones):
//!
//! | layer | modules | |
//! |---|---|---|
//! | 0 | `runtime` | goroutines, parking, the timer thread, diagnostics |
//! | 1 | `chan` | channels, on the runtime's parking |
//! | 2 | `select`, `time`, `macros` | `macros` (`go!`, `select!`) expands to `runtime` and `select` |
//! | 3 | `sync`, `context`, `logging` | `logging` rate-limits with a `time` timer |
//! | 4 | `net`, `signal`, `tls` | `tls` is built on `net`'s streams; `net` never names `tls` |
//! | 5 | `http` | |
//! | 6 | `fuzzing` | drives `net` and `http` parsers (hidden, for the fuzz targets) |
//!
//! What counts as naming a module: a path through `crate::` (or `$crate::` in a macro),
//! `super::` reaching out of the module, or `self::`, including `use crate::{..}` trees; a
//! re-export of the crate root (`crate::Builder`) counts as its source module, and a call of
//! one of goway's own macros (`go!`, `select!`) counts as `macros`. Comments (so rustdoc links)
//! and string literals are not code and are skipped.
//!
//! Inside `runtime`, each direct submodule (`src/runtime/X.rs` or `src/runtime/X/`) is a node;
//! `src/runtime/mod.rs` is the façade that declares and re-exports them, so a submodule naming
//! an item of `mod.rs` (rather than the submodule that defines it) closes a cycle and fails.
//!
//! Run: `cargo test --release --test layering` (`-- --nocapture` prints the graph).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, lowest first.
const LAYERS: &[&[&str]] = &[
    &["runtime"],
    &["chan"],
    &["select", "time", "macros"],
    &["sync", "context", "logging", "bufio", "metrics"],
    &["net", "signal", "tls"],
    &["http"],
    &["fuzzing"],
];

/// The name under which the runtime's `mod.rs` appears in the submodule graph.
const RUNTIME_ROOT: &str = "mod.rs";

// ----- reading the sources ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Rust source as tokens with their line numbers: comments dropped, string and character
/// literals reduced to a placeholder.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let n = b.len();
    while i < n {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < n && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < n {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_start(&b[i..]) {
            // r"..", r#".."#, br".." : ends at a quote followed by as many hashes.
            let hashes = len - 1 - usize::from(b[i] == 'b') - 1;
            i += len;
            while i < n {
                if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                if b[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            out.push((Tok::Punct('"'), line));
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            i += if c == 'b' { 2 } else { 1 };
            while i < n && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if i < n && b[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
            out.push((Tok::Punct('"'), line));
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            let start = if c == 'b' { i + 1 } else { i };
            if b.get(start + 1) == Some(&'\\') {
                // An escaped character: up to the closing quote.
                i = start + 2;
                while i < n && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push((Tok::Punct('\''), line));
            } else if b.get(start + 2) == Some(&'\'') {
                i = start + 3;
                out.push((Tok::Punct('\''), line));
            } else {
                // A lifetime or a label: the identifier follows.
                i = start + 1;
            }
        } else if c.is_alphabetic()
            || c == '_'
            || (c == '$' && next.is_some_and(char::is_alphabetic))
        {
            let s = i;
            i += 1;
            while i < n && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(b[s..i].iter().collect()), line));
        } else if c == ':' && next == Some(':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// The length of a raw string literal's opening (`r"`, `r#"`, `br##"`), if one starts here.
fn raw_string_start(b: &[char]) -> Option<usize> {
    let mut i = 0;
    if b.first() == Some(&'b') {
        i += 1;
    }
    if b.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    while b.get(i) == Some(&'#') {
        i += 1;
    }
    (b.get(i) == Some(&'"')).then_some(i + 1)
}

/// A source file and the module it is.
struct File {
    /// Relative to the crate, for messages.
    shown: String,
    module: Vec<String>,
    toks: Vec<(Tok, usize)>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn read_sources() -> Vec<File> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut paths = Vec::new();
    rs_files(&src, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src");
            let mut module: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = std::fs::read_to_string(&p).expect("read source");
            File {
                shown: p
                    .strip_prefix(root)
                    .expect("under the crate")
                    .display()
                    .to_string(),
                module,
                toks: tokens(&text),
            }
        })
        .collect()
}

// ----- resolving paths --------------------------------------------------------------------------

/// A path named in a file, made absolute (from the crate root), with its line.
struct Named {
    path: Vec<String>,
    /// The path ends in a macro call (`crate::go!`).
    is_macro: bool,
    line: usize,
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// Every path of `f` that starts with `crate`, `$crate`, `super` or `self`, and every call of a
/// macro in `macros` (as the path `[name]`).
fn named_paths(f: &File, macros: &BTreeSet<String>) -> Vec<Named> {
    let t = &f.toks;
    let mut out = Vec::new();
    // Inline modules (`mod tests { .. }`): their names and the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        match &t[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(name), Some((Tok::Punct('{'), _))) =
                    (ident(t.get(i + 1)), t.get(i + 2))
                {
                    inline.push((name.to_owned(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(name)
                if macros.contains(name)
                    && matches!(t.get(i + 1), Some((Tok::Punct('!'), _)))
                    && !matches!(i.checked_sub(1).map(|k| &t[k].0), Some(Tok::Path)) =>
            {
                out.push(Named {
                    path: vec![name.clone()],
                    is_macro: true,
                    line: t[i].1,
                });
            }
            Tok::Ident(start)
                if matches!(start.as_str(), "crate" | "$crate" | "super" | "self")
                    && matches!(t.get(i + 1), Some((Tok::Path, _)))
                    && !matches!(i.checked_sub(1).map(|k| &t[k].0), Some(Tok::Path)) =>
            {
                let mut here = f.module.clone();
                here.extend(inline.iter().map(|(m, _)| m.clone()));
                let mut j = i;
                let base = resolve_start(t, &mut j, &here);
                let line = t[i].1;
                collect_tree(t, &mut j, base, line, &mut out);
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads `crate::` / `super::super::` / `self::` at `*j` (leaving `*j` on the first segment
/// after them) and returns the module it resolves to.
fn resolve_start(t: &[(Tok, usize)], j: &mut usize, here: &[String]) -> Vec<String> {
    let mut base = here.to_vec();
    loop {
        match ident(t.get(*j)) {
            Some("crate" | "$crate") => base.clear(),
            Some("super") => {
                base.pop();
            }
            Some("self") => {}
            _ => return base,
        }
        if !matches!(t.get(*j + 1), Some((Tok::Path, _))) {
            return base;
        }
        *j += 2;
    }
}

/// Reads a path (or `use` tree) from `*j` onwards, after `prefix`, pushing each full path.
fn collect_tree(
    t: &[(Tok, usize)],
    j: &mut usize,
    mut prefix: Vec<String>,
    line: usize,
    out: &mut Vec<Named>,
) {
    loop {
        match t.get(*j) {
            Some((Tok::Ident(s), _)) if s != "as" => {
                prefix.push(s.clone());
                *j += 1;
                if matches!(t.get(*j), Some((Tok::Path, _))) {
                    *j += 1;
                    continue;
                }
                let is_macro = matches!(t.get(*j), Some((Tok::Punct('!'), _)));
                out.push(Named {
                    path: prefix,
                    is_macro,
                    line,
                });
                return;
            }
            Some((Tok::Punct('{'), _)) => {
                *j += 1;
                loop {
                    match t.get(*j) {
                        Some((Tok::Punct('}'), _)) | None => {
                            *j += 1;
                            return;
                        }
                        Some((Tok::Punct(','), _)) => *j += 1,
                        Some((Tok::Ident(s), _)) if s == "self" => {
                            out.push(Named {
                                path: prefix.clone(),
                                is_macro: false,
                                line,
                            });
                            *j += 1;
                        }
                        Some((Tok::Ident(s), _)) if s == "as" => *j += 2,
                        Some((Tok::Ident(_) | Tok::Punct('{'), _)) => {
                            collect_tree(t, j, prefix.clone(), line, out)
                        }
                        Some(_) => *j += 1,
                    }
                }
            }
            _ => {
                // A glob (`*`) or the bare module itself.
                out.push(Named {
                    path: prefix,
                    is_macro: false,
                    line,
                });
                return;
            }
        }
    }
}

// ----- the graphs -------------------------------------------------------------------------------

/// An edge and where it was seen: `(from, to) -> ["src/x.rs:12", ..]`.
type Edges = BTreeMap<(String, String), Vec<String>>;

struct Crate {
    files: Vec<File>,
    /// Top-level modules declared in lib.rs.
    top: BTreeSet<String>,
    /// goway's own macros (`#[macro_export]`ed at the crate root).
    macros: BTreeSet<String>,
    /// Names re-exported at the crate root, with the module they come from.
    reexports: BTreeMap<String, String>,
    /// The runtime's direct submodules.
    runtime_children: BTreeSet<String>,
}

impl Crate {
    fn load() -> Crate {
        let files = read_sources();
        let mut top = BTreeSet::new();
        let mut macros = BTreeSet::new();
        let mut reexports = BTreeMap::new();
        let mut runtime_children = BTreeSet::new();
        for f in &files {
            let t = &f.toks;
            for k in 0..t.len() {
                let Some(kw) = ident(t.get(k)) else { continue };
                if kw == "mod" && matches!(t.get(k + 2), Some((Tok::Punct(';'), _))) {
                    let Some(name) = ident(t.get(k + 1)) else {
                        continue;
                    };
                    if f.module.is_empty() {
                        top.insert(name.to_owned());
                    } else if f.module == ["runtime"] {
                        runtime_children.insert(name.to_owned());
                    }
                }
                // `#[macro_export] macro_rules! name`: a module's private helper macros
                // (`netfd_methods!` in net) are that module's own code.
                let exported = k >= 2 && ident(t.get(k - 2)) == Some("macro_export");
                if kw == "macro_rules" && exported {
                    if let Some(name) = ident(t.get(k + 2)) {
                        macros.insert(name.to_owned());
                    }
                }
            }
            if f.module.is_empty() {
                // `pub use runtime::{Builder, JoinHandle, Panicked};`
                let mut k = 0;
                while k + 2 < t.len() {
                    if ident(t.get(k)) == Some("pub") && ident(t.get(k + 1)) == Some("use") {
                        if let Some(from) = ident(t.get(k + 2)) {
                            let mut j = k + 3;
                            while j < t.len() && t[j].0 != Tok::Punct(';') {
                                if let Some(name) = ident(t.get(j)) {
                                    reexports.insert(name.to_owned(), from.to_owned());
                                }
                                j += 1;
                            }
                        }
                    }
                    k += 1;
                }
            }
        }
        Crate {
            files,
            top,
            macros,
            reexports,
            runtime_children,
        }
    }

    /// The top-level module an absolute path lands in.
    fn top_of(&self, n: &Named, at: &str) -> String {
        let first = &n.path[0];
        // `select` is a module and a macro: `select!` is the macro.
        if n.is_macro && n.path.len() == 1 && self.macros.contains(first) {
            return "macros".to_owned();
        }
        if self.top.contains(first) {
            return first.clone();
        }
        if self.macros.contains(first) {
            return "macros".to_owned();
        }
        if let Some(from) = self.reexports.get(first) {
            return from.clone();
        }
        panic!(
            "{at}: `crate::{}` is neither a module, nor a macro, nor a re-export of the crate \
             root: teach tests/layering.rs about it",
            n.path.join("::")
        );
    }

    /// The module graph between top-level modules, and between the runtime's submodules.
    fn graphs(&self) -> (Edges, Edges) {
        let mut top = Edges::new();
        let mut runtime = Edges::new();
        for f in &self.files {
            let Some(from) = f.module.first() else {
                continue; // lib.rs: the crate root stands above every module
            };
            for n in named_paths(f, &self.macros) {
                let at = format!("{}:{}", f.shown, n.line);
                if n.path.is_empty() {
                    continue; // `crate` itself
                }
                let to = self.top_of(&n, &at);
                if &to != from {
                    let seen = top.entry((from.clone(), to)).or_default();
                    if !seen.contains(&at) {
                        seen.push(at);
                    }
                    continue;
                }
                if from == "runtime" && f.module.len() >= 2 && n.path.len() >= 2 {
                    let child = &f.module[1];
                    let target = if self.runtime_children.contains(&n.path[1]) {
                        n.path[1].clone()
                    } else {
                        RUNTIME_ROOT.to_owned()
                    };
                    if &target != child {
                        let seen = runtime.entry((child.clone(), target)).or_default();
                        if !seen.contains(&at) {
                            seen.push(at);
                        }
                    }
                }
            }
        }
        // The façade declares every submodule.
        for c in &self.runtime_children {
            runtime
                .entry((RUNTIME_ROOT.to_owned(), c.clone()))
                .or_default()
                .push("src/runtime/mod.rs (declares it)".to_owned());
        }
        (top, runtime)
    }
}

fn layer_of(m: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&m))
}

/// A cycle of `edges`, if there is one, as its nodes in order.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default();
    }
    // 0 unvisited, 1 on the stack, 2 done.
    let mut mark: BTreeMap<&str, u8> = adj.keys().map(|k| (*k, 0)).collect();
    fn dfs<'a>(
        v: &'a str,
        adj: &BTreeMap<&'a str, Vec<&'a str>>,
        mark: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        mark.insert(v, 1);
        stack.push(v);
        for &w in &adj[v] {
            match mark[w] {
                1 => {
                    let at = stack.iter().position(|x| *x == w).expect("on the stack");
                    let mut cycle: Vec<String> =
                        stack[at..].iter().map(|s| s.to_string()).collect();
                    cycle.push(w.to_owned());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = dfs(w, adj, mark, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        mark.insert(v, 2);
        None
    }
    let nodes: Vec<&str> = adj.keys().copied().collect();
    for v in nodes {
        if mark[v] == 0 {
            if let Some(c) = dfs(v, &adj, &mut mark, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn describe_cycle(cycle: &[String], edges: &Edges) -> String {
    let mut s = format!("cycle: {}\n", cycle.join(" -> "));
    for w in cycle.windows(2) {
        let key = (w[0].clone(), w[1].clone());
        for at in &edges[&key] {
            let _ = writeln!(s, "  {at}: {} names {}", w[0], w[1]);
        }
    }
    s
}

fn print_graph(title: &str, edges: &Edges) {
    println!("{title}:");
    let mut by_from: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        by_from.entry(a).or_default().push(b);
    }
    for (a, bs) in by_from {
        println!("  {a} -> {}", bs.join(", "));
    }
}

// ----- the checks -------------------------------------------------------------------------------

#[test]
fn every_top_level_module_has_a_layer() {
    let c = Crate::load();
    let missing: Vec<&String> = c.top.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in tests/layering.rs (and src/lib.rs's docs): {missing:?}"
    );
    assert!(
        c.top.contains("runtime") && c.top.contains("http"),
        "lib.rs read"
    );
    assert!(c.runtime_children.len() > 5, "runtime/mod.rs read");
}

#[test]
fn no_module_names_a_higher_layer() {
    let c = Crate::load();
    let (top, _) = c.graphs();
    print_graph("top-level modules", &top);
    let mut bad = String::new();
    for ((a, b), ats) in &top {
        let (Some(la), Some(lb)) = (layer_of(a), layer_of(b)) else {
            continue; // every_top_level_module_has_a_layer reports it
        };
        if lb > la {
            for at in ats {
                let _ = writeln!(bad, "{at}: {a} (layer {la}) names {b} (layer {lb})");
            }
        }
    }
    assert!(
        bad.is_empty(),
        "dependencies pointing up the layers:\n{bad}"
    );
    if let Some(cycle) = find_cycle(&top) {
        panic!("{}", describe_cycle(&cycle, &top));
    }
}

#[test]
fn runtime_submodules_form_no_cycle() {
    let c = Crate::load();
    let (_, runtime) = c.graphs();
    print_graph("runtime submodules", &runtime);
    if let Some(cycle) = find_cycle(&runtime) {
        panic!(
            "{}(src/runtime/mod.rs only declares and re-exports: name an item through the \
             submodule that defines it)",
            describe_cycle(&cycle, &runtime)
        );
    }
}

#[test]
fn the_reader_understands_paths() {
    let src = "use crate::{a::{b, c as d}, e};\n\
               mod tests { use super::*; }\n\
               // crate::commented\n\
               fn f() { let s = \"crate::quoted\"; let c = '{'; super::super::g::h(); go!(x); }\n";
    let f = File {
        shown: "x.rs".into(),
        module: vec!["m".into(), "n".into()],
        toks: tokens(src),
    };
    let macros: BTreeSet<String> = ["go".to_owned()].into();
    let got: Vec<(String, usize)> = named_paths(&f, &macros)
        .into_iter()
        .map(|n| (n.path.join("::"), n.line))
        .collect();
    assert_eq!(
        got,
        [
            ("a::b".to_owned(), 1),
            ("a::c".to_owned(), 1),
            ("e".to_owned(), 1),
            ("m::n".to_owned(), 2),
            ("g::h".to_owned(), 4),
            ("go".to_owned(), 4),
        ]
    );
}
