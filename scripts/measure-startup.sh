#!/usr/bin/env bash
# Measures the time from `lutetia serve` to the first plugin request answered 200, on a
# fresh SQLite database with the example plugins.
#
#   scripts/measure-startup.sh [LUTETIA_BINARY] [RUNS]
#
# Build first: cargo build --release -p lutetia && scripts/build-plugins.sh target/plugins
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$root/target}/release/lutetia}"
runs="${2:-5}"
plugins="${CARGO_TARGET_DIR:-$root/target}/plugins"
port=18181
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
[ -f "$plugins/hello.wasm" ] || { echo "no plugins in $plugins (run scripts/build-plugins.sh $plugins)" >&2; exit 1; }

for run in $(seq 1 "$runs"); do
    tmp="$(mktemp -d)"
    start=$(date +%s%N)
    LUTETIA_LOG=warn "$bin" serve --bind "127.0.0.1:$port" --database-url "sqlite://$tmp/lutetia.db" \
        --plugins "$plugins" >/dev/null 2>&1 &
    pid=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/p/hello/" 2>/dev/null)" = 200 ]; do
        kill -0 "$pid" 2>/dev/null || { echo "lutetia exited" >&2; exit 1; }
        sleep 0.005
    done
    end=$(date +%s%N)
    echo "run $run: $(( (end - start) / 1000000 )) ms from exec to first 200 on /p/hello/"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
done
