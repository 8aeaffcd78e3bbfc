#!/usr/bin/env bash
# Runs the fuzz targets of host/fuzz, each for a bounded time, and fails on the first
# property violation or crash with the reproducer's path:
#
#   scripts/fuzz.sh [TARGET...]          all targets when none is named
#
#   LUTETIA_FUZZ_SECONDS   seconds per target (default 30)
#   CARGO_TARGET_DIR       the build goes to $CARGO_TARGET_DIR/fuzz, the grown corpora to
#                          $CARGO_TARGET_DIR/fuzz-work/corpus/TARGET (kept between runs, so
#                          coverage accumulates), crash inputs to .../fuzz-work/artifacts
#
# Needs `cargo fuzz` on PATH (scripts/install-check-tools.sh). The committed seeds in
# host/fuzz/corpus/TARGET are read, never written; host/fuzz/dict/TARGET.dict is used
# when it exists. See host/fuzz/README.md for longer runs and minimising a crash.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${LUTETIA_FUZZ_SECONDS:-30}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$target_dir/fuzz-work"
fuzz=(--fuzz-dir host/fuzz)
# A dev build with the optimisation levels of host/fuzz/Cargo.toml; no AddressSanitizer
# (it needs a nightly compiler, and the host forbids unsafe code: the properties are the
# point). With no sanitizer, cargo-fuzz passes only stable `-C` flags to rustc.
build=(--dev --sanitizer none --target-dir "$target_dir/fuzz")

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list "${fuzz[@]}")
fi

echo "==> cargo fuzz build (${targets[*]})"
cargo fuzz build "${fuzz[@]}" "${build[@]}"

failed=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target"
    log="$work/$target.log"
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/")
    [ -f "host/fuzz/dict/$target.dict" ] && args+=(-dict="host/fuzz/dict/$target.dict")
    echo "==> fuzzing $target for ${seconds}s"
    if cargo fuzz run "${fuzz[@]}" "${build[@]}" "$target" "$corpus" "host/fuzz/corpus/$target" \
        -- "${args[@]}" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -n 2 | sed 's/^/    /'
    else
        failed+=("$target")
        echo "FUZZ FAILURE in target $target; the last lines of $log:" >&2
        tail -n 40 "$log" >&2
        for input in "$artifacts"/*; do
            [ -e "$input" ] || continue
            echo "reproducer: $input" >&2
            echo "  replay:   cargo fuzz run ${fuzz[*]} ${build[*]} $target $input" >&2
            echo "  minimise: cargo fuzz tmin ${fuzz[*]} ${build[*]} $target $input" >&2
        done
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found failures in: ${failed[*]}" >&2
    exit 1
fi
