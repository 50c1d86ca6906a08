"""Choosing how to run a goal: replay a learned trace (follower), show it to the model as a
worked example (mixed), or let the model work it out (learner)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmunix.workspace.layout import Project, Workspace

# A learned trace is trusted for replay only while its record is good.
MIN_CONFIDENCE = 0.5
MIN_SUCCESS_RATE = 0.5


@dataclass(frozen=True)
class ModeDecision:
    mode: str  # learner | mixed | follower
    score: float
    path: Path | None
    trace_id: str
    reason: str


def choose_mode(ws: Workspace, project: Project, goal: str) -> ModeDecision:
    """Match the goal against the project's learned traces; thresholds come from llmunix.toml."""
    from llmunix.kernel.state import current, thresholds
    from llmunix.memory import match_goal

    conf = ws.config.memory
    shift = thresholds(current(ws, project), conf.follower_threshold, conf.mixed_threshold)
    follower_at, mixed_at = shift.follower, shift.mixed
    skipped: list = []
    matches = match_goal(ws, project, goal, skipped=skipped)
    unreadable = "".join(f"; skipped an unreadable learned trace: {exc}" for exc in skipped[:3])
    if not matches:
        return ModeDecision("learner", 0.0, None, "",
                            "no learned trace for this project" + unreadable)
    best = matches[0]
    learned = best.trace
    score = round(best.score, 3)
    record = (f"confidence {learned.confidence:.2f}, success rate {learned.success_rate:.2f}, "
              f"used {learned.usage_count}x")
    trusted = learned.confidence >= MIN_CONFIDENCE and learned.success_rate >= MIN_SUCCESS_RATE
    if score >= follower_at and trusted:
        mode, why = "follower", f"score {score} ≥ {follower_at:g}; {record}"
    elif score >= mixed_at:
        mode = "mixed"
        why = f"score {score} ≥ {mixed_at:g}" + ("" if trusted else f"; {record}")
    else:
        mode, why = "learner", f"best score {score} < {mixed_at:g}"
    if shift.why:
        why += f" ({shift.why})"
    return ModeDecision(mode, score, best.path, learned.trace_id, why)


def worked_example(path: Path) -> str:
    """A learned trace rendered for the model: what was done last time for a similar goal."""
    from llmunix.memory.replay import load_source

    source = load_source(path)
    lines = [
        "## A worked example from memory",
        f"A similar goal was solved before: {source.goal!r}. Its tool calls, in order, were:",
    ]
    for step in source.steps:
        if step.kind == "tool":
            args = json.dumps(step.input, ensure_ascii=False)
            lines.append(f"- {step.agent}: {step.tool} {args[:300]}")
        elif step.kind == "subagent start":
            lines.append(f"- delegated to {step.agent}")
    lines.append("Adapt these steps to the goal at hand; check results as you go.")
    return "\n".join(lines)
