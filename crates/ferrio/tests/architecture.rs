//! The module graph of `ferrio`, read from its source: the adapter seam (`adapter`) must stay
//! a leaf of the crate, reaching only the leaf modules, which reach nothing else.
//!
//! Every `.rs` file under `src/` belongs to its top-level module (`src/adapter/local.rs` to
//! `adapter`, `src/io.rs` to `io`). Each `crate::<name>` in its code (comment lines and the
//! trailing `#[cfg(test)] mod tests` block left out) is an edge to the module `name`, or, for
//! a name re-exported by `lib.rs` (`crate::EmitError`), to the module it comes from. `super::`
//! in a submodule stays inside its own top-level module, so it adds no edge. `$crate::` in a
//! macro counts for the module that defines the macro.
//!
//! Rules: (1) no cycle passes through `adapter`, and every module it reaches, directly or
//! not, is a leaf; (2) the leaves reference only leaves. A failure names each edge that breaks
//! a rule with the file and line that make it. A `crate::` name this check cannot resolve, a
//! test module that does not end its file, or `super::` at the top of a module fails it too,
//! rather than letting an edge go unseen.
//!
//! ```text
//! cargo test -p ferrio --test architecture -- --nocapture   # also prints the graph
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The leaf modules, as `lib.rs` lists them first: they import nothing of the crate but each
/// other.
const LEAVES: &[&str] = &["ack", "error", "parser", "payload"];

/// The adapter seam: it may reach the leaves, and nothing may lead from it back to itself.
const SEAM: &str = "adapter";

/// One `crate::` reference: where it is, and the module it reaches.
#[derive(Debug, Clone)]
struct Reference {
    target: String,
    file: String,
    line: usize,
    text: String,
}

impl Reference {
    fn location(&self) -> String {
        format!("{}:{}: `{}`", self.file, self.line, self.text)
    }
}

/// What a name of the crate root stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    /// A top-level module of the crate.
    Module(String),
    /// A re-export of another crate (`pub use bytes::Bytes`): no edge.
    External(String),
}

/// The crate root (`lib.rs`): its top-level modules, and the names it re-exports.
#[derive(Debug, Default)]
struct CrateRoot {
    modules: BTreeSet<String>,
    /// Re-exported name -> the first segment of where it comes from.
    reexports: BTreeMap<String, String>,
}

impl CrateRoot {
    fn parse(lib: &str) -> Result<Self, String> {
        let mut root = Self::default();
        let code: Vec<&str> = lib
            .lines()
            .map(strip_comment)
            .filter(|l| !is_comment_line(l))
            .collect();
        for line in &code {
            let line = line.trim();
            let decl = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("mod "));
            // `mod readme {}` (doctests) is no file of its own.
            if let Some(name) = decl.and_then(|d| d.strip_suffix(';')) {
                root.modules.insert(name.trim().to_owned());
            }
        }
        let joined = code.join("\n");
        let mut rest = joined.as_str();
        while let Some(at) = find_word(rest, "pub use ") {
            let after = &rest[at + "pub use ".len()..];
            let end = after
                .find(';')
                .ok_or_else(|| format!("lib.rs: unterminated `pub use {}`", first_line(after)))?;
            for UsePath { path, name } in expand_use_tree(&after[..end])? {
                if name == "*" {
                    return Err(format!(
                        "lib.rs: glob re-export `pub use {}`: this check cannot tell which \
                         names it brings; re-export names one by one, or extend the check",
                        after[..end].trim()
                    ));
                }
                if name != "_" {
                    root.reexports.insert(name, path[0].clone());
                }
            }
            rest = &after[end..];
        }
        Ok(root)
    }

    /// What `crate::<name>` stands for.
    fn resolve(&self, name: &str) -> Option<Root> {
        if self.modules.contains(name) {
            return Some(Root::Module(name.to_owned()));
        }
        let origin = self.reexports.get(name)?;
        Some(if self.modules.contains(origin) {
            Root::Module(origin.clone())
        } else {
            Root::External(origin.clone())
        })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default().trim()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The offset of `word` in `s` where it does not continue an identifier on its left.
fn find_word(s: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(word) {
        let at = from + i;
        if !s[..at].chars().next_back().is_some_and(is_ident_char) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `//`, `///` and `//!` lines.
fn is_comment_line(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

/// The line without a trailing `// comment` (a `//` inside a string literal stays).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            // A `'"'` char literal does not open a string.
            b'\'' if !in_string && bytes.get(i + 1) == Some(&b'"') => i += 2,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// One path a use tree names, and the name it binds (its last segment, or its alias).
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsePath {
    path: Vec<String>,
    name: String,
}

/// The paths a use tree names: `a::{b::C, D as E}` -> `a::b::C` as `C`, `a::D` as `E`.
fn expand_use_tree(tree: &str) -> Result<Vec<UsePath>, String> {
    let mut out = Vec::new();
    expand_into(&[], tree, &mut out)?;
    Ok(out)
}

fn expand_into(prefix: &[String], tree: &str, out: &mut Vec<UsePath>) -> Result<(), String> {
    let tree = tree.trim();
    if tree.is_empty() {
        return Ok(()); // after a trailing comma
    }
    if let Some(open) = tree.find('{') {
        let close = tree
            .rfind('}')
            .ok_or_else(|| format!("unbalanced use tree `{tree}`"))?;
        let mut path = prefix.to_vec();
        path.extend(segments(tree[..open].trim().trim_end_matches("::")));
        for item in split_top_level(&tree[open + 1..close]) {
            expand_into(&path, item, out)?;
        }
        return Ok(());
    }
    let (path_part, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path, Some(alias.trim())),
        None => (tree, None),
    };
    let mut path = prefix.to_vec();
    path.extend(segments(path_part));
    // `a::{self}` names `a` itself.
    if path.len() > 1 && path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    let Some(last) = path.last() else {
        return Err(format!("empty path in use tree `{tree}`"));
    };
    let name = alias.unwrap_or(last).to_owned();
    out.push(UsePath { path, name });
    Ok(())
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Splits `a, b::{c, d}, e` at the commas outside braces.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The lines of a file that count: everything before its `#[cfg(test)] mod tests { .. }`
/// block, after checking that the block is what ends the file.
fn code_lines<'a>(file: &str, text: &'a str) -> Result<Vec<&'a str>, String> {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "#[cfg(test)]" {
            continue;
        }
        // The item the attribute applies to (other attributes may come between).
        let Some((j, item)) = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .map(|(j, l)| (j, l.trim()))
            .find(|(_, l)| !l.is_empty() && !l.starts_with("#[") && !is_comment_line(l))
        else {
            continue;
        };
        if item.starts_with("mod tests;") {
            return Err(format!(
                "{file}:{}: an out-of-line `mod tests;`: its file would be read as library \
                 code; keep test modules inline at the end of the file, or extend this check",
                j + 1
            ));
        }
        if !(item.starts_with("mod tests {") || item.starts_with("mod tests{")) {
            continue; // another `#[cfg(test)]` item: its references count
        }
        // The block must run to the end of the file: indented lines, then one `}` at
        // column 0 as the last line with content.
        let after = &lines[j + 1..];
        let last = after.iter().rposition(|l| !l.trim().is_empty());
        let closes: Vec<usize> = (0..after.len()).filter(|&k| after[k] == "}").collect();
        let stray = after
            .iter()
            .position(|l| !l.is_empty() && !l.starts_with(char::is_whitespace) && *l != "}");
        if let Some(k) = stray {
            return Err(format!(
                "{file}:{}: code after the `mod tests` block starting at line {} (`{}`): test \
                 modules must end the file, as this check stops reading there",
                j + k + 2,
                j + 1,
                after[k].trim()
            ));
        }
        if closes.len() != 1 || last != closes.first().copied() {
            return Err(format!(
                "{file}:{}: the `mod tests` block does not end the file with its one closing \
                 `}}` at column 0",
                j + 1
            ));
        }
        return Ok(lines[..i].to_vec());
    }
    Ok(lines)
}

/// The `crate::` references of one file of `module`. `top_level` is whether the file is the
/// module's own (`src/io.rs`), where `super::` would mean the crate root.
fn scan_source(
    root: &CrateRoot,
    module: &str,
    file: &str,
    text: &str,
    top_level: bool,
) -> Result<Vec<Reference>, Vec<String>> {
    let lines = code_lines(file, text).map_err(|e| vec![e])?;
    // Code only, one entry per source line, so offsets map back to line numbers.
    let code: Vec<&str> = lines
        .iter()
        .map(|l| {
            if is_comment_line(l) {
                ""
            } else {
                strip_comment(l)
            }
        })
        .collect();
    let mut starts = Vec::with_capacity(code.len());
    let mut joined = String::new();
    for line in &code {
        starts.push(joined.len());
        joined.push_str(line);
        joined.push('\n');
    }
    let line_of = |offset: usize| starts.partition_point(|&s| s <= offset);
    let (mut refs, mut errors) = (Vec::new(), Vec::new());
    let mut at = 0;
    while let Some(i) = find_word(&joined[at..], "crate::") {
        let start = at + i;
        let line = line_of(start);
        let text = lines[line - 1].trim().to_owned();
        let rest = joined[start + "crate::".len()..].trim_start();
        // Each module once per occurrence, however many of its names a group imports.
        let names: BTreeSet<String> = if rest.starts_with('{') {
            // `crate::{a::X, b::Y}`: each path's first segment.
            let close = matching_brace(rest)
                .ok_or_else(|| format!("{file}:{line}: unbalanced `crate::{{`"));
            match close.and_then(|close| expand_use_tree(&rest[..=close])) {
                Ok(paths) => paths.into_iter().map(|p| p.path[0].clone()).collect(),
                Err(e) => {
                    errors.push(format!("{file}:{line}: {e}"));
                    BTreeSet::new()
                }
            }
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident_char(c)).collect();
            BTreeSet::from([name])
        };
        for name in names {
            match root.resolve(&name) {
                Some(Root::Module(target)) if target != module => refs.push(Reference {
                    target,
                    file: file.to_owned(),
                    line,
                    text: text.clone(),
                }),
                Some(_) => {} // the module itself, or another crate's item
                None => errors.push(format!(
                    "{file}:{line}: `crate::{name}` is neither a module of the crate nor a \
                     name lib.rs re-exports: `{text}`"
                )),
            }
        }
        at = start + "crate::".len();
    }
    if top_level {
        if let Some(i) = find_word(&joined, "super::") {
            let line = line_of(i);
            errors.push(format!(
                "{file}:{line}: `super::` in a top-level module names the crate root, which \
                 this check does not resolve; write `crate::` instead: `{}`",
                lines[line - 1].trim()
            ));
        }
    }
    if errors.is_empty() {
        Ok(refs)
    } else {
        Err(errors)
    }
}

/// The offset of the `}` that closes the `{` `s` starts with.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Module -> module it references -> where.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Reference>>>;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module graph of the crate at `crate_dir`.
fn read_graph(crate_dir: &Path) -> Graph {
    let src = crate_dir.join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let root = CrateRoot::parse(&lib).unwrap_or_else(|e| panic!("{e}"));
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let mut graph: Graph = root
        .modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    let mut errors = Vec::new();
    for path in files {
        let relative = path.strip_prefix(crate_dir).expect("under the crate");
        let file = relative.to_string_lossy().replace('\\', "/");
        let inside = path.strip_prefix(&src).expect("under src");
        let parts: Vec<String> = inside
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts == ["lib.rs"] {
            continue;
        }
        let top_level = parts.len() == 1;
        let module = if top_level {
            parts[0].trim_end_matches(".rs").to_owned()
        } else {
            parts[0].clone()
        };
        if !root.modules.contains(&module) {
            errors.push(format!(
                "{file}: belongs to `{module}`, which lib.rs does not declare"
            ));
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {file}: {e}"));
        match scan_source(&root, &module, &file, &text, top_level) {
            Ok(refs) => {
                let deps = graph.entry(module).or_default();
                for r in refs {
                    deps.entry(r.target.clone()).or_default().push(r);
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    assert!(
        errors.is_empty(),
        "the module graph cannot be read reliably:\n  {}",
        errors.join("\n  ")
    );
    graph
}

/// The graph without locations.
fn edges(graph: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    graph
        .iter()
        .map(|(m, deps)| (m.clone(), deps.keys().cloned().collect()))
        .collect()
}

/// The shortest path from `start` to each module it reaches (`start` itself only if a
/// cycle leads back to it), `start` first.
fn paths_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::from([vec![start.to_owned()]]);
    while let Some(path) = queue.pop_front() {
        let here = path.last().expect("a path is never empty");
        for next in graph.get(here).into_iter().flatten() {
            if paths.contains_key(next) {
                continue;
            }
            let mut longer = path.clone();
            longer.push(next.clone());
            paths.insert(next.clone(), longer.clone());
            if next != start {
                queue.push_back(longer);
            }
        }
    }
    paths
}

/// A shortest cycle through `module` (`module` first and last), if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, module: &str) -> Option<Vec<String>> {
    paths_from(graph, module).remove(module)
}

/// A path, each edge with the first place in the source that makes it.
fn describe_path(graph: &Graph, path: &[String]) -> String {
    let mut out = path.join(" -> ");
    for pair in path.windows(2) {
        let refs = &graph[&pair[0]][&pair[1]];
        let _ = write!(
            out,
            "\n      {} -> {}: {}",
            pair[0],
            pair[1],
            refs[0].location()
        );
        if refs.len() > 1 {
            let _ = write!(out, " (and {} more)", refs.len() - 1);
        }
    }
    out
}

/// The rules: what breaks them, one message per broken edge.
fn violations(graph: &Graph) -> Vec<String> {
    let plain = edges(graph);
    let leaves: BTreeSet<&str> = LEAVES.iter().copied().collect();
    let mut out = Vec::new();
    for leaf in LEAVES.iter().chain([&SEAM]) {
        if !graph.contains_key(*leaf) {
            out.push(format!(
                "`{leaf}` is not a module of the crate any more: update LEAVES/SEAM in \
                 tests/architecture.rs"
            ));
        }
    }
    // 1. Nothing the seam reaches leads back to it, and it reaches only leaves.
    if let Some(cycle) = cycle_through(&plain, SEAM) {
        out.push(format!(
            "a cycle passes through `{SEAM}`: {}",
            describe_path(graph, &cycle)
        ));
    }
    let reached = paths_from(&plain, SEAM);
    let outside: Vec<&str> = reached
        .keys()
        .map(String::as_str)
        .filter(|m| *m != SEAM && !leaves.contains(m))
        .collect();
    if !outside.is_empty() {
        let all: Vec<&str> = reached.keys().map(String::as_str).collect();
        out.push(format!(
            "`{SEAM}` reaches {outside:?}, which are not leaves: it reaches {all:?}, and only \
             {LEAVES:?} are allowed"
        ));
        // The edges through which it gets out: from the seam, or from a leaf it reaches, to
        // a module that is not a leaf.
        let inside = reached
            .iter()
            .filter(|(m, _)| leaves.contains(m.as_str()))
            .map(|(m, path)| (m.as_str(), path.clone()))
            .chain([(SEAM, vec![SEAM.to_owned()])]);
        for (from, path) in inside {
            for (to, refs) in graph.get(from).into_iter().flatten() {
                if leaves.contains(to.as_str()) {
                    continue;
                }
                let places: Vec<String> = refs.iter().map(Reference::location).collect();
                let mut via = path.clone();
                via.push(to.clone());
                out.push(format!(
                    "the edge `{from} -> {to}` takes `{SEAM}` out of the leaves (path: {}):\
                     \n      {}",
                    via.join(" -> "),
                    places.join("\n      ")
                ));
            }
        }
    }
    // 2. The leaves reference only leaves.
    for leaf in LEAVES {
        for (dep, refs) in graph.get(*leaf).into_iter().flatten() {
            if !leaves.contains(dep.as_str()) {
                let places: Vec<String> = refs.iter().map(Reference::location).collect();
                out.push(format!(
                    "the leaf `{leaf}` references `{dep}`, which is not a leaf:\n      {}",
                    places.join("\n      ")
                ));
            }
        }
    }
    out
}

#[test]
fn the_adapter_seam_reaches_only_the_leaf_modules() {
    let graph = read_graph(Path::new(env!("CARGO_MANIFEST_DIR")));
    let width = graph.keys().map(String::len).max().unwrap_or(0);
    eprintln!("ferrio module graph (module -> the modules it references):");
    for (module, deps) in &graph {
        let deps: Vec<&str> = deps.keys().map(String::as_str).collect();
        eprintln!("  {module:width$} -> {}", deps.join(", "));
    }
    let reached: Vec<String> = paths_from(&edges(&graph), SEAM).into_keys().collect();
    eprintln!("`{SEAM}` reaches: {}", reached.join(", "));
    let broken = violations(&graph);
    assert!(
        broken.is_empty(),
        "the adapter seam is no longer a leaf of the crate ({} rule(s) broken):\n  - {}",
        broken.len(),
        broken.join("\n  - ")
    );
}

fn graph_of(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges {
        graph
            .entry((*from).to_owned())
            .or_default()
            .insert((*to).to_owned());
    }
    graph
}

/// The cycle finder must see a cycle through the seam, or the check above proves nothing.
#[test]
fn self_check_a_cycle_through_the_seam_is_found() {
    let cyclic = graph_of(&[
        ("adapter", "ack"),
        ("adapter", "error"),
        ("ack", "payload"),
        ("payload", "socket"),
        ("socket", "namespace"),
        ("namespace", "adapter"),
        ("io", "adapter"),
    ]);
    let cycle = cycle_through(&cyclic, "adapter").expect("the cycle through adapter is found");
    assert_eq!(
        cycle,
        [
            "adapter",
            "ack",
            "payload",
            "socket",
            "namespace",
            "adapter"
        ]
    );
    // A direct back edge, and a self-loop.
    let back = graph_of(&[("adapter", "ack"), ("ack", "adapter")]);
    assert_eq!(
        cycle_through(&back, "adapter").expect("found"),
        ["adapter", "ack", "adapter"]
    );
    assert!(cycle_through(&graph_of(&[("adapter", "adapter")]), "adapter").is_some());
    // Cycles that do not pass through adapter are not its business.
    let acyclic = graph_of(&[
        ("adapter", "ack"),
        ("ack", "error"),
        ("socket", "namespace"),
        ("namespace", "socket"),
        ("namespace", "adapter"),
    ]);
    assert_eq!(cycle_through(&acyclic, "adapter"), None);
    let reached: Vec<String> = paths_from(&acyclic, "adapter").into_keys().collect();
    assert_eq!(reached, ["ack", "error"]);
}

/// The rules must fire on a seam that reaches a non-leaf and a leaf that references one.
#[test]
fn self_check_broken_rules_are_reported_with_their_edges() {
    let reference = |target: &str, file: &str, line| Reference {
        target: target.to_owned(),
        file: file.to_owned(),
        line,
        text: format!("use crate::{target}::X;"),
    };
    let mut graph: Graph = ["ack", "error", "parser", "payload", "adapter", "socket"]
        .iter()
        .map(|m| ((*m).to_owned(), BTreeMap::new()))
        .collect();
    for (from, to, file, line) in [
        ("adapter", "ack", "src/adapter/mod.rs", 3),
        ("ack", "socket", "src/ack.rs", 7),
        ("socket", "adapter", "src/socket/mod.rs", 9),
    ] {
        graph
            .get_mut(from)
            .expect("declared above")
            .insert(to.to_owned(), vec![reference(to, file, line)]);
    }
    let broken = violations(&graph);
    let all = broken.join("\n");
    assert_eq!(broken.len(), 4, "{all}");
    assert!(
        all.contains("a cycle passes through `adapter`: adapter -> ack -> socket -> adapter"),
        "{all}"
    );
    assert!(all.contains("`adapter` reaches [\"socket\"]"), "{all}");
    assert!(
        all.contains(
            "the edge `ack -> socket` takes `adapter` out of the leaves (path: adapter -> ack \
             -> socket):\n      src/ack.rs:7: `use crate::socket::X;`"
        ),
        "{all}"
    );
    assert!(all.contains("the leaf `ack` references `socket`"), "{all}");
}

/// The scanner must skip comments and test modules, and resolve grouped imports and
/// re-exported names.
#[test]
fn self_check_the_scanner_resolves_references() {
    let lib = "\
//! The crate.
mod ack;
mod error;
pub mod adapter;
mod socket;
#[cfg(doctest)]
mod readme {}
pub use error::{
    AckError, EmitError as Failed,
};
pub use socket::SocketRef;
/// Bytes.
pub use bytes::Bytes;
";
    let root = CrateRoot::parse(lib).expect("parses");
    let modules: Vec<&str> = root.modules.iter().map(String::as_str).collect();
    assert_eq!(modules, ["ack", "adapter", "error", "socket"]);
    assert_eq!(root.resolve("Failed"), Some(Root::Module("error".into())));
    assert_eq!(root.resolve("Bytes"), Some(Root::External("bytes".into())));
    assert_eq!(root.resolve("EmitError"), None);

    let source = "\
//! Docs naming [`x`](crate::socket::X).
use super::Room;
use crate::{ack::AckFuture,
    error::{AckError, Other}};
/// See [`SocketRef`](crate::SocketRef).
fn f() -> crate::Failed { todo!() } // not crate::socket
fn g() -> crate::Bytes { crate::adapter::h() }
#[cfg(test)]
mod tests {
    use crate::socket::SocketRef;
}
";
    let refs = scan_source(&root, "adapter", "src/adapter/x.rs", source, false).expect("scans");
    let found: Vec<(&str, usize)> = refs.iter().map(|r| (r.target.as_str(), r.line)).collect();
    assert_eq!(found, [("ack", 3), ("error", 3), ("error", 6)], "{refs:?}");

    let unknown = scan_source(&root, "ack", "src/ack.rs", "use crate::Nope;\n", true);
    assert!(unknown.is_err_and(|e| e[0].contains("`crate::Nope`")));
    let up = scan_source(&root, "ack", "src/ack.rs", "use super::Payload;\n", true);
    assert!(up.is_err_and(|e| e[0].contains("`super::`")));
    let trailing = "#[cfg(test)]\nmod tests {\n    fn t() {}\n}\nfn after() {}\n";
    let late = scan_source(&root, "ack", "src/ack.rs", trailing, true);
    assert!(late.is_err_and(|e| e[0].contains("code after the `mod tests` block")));
}
