#!/usr/bin/env bash
# Builds the example plugins (a separate wasm32-wasip2 workspace) and lays them out as a
# plugins folder: OUT_DIR/ID.wasm with its manifest OUT_DIR/ID.toml.
#
#   scripts/build-plugins.sh OUT_DIR [--with-testing]
#
# --with-testing also builds the test-only plugins (trap, spin, memory-hog...) that a city
# never installs. CARGO_TARGET_DIR, if set, is where the wasm build goes (default:
# target/wasm-plugins of this repository).
#
# Rust plugins (a Cargo.toml beside plugin.toml) are built as one Cargo workspace. Python
# and JavaScript plugins are built with `lutetia plugin build` when LUTETIA_BIN names the
# lutetia binary (with the tools of scripts/install-plugin-tools.sh), and skipped otherwise.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: scripts/build-plugins.sh OUT_DIR [--with-testing]}"
with_testing="${2:-}"
wasm_target_dir="${CARGO_TARGET_DIR:-$root/target}/wasm-plugins"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 Rust target" >&2
    rustup target add wasm32-wasip2 >&2
fi

# `toml_field FILE TABLE KEY`: a string field of a TOML file, read with a TOML parser
# (Python's tomllib), never with a pattern that a comment or a reordered table would fool.
toml_field() {
    python3 - "$@" <<'PY'
import sys, tomllib
path, table, key = sys.argv[1:4]
with open(path, "rb") as f:
    data = tomllib.load(f)
value = data.get(table, {}) if table else data
value = value.get(key)
if not isinstance(value, str):
    sys.exit(f"{path}: no string `{key}`" + (f" in [{table}]" if table else ""))
print(value)
PY
}

dirs=("$root"/example-plugins/*/)
if [ "$with_testing" = "--with-testing" ]; then
    dirs+=("$root"/example-plugins/testing/*/)
fi

packages=()
for dir in "${dirs[@]}"; do
    [ -f "$dir/plugin.toml" ] && [ -f "$dir/Cargo.toml" ] || continue
    packages+=(-p "$(toml_field "$dir/Cargo.toml" package name)")
done

CARGO_TARGET_DIR="$wasm_target_dir" cargo build --quiet --release --target wasm32-wasip2 \
    --manifest-path "$root/example-plugins/Cargo.toml" "${packages[@]}" >&2

mkdir -p "$out"
for dir in "${dirs[@]}"; do
    [ -f "$dir/plugin.toml" ] || continue
    id="$(toml_field "$dir/plugin.toml" "" id)"
    if [ ! -f "$dir/Cargo.toml" ]; then
        if [ -n "${LUTETIA_BIN:-}" ]; then
            "$LUTETIA_BIN" plugin build "$dir" --output "$out/$id.wasm" >&2
            cp "$dir/plugin.toml" "$out/$id.toml"
        else
            echo "skipping $id (not Rust; set LUTETIA_BIN to build it)" >&2
        fi
        continue
    fi
    crate="$(toml_field "$dir/Cargo.toml" package name | tr - _)"
    cp "$wasm_target_dir/wasm32-wasip2/release/$crate.wasm" "$out/$id.wasm"
    cp "$dir/plugin.toml" "$out/$id.toml"
done
