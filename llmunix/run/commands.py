"""Slash commands: `llmunix run "/name args"` runs the command's template as the goal, with
`$ARGUMENTS` and `$1`... filled in; its `model` and `allowed-tools` apply to the run."""

from __future__ import annotations

from dataclasses import replace

from llmunix.errors import UsageError
from llmunix.run.runner import RunRequest
from llmunix.specs.registry import load_registry
from llmunix.specs.skills import expand_command
from llmunix.workspace.layout import Workspace


def expand_slash(ws: Workspace, request: RunRequest) -> RunRequest:
    """`request` with a `/name args` goal expanded (unchanged when the goal is not one)."""
    goal = request.goal.strip()
    if not goal.startswith("/") or goal.startswith("//"):
        return request
    head, _, arguments = goal[1:].partition(" ")
    project = ws.project(request.project or ws.config.run.project)
    registry = load_registry(ws, project if project.exists() else None)
    name = head.split(":")[-1]  # `/frontend:component` names the command `component`
    command = registry.commands.get(name)
    if command is None or not head:
        if "/" in head:  # a path such as /tmp/x: a goal, not a command
            return request
        known = ", ".join(f"/{n}" for n in sorted(registry.commands)) or "none"
        raise UsageError(f"no slash command {('/' + head)!r}",
                         hint=f"commands: {known} (.claude/commands/, commands/)")
    return replace(
        request,
        goal=expand_command(command, arguments.strip()),
        model=request.model or command.model,
        tools=command.allowed_tools,
        meta={**request.meta, "command": f"/{command.name}"},
    )
