"""What a viewer shows of a run, computed once from its parsed trace: the steps in order with
their nesting depth and time offsets, per-agent totals, and the spec versions used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmunix.trace.markdown import Step, Trace


@dataclass
class Row:
    """One step as a viewer shows it."""

    step: Step
    depth: int  # sub-agent nesting: 0 for the goal's agent
    start_s: float | None  # offset from the run's start, when the trace recorded it
    duration_s: float  # tools: how long the call took; other steps: 0
    status: str  # ok | error | denied | interrupted | "" (not a tool)


@dataclass
class AgentTotals:
    agent: str
    turns: int = 0
    tool_calls: int = 0
    denied: int = 0
    errors: int = 0
    tool_time_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class RunView:
    trace: Trace
    rows: list[Row]
    agents: dict[str, AgentTotals]
    specs_used: dict[str, str] = field(default_factory=dict)  # "tool:x" / "agent:y" -> hash

    @property
    def meta(self) -> dict[str, Any]:
        return self.trace.meta

    @property
    def duration_s(self) -> float:
        try:
            total = float(self.meta.get("duration_s") or 0)
        except (TypeError, ValueError):
            total = 0.0
        ends = [r.start_s + r.duration_s for r in self.rows if r.start_s is not None]
        return max([total, *ends]) if ends else total


def _number(value: Any, kind=float):
    try:
        return kind(value or 0)
    except (TypeError, ValueError):
        return kind(0)


def tool_status(step: Step) -> str:
    fields = step.fields
    if fields.get("interrupted"):
        return "interrupted"
    if fields.get("decision") == "denied":
        return "denied"
    return "error" if fields.get("is_error") else "ok"


def build(trace: Trace) -> RunView:
    rows: list[Row] = []
    agents: dict[str, AgentTotals] = {}
    used: dict[str, str] = {}
    main_agent = str(trace.meta.get("agent") or "")
    if main_agent and trace.meta.get("specs", {}).get(f"agent:{main_agent}"):
        used[f"agent:{main_agent}"] = trace.meta["specs"][f"agent:{main_agent}"]
    depth = 0
    for step in trace.steps:
        totals = agents.setdefault(step.agent, AgentTotals(step.agent))
        # The first step after a model turn carries it; a delegation's step carries the turn
        # of the agent that delegated.
        owner = str(step.fields.get("parent") or step.agent) if step.kind == "subagent start" \
            else step.agent
        spender = agents.setdefault(owner, AgentTotals(owner))
        spender.turns += "turn" in step.fields
        spender.input_tokens += _number(step.fields.get("input_tokens"), int)
        spender.output_tokens += _number(step.fields.get("output_tokens"), int)
        spender.cost_usd += _number(step.fields.get("cost_usd"))
        start = step.fields.get("at_s")
        start_s = _number(start) if start is not None else None
        duration, status = 0.0, ""
        if step.kind == "subagent end":
            depth = max(0, depth - 1)
        row_depth = depth
        if step.kind == "tool":
            duration = _number(step.fields.get("duration_s"))
            status = tool_status(step)
            totals.tool_calls += 1
            totals.tool_time_s += duration
            totals.denied += status == "denied"
            totals.errors += status in ("error", "interrupted")
            if step.fields.get("spec_hash"):
                used[f"tool:{step.tool}"] = str(step.fields["spec_hash"])
        elif step.kind == "subagent start":
            depth += 1
            if step.fields.get("spec_hash"):
                used[f"agent:{step.agent}"] = str(step.fields["spec_hash"])
        rows.append(Row(step, row_depth, start_s, duration, status))
    return RunView(trace, rows, agents, used)
