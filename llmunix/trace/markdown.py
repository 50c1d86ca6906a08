"""Execution traces: one markdown file per run, appended step by step as the run goes.

Layout: YAML frontmatter (identity, status, totals, spec hashes), then `# Goal`, then one
`## Step N · <kind> · <agent>` section per step. Tool inputs are kept exactly (a ```json block),
so a trace can be replayed without a model; long results are cut in the markdown and kept whole
in a sidecar folder next to the trace. Every step is flushed when it happens: a run killed with
SIGKILL leaves every completed step readable, and its `running` status is corrected to
`interrupted` the next time the trace is read.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmunix.specs.frontmatter import (
    atomic_write,
    dump_frontmatter,
    read_frontmatter,
    read_regular,
    split_frontmatter,
)
from llmunix.trace.events import (
    AssistantText,
    ContextPaged,
    SubagentFinished,
    SubagentStarted,
    ToolCalled,
)

MAX_INLINE_RESULT = 4_000
_STEP_RE = re.compile(r"^## Step (\d+) · ([a-z ]+) · (.+)$")
_BULLET_RE = re.compile(r"^- ([a-z_]+): (.*)$")
_FENCE_OPEN_RE = re.compile(r"^(`{3,})([a-z]*)(?: (\w+))?$")
# json.dumps(v, ensure_ascii=False) and its indent=2 form, without building an encoder per call
_ANY_JSON = json.JSONEncoder(ensure_ascii=False).encode
_INPUT_JSON = json.JSONEncoder(ensure_ascii=False, indent=2).encode
_STRING_JSON = json.encoder.encode_basestring  # what _ANY_JSON does with a str, in C


def _BULLET_JSON(value: Any) -> str:  # noqa: N802 - the name it had as a bound method
    """`_ANY_JSON(value)`; a step's bullets are mostly strings, numbers and booleans, done
    here without the encoder's set-up (a step has seven or more)."""
    kind = type(value)
    if kind is str:
        return _STRING_JSON(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return _ANY_JSON(value)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "run"


def _fence(text: str, info: str) -> str:
    """A fence longer than any backtick run inside, so any content round-trips."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}\n"


class TraceWriter:
    """Appends a run's steps to its trace file as they happen."""

    def __init__(self, path: Path, meta: dict[str, Any], redact=lambda s: s) -> None:
        self.path = path
        self.meta = dict(meta)
        self.redact = redact
        self.steps = 0
        self.clock = time.monotonic()  # steps record their time since the run began (at_s)
        self.sidecar = path.with_suffix("")  # folder for whole long results
        path.parent.mkdir(parents=True, exist_ok=True)
        self.meta.setdefault("status", "running")
        self.meta.setdefault("pid", os.getpid())
        goal = self.redact(str(self.meta.get("goal", "")))
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._write(dump_frontmatter(self.meta) + f"\n# Goal\n\n{goal}\n")

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()

    def _section(self, kind: str, agent: str, bullets: dict[str, Any], body: str = "") -> None:
        self.steps += 1
        bullets = {**bullets, "at_s": round(time.monotonic() - self.clock, 3)}
        lines = [f"\n## Step {self.steps} · {kind} · {agent}\n"]
        lines += [f"- {k}: {_BULLET_JSON(v)}" for k, v in bullets.items()]
        lines.append("")
        self._write("\n".join(lines) + "\n" + body)

    def assistant_text(self, event: AssistantText, usage: dict[str, Any] | None = None) -> None:
        """`usage`: the turn that wrote the text, its tokens and cost (see RunSession)."""
        self._section("assistant", event.agent, dict(usage or {}),
                      _fence(self.redact(event.text), "text"))

    def tool_called(self, event: ToolCalled, usage: dict[str, Any] | None = None) -> None:
        text_input = self.redact(_INPUT_JSON(event.input))
        output = self.redact(event.output)
        bullets: dict[str, Any] = {
            "call_id": event.call_id,
            "tool": event.tool,
            "decision": event.decision,
            "is_error": event.is_error,
            "duration_s": round(event.duration_s, 4),
        }
        if event.reason:
            bullets["reason"] = self.redact(event.reason)
        if event.spec_hash:
            bullets["spec_hash"] = event.spec_hash
        if event.interrupted:
            bullets["interrupted"] = True
        shown = output
        if len(output) > MAX_INLINE_RESULT:
            self.sidecar.mkdir(exist_ok=True)
            whole = self.sidecar / f"step-{self.steps + 1:04d}.txt"
            whole.write_text(output, encoding="utf-8")
            bullets["full_result"] = f"{self.sidecar.name}/{whole.name}"
            shown = output[:MAX_INLINE_RESULT] + f"\n[... cut: {len(output):,} characters in all]"
        body = _fence(text_input, "json input") + "\n" + _fence(shown, "text result")
        self._section("tool", event.agent, {**bullets, **(usage or {})}, body)

    def subagent_started(self, event: SubagentStarted,
                         usage: dict[str, Any] | None = None) -> None:
        """`usage`: the delegating turn's, carried by this step (see RunSession)."""
        bullets = {"parent": event.parent, "call_id": event.call_id, **(usage or {})}
        if event.spec_hash:
            bullets["spec_hash"] = event.spec_hash
        body = _fence(self.redact(event.prompt), "text prompt") if event.prompt else ""
        self._section("subagent start", event.agent, bullets, body)

    def subagent_finished(self, event: SubagentFinished) -> None:
        body = _fence(self.redact(event.result), "text result") if event.result else ""
        self._section("subagent end", event.agent, {"parent": event.parent,
                                                     "call_id": event.call_id}, body)

    def context(self, event: ContextPaged) -> None:
        """A paging event: what went out of an agent's context, tokens before and after."""
        bullets: dict[str, Any] = {"source": event.source, "window": event.window,
                                   "tokens_before": event.tokens_before,
                                   "tokens_after": event.tokens_after}
        if event.paged_steps:
            bullets["paged_steps"] = event.paged_steps
        if event.cut_steps:
            bullets["cut_steps"] = event.cut_steps
        if event.folded_turns:
            bullets["folded_turns"] = event.folded_turns
            bullets["summarized_by"] = event.summarized_by
        text = event.what + (f"\n\nSummary now:\n{event.summary}" if event.summary else "")
        self._section("context", event.agent, bullets, _fence(self.redact(text), "text"))

    def finish(self, updates: dict[str, Any], result: str) -> None:
        """Write the final result, then rewrite the frontmatter with the totals (atomically)."""
        self._write(f"\n# Result\n\n{self.redact(result) or '(no result)'}\n")
        self._file.close()
        self.meta.update(updates)
        self.meta.pop("pid", None)
        _rewrite_frontmatter(self.path, self.meta)


def read_meta(path: Path) -> dict[str, Any]:
    """Only the frontmatter of a trace (short-term or long-term)."""
    return read_frontmatter(path)


def _rewrite_frontmatter(path: Path, meta: dict[str, Any]) -> None:
    _, body = split_frontmatter(read_regular(path), path)
    atomic_write(path, dump_frontmatter(meta) + body)


def rewrite_meta(path: Path, meta: dict[str, Any]) -> None:
    """Replace a trace's frontmatter (atomically), its steps untouched."""
    _rewrite_frontmatter(path, meta)


# ---------------------------------------------------------------- reading


@dataclass
class Step:
    number: int
    kind: str  # assistant | tool | subagent start | subagent end
    agent: str
    fields: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)  # "input" / "result" / "text" / "prompt"

    @property
    def tool(self) -> str:
        return self.fields.get("tool", "")

    @property
    def input(self) -> dict[str, Any]:
        return json.loads(self.blocks.get("input", "{}"))


@dataclass
class Trace:
    path: Path
    meta: dict[str, Any]
    steps: list[Step]
    result: str

    @property
    def trace_id(self) -> str:
        return str(self.meta.get("trace_id", self.path.stem))

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "unknown"))

    def tool_steps(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "tool"]

    def full_result(self, step: Step) -> str:
        sidecar = step.fields.get("full_result")
        if sidecar:
            whole = self.path.parent / sidecar
            if whole.is_file():
                return whole.read_text(encoding="utf-8")
        return step.blocks.get("result", "")


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_trace(path: Path, *, repair: bool = True) -> Trace:
    """Parse a trace. A `running` trace whose process is gone is marked `interrupted`."""
    text = read_regular(path)
    meta, body = split_frontmatter(text, path)
    steps, result = parse_body(body)
    if meta.get("status") == "running" and not _pid_alive(meta.get("pid")):
        meta["status"] = "interrupted"
        meta.pop("pid", None)
        meta.setdefault("reason", "the run ended without finishing its trace (killed)")
        meta["steps_completed"] = len(steps)
        if repair:
            _rewrite_frontmatter(path, meta)
    return Trace(path, meta, steps, result)


def parse_body(body: str) -> tuple[list[Step], str]:
    steps: list[Step] = []
    lines = body.split("\n")
    i = 0
    result_lines: list[str] | None = None
    current: Step | None = None
    while i < len(lines):
        line = lines[i]
        match = _STEP_RE.match(line)
        if match:
            current = Step(int(match.group(1)), match.group(2), match.group(3))
            steps.append(current)
            result_lines = None
        elif line == "# Result":
            current, result_lines = None, []
        elif result_lines is not None:
            result_lines.append(line)
        elif current is not None:
            bullet = _BULLET_RE.match(line)
            fence = _FENCE_OPEN_RE.match(line)
            if bullet:
                try:
                    current.fields[bullet.group(1)] = json.loads(bullet.group(2))
                except json.JSONDecodeError:
                    current.fields[bullet.group(1)] = bullet.group(2)
            elif fence:
                ticks, lang, name = fence.group(1), fence.group(2), fence.group(3)
                end = i + 1
                while end < len(lines) and lines[end] != ticks:
                    end += 1
                if end >= len(lines):  # a step cut off mid-write by a kill: drop it
                    steps.pop()
                    current = None
                    break
                current.blocks[name or lang or "text"] = "\n".join(lines[i + 1 : end])
                i = end
        i += 1
    result = "\n".join(result_lines or []).strip()
    return steps, result


def find_traces(folder: Path) -> list[Path]:
    """Trace files in a memory folder, oldest first (names start with a UTC timestamp)."""
    return [folder / e.name for e in trace_entries(folder)]


def trace_entries(folder: Path) -> list[os.DirEntry]:
    """The same, as directory entries (name, path, cached stat): no Path per trace, which
    shows once there are thousands."""
    return sorted(_trace_entries(folder), key=lambda e: e.name)


def trace_listing(folder: Path) -> dict[str, int]:
    """The same traces as name -> inode, unsorted (the inode comes with the listing, no stat)."""
    return {e.name: e.inode() for e in _trace_entries(folder)}


def _trace_entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as found:
            return [e for e in found if e.name.endswith(".md")
                    and not e.name.startswith(".") and not e.is_dir()]
    except OSError:
        return []


def new_trace_path(folder: Path, goal: str, started: datetime) -> tuple[str, Path]:
    stamp = started.strftime("%Y%m%dT%H%M%S") + f"{started.microsecond // 1000:03d}Z"
    base = f"{stamp}_{slugify(goal)}"
    path = folder / f"{base}.md"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}.md"
    return path.stem, path
