//! A library that only instruments its code depends on `lstrace` with
//! `default-features = false`: `#[traced]`, spans, context, propagation and `testing`, without
//! the reporter's runtime and HTTP/TLS stack. This checks the dependency tree, as locked, for
//! the crates of that stack (and that the default build does have them, so that the check can
//! see them).

use std::collections::BTreeSet;
use std::process::Command;

/// The reporter's stack: none of these may be built for `default-features = false`.
const REPORTER_STACK: [&str; 6] = ["reqwest", "hyper", "rustls", "prost", "tokio", "flate2"];

/// The packages `lstrace` builds with these feature arguments (normal and build
/// dependencies, for this platform, as locked).
fn dependencies(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "-p", "lstrace", "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo tree's output is UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn without_default_features_the_reporter_stack_is_not_built() {
    let full = dependencies(&[]);
    for slim_features in [
        &["--no-default-features"][..],
        &["--no-default-features", "--features", "tracing,log,tower"][..],
    ] {
        let slim = dependencies(slim_features);
        for name in REPORTER_STACK {
            assert!(full.contains(name), "the default build has {name}");
            assert!(
                !slim.contains(name),
                "{slim_features:?} builds {name}: {slim:?}"
            );
        }
        assert!(slim.contains("lstrace-core") && slim.contains("lstrace-macros"));
        println!(
            "{slim_features:?}: {} packages; default features: {}",
            slim.len(),
            full.len()
        );
    }
}

/// TLS is rustls in every build, never OpenSSL.
#[test]
fn tls_is_rustls_without_openssl() {
    let all = dependencies(&["--all-features"]);
    assert!(all.contains("rustls"), "{all:?}");
    for name in ["openssl-sys", "openssl", "native-tls"] {
        assert!(!all.contains(name), "--all-features builds {name}");
    }
}
