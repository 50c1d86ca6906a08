"""MCP servers on the claude runtime: the Claude Code CLI connects to them itself; llmunix hands
it the servers the run's agents may use, names each agent's MCP tools (`mcp__<server>` or
`mcp__<server>__<tool>`) in its tool list, gates every call in the PreToolUse hook like any
other, and reports a server the CLI could not start."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmunix.errors import LlmunixError
from llmunix.kernel.session import RunSession
from llmunix.mcp import scope
from llmunix.mcp.client import REQUIRED_HINT, McpServerFailed, sandboxed
from llmunix.specs.mcp_servers import ServerConfig
from llmunix.specs.models import AgentSpec


def servers(session: RunSession, agents: list[AgentSpec]) -> dict[str, ServerConfig]:
    return scope.servers_of(agents, session.registry.mcp_servers)


def sdk_config(session: RunSession,
               configs: dict[str, ServerConfig]) -> dict[str, dict[str, Any]]:
    """The servers as the SDK takes them; a stdio server's command is the one that starts it in
    the run's sandbox (a server that cannot be confined is left out and named)."""
    out: dict[str, dict[str, Any]] = {}
    for name, cfg in configs.items():
        cfg = cfg.expanded()
        if cfg.type == "stdio":
            try:
                argv, env = sandboxed(cfg, session.sandbox, str(session.workspace_dir))
            except LlmunixError as exc:
                _not_started(session, cfg, f"cannot be confined: {exc.message}")
                continue
            cfg = replace(cfg, command=argv[0], args=tuple(argv[1:]), env=env)
        out[name] = cfg.to_sdk()
    return out


def _not_started(session: RunSession, cfg: ServerConfig, why: str) -> None:
    line = f"MCP server '{cfg.name}' failed to start: {why}"
    session.text(session.agent.name, f"[llmunix] {line}")
    if cfg.required:
        raise McpServerFailed(line, hint=REQUIRED_HINT)


def tool_names(session: RunSession, agent: AgentSpec) -> list[str]:
    """The MCP entries of `agent`'s tool list for the CLI."""
    workspace = session.registry.mcp_servers
    mine = scope.servers_for(agent, workspace)
    if agent.tools is None:
        names = [scope.PREFIX + name for name in mine]
    else:
        names = [t for t in agent.tools if scope.is_mcp_tool(t)
                 and (scope.split_tool_name(t) or ("",))[0] in mine]
    return [n for n in names if n not in agent.disallowed_tools]


def check_started(session: RunSession, statuses: list[dict] | None,
                  configs: dict[str, ServerConfig]) -> None:
    """The CLI's report of its MCP servers (the init message): a server that did not connect is
    named in the trace; a required one stops the run."""
    for entry in statuses or []:
        name = entry.get("name")
        if name not in configs or entry.get("status") in ("connected", "pending"):
            continue
        line = (f"MCP server '{name}' failed to start (the Claude Code CLI reports "
                f"{entry.get('status')!r}; `llmunix mcp list` shows its stderr)")
        session.text(session.agent.name, f"[llmunix] {line}")
        if configs[name].required:
            raise McpServerFailed(line, hint=REQUIRED_HINT)
