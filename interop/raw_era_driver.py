"""Drives a stdio MCP server with pre-serialised JSON-RPC lines, no MCP client
library at all, to tell a server's per-era cost from a client's.

Two processes of the same server, one in each era (``initialize`` and
``server/discover``), called with ``echo`` in turn, so drift hits both alike::

    python3 interop/raw_era_driver.py .cache/bin/rmcp-interop-server stdio
    python3 interop/raw_era_driver.py .cache/venv/bin/python mcp-conn-testkit/python/interop_server.py stdio

Prints the median and p90 round trip per era over 1000 calls each. Compare
with ``examples/examples/era_bench.rs``, which goes through mcp-conn.
"""

import json
import subprocess
import sys
import time

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
}
CALLS, WARMUP = 1000, 20


def start(cmd):
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)


def line(obj):
    return (json.dumps(obj) + "\n").encode()


def echo(i, stateless):
    params = {"name": "echo", "arguments": {"text": "x"}}
    if stateless:
        params["_meta"] = META
    return line({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params})


def main(cmd):
    hs, st = start(cmd), start(cmd)
    hs.stdin.write(line({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}))
    hs.stdout.readline()
    hs.stdin.write(line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    st.stdin.write(line({"jsonrpc": "2.0", "id": 0, "method": "server/discover", "params": {"_meta": META}}))
    st.stdout.readline()
    times = {False: [], True: []}
    for i in range(1, CALLS + WARMUP + 1):
        order = (False, True) if i % 2 else (True, False)
        for stateless in order:
            proc = st if stateless else hs
            request = echo(i, stateless)
            started = time.perf_counter()
            proc.stdin.write(request)
            reply = proc.stdout.readline()
            took = time.perf_counter() - started
            if b'"x"' not in reply:
                sys.exit(f"unexpected reply: {reply!r}")
            if i > WARMUP:
                times[stateless].append(took)
    for stateless, t in times.items():
        t.sort()
        name = "stateless" if stateless else "handshake"
        print(f"raw driver, {name} era: median {t[len(t) // 2] * 1e3:.3f} ms, "
              f"p90 {t[int(len(t) * 0.9)] * 1e3:.3f} ms ({len(t)} calls)")
    for proc in (hs, st):
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
