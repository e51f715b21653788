//! The code's shape, checked: no import circle among the node's storage files, the load
//! generator's config files, or its report (charts and HTML page) files; no source file past
//! 900 lines and no function past 150. Read from the sources, as rustfmt writes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 900;
const MAX_FN_LINES: usize = 150;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src`: `storage/wal/mod.rs` is `storage::wal`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The text of a file before its unit tests, without comments.
fn code(text: &str) -> String {
    let body = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    body.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths a file names: `crate::a::b`, `super::a`, the items of `use crate::a::{b, c::d}`, and
/// `use child::x` of a child module.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut paths = Vec::new();
    let base = |head: &str| -> Option<Vec<String>> {
        if head == "crate" {
            return Some(Vec::new());
        }
        let supers = head.split("::").filter(|p| *p == "super").count();
        (supers <= module.len()).then(|| module[..module.len() - supers].to_vec())
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::").or_else(|| rest.find("super::")) {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        rest = &rest[at + 6..];
        if before.is_some_and(word) {
            continue;
        }
        let mut segments: Vec<&str> = Vec::new();
        let mut cursor = tail;
        loop {
            let end = cursor.find(|c: char| !word(c)).unwrap_or(cursor.len());
            segments.push(&cursor[..end]);
            cursor = &cursor[end..];
            if let Some(next) = cursor.strip_prefix("::") {
                cursor = next;
                if cursor.starts_with('{') {
                    let close = cursor.find('}').unwrap_or(cursor.len());
                    let head_len = segments.iter().take_while(|s| **s == "super").count();
                    let head = if segments[0] == "crate" {
                        "crate".to_string()
                    } else {
                        vec!["super"; head_len].join("::")
                    };
                    let skip = if segments[0] == "crate" { 1 } else { head_len };
                    if let Some(mut start) = base(&head) {
                        start.extend(segments[skip..].iter().map(|s| s.to_string()));
                        for item in cursor[1..close].split(',') {
                            let item = item.split_whitespace().next().unwrap_or("");
                            if item.is_empty() {
                                continue;
                            }
                            let mut path = start.clone();
                            path.extend(item.split("::").map(str::to_string));
                            paths.push(path);
                        }
                    }
                    break;
                }
                if cursor.starts_with(|c: char| word(c)) {
                    continue;
                }
            }
            let head_len = segments.iter().take_while(|s| **s == "super").count();
            let (head, skip) = if segments[0] == "crate" {
                ("crate".to_string(), 1)
            } else {
                (vec!["super"; head_len].join("::"), head_len)
            };
            if let Some(mut start) = base(&head) {
                start.extend(segments[skip..].iter().map(|s| s.to_string()));
                paths.push(start);
            }
            break;
        }
    }
    for line in code.lines() {
        let line = line.trim_start();
        let line = line
            .strip_prefix("pub ")
            .or_else(|| line.strip_prefix("pub(crate) "))
            .unwrap_or(line);
        if let Some(used) = line.strip_prefix("use ") {
            let first = used.split("::").next().unwrap_or("");
            if !["crate", "super", "self", "std", "core"].contains(&first) {
                let mut path = module.to_vec();
                path.push(first.to_string());
                paths.push(path);
            }
        }
    }
    paths
}

/// Import edges between the modules of one crate's `src`.
fn imports(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let resolve = |path: &[String]| {
        (0..=path.len())
            .rev()
            .map(|k| path[..k].to_vec())
            .find(|prefix| modules.contains_key(prefix))
    };
    modules
        .iter()
        .map(|(module, file)| {
            let text = std::fs::read_to_string(file).unwrap();
            let targets = named_paths(module, &code(&text))
                .iter()
                .filter_map(|path| resolve(path))
                .filter(|target| target != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// A circle among the modules under `folder`, if there is one.
fn circle(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    folder: &[&str],
) -> Option<Vec<Vec<String>>> {
    let inside = |m: &Vec<String>| m.len() >= folder.len() && m[..folder.len()] == *folder;
    let nodes: Vec<&Vec<String>> = edges.keys().filter(|m| inside(m)).collect();
    // Depth-first search for a back edge; the stack is the circle.
    fn visit<'a>(
        node: &'a Vec<String>,
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        inside: &dyn Fn(&Vec<String>) -> bool,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(node, 1);
        stack.push(node);
        for next in edges.get(node).into_iter().flatten().filter(|n| inside(n)) {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|m| *m == next).unwrap_or(0);
                    return Some(stack[from..].iter().map(|m| (*m).clone()).collect());
                }
                Some(_) => {}
                None => {
                    if let Some(found) = visit(next, edges, inside, state, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in nodes {
        if !state.contains_key(node) {
            let mut stack = Vec::new();
            if let Some(found) = visit(node, edges, &inside, &mut state, &mut stack) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn no_import_circle_among_storage_config_or_report_files() {
    let root = workspace();
    let node = imports(&root.join("crates/node/src"));
    let loadgen = imports(&root.join("crates/loadgen/src"));
    for (edges, folder) in [
        (&node, &["storage"][..]),
        (&loadgen, &["config"][..]),
        (&loadgen, &["report"][..]),
    ] {
        assert!(
            edges
                .keys()
                .any(|m| m.first().map(String::as_str) == Some(folder[0])),
            "no modules under {folder:?}: the check would pass vacuously"
        );
        if let Some(found) = circle(edges, folder) {
            let names: Vec<String> = found.iter().map(|m| m.join("::")).collect();
            panic!("import circle under {folder:?}: {}", names.join(" → "));
        }
    }
}

#[test]
fn the_circle_check_finds_a_circle() {
    let edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = [
        (vec!["a".into()], [vec!["a".into(), "b".into()]].into()),
        (vec!["a".into(), "b".into()], [vec!["a".into()]].into()),
    ]
    .into();
    assert!(circle(&edges, &["a"]).is_some());
    let text = "use crate::a::{b, c::d};\nfn f() { super::x::y(); }\npub use child::Z;";
    let paths = named_paths(&["m".into(), "n".into()], text);
    for expected in [
        vec!["a", "b"],
        vec!["a", "c", "d"],
        vec!["m", "x", "y"],
        vec!["m", "n", "child"],
    ] {
        let expected: Vec<String> = expected.into_iter().map(String::from).collect();
        assert!(paths.contains(&expected), "{paths:?} lacks {expected:?}");
    }
}
/// `(lines, function)` for every function longer than `limit` in `text`.
fn long_functions(text: &str, limit: usize) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let Some(fn_at) = trimmed.find("fn ") else {
            continue;
        };
        let prefix = &trimmed[..fn_at];
        let is_signature = prefix
            .split_whitespace()
            .all(|w| w.starts_with("pub") || ["const", "async", "unsafe"].contains(&w));
        if !is_signature || trimmed.ends_with(';') {
            continue;
        }
        let closing = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == closing) {
            let length = end + 2;
            if length > limit {
                let name: String = trimmed[fn_at + 3..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((length, name));
            }
        }
    }
    found
}

#[test]
fn no_source_file_past_900_lines_and_no_function_past_150() {
    let root = workspace();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(&root).unwrap_or(file).display();
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(format!("{shown}: {lines} lines"));
        }
        for (length, name) in long_functions(&text, MAX_FN_LINES) {
            problems.push(format!("{shown}: fn {name} is {length} lines"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_length_check_finds_a_long_function() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let text = format!("pub(crate) fn long() {{\n{body}}}\nfn short() {{\n}}\n");
    assert_eq!(
        long_functions(&text, MAX_FN_LINES),
        vec![(MAX_FN_LINES + 2, "long".to_string())]
    );
}
