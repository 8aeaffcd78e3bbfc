#!/usr/bin/env bash
# Noisy-neighbour benchmark: a well-behaved plugin route under load (wrk, 16 connections),
# first alone, then while each hostile test plugin is hit by 4 and by 64 concurrent
# clients (a page of 1 MB to clean, a page the parser would take superlinear time on, a
# flood of log lines among them). Prints one Markdown row per case: req/s and p99 of the well-behaved route, as
# ratios to the baseline measured in the same run, and its non-2xx answers.
#
#   scripts/noisy-neighbour.sh LUTETIA_BIN PLUGINS_DIR [SECONDS]
#
# LUTETIA_BIN is a release build (cargo build --release -p lutetia); PLUGINS_DIR holds the
# test plugins (scripts/build-plugins.sh DIR --with-testing). Needs wrk (Debian: wrk).
# Everything runs on loopback; each load is bounded by SECONDS (default 10).
set -euo pipefail

bin="${1:?usage: scripts/noisy-neighbour.sh LUTETIA_BIN PLUGINS_DIR [SECONDS]}"
plugins="${2:?usage: scripts/noisy-neighbour.sh LUTETIA_BIN PLUGINS_DIR [SECONDS]}"
seconds="${3:-10}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

work="$(mktemp -d)"
port=18391
base="http://127.0.0.1:$port"
good="$base/p/hello/api/echo"
source "$(dirname "${BASH_SOURCE[0]}")/bench-host.sh"
cleanup() {
    stop_host
    [ -n "${hostile:-}" ] && kill "$hostile" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_host "$bin" "$work" "$port" "$plugins"
curl -fsS "$good" >/dev/null

# wrk's summary → "req/s p99_ms non2xx"
measure() {
    local out
    out="$(wrk -t2 -c16 -d"${seconds}s" --latency "$good")"
    local rps p99 non2xx
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/, "", v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v*=1000}; print v}' <<<"$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")"
    local errors
    errors="$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")"
    echo "$rps $p99 $(( ${non2xx:-0} + ${errors:-0} ))"
}

# Hostile load: CLIENTS concurrent connections to URL for the whole measurement (wrk
# with a long timeout, so spinning calls are not abandoned and re-sent).
start_hostile() {
    local method="$1" url="$2" clients="$3"
    printf 'wrk.method = "%s"\n' "$method" >"$work/method.lua"
    wrk -t1 -c"$clients" -d"$((seconds + 5))s" --timeout 60s -s "$work/method.lua" "$url" >"$work/hostile.out" 2>&1 &
    hostile=$!
    sleep 1
}

stop_hostile() {
    kill "$hostile" 2>/dev/null || true
    wait "$hostile" 2>/dev/null || true
    hostile=""
    # Let the hostile calls end (deadline) before the next case.
    for _ in $(seq 1 60); do
        curl -fsS -m 2 "$good" >/dev/null 2>&1 && break
        sleep 0.5
    done
    sleep 2
}

read -r base_rps base_p99 base_err <<<"$(measure)"
echo "| case | clients | req/s | × baseline | p99 ms | × baseline | errors |"
echo "|---|---|---|---|---|---|---|"
echo "| alone (baseline) | – | $base_rps | 1.00 | $base_p99 | 1.00 | $base_err |"

while read -r name method path; do
    [ -z "$name" ] && continue
    for clients in 4 64; do
        start_hostile "$method" "$base$path" "$clients"
        read -r rps p99 err <<<"$(measure)"
        stop_hostile
        awk -v n="$name" -v c="$clients" -v r="$rps" -v br="$base_rps" -v p="$p99" -v bp="$base_p99" -v e="$err" \
            'BEGIN { printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %s |\n", n, c, r, r / br, p, p / bp, e }'
    done
done <<'CASES'
spin GET /p/hostile-cpu/spin
host-call-loop GET /p/hostile-cpu/host-loop?service=config
database-call-loop GET /p/hostile-cpu/host-loop?service=kv
memory-growth GET /p/memory-hog/
large-page GET /p/hostile-output/pathological?kind=ordinary&n=5000
pathological-page GET /p/hostile-output/pathological?kind=foster&n=20000
log-flood GET /p/hostile-cpu/host-loop?service=log
CASES
