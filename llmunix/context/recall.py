"""`Recall`: read a step of the running trace back into the context (a page fault, served from
the trace the run is writing)."""

from __future__ import annotations

from pathlib import Path

from llmunix.tools.result import ToolResult
from llmunix.trace.markdown import read_trace

DEFAULT_LIMIT = 8_000  # characters per call; the pager cuts what its window cannot hold
MAX_LIMIT = 100_000

SCHEMA = {
    "type": "object",
    "description": "Read a step of this run back from its trace: a tool result that was paged "
                   "out of your context (the stub names its step), or any earlier step.",
    "properties": {
        "step": {"type": "integer", "minimum": 1, "description": "The step number."},
        "offset": {"type": "integer", "minimum": 0,
                   "description": "Character to start from (to read a long result in parts)."},
        "limit": {"type": "integer", "minimum": 1,
                  "description": f"Characters to read (default {DEFAULT_LIMIT:,})."},
    },
    "required": ["step"],
    "additionalProperties": False,
}


def _int(args: dict, key: str, default: int | None, low: int) -> int:
    value = args.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Recall: `{key}` must be an integer ≥ {low}")
    return value


def recall(trace_path: Path, args: dict) -> ToolResult:
    try:
        number = _int(args, "step", None, 1)
        offset = _int(args, "offset", 0, 0)
        limit = min(_int(args, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
    except ValueError as exc:
        return ToolResult(str(exc), is_error=True)
    trace = read_trace(trace_path, repair=False)
    step = next((s for s in trace.steps if s.number == number), None)
    if step is None:
        last = trace.steps[-1].number if trace.steps else 0
        return ToolResult(f"Recall: no step {number} in this run's trace (steps 1-{last})",
                          is_error=True)
    if step.kind == "tool":
        text = trace.full_result(step)
    else:
        text = next((step.blocks[k] for k in ("result", "text", "prompt") if k in step.blocks),
                    "")
    if offset >= len(text) and text:
        return ToolResult(f"Recall: step {number} has only {len(text):,} characters",
                          is_error=True)
    part = text[offset:offset + limit]
    end = offset + len(part)
    if end < len(text):
        part += (f"\n[{len(text) - end:,} more characters — Recall(step={number}, "
                 f"offset={end}) reads on]")
    return ToolResult(part or "(empty)")
