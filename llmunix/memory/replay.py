"""Follower mode: the steps of a recorded run, and how a replayed step is checked against them.

A trace (short-term, as `run` writes it) or a learned long-term trace becomes a list of
ReplaySteps: the allowed tool calls in order, with sub-agent starts and ends in place. Each
replayed call must succeed where the recording succeeded, and a deterministic tool must give the
same result (compared after normalizing what differs between tool implementations: line-number
gutters, absolute vs relative paths, trailing notes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmunix.errors import TraceError
from llmunix.tools.result import ToolResult
from llmunix.trace.markdown import Trace, read_meta, read_trace

# Results compared exactly (after normalization). Other tools are checked for success only:
# Write/Edit report in implementation-specific words, Bash output may legitimately vary.
COMPARED = frozenset({"Read", "Glob", "Grep"})
# Planning notes to the model; they change nothing in the workspace.
NOT_REPLAYED = frozenset({"TodoWrite"})
_GUTTER = re.compile(r"^\s*\d+(?:\t|→)", re.M)
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


class ReplayMismatch(TraceError):
    """A replayed step did not do what the recorded one did."""


@dataclass(frozen=True)
class ReplayStep:
    number: int
    kind: str  # "tool" | "subagent start" | "subagent end"
    agent: str
    tool: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    expected: str = ""
    expected_error: bool = False
    call_id: str = ""
    parent: str = ""

    def describe(self) -> str:
        if self.kind != "tool":
            return f"step {self.number} ({self.kind} {self.agent})"
        target = next((str(self.input[k]) for k in ("file_path", "command", "pattern", "path")
                       if k in self.input), "")
        return f"step {self.number} ({self.tool} {target} by {self.agent})".replace("  ", " ")


@dataclass
class ReplaySource:
    trace_id: str
    goal: str
    runtime: str  # the runtime that recorded the steps
    result: str
    steps: list[ReplayStep]
    path: Path


def replay_steps(steps, *, source_numbers: bool = False) -> list[ReplayStep]:
    """ReplaySteps from the steps of a learned trace (llmunix.memory.LongTermStep), leaving out
    planning notes and delegations with nothing left to replay. `source_numbers` keeps the step
    numbers of the short-term trace they came from, so a report names the step in that file."""
    out: list[ReplayStep] = []
    for s in steps:
        number = s.source_step if source_numbers and s.source_step else s.number
        if s.kind == "tool" and s.tool in NOT_REPLAYED:
            continue
        if (s.kind == "subagent end" and out and out[-1].kind == "subagent start"
                and out[-1].call_id == s.call_id):
            out.pop()
            continue
        if s.kind == "tool":
            out.append(ReplayStep(number, "tool", s.agent, s.tool, s.input, s.expected,
                                  s.is_error, s.call_id))
        else:
            out.append(ReplayStep(number, s.kind, s.agent, call_id=s.call_id, parent=s.parent))
    return out


def steps_from_trace(trace: Trace) -> list[ReplayStep]:
    """The replayable steps of a short-term trace: its allowed tool calls in order."""
    from llmunix.memory.longterm import steps_from_trace as learned_steps

    return replay_steps(learned_steps(trace), source_numbers=True)


def load_source(path: Path) -> ReplaySource:
    """A short-term trace or a learned long-term trace, as replayable steps."""
    if "goal_signature" in read_meta(path):
        from llmunix.memory.longterm import load_long_term

        learned = load_long_term(path)
        return ReplaySource(learned.trace_id, learned.goal, learned.runtime, learned.result,
                            learned.replay_steps(), path)
    trace = read_trace(path)
    if not trace.tool_steps():
        raise TraceError("the trace has no tool calls to replay", path=path)
    return ReplaySource(trace.trace_id, str(trace.meta.get("goal", "")),
                        str(trace.meta.get("runtime", "")), trace.result,
                        steps_from_trace(trace), path)


def _normalize(tool: str, text: str, workspace: Path) -> str:
    text = _REMINDER.sub("", text).replace(str(workspace) + "/", "")
    if tool == "Read":
        text = _GUTTER.sub("", text)
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(sorted(lines))


def check_step(step: ReplayStep, result: ToolResult, workspace: Path, *,
               deterministic: bool = False) -> str | None:
    """Why the replayed call differs from the recorded one, or None when it matches.
    `deterministic`: compare the result of a tool spec marked `deterministic: true` too."""
    if result.is_error and not step.expected_error:
        first = (result.output.strip().splitlines() or ["(no output)"])[0]
        return f"it failed where the recorded call succeeded: {first}"
    if step.tool in COMPARED or deterministic:
        want = _normalize(step.tool, step.expected, workspace)
        got = _normalize(step.tool, result.output, workspace)
        if want != got:
            return f"its result differs from the recorded one:\n{_first_difference(want, got)}"
    return None


def _first_difference(want: str, got: str) -> str:
    a, b = want.splitlines(), got.splitlines()
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else "(nothing)"
        right = b[i] if i < len(b) else "(nothing)"
        if left != right:
            return f"  line {i + 1}: recorded {left!r}\n  line {i + 1}: now      {right!r}"
    return "  (whitespace only)"
