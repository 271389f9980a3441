//! Every `unsafe fn` in the workspace, test fixtures included, says in a `# Safety` section
//! what its caller must uphold. rustc has no lint for it, and clippy's `missing_safety_doc`
//! looks at public functions only. A method of a trait implementation is exempt: its
//! contract is the trait's (`GlobalAlloc::alloc`, say).
//!
//! The scan reads the sources as `cargo fmt` lays them out (which CI checks): an item's
//! attributes and docs sit on the lines just above it, and a block's items are indented one
//! level more than the line that opens it.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's members, relative to its root.
const MEMBERS: [&str; 7] = [
    "lstrace",
    "lstrace-core",
    "lstrace-macros",
    "tests",
    "tests-build",
    "examples",
    "benches",
];

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Whether `line` declares an `unsafe fn` (`pub(crate) const unsafe fn`, `unsafe extern "C"
/// fn`, ...), as opposed to mentioning one in a comment or a string.
fn declares_unsafe_fn(line: &str) -> bool {
    let line = line.trim_start();
    let Some((head, _)) = line.split_once("fn ") else {
        return false;
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    words.contains(&"unsafe")
        && words.iter().all(|w| {
            w.starts_with("pub") || ["const", "async", "unsafe", "extern", "\"C\""].contains(w)
        })
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The docs and attributes just above line `at`: back to the first blank line or the end of
/// the item before (a line of code ending a statement or a block).
fn preamble<'a>(lines: &[&'a str], at: usize) -> Vec<&'a str> {
    lines[..at]
        .iter()
        .rev()
        .take_while(|l| {
            let t = l.trim();
            !t.is_empty()
                && (t.starts_with("//")
                    || !(t.ends_with('}') || t.ends_with(';') || t.ends_with('{')))
        })
        .copied()
        .collect()
}

/// Whether the `fn` at line `at` is a method of a trait implementation: the nearest line
/// above it indented less than it opens an `impl ... for ...` block.
fn in_trait_impl(lines: &[&str], at: usize) -> bool {
    let depth = indent(lines[at]);
    lines[..at]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && indent(l) < depth)
        .is_some_and(|l| {
            let t = l.trim_start();
            (t.starts_with("impl") || t.starts_with("unsafe impl")) && t.contains(" for ")
        })
}

/// The `file:line` of each `unsafe fn` in `source` without a `# Safety` section.
fn undocumented(file: &Path, source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    (0..lines.len())
        .filter(|&i| declares_unsafe_fn(lines[i]) && !in_trait_impl(&lines, i))
        .filter(|&i| {
            !preamble(&lines, i)
                .iter()
                .any(|l| l.trim() == "/// # Safety")
        })
        .map(|i| format!("{}:{}", file.display(), i + 1))
        .collect()
}

#[test]
fn every_unsafe_fn_has_a_safety_section() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut files = Vec::new();
    for member in MEMBERS {
        rust_files(&root.join(member), &mut files);
    }
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        // This file's examples of what the scan finds are in a string.
        .filter(|f| f.file_name().is_none_or(|n| n != "safety_docs.rs"))
        .map(|f| {
            let source = fs::read_to_string(&f).expect("a readable source file");
            (f, source)
        })
        .collect();
    let declared = sources
        .iter()
        .map(|(_, s)| s.lines().filter(|l| declares_unsafe_fn(l)).count())
        .sum::<usize>();
    // The scan finds the ring's and the span stack's `unsafe fn`s: it is looking in the
    // right place.
    assert!(declared >= 20, "only {declared} `unsafe fn`s found");
    let missing: Vec<String> = sources
        .iter()
        .flat_map(|(f, s)| undocumented(f.strip_prefix(root).unwrap_or(f), s))
        .collect();
    assert!(
        missing.is_empty(),
        "`unsafe fn`s without a `# Safety` section:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_tells_documented_from_undocumented() {
    let source = "\
/// Reads.
///
/// # Safety
///
/// `p` is valid.
#[inline]
pub(crate) unsafe fn documented(p: *const u8) -> u8 {
    unsafe { *p }
}

/// Reads, with no contract.
unsafe fn undocumented(p: *const u8) -> u8 {
    unsafe { *p }
}

// An `unsafe fn` in a comment is not one.
/// Nor is `unsafe fn` in a doc.
fn safe() {}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }
}

impl Counting {
    unsafe fn inherent(&self) {}
}
";
    assert_eq!(
        undocumented(Path::new("f.rs"), source),
        ["f.rs:12", "f.rs:27"]
    );
}
