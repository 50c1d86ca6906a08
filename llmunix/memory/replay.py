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

from llmunix.errors import TraceError
from llmunix.memory.learned_file import load_long_term
from llmunix.memory.longterm import steps_from_trace as learned_steps
from llmunix.memory.replay_check import ReplayRefused, check  # noqa: F401
from llmunix.tools.result import ToolResult
from llmunix.trace.markdown import Trace, read_meta, read_trace
from llmunix.trace.steps import NOT_REPLAYED, ReplayStep, replay_steps  # noqa: F401

# Results compared exactly (after normalization). Other tools are checked for success only:
# Write/Edit report in implementation-specific words, Bash output may legitimately vary.
COMPARED = frozenset({"Read", "Glob", "Grep"})
_SPEC_HASH = re.compile(r"\(spec ([0-9a-f]{12})\)")  # in CreateAgent's result
_GUTTER = re.compile(r"^\s*\d+(?:\t|→)", re.M)
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


class ReplayMismatch(TraceError):
    """A replayed step did not do what the recorded one did."""


@dataclass
class ReplaySource:
    trace_id: str
    goal: str
    runtime: str  # the runtime that recorded the steps
    result: str
    steps: list[ReplayStep]
    path: Path
    recorded: list = field(default_factory=list)  # the steps as recorded (LongTermStep)
    meta: dict = field(default_factory=dict)
    learned: bool = False

    def check(self, registry) -> None:
        """ReplayRefused unless the recording can be replayed with `registry` as it is now
        (memory/replay_check.py): before anything runs."""
        check(self.path, self.recorded, self.meta, registry, learned=self.learned,
              recorded_digests=[s.digest for s in self.recorded] if self.learned else None)


def steps_from_trace(trace: Trace) -> list[ReplayStep]:
    """The replayable steps of a short-term trace: its allowed tool calls in order."""
    return replay_steps(learned_steps(trace), source_numbers=True)


def load_source(path: Path) -> ReplaySource:
    """A short-term trace or a learned long-term trace, as replayable steps."""
    if "goal_signature" in read_meta(path):
        learned = load_long_term(path)
        return ReplaySource(learned.trace_id, learned.goal, learned.runtime, learned.result,
                            learned.replay_steps(), path, learned.steps, dict(learned.meta),
                            True)
    trace = read_trace(path)
    if not trace.tool_steps():
        raise TraceError("the trace has no tool calls to replay", path=path)
    recorded = learned_steps(trace)
    return ReplaySource(trace.trace_id, str(trace.meta.get("goal", "")),
                        str(trace.meta.get("runtime", "")), trace.result,
                        replay_steps(recorded, source_numbers=True), path, recorded,
                        dict(trace.meta), False)


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
    if step.tool == "CreateAgent" and not step.expected_error:
        want, got = _SPEC_HASH.search(step.expected), _SPEC_HASH.search(result.output)
        if want and (not got or got.group(1) != want.group(1)):
            return (f"it wrote agent spec {got.group(1) if got else '(none)'}, the recorded run "
                    f"wrote {want.group(1)}")
        return None
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
