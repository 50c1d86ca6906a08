"""Folding old turns into a summary: by the model with a short fixed prompt, or by rules (one
line per call, deterministic, no model)."""

from __future__ import annotations

import json
import re

from llmunix.context.tokens import estimate_text

SUMMARY_PROMPT = (
    "You keep the running summary of an agent's work for the agent itself. Rewrite the previous "
    "summary with the new steps folded in, in at most 150 words: what was done, facts learnt "
    "(file names, values, decisions), and what is still open. Keep step numbers when given. "
    "Reply with the summary only."
)
MAX_LINE = 160
_STUB = re.compile(r"\[(?:paged out|cut[^:]*): step (\d+), [^,\]]+, ([^—\]]+?) —")


def _one_line(text: str, limit: int = MAX_LINE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call_line(call: dict) -> str:
    fn = call.get("function") or {}
    name = fn.get("name") or "?"
    try:
        args = json.loads(fn.get("arguments") or "{}")
    except json.JSONDecodeError:
        args = {}
    shown = ""
    if isinstance(args, dict):
        for key in ("file_path", "path", "pattern", "command", "query", "subagent_type", "step"):
            if key in args:
                shown = f" {args[key]}"
                break
    return f"{name}{shown}"


def transcript(folded: list[dict]) -> list[str]:
    """The folded messages as short lines, oldest first: what the agent said, each call with
    where its result went."""
    lines: list[str] = []
    by_id: dict[str, int] = {}
    for msg in folded:
        role = msg.get("role")
        content = msg.get("content")
        if role == "assistant":
            if isinstance(content, str) and content.strip():
                lines.append(f"- said: {_one_line(content)}")
            for call in msg.get("tool_calls") or ():
                by_id[str(call.get("id"))] = len(lines)
                lines.append(f"- {_call_line(call)}")
        elif role == "tool" and isinstance(content, str):
            stub = _STUB.match(content)
            result = f"step {stub.group(1)} ({stub.group(2)})" if stub else _one_line(content, 100)
            at = by_id.get(str(msg.get("tool_call_id")))
            if at is None:
                lines.append(f"- → {result}")
            else:
                lines[at] += f" → {result}"
        elif isinstance(content, str) and content.strip():
            lines.append(f"- was told: {_one_line(content)}")
    return lines


def fold_by_rules(previous: str, folded: list[dict], max_chars: int) -> str:
    """The previous summary plus a line per folded message; past `max_chars` the oldest lines
    give way (the trace keeps every step)."""
    lines = [line for line in previous.split("\n") if line and not line.startswith("(…")]
    lines += transcript(folded)
    size = sum(len(x) + 1 for x in lines)
    dropped = 0
    while dropped < len(lines) and size > max_chars:
        size -= len(lines[dropped]) + 1
        dropped += 1
    lines = lines[dropped:]
    if dropped or previous.startswith("(…"):
        earlier = dropped + _earlier(previous)
        lines.insert(0, f"(… {earlier} earlier lines: see the trace)")
    return "\n".join(lines)


def _earlier(previous: str) -> int:
    match = re.match(r"\(… (\d+) earlier", previous)
    return int(match.group(1)) if match else 0


def fold_request(previous: str, folded: list[dict], max_tokens: int) -> list[dict]:
    """The summarizer's request, bounded to `max_tokens`: newest lines are kept first."""
    lines = transcript(folded)
    budget = max_tokens - estimate_text(SUMMARY_PROMPT) - estimate_text(previous) - 64
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = estimate_text(line) + 1
        if used + cost > budget:
            kept.append(f"(… {len(lines) - len(kept)} earlier lines left out)")
            break
        kept.append(line)
        used += cost
    body = "\n".join(reversed(kept))
    user = (f"Previous summary:\n{previous or '(none)'}\n\nNew steps:\n{body}")
    return [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": user}]
