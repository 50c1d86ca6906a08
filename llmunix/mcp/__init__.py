"""MCP servers at run time: which servers and tools an agent may use (scope.py), and llmunix's own
client over the official `mcp` SDK (client.py). Configuration parsing is specs/mcp_servers.py.
May import errors, specs/ and tools/ (and the packages below them)."""
