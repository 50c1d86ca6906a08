"""Replayable steps: the tool calls of a recorded run in order, with sub-agent starts and ends
in place. Learned traces (memory/longterm.py) and the follower (memory/replay.py) both speak in
these, so they live below both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Planning notes to the model; they change nothing in the workspace.
NOT_REPLAYED = frozenset({"TodoWrite", "Recall"})  # Recall only reads the trace back


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
