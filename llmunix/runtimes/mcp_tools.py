"""MCP servers on llmunix's own loop (the openai runtime): the run's servers are started before
the first turn and closed when it ends; each agent is offered the tools its scope allows, with
their JSON schemas; every call passes the session's gate and goes into the trace."""

from __future__ import annotations

import time
from typing import Any

from llmunix.kernel.session import RunSession
from llmunix.mcp import scope
from llmunix.mcp.client import McpHub, McpTool
from llmunix.policy.gate import Decision
from llmunix.specs.models import AgentSpec
from llmunix.tools.result import ToolResult


async def start_hub(session: RunSession) -> McpHub | None:
    """Start every server the goal's agent or its sub-agents may use (None when there is none).
    A server that fails is reported in the trace and the run goes on; a required one stops it."""
    agents = [session.agent, *session.subagents().values()]
    servers = scope.servers_of(agents, session.registry.mcp_servers)
    if not servers:
        return None
    hub = McpHub(servers.values(), cwd=str(session.workspace_dir), sandbox=session.sandbox,
                 report=lambda line: session.text(session.agent.name, f"[llmunix] {line}"))
    try:
        await hub.start()
    except BaseException:
        await hub.aclose()
        raise
    return hub


def tools_for(hub: McpHub | None, session: RunSession, agent: AgentSpec) -> dict[str, McpTool]:
    if hub is None:
        return {}
    servers = session.registry.mcp_servers
    return {t.full_name: t for t in hub.tools() if scope.allows(agent, t.full_name, servers)}


async def call(hub: McpHub, session: RunSession, agent: str, call_id: str, name: str,
               arguments: dict[str, Any]) -> ToolResult:
    """Gate, run and record one MCP tool call."""
    started = time.perf_counter()
    decision: Decision = session.check(agent, name, arguments)
    if decision.allowed:
        session.tool_started(call_id, agent, name, arguments)
        result = await hub.call(name, arguments)
    else:
        result = ToolResult(decision.reason, is_error=True)
    session.tool_called(call_id=call_id, agent=agent, tool=name, tool_input=arguments,
                        output=result.output, is_error=result.is_error,
                        duration_s=time.perf_counter() - started, decision=decision)
    return result
