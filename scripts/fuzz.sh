#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) from its committed seed corpus.
#
#   scripts/fuzz.sh runs 10000000     # each target for 10 million executions
#   scripts/fuzz.sh seconds 30        # each target for 30 seconds (the CI smoke)
#   scripts/fuzz.sh runs 1000 jsonrpc # only the targets named
# FUZZ_SEED=N fixes libFuzzer's random seed: with `runs`, a run is
# reproducible (CI uses that, so its smoke cannot fail by chance).
#
# Needs the nightly toolchain (rustup) and cargo-fuzz; installs cargo-fuzz
# when it is missing. Each run is bounded in memory (-rss_limit_mb, and
# -malloc_limit_mb for any one allocation) and in time per input; a crash,
# a leak of the limits or a timeout fails the script. New inputs the fuzzer
# finds go to .cache/fuzz/<target> (ignored), not to the committed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-seconds}"
amount="${2:-30}"
case "$mode" in
    runs) limit="-runs=$amount" ;;
    seconds) limit="-max_total_time=$amount" ;;
    *) echo "usage: $0 runs N | seconds N" >&2; exit 2 ;;
esac

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    # The registries this project may use do not serve toolchains: say so.
    echo "fuzz: SKIPPED (no nightly toolchain on this machine; cargo-fuzz needs one)"
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

targets=(stdio_codec sse_parser jsonrpc mcp_results mcp_servers_config)
if [ $# -gt 2 ]; then
    targets=("${@:3}")
fi
cd fuzz
cargo +nightly fuzz build --release
status=0
for target in "${targets[@]}"; do
    work="../.cache/fuzz/$target"
    mkdir -p "$work"
    echo "== fuzz $target ($mode $amount)"
    if ! cargo +nightly fuzz run --release "$target" "$work" "corpus/$target" -- \
        "$limit" -seed="${FUZZ_SEED:-0}" -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 -print_final_stats=1 \
        > "$work.log" 2>&1; then
        status=1
        tail -n 40 "$work.log"
        echo "fuzz $target: FAILED (the crashing input is in fuzz/artifacts/$target)"
    else
        grep -E "^stat::number_of_executed_units|^Done" "$work.log" | tail -n 2
        echo "fuzz $target: ok"
    fi
done
exit $status
