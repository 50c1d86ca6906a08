"""A learned trace as a markdown file: rendering its steps and parsing them back, exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llmunix.errors import TraceError
from llmunix.memory.longterm import _BULLET_RE, _FENCE_RE, _STEP_RE, LongTermStep, LongTermTrace
from llmunix.memory.replay_check import digests
from llmunix.specs.frontmatter import (
    atomic_write,
    dump_frontmatter,
    split_frontmatter,
)

# ---------------------------------------------------------------- the file


def _fence(text: str, info: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}\n"


def _heading(step: LongTermStep) -> str:
    if step.kind == "subagent start":
        return f"delegate to {step.agent} by {step.parent}"
    if step.kind == "subagent end":
        return f"{step.agent} reports to {step.parent}"
    return f"{step.tool} by {step.agent}"


def render_steps(steps: list[LongTermStep]) -> str:
    parts = []
    chain = digests(steps)
    for step, digest in zip(steps, chain, strict=True):
        bullets: dict[str, Any] = {"kind": step.kind, "call_id": step.call_id}
        if step.kind == "subagent end":
            bullets["agent"] = step.agent
        if step.parent:
            bullets["parent"] = step.parent
        bullets.update(within=step.within, depth=step.depth)
        if step.kind == "tool":
            bullets["is_error"] = step.is_error
        if step.spec_hash:
            bullets["spec_hash"] = step.spec_hash
        if step.source_step:
            bullets["source_step"] = step.source_step
        bullets["digest"] = digest
        lines = [f"### Step {step.number}: {_heading(step)}", ""]
        lines += [f"- {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in bullets.items()]
        body = "\n".join(lines) + "\n\n"
        if step.kind != "subagent end":
            body += _fence(json.dumps(step.call(), indent=2, ensure_ascii=False), "json call")
        if step.kind != "subagent start":
            body += ("\n" if step.kind == "tool" else "") + _fence(step.expected, "text result")
        parts.append(body)
    return "\n".join(parts)


def render(meta: dict[str, Any], goal: str, steps: list[LongTermStep], result: str) -> str:
    chain = digests(steps)
    meta["steps_digest"] = chain[-1] if chain else ""
    quoted = "\n".join("> " + line if line else ">" for line in goal.splitlines() or [""])
    return (
        dump_frontmatter(meta)
        + f"\n# Goal\n\n{quoted}\n\n# Steps\n\n"
        + render_steps(steps)
        + f"\n# Result\n\n{result or '(no result)'}\n"
    )


def parse(text: str, path: Path) -> LongTermTrace:
    meta, body = split_frontmatter(text, path)
    if "goal_signature" not in meta:
        raise TraceError("not a long-term trace: no goal_signature", path=path)
    lines = body.split("\n")
    try:
        i = lines.index("# Steps") + 1
    except ValueError:
        raise TraceError("not a long-term trace: no '# Steps' section", path=path) from None
    steps: list[LongTermStep] = []
    current: dict[str, Any] | None = None
    result_at = len(lines)
    while i < len(lines):
        line = lines[i]
        heading = _STEP_RE.match(line)
        if heading:
            current = {"number": int(heading.group(1)), "fields": {}, "blocks": {}}
            steps.append(current)  # type: ignore[arg-type]
        elif line == "# Result":
            result_at = i + 1
            break
        elif current is not None:
            bullet = _BULLET_RE.match(line)
            fence = _FENCE_RE.match(line)
            if bullet and not current["blocks"]:
                try:
                    current["fields"][bullet.group(1)] = json.loads(bullet.group(2))
                except json.JSONDecodeError:
                    current["fields"][bullet.group(1)] = bullet.group(2)
            elif fence:
                end = i + 1
                while end < len(lines) and lines[end] != fence.group(1):
                    end += 1
                if end >= len(lines):
                    raise TraceError(f"step {current['number']}: a fenced block is not closed",
                                     path=path)
                name = fence.group(3) or fence.group(2) or "text"
                current["blocks"][name] = "\n".join(lines[i + 1:end])
                i = end
        i += 1
    result = "\n".join(lines[result_at:]).strip()
    goal = str(meta.get("goal", ""))
    return LongTermTrace(path, meta, goal, [_step(raw, path) for raw in steps],  # type: ignore
                         "" if result == "(no result)" else result)


def _step(raw: dict[str, Any], path: Path) -> LongTermStep:
    f, blocks, number = raw["fields"], raw["blocks"], raw["number"]
    kind = str(f.get("kind", "tool"))
    call: dict[str, Any] = {}
    if "call" in blocks:
        try:
            call = json.loads(blocks["call"])
        except json.JSONDecodeError as exc:
            raise TraceError(f"step {number}: its call is not valid JSON: {exc}",
                             path=path) from exc
        if not isinstance(call, dict) or not isinstance(call.get("input", {}), dict):
            raise TraceError(f"step {number}: its call must be {{tool, agent, input}}",
                             path=path)
    elif kind != "subagent end":
        raise TraceError(f"step {number}: no ```json call block", path=path)
    tool_input = call.get("input", {})
    agent = str(call.get("agent", ""))
    parent = str(f.get("parent", ""))
    if kind == "subagent start":
        agent = str(tool_input.get("subagent_type", "")) or agent
        parent = parent or str(call.get("agent", ""))
    elif kind == "subagent end":
        agent = str(f.get("agent", ""))
    return LongTermStep(
        number, kind, agent, str(call.get("tool", "")), tool_input,
        blocks.get("result", ""), bool(f.get("is_error", False)), str(f.get("call_id", "")),
        parent, str(f.get("within", "")), int(f.get("depth", 0) or 0),
        str(f.get("spec_hash", "")), int(f.get("source_step", 0) or 0),
        str(f.get("digest", "")),
    )


def load_long_term(path: Path) -> LongTermTrace:
    """Parse a long-term trace. TraceError when it is not one or is malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read the learned trace: {exc}", path=path) from exc
    trace = parse(text, path)
    _name_subagent_ends(trace.steps)
    return trace


def _name_subagent_ends(steps: list[LongTermStep]) -> None:
    """A `subagent end` carries no call; its sub-agent is the one its start named."""
    starts = {s.call_id: s for s in steps if s.kind == "subagent start"}
    for s in steps:
        if s.kind == "subagent end" and s.call_id in starts:
            s.agent = s.agent or starts[s.call_id].agent
            s.parent = s.parent or starts[s.call_id].parent


def save(path: Path, trace: LongTermTrace, root: Path | None = None) -> None:
    atomic_write(path, render(trace.meta, trace.goal, trace.steps, trace.result), root)
