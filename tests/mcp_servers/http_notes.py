"""A small MCP server over streamable HTTP, made with the official `mcp` SDK, for tests.

    python tests/mcp_servers/http_notes.py PORT

Serves `shout` (upper-cases text) at http://127.0.0.1:PORT/mcp.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")


@server.tool()
def shout(text: str) -> str:
    """Return the text in upper case."""
    return text.upper()


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
