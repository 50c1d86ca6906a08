"""An MCP server over stdio that dies when its `explode` tool is called (exit code 3, after a
line on stderr), or at start when given `--fail-at-start`; `getenv` shows what environment it
runs with. For tests."""

from __future__ import annotations

import os
import sys

if "--fail-at-start" in sys.argv:
    sys.stderr.write("crashy: cannot open its database (/nonexistent/db)\n")
    sys.exit(2)

from mcp.server.mcpserver import MCPServer  # noqa: E402

server = MCPServer("crashy", log_level="ERROR")


@server.tool()
def explode(reason: str) -> str:
    """Stop the server at once."""
    sys.stderr.write(f"crashy: fatal error: {reason}\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


@server.tool()
def getenv(name: str) -> str:
    """The value of an environment variable in the server's process, or (unset)."""
    return os.environ.get(name, "(unset)")


if __name__ == "__main__":
    server.run()
