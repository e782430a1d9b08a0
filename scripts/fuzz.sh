#!/usr/bin/env bash
# Build every fuzz target (fuzz/, docs/fuzzing.md) and run each for a bounded time:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 30 s each, every target)
#
# Exits non-zero when any target crashes, leaks memory past the RSS limit, times out
# on one input, or fails to build; the input that did it is kept in
# fuzz/artifacts/TARGET/ and its name is printed.
#
# cargo-fuzz + libFuzzer on the stable toolchain: `--sanitizer none` needs no `-Z` flag
# (cargo-fuzz's default, AddressSanitizer, needs `RUSTC_BOOTSTRAP=1`; the crate forbids
# unsafe code, so its bugs are panics, overflows, recursion and runaway memory, which
# libFuzzer catches without a sanitizer). `--codegen-units 16` builds in about half the
# time of cargo-fuzz's default of 1, for somewhat slower runs.
#
# The checked-in corpus (fuzz/corpus/TARGET/) is only read: what a run finds goes to a
# temporary directory, removed afterwards (keep it with SZ_FUZZ_KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz --version 0.13.2" >&2
    exit 1
fi

build=(--sanitizer none --codegen-units 16)
echo "==> building the fuzz targets (cargo fuzz build ${build[*]})"
start=$(date +%s)
cargo fuzz build "${build[@]}"
echo "    built in $(($(date +%s) - start)) s"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

work="$(mktemp -d)"
if [ "${SZ_FUZZ_KEEP:-}" = 1 ]; then
    echo "    new corpus entries are kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi

failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "fuzz/artifacts/$target"
    dict=()
    [ -f "fuzz/dicts/$target.dict" ] && dict=("-dict=fuzz/dicts/$target.dict")
    echo "==> fuzz $target for ${seconds} s"
    # -rss_limit_mb: a hostile document must not need more; -timeout: nor this long.
    if cargo fuzz run "${build[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=8192 \
        -print_final_stats=1 "${dict[@]}" >"$work/$target.log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$target.log" |
            tr '\n' ' ' | sed 's/^/    /'
        echo
    else
        tail -n 40 "$work/$target.log" >&2
        echo "!!  $target failed; the input is in fuzz/artifacts/$target/" >&2
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]}" >&2
    exit 1
fi
echo "==> every fuzz target ran ${seconds} s without a finding"
