#!/usr/bin/env bash
# Throughput of the plain echo route (`GET /p/hello/api/echo`, wrk, 2 threads, 16
# connections) for two builds of the host, in alternation (A B A B …) in the same run, so
# the ratio B/A is measured under the same machine load. Prints one Markdown row per round
# and the median ratio.
#
#   scripts/echo-throughput.sh BIN_A BIN_B PLUGINS_DIR [ROUNDS] [SECONDS]
#
# BIN_A and BIN_B are release builds (e.g. the commit before a change, and after);
# PLUGINS_DIR holds the example plugins (scripts/build-plugins.sh DIR). Needs wrk.
set -euo pipefail

bin_a="${1:?usage: scripts/echo-throughput.sh BIN_A BIN_B PLUGINS_DIR [ROUNDS] [SECONDS]}"
bin_b="${2:?usage: scripts/echo-throughput.sh BIN_A BIN_B PLUGINS_DIR [ROUNDS] [SECONDS]}"
plugins="${3:?usage: scripts/echo-throughput.sh BIN_A BIN_B PLUGINS_DIR [ROUNDS] [SECONDS]}"
rounds="${4:-3}"
seconds="${5:-10}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

work="$(mktemp -d)"
port=18392
url="http://127.0.0.1:$port/p/hello/api/echo"
source "$(dirname "${BASH_SOURCE[0]}")/bench-host.sh"
cleanup() {
    stop_host
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts BIN on a fresh database, loads the echo route for SECONDS, prints req/s.
requests_per_second() {
    local bin="$1" dir
    dir="$(mktemp -d "$work/run.XXXX")"
    start_host "$bin" "$dir" "$port" "$plugins"
    curl -fsS "$url" >/dev/null
    # Warm-up: compiled code cached, instance pool filled.
    wrk -t2 -c16 -d2s "$url" >/dev/null
    wrk -t2 -c16 -d"${seconds}s" "$url" | awk '/^Requests\/sec:/ {print $2}'
    stop_host
}

echo "| round | A req/s | B req/s | B / A |"
echo "|---|---|---|---|"
ratios=()
for round in $(seq 1 "$rounds"); do
    a="$(requests_per_second "$bin_a")"
    b="$(requests_per_second "$bin_b")"
    ratio="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')"
    ratios+=("$ratio")
    echo "| $round | $a | $b | $ratio |"
done
median="$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')"
echo
echo "median B / A: $median"
