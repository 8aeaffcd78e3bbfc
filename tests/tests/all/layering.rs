//! The crate layering of `docs/ARCHITECTURE.md` ("Crates"), checked rather than hoped: each
//! foreign framework is a direct dependency of one host crate only, `lutetia-model` has no
//! async runtime, and the dependencies between the project's crates run one way, along the
//! edges listed below. Reads `cargo metadata --no-deps` (the manifests as written: no
//! network, no resolution).
//!
//! `lutetia-tests` itself (this harness: it opens databases with sqlx to set tests up) and
//! `lutetia-sdk` (a guest library) are no layers of the host: only their edges to the
//! host's crates are checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Every edge allowed between the project's crates (normal, build and dev dependencies).
/// A crate may depend on any crate below it, never on one above it.
const ALLOWED_EDGES: &[(&str, &str)] = &[
    ("lutetia-policy", "lutetia-model"),
    ("lutetia-db", "lutetia-model"),
    ("lutetia-services", "lutetia-model"),
    ("lutetia-services", "lutetia-db"),
    ("lutetia-runtime", "lutetia-model"),
    ("lutetia-runtime", "lutetia-db"),
    ("lutetia-runtime", "lutetia-services"),
    ("lutetia-platform", "lutetia-model"),
    ("lutetia-platform", "lutetia-db"),
    ("lutetia-platform", "lutetia-services"),
    ("lutetia-platform", "lutetia-runtime"),
    ("lutetia-web", "lutetia-model"),
    ("lutetia-web", "lutetia-policy"),
    ("lutetia-web", "lutetia-db"),
    ("lutetia-web", "lutetia-services"),
    ("lutetia-web", "lutetia-runtime"),
    ("lutetia-web", "lutetia-platform"),
    // The plugin author's tools need the manifest and the package format, nothing else.
    ("lutetia-toolchain", "lutetia-model"),
    ("lutetia", "lutetia-model"),
    ("lutetia", "lutetia-db"),
    ("lutetia", "lutetia-services"),
    ("lutetia", "lutetia-runtime"),
    ("lutetia", "lutetia-platform"),
    ("lutetia", "lutetia-web"),
    ("lutetia", "lutetia-toolchain"),
    ("lutetia-tests", "lutetia"),
    ("lutetia-tests", "lutetia-model"),
    ("lutetia-tests", "lutetia-db"),
    ("lutetia-tests", "lutetia-runtime"),
    ("lutetia-tests", "lutetia-web"),
];

/// Foreign crates that exactly one host crate may depend on directly.
const ONE_OWNER: &[(&str, &str)] = &[
    ("sqlx", "lutetia-db"),
    ("wasmtime", "lutetia-runtime"),
    ("wasmtime-wasi", "lutetia-runtime"),
    ("axum", "lutetia-web"),
    ("hyper", "lutetia-web"),
    ("hyper-util", "lutetia-web"),
    ("tower", "lutetia-web"),
    ("ammonia", "lutetia-policy"),
    ("html5ever", "lutetia-policy"),
    ("minijinja", "lutetia-web"),
    ("anyhow", "lutetia"),
    ("clap", "lutetia"),
    // The series are declared and rendered in one place (`lutetia_services::metrics`);
    // the runtime and the web layer count through its types.
    ("prometheus-client", "lutetia-services"),
    // The process's log is installed once, by the command line.
    ("tracing-subscriber", "lutetia"),
    ("tracing-appender", "lutetia"),
];

/// Foreign crates a host crate must not depend on at all.
const FORBIDDEN: &[(&str, &str)] = &[
    ("lutetia-model", "tokio"),
    // The rules of the edge are pure functions, fuzzed without the host's runtime.
    ("lutetia-policy", "tokio"),
];

/// Crates that are no layer of the host (see the module comment).
const NOT_LAYERS: &[&str] = &["lutetia-tests", "lutetia-sdk"];

/// (package, dependency, kind) of every direct dependency of every workspace member.
fn dependencies(manifest: &Path) -> (BTreeSet<String>, Vec<(String, String, String)>) {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let mut members = BTreeSet::new();
    let mut edges = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("package name").to_owned();
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let kind = dependency["kind"].as_str().unwrap_or("normal").to_owned();
            let target = dependency["name"].as_str().expect("dependency name").to_owned();
            edges.push((name.clone(), target, kind));
        }
        members.insert(name);
    }
    (members, edges)
}

/// Every way in which `edges` break the layering; empty when it holds.
fn violations(members: &BTreeSet<String>, edges: &[(String, String, String)]) -> Vec<String> {
    let allowed: BTreeSet<(&str, &str)> = ALLOWED_EDGES.iter().copied().collect();
    let owners: BTreeMap<&str, &str> = ONE_OWNER.iter().copied().collect();
    let mut found = Vec::new();
    for (from, to, kind) in edges {
        if members.contains(to) {
            if !allowed.contains(&(from.as_str(), to.as_str())) {
                found.push(format!("{from} depends on {to} ({kind}): not an allowed edge"));
            }
            continue;
        }
        if NOT_LAYERS.contains(&from.as_str()) {
            continue;
        }
        if let Some(owner) = owners.get(to.as_str())
            && owner != from
        {
            found.push(format!("{from} depends on {to} ({kind}): only {owner} may"));
        }
        if FORBIDDEN.contains(&(from.as_str(), to.as_str())) {
            found.push(format!("{from} depends on {to} ({kind}): forbidden"));
        }
    }
    // A new crate must take its place in the table.
    for member in members {
        let placed = NOT_LAYERS.contains(&member.as_str())
            || ALLOWED_EDGES
                .iter()
                .any(|(from, to)| from == member || to == member);
        if !placed {
            found.push(format!("{member} is not in the layering table"));
        }
    }
    found
}

#[test]
fn each_framework_has_one_crate_and_dependencies_run_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let (members, edges) = dependencies(&root);
    for crate_name in [
        "lutetia-model",
        "lutetia-policy",
        "lutetia-db",
        "lutetia-runtime",
        "lutetia-web",
        "lutetia",
    ] {
        assert!(members.contains(crate_name), "{crate_name} is a workspace member");
    }
    let found = violations(&members, &edges);
    assert!(found.is_empty(), "the layering is broken:\n{}", found.join("\n"));
}

#[test]
fn the_fuzz_targets_build_on_the_pure_crates_only() {
    // A fuzz build compiles every crate it depends on with coverage instrumentation: on
    // `lutetia-web` that meant all of wasmtime and sqlx (9 minutes on 2 cores).
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/fuzz/Cargo.toml");
    let (_, edges) = dependencies(&fuzz);
    let host_crates: BTreeSet<&str> = edges
        .iter()
        .filter(|(from, _, _)| from == "lutetia-fuzz")
        .map(|(_, to, _)| to.as_str())
        .filter(|to| to.starts_with("lutetia"))
        .collect();
    assert_eq!(
        host_crates,
        BTreeSet::from(["lutetia-model", "lutetia-policy"]),
        "the fuzz targets depend on the pure crates only"
    );
}

#[test]
fn the_check_sees_a_framework_in_the_wrong_crate_and_an_upward_edge() {
    let members: BTreeSet<String> = ["lutetia-model", "lutetia-db", "lutetia-web"]
        .map(str::to_owned)
        .into();
    let edge = |from: &str, to: &str| (from.to_owned(), to.to_owned(), "normal".to_owned());
    let found = violations(
        &members,
        &[
            edge("lutetia-db", "lutetia-model"),
            edge("lutetia-model", "sqlx"),
            edge("lutetia-model", "tokio"),
            edge("lutetia-db", "lutetia-web"),
        ],
    );
    assert_eq!(
        found,
        [
            "lutetia-model depends on sqlx (normal): only lutetia-db may",
            "lutetia-model depends on tokio (normal): forbidden",
            "lutetia-db depends on lutetia-web (normal): not an allowed edge",
        ]
    );
}
