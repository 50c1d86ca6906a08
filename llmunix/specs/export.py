"""`llmunix export claude`: agents as Claude Code sub-agent files. llmunix's settings map onto
Claude Code's where it has a counterpart (maxTurns, disallowedTools with `Bash(...)` rules for
denied commands, permissionMode plan for read-only agents); the `llmunix:` block is kept as is
(Claude Code ignores it), so the file loads back into llmunix unchanged; the rest is named."""

from __future__ import annotations

from typing import Any

import yaml

from llmunix.checked import non_defaults
from llmunix.specs.models import AgentSpec

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def deny_rule(pattern: str) -> str | None:
    """A Claude Code permission rule for a denied shell glob (`git push*` -> `Bash(git push:*)`),
    or None when it has no such form (a regex, a glob inside the command)."""
    if pattern.startswith("re:") or any(c in pattern.rstrip("*") for c in "*?[]"):
        return None
    return f"Bash({pattern.rstrip('*').rstrip()}:*)" if pattern.endswith("*") else \
        f"Bash({pattern})"


def to_claude(agent: AgentSpec) -> tuple[str, list[str]]:
    """The Claude Code file for `agent`, and what Claude Code will not enforce."""
    meta: dict[str, Any] = {"name": agent.name, "description": agent.description}
    if agent.tools is not None:
        meta["tools"] = ", ".join(agent.tools)
    settings = agent.settings
    cons = settings.constraints
    disallowed = list(agent.disallowed_tools)
    lost: list[str] = []
    for pattern in cons.deny_commands or []:
        rule = deny_rule(pattern)
        if rule is None:
            lost.append(f"deny_commands {pattern!r} (no Bash(...) rule form)")
        else:
            disallowed.append(rule)
    if disallowed:
        meta["disallowedTools"] = ", ".join(dict.fromkeys(disallowed))
    if agent.model:
        meta["model"] = agent.model
    if settings.max_turns is not None:
        meta["maxTurns"] = settings.max_turns
    if cons.read_only:
        meta["permissionMode"] = "plan"
    elif agent.permission_mode:
        meta["permissionMode"] = agent.permission_mode
    if agent.skills is not None:
        meta["skills"] = list(agent.skills)
    if agent.mcp_servers:
        names, inline = agent.mcp_servers
        meta["mcpServers"] = [*names, *({s.name: _server(s)} for s in inline)]
    if agent.color:
        meta["color"] = agent.color
    block = non_defaults(settings)
    if block:
        meta["llmunix"] = block
    for key, what in (("budget_usd", "budget_usd"), ("timeout_s", "timeout_s")):
        if getattr(settings, key) is not None:
            lost.append(f"{what} {getattr(settings, key):g}")
    for key in ("write_paths", "allowed_extensions", "max_file_size_mb"):
        if getattr(cons, key, None) is not None:
            lost.append(f"constraints.{key}")
    if getattr(cons, "network", False):
        lost.append("constraints.network")
    head = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{head}---\n{agent.prompt.strip()}\n", lost


def _server(server) -> dict[str, Any]:
    out = server.to_sdk()
    if server.required:
        out["required"] = True
    return out
