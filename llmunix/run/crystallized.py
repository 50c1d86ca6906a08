"""CRYSTALLIZED mode: `--mode auto` first looks for a crystallized tool whose goal pattern the
goal fits; the tool then does the work, with the arguments bound from the goal, shown in the
live view and recorded in the trace. Each use counts into the tool's record (failures in a row
demote it); a failed use falls through to follower, mixed or learner as usual."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from llmunix.crystallize.match import match_crystallized, record_crystal_use
from llmunix.errors import LlmunixError
from llmunix.trace.events import Event, ModeChosen
from llmunix.workspace.layout import Workspace


def run_crystallized(ws: Workspace, request, emit: Callable[[Event], None], run_goal):
    """The outcome of running the goal through its crystallized tool, or None when no tool
    fits (an error for `--mode crystallized`)."""
    project = ws.ensure_project(request.project or ws.config.run.project)
    match = match_crystallized(project, request.goal)
    if match is None:
        if request.mode == "crystallized":
            raise LlmunixError("no crystallized tool fits this goal",
                               hint="see projects/<p>/tools/crystallized/, or `llmunix memory "
                                    "crystallize` after learning the goal")
        return None
    args = json.dumps(match.args, ensure_ascii=False)
    reason = f"the goal fits {match.pattern!r} of {match.name}; arguments {args}"
    emit(ModeChosen("crystallized", 1.0, match.name, reason))
    decision = {"mode": "crystallized", "tool": match.name, "pattern": match.pattern,
                "args": match.args, "reason": reason}
    crystal = replace(request, mode="crystallized", crystal=match,
                      meta={**request.meta, "mode_decision": decision})
    return run_goal(ws, crystal, emit)


def record_use(request, status: str) -> None:
    """Count a crystallized run into its tool's record, before the run is committed."""
    if request.mode == "crystallized" and request.crystal is not None and \
            status in ("success", "error"):
        record_crystal_use(request.crystal.path, status == "success")
