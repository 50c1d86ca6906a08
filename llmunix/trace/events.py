"""What happens during a run, as plain records: the trace, the live view and `--json` all read
these. Runtimes report through the session; they never write traces or print themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Event:
    def to_dict(self) -> dict[str, Any]:
        name = _EVENT_NAMES.get(type(self)) or type(self).__name__.lower()
        return {"event": name, **asdict(self)}


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
    cwd: str = ""  # the workspace folder the run works in
    tools: list[str] = field(default_factory=list)  # the goal's agent's tools
    agents: list[str] = field(default_factory=list)  # the sub-agents it can delegate to
    sandbox: str = ""  # how processes are confined, e.g. "bubblewrap (network off)"


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
class TextDelta(Event):
    """A piece of assistant text as the model streams it; the whole text follows as
    AssistantText (which alone goes into the trace)."""

    agent: str
    text: str


@dataclass
class ToolStarted(Event):
    """A tool call the policy allowed, as it starts."""

    call_id: str
    agent: str
    tool: str
    input: dict[str, Any]


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
    interrupted: bool = False  # stopped by Ctrl-C while it ran


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
    context_tokens: int = 0  # the prompt of the latest model turn: how full the context is
    context_window: int = 0  # the model's context size, when known


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
    cache_read_tokens: int = 0


@dataclass
class ContextWindow(Event):
    """The context window of the model an agent runs on, and where llmunix learnt its size."""

    agent: str
    model: str
    window: int
    source: str  # llmunix.toml | the server's /props | the server's /v1/models | the default


@dataclass
class ContextPaged(Event):
    """Part of an agent's context went out to the trace (llmunix's paging), or the runtime
    compacted it (the Claude CLI's own compaction)."""

    agent: str
    window: int
    tokens_before: int
    tokens_after: int
    what: str  # one line: what went out
    paged_steps: list[int] = field(default_factory=list)  # results now stubs
    cut_steps: list[int] = field(default_factory=list)  # results cut to fit as they came in
    folded_turns: int = 0
    summary: str = ""
    summarized_by: str = ""  # model | rules
    source: str = "llmunix"  # llmunix | claude


@dataclass
class KernelState(Event):
    """The kernel's state as a run starts (kernel/state.py), and each effect it has."""

    values: dict[str, float]
    effects: list[str] = field(default_factory=list)


_EVENT_NAMES = {
    RunStarted: "run_started",
    ModeChosen: "mode_chosen",
    AssistantText: "assistant_text",
    TextDelta: "text_delta",
    ToolStarted: "tool_started",
    ToolCalled: "tool_called",
    SubagentStarted: "subagent_started",
    SubagentFinished: "subagent_finished",
    UsageUpdated: "usage",
    RunFinished: "run_finished",
    ContextWindow: "context_window",
    KernelState: "kernel_state",
    ContextPaged: "context_paged",
}
