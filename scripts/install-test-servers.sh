#!/usr/bin/env bash
# Installs the real MCP servers the interop tests run, into .cache/ (ignored by git):
# the Python SDK (PyPI), the rmcp server of interop/rmcp-server (built with cargo, ~100 s
# cold on 2 cores, skipped when built from the same sources), server-everything (npm).
# Skips (exit 0, with a message) what it cannot install; the tests then print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

EVERYTHING_VERSION="2026.8.31"   # @modelcontextprotocol/server-everything, pinned
SDK_VERSION="1.32.2"              # @modelcontextprotocol/sdk: its example server with OAuth (tests/oauth_interop.rs)
PYTHON_MCP_VERSION="2.3.0"        # the official Python SDK (mcp on PyPI), pinned
prefix=".cache/npm"

# The Python SDK, in a venv of our own.
if command -v python3 >/dev/null 2>&1; then
    venv=".cache/venv"
    if ! "$venv/bin/python" -c "import mcp, importlib.metadata as m; assert m.version('mcp') == '$PYTHON_MCP_VERSION'" 2>/dev/null; then
        echo "install-test-servers: installing mcp==$PYTHON_MCP_VERSION into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$PYTHON_MCP_VERSION"
    else
        echo "install-test-servers: mcp $PYTHON_MCP_VERSION already installed"
    fi
else
    echo "install-test-servers: python3 not found; the Python interop tests will be skipped"
fi

# The rmcp (official Rust SDK) server of interop/rmcp-server, built in release
# into .cache/bin; skipped when that binary was built from the same sources.
install_rmcp_server() {
    local dir="interop/rmcp-server" bin=".cache/bin/rmcp-interop-server"
    if ! command -v cargo >/dev/null 2>&1; then
        echo "install-test-servers: cargo not found; the rmcp interop tests will be skipped"
        return 0
    fi
    local stamp
    stamp="$( { rustc --version; cat "$dir/Cargo.toml" "$dir/Cargo.lock" "$dir"/src/*.rs; } | sha256sum | cut -d' ' -f1)"
    if [ -x "$bin" ] && [ "$(cat "$bin.sha256" 2>/dev/null)" = "$stamp" ]; then
        echo "install-test-servers: rmcp-interop-server already built from these sources"
        return 0
    fi
    echo "install-test-servers: building rmcp-interop-server (rmcp, release) into $bin"
    local started=$SECONDS
    cargo build --release --locked --manifest-path "$dir/Cargo.toml" --target-dir .cache/rmcp-target
    mkdir -p .cache/bin
    cp .cache/rmcp-target/release/rmcp-interop-server "$bin.tmp"
    mv "$bin.tmp" "$bin"
    echo "$stamp" > "$bin.sha256"
    echo "install-test-servers: rmcp-interop-server built in $((SECONDS - started)) s"
}
install_rmcp_server

if ! command -v npm >/dev/null 2>&1; then
    echo "install-test-servers: npm not found; the interop tests will be skipped"
    exit 0
fi
bin="$prefix/node_modules/.bin/mcp-server-everything"
if [ -x "$bin" ] && grep -q "\"version\": \"$EVERYTHING_VERSION\"" "$prefix/node_modules/@modelcontextprotocol/server-everything/package.json" 2>/dev/null \
    && grep -q "\"version\": \"$SDK_VERSION\"" "$prefix/node_modules/@modelcontextprotocol/sdk/package.json" 2>/dev/null; then
    echo "install-test-servers: server-everything $EVERYTHING_VERSION already installed"
    exit 0
fi
mkdir -p "$prefix"
echo "install-test-servers: installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION into $prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" "@modelcontextprotocol/sdk@$SDK_VERSION"
test -x "$bin"
echo "install-test-servers: ok ($bin)"
