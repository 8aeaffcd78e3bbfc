//! Embeds the plugin-author files in the binary, so `lutetia plugin build` and
//! `lutetia plugin new` work from the binary alone: the WIT contract (`wit/`), the Python SDK
//! package (`plugins-sdk/python/lutetia/`) and the JavaScript SDK with its build script
//! (`plugins-sdk/js/`). Generates `$OUT_DIR/embedded.rs` with one `(path, bytes)` table each.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // host/toolchain is two levels below the repository root.
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .map(Path::to_owned)
        .unwrap_or_default();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());

    let tables = [
        ("WIT_FILES", root.join("wit"), &["wit"][..]),
        (
            "PYTHON_SDK_FILES",
            root.join("plugins-sdk/python/lutetia"),
            &["py", "typed"][..],
        ),
        (
            "JS_SDK_FILES",
            root.join("plugins-sdk/js"),
            &["js", "mjs", "ts", "json"][..],
        ),
    ];
    let mut code = String::new();
    for (name, dir, extensions) in tables {
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        collect(&dir, &dir, extensions, &mut files);
        files.sort();
        let _ = writeln!(
            code,
            "/// Files embedded from `{}`: (path relative to it, contents).",
            dir.display()
        );
        let _ = writeln!(code, "pub static {name}: &[(&str, &[u8])] = &[");
        for (relative, absolute) in files {
            let _ = writeln!(code, "    ({relative:?}, include_bytes!({absolute:?})),");
        }
        let _ = writeln!(code, "];");
    }
    if let Err(e) = std::fs::write(out_dir.join("embedded.rs"), code) {
        panic!("cannot write embedded.rs: {e}");
    }
}

/// Files under `dir` with one of `extensions`, skipping tests, caches and installed tools.
fn collect(base: &Path, dir: &Path, extensions: &[&str], out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || matches!(name.as_str(), "node_modules" | "__pycache__" | "test" | "tests")
        {
            continue;
        }
        // Watch subfolders too: rerun-if-changed on a folder only sees its direct entries.
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(base, &path, extensions, out);
            continue;
        }
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e));
        if !wanted || name == "package-lock.json" && !path.starts_with(base.join("tools")) {
            continue;
        }
        if let Ok(relative) = path.strip_prefix(base) {
            out.push((
                relative.to_string_lossy().replace('\\', "/"),
                path.to_string_lossy().into_owned(),
            ));
        }
    }
}
