"""A small MCP server built with the official Python SDK, for mcp-conn's interop tests.

Uses ``MCPServer`` (the SDK's 2.x name for FastMCP). Usage::

    interop_server.py stdio
    interop_server.py http PORT

With ``PIDFILE`` set, the process writes its pid there first.
"""

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("python-interop", version="1.0.0")


@server.tool()
def echo(text: str) -> str:
    """Returns its text."""
    return text


@server.tool()
def add(a: float, b: float) -> str:
    """Adds a and b."""
    return str(a + b)


if __name__ == "__main__":
    pidfile = os.environ.get("PIDFILE")
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"pid {os.getpid()}\n")
    if sys.argv[1:] == ["stdio"]:
        server.run("stdio")
    elif len(sys.argv) == 3 and sys.argv[1] == "http":
        import anyio

        anyio.run(lambda: server.run_streamable_http_async(host="127.0.0.1", port=int(sys.argv[2])))
    else:
        sys.exit("usage: interop_server.py stdio | http PORT")
