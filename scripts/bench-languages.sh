#!/usr/bin/env bash
# The same trivial page in Rust, Python and JavaScript, side by side: component size,
# build time, compile time (cold compiled cache minus warm), per-request latency at
# concurrency 1 (instantiation + call + HTTP) and requests/s.
#
#   scripts/bench-languages.sh [LUTETIA_BINARY] [SECONDS]
#
# The page is what `lutetia plugin new` creates, served with `kv` not granted, so no request
# touches the database (the page shows "Visits: unavailable"). Needs wrk
# (`apt-get install wrk`) and the plugin tools (`eval "$(scripts/install-plugin-tools.sh DIR)"`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$root/target}/release/lutetia}"
seconds="${2:-10}"
port=18190
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/plugins"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

serve_until_ready() { # plugins-dir cache-dir id -> prints ms to first 200
    local start end pid
    start=$(now_ms)
    LUTETIA_LOG=warn "$bin" serve --bind "127.0.0.1:$port" --database-url "sqlite://$tmp/db-$RANDOM.db" \
        --plugins "$1" --compiled-cache-dir "$2" >/dev/null 2>&1 &
    pid=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/p/$3/" 2>/dev/null)" = 200 ]; do
        kill -0 "$pid" 2>/dev/null || { echo "lutetia exited" >&2; exit 1; }
        sleep 0.01
    done
    end=$(now_ms)
    echo "$pid $(( end - start ))"
}

printf '| language | component | build | compile (cold − warm start) | start, warm cache | latency at c=1 | req/s (wrk -t2 -c16) | RSS after |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for lang in rust python js; do
    id="bench-$lang"
    "$bin" plugin new --lang "$lang" "$id" --dir "$tmp/src/$id" >/dev/null
    start=$(now_ms)
    "$bin" plugin build "$tmp/src/$id" --output "$tmp/$id.wasm" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
    build_ms=$(( $(now_ms) - start ))
    size=$(sed -n 's/.*component \([0-9]*\) bytes.*/\1/p' "$tmp/build.log")
    mkdir -p "$tmp/plugins/$lang"
    cp "$tmp/$id.wasm" "$tmp/plugins/$lang/$id.wasm"
    sed 's/^kv = true/kv = false/' "$tmp/src/$id/plugin.toml" > "$tmp/plugins/$lang/$id.toml"
    read -r pid cold < <(serve_until_ready "$tmp/plugins/$lang" "$tmp/cache-$lang" "$id")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    read -r pid warm < <(serve_until_ready "$tmp/plugins/$lang" "$tmp/cache-$lang" "$id")
    latency=$(wrk -t1 -c1 -d"${seconds}s" --latency "http://127.0.0.1:$port/p/$id/" | awk '/^    Latency/ {print $2}')
    rps=$(wrk -t2 -c16 -d"${seconds}s" "http://127.0.0.1:$port/p/$id/" | awk '/^Requests\/sec/ {print $2}')
    rss=$(( $(ps -o rss= -p "$pid") / 1024 ))
    kill "$pid"; wait "$pid" 2>/dev/null || true
    printf '| %s | %.1f MB | %.1f s | %d ms | %d ms | %s | %s | %d MB |\n' "$lang" \
        "$(echo "$size / 1000000" | bc -l)" "$(echo "$build_ms / 1000" | bc -l)" \
        "$(( cold - warm ))" "$warm" "$latency" "$rps" "$rss"
done
