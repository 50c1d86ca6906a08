"""Which MCP servers and tools an agent may use, as Claude Code decides it.

An agent gets the servers it defines in its own `mcpServers`, those it names there, and the
workspace's `.mcp.json` servers when its `tools:` list is omitted (every tool) or names them.
Its tools: all of those servers' tools when `tools:` is omitted; else the ones it lists, as
`mcp__<server>__<tool>` or `mcp__<server>` (every tool of that server). `disallowedTools` takes
either form away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llmunix.specs.mcp_servers import ServerConfig
from llmunix.specs.models import AgentSpec

PREFIX = "mcp__"
LLMUNIX_SERVER = "llmunix"  # the claude runtime's in-process server for tool specs


def tool_name(server: str, tool: str) -> str:
    """The name a model calls an MCP tool by, as in Claude Code."""
    return f"{PREFIX}{server}__{tool}"


def split_tool_name(name: str) -> tuple[str, str] | None:
    """(server, tool) of `mcp__<server>__<tool>`, (server, "") of `mcp__<server>`, else None."""
    if not name.startswith(PREFIX):
        return None
    server, _, tool = name[len(PREFIX):].partition("__")
    return (server, tool) if server else None


def is_mcp_tool(name: str) -> bool:
    parts = split_tool_name(name)
    return parts is not None and parts[0] != LLMUNIX_SERVER


def servers_for(agent: AgentSpec, workspace: Mapping[str, ServerConfig]) -> dict[str, ServerConfig]:
    """The servers `agent` may use (see the module docstring)."""
    names, inline = agent.mcp_servers or ((), ())
    found = {s.name: s for s in inline}
    for name in names:
        if name in workspace:
            found.setdefault(name, workspace[name])
    if agent.tools is None:
        for name, server in workspace.items():
            found.setdefault(name, server)
    else:
        for tool in agent.tools:
            parts = split_tool_name(tool)
            if parts is not None and parts[0] in workspace:
                found.setdefault(parts[0], workspace[parts[0]])
    return found


def servers_of(agents: Iterable[AgentSpec],
               workspace: Mapping[str, ServerConfig]) -> dict[str, ServerConfig]:
    """Every server any of `agents` may use (what a run starts)."""
    found: dict[str, ServerConfig] = {}
    for agent in agents:
        for name, server in servers_for(agent, workspace).items():
            found.setdefault(name, server)
    return found


def allows(agent: AgentSpec, name: str, workspace: Mapping[str, ServerConfig]) -> bool:
    """Whether `agent` may call the MCP tool `name` (`mcp__<server>__<tool>`)."""
    parts = split_tool_name(name)
    if parts is None or parts[0] not in servers_for(agent, workspace):
        return False
    whole = PREFIX + parts[0]
    if name in agent.disallowed_tools or whole in agent.disallowed_tools:
        return False
    return agent.tools is None or name in agent.tools or whole in agent.tools
