//! Builds the example and test plugins for the integration tests, as wasmtime's
//! test-programs do: tests never depend on a hand-built or checked-in artifact.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is TARGET/PROFILE/build/PKG-HASH/out: build the guests beside, in TARGET, with
    // their own lock so the nested cargo never waits on this one.
    let target = out_dir.ancestors().nth(4).unwrap_or(&out_dir).to_owned();
    // One plugins folder per checkout: several worktrees sharing one CARGO_TARGET_DIR share
    // this package's OUT_DIR, and must not run each other's plugins.
    let checkout = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        root.hash(&mut hasher);
        hasher.finish()
    };
    let plugins = out_dir.join(format!("plugins-{checkout:016x}"));

    for watched in [
        "example-plugins",
        "plugins-sdk",
        "wit",
        "scripts/build-plugins.sh",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let mut command = Command::new("bash");
    command
        .arg(root.join("scripts/build-plugins.sh"))
        .arg(&plugins)
        .arg("--with-testing")
        .env("CARGO_TARGET_DIR", &target);
    clean_cargo_env(&mut command);
    let status = command.status().expect("bash runs scripts/build-plugins.sh");
    assert!(status.success(), "building the plugins failed: {status}");
    println!("cargo:rustc-env=LUTETIA_TEST_PLUGINS_DIR={}", plugins.display());
    // Where `scripts/install-plugin-tools.sh` puts the Python and JavaScript tools (`./dev`).
    println!("cargo:rustc-env=LUTETIA_TEST_TARGET_DIR={}", target.display());
}

/// Removes what the outer cargo set for this build script, so the nested build of the
/// guest workspace is an ordinary one (keeping the jobserver to share the CPU budget).
fn clean_cargo_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = matches!(
            key,
            "CARGO_HOME" | "CARGO_MAKEFLAGS" | "CARGO_NET_OFFLINE" | "CARGO_TERM_COLOR"
        );
        let drop = (key.starts_with("CARGO_") && !keep)
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOC"
                    | "RUSTC"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if drop {
            command.env_remove(key);
        }
    }
}
