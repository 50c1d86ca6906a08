"""A recorded run is checked before any of it is replayed: that it has steps, that they are in
the order and shape they were recorded in, that no step was injected or changed (each step of
a learned trace carries a digest chained over every step before it), and that the agents and
tool specs it used are still there and still the same (their content hashes, recorded in the
trace). Each problem names the file, the step and the cause."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from llmunix.errors import TraceError


class ReplayRefused(TraceError):
    """A trace that cannot be replayed as it is (changed, incomplete, or out of date)."""


def _canonical(step) -> str:
    if step.kind == "subagent end":
        content: Any = [step.kind, step.agent, step.parent, step.call_id]
    else:
        content = [step.kind, step.call(), step.call_id]
    return json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)


def digests(steps) -> list[str]:
    """The chained digest of each step (of memory.longterm.LongTermStep)."""
    out, prev = [], ""
    for step in steps:
        prev = hashlib.sha256((prev + _canonical(step)).encode()).hexdigest()[:16]
        out.append(prev)
    return out


def _describe(step) -> str:
    if step.kind != "tool":
        return f"step {step.number} ({step.kind} {step.agent})"
    target = next((str(step.input[k]) for k in ("file_path", "command", "pattern", "path")
                   if isinstance(step.input, dict) and k in step.input), "")
    return f"step {step.number} ({step.tool} {target[:60]} by {step.agent})".replace("  ", " ")


def check(path: Path, steps, meta: dict[str, Any], registry, *, learned: bool,
          recorded_digests: list[str] | None = None) -> None:
    """Raise ReplayRefused for the first problem found; `recorded_digests`: the digest each
    step of a learned trace carries ("" where none)."""
    def refuse(message: str, hint: str) -> ReplayRefused:
        return ReplayRefused(message, path=path, hint=hint)

    relearn = "run the goal as a learner (--mode learner) to record it again"
    if not any(s.kind == "tool" for s in steps):
        raise refuse("the trace has no tool calls to replay (empty or cut short)", relearn)
    out_of_order = "restore the file from git (`llmunix memory diff`)"
    last, last_source = 0, 0
    for step in steps:
        if step.number <= last:
            raise refuse(f"{_describe(step)} comes after step {last}: the steps are out of "
                         "order", out_of_order)
        if step.source_step:
            if step.source_step <= last_source:
                raise refuse(f"{_describe(step)} is out of the order it was recorded in",
                             out_of_order)
            last_source = step.source_step
        last = step.number
    _check_nesting(steps, refuse)
    if recorded_digests and any(recorded_digests) or meta.get("steps_digest"):
        want = digests(steps)
        have_all = list(recorded_digests or []) + [""] * (len(steps) - len(recorded_digests or []))
        for step, have, expected in zip(steps, have_all, want, strict=True):
            if have != expected:
                raise refuse(f"{_describe(step)} is not the step that was recorded (injected, "
                             "moved or edited by hand)",
                             "restore the file from git, or " + relearn)
        if meta.get("steps_digest") and meta.get("steps_digest") != (want[-1] if want else ""):
            raise refuse("the steps end differently from how they were recorded (a step was "
                         "removed or added at the end)", "restore the file from git")
    if learned:  # a learned trace is replayed by goal alone; `trace replay` is asked for by name
        _check_specs(steps, meta, registry, refuse, relearn)


def _check_nesting(steps, refuse) -> None:
    open_calls: list[str] = []
    for step in steps:
        if step.kind == "subagent start":
            open_calls.append(step.call_id)
        elif step.kind == "subagent end":
            if not open_calls or open_calls[-1] != step.call_id:
                raise refuse(f"{_describe(step)} ends a delegation that was not started there",
                             "restore the file from git")
            open_calls.pop()


def _check_specs(steps, meta: dict[str, Any], registry, refuse, relearn: str) -> None:
    recorded = meta.get("specs") or (meta.get("metadata") or {}).get("specs") or {}
    if not isinstance(recorded, dict):
        recorded = {}
    agents = registry.agents
    tools = registry.tools
    created: set[str] = set()  # agents the replay itself makes (CreateAgent) before using them
    for step in steps:
        if step.kind == "tool" and step.tool == "CreateAgent" and isinstance(step.input, dict):
            created.add(str(step.input.get("name", "")))
        names = []
        if step.agent and step.agent not in created:
            names.append(("agent", step.agent))
        if step.kind == "tool" and step.tool in tools or f"tool:{step.tool}" in recorded:
            names.append(("tool", step.tool))
        for kind, name in names:
            current = (agents if kind == "agent" else tools).get(name)
            was = recorded.get(f"{kind}:{name}") or (step.spec_hash if (
                kind == "tool" and step.kind == "tool" or
                kind == "agent" and step.kind == "subagent start") else "")
            if current is None:
                what = "sub-agent" if kind == "agent" else "tool spec"
                raise refuse(f"{_describe(step)}: the {what} '{name}' no longer exists",
                             f"restore it, or {relearn}")
            if was and current.content_hash != was:
                what = "agent" if kind == "agent" else "tool spec"
                raise refuse(f"{_describe(step)}: the {what} '{name}' changed since the trace "
                             f"was recorded (spec {was}, now {current.content_hash})",
                             f"{relearn}; or restore {current.path}")
