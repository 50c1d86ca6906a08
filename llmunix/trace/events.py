"""What happens during a run, as plain records: the trace, the live view and `--json` all read
these. Runtimes report through the session; they never write traces or print themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Event:
    def to_dict(self) -> dict[str, Any]:
        return {"event": _EVENT_NAMES[type(self)], **asdict(self)}


@dataclass
class RunStarted(Event):
    trace_id: str
    goal: str
    project: str
    agent: str
    runtime: str
    model: str
    mode: str
    trace_path: str


@dataclass
class ModeChosen(Event):
    """How `--mode auto` decided: the best learned trace for the goal and its score."""

    mode: str  # learner | mixed | follower
    score: float
    trace_id: str
    reason: str


@dataclass
class AssistantText(Event):
    agent: str
    text: str


@dataclass
class ToolCalled(Event):
    """A finished tool call (or one refused by the policy before it ran)."""

    call_id: str
    agent: str
    tool: str
    input: dict[str, Any]
    output: str
    is_error: bool
    duration_s: float
    decision: str  # "allowed" | "denied"
    reason: str = ""
    spec_hash: str = ""


@dataclass
class SubagentStarted(Event):
    agent: str
    parent: str
    call_id: str
    prompt: str = ""
    spec_hash: str = ""


@dataclass
class SubagentFinished(Event):
    agent: str
    parent: str
    call_id: str
    result: str = ""


@dataclass
class UsageUpdated(Event):
    turns: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: float


@dataclass
class RunFinished(Event):
    trace_id: str
    status: str  # success | error | stopped | interrupted
    result: str
    reason: str
    duration_s: float
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    trace_path: str
    extra: dict[str, Any] = field(default_factory=dict)


_EVENT_NAMES = {
    RunStarted: "run_started",
    ModeChosen: "mode_chosen",
    AssistantText: "assistant_text",
    ToolCalled: "tool_called",
    SubagentStarted: "subagent_started",
    SubagentFinished: "subagent_finished",
    UsageUpdated: "usage",
    RunFinished: "run_finished",
}
