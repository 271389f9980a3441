//! The `rust-version` the published crates declare is honest about their dependencies: no
//! crate they build on (normal and build dependencies, all features, as locked) declares a
//! newer one. This checks the declarations; `.ci/run` also builds the crates with that
//! compiler, and clippy's `incompatible_msrv` lint checks our own use of the standard library
//! against the same `rust-version`.

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::process::Command;

const PUBLISHED: [&str; 3] = ["lstrace", "lstrace-core", "lstrace-macros"];

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn published_crates_declare_a_rust_version_their_dependencies_fit() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");

    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let name = |id: &str| packages[id]["name"].as_str().expect("name").to_owned();
    let rust_version = |id: &str| packages[id]["rust_version"].as_str().map(version);

    let roots: Vec<&str> = packages
        .keys()
        .copied()
        .filter(|id| PUBLISHED.contains(&name(id).as_str()) && packages[id]["source"].is_null())
        .collect();
    assert_eq!(
        roots.len(),
        PUBLISHED.len(),
        "the published crates are in the workspace"
    );
    let declared: HashSet<_> = roots.iter().map(|id| rust_version(id)).collect();
    assert_eq!(
        declared.len(),
        1,
        "the published crates declare one rust-version"
    );
    let declared = declared
        .into_iter()
        .next()
        .flatten()
        .expect("the published crates declare a rust-version");

    // Normal and build dependencies only: dev-dependencies are ours to build, not users'.
    let mut seen: HashSet<&str> = roots.iter().copied().collect();
    let mut queue = roots.clone();
    let mut too_new = Vec::new();
    while let Some(id) = queue.pop() {
        for dep in nodes[id]["deps"].as_array().expect("deps") {
            let used = dep["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|kind| kind["kind"].as_str() != Some("dev"));
            let dep_id = dep["pkg"].as_str().expect("pkg");
            if used && seen.insert(dep_id) {
                queue.push(dep_id);
                if let Some(needed) = rust_version(dep_id) {
                    if needed > declared {
                        too_new.push(format!(
                            "{} {} needs {}.{}.{}",
                            name(dep_id),
                            packages[dep_id]["version"].as_str().unwrap_or("?"),
                            needed.0,
                            needed.1,
                            needed.2
                        ));
                    }
                }
            }
        }
    }
    too_new.sort();
    assert!(
        too_new.is_empty(),
        "the published crates declare rust-version {}.{}.{}, but their locked dependencies \
         need more: {too_new:?}",
        declared.0,
        declared.1,
        declared.2
    );
}
