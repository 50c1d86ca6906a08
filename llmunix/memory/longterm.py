"""Long-term execution traces (the beta tier): what a successful run did, kept for replay.

A file `projects/<p>/memory/long_term/execution_trace_<slug>_v<N>.md` holds, in the LLMunix
execution-trace schema, a frontmatter record (goal, goal_signature, confidence, success_rate,
usage_count, ...) and the replayable steps of a run: only its allowed tool calls, in order,
with sub-agent delegations in place. Each step is a `### Step N: <tool> by <agent>` section
holding the call as JSON (`{tool, agent, input}`, exact, so a follower can replay it without a
model) and the recorded result (to check the replay against).

Layout of a step::

    ### Step 3: Write by writer-agent

    - kind: "tool"                 # tool | subagent start | subagent end
    - call_id: "toolu_07"
    - within: "toolu_02"           # call id of the enclosing delegation ("" at top level)
    - depth: 1                     # delegation depth
    - is_error: false
    - source_step: 5               # the step's number in the short-term trace

    ```json call
    {"tool": "Write", "agent": "writer-agent", "input": {...}}
    ```

    ```text result
    ...
    ```

A delegation is a `subagent start` step (its call: the `Agent` tool with `subagent_type` and
`prompt`, made by the parent) and a matching `subagent end` step (the sub-agent's report as its
result); the sub-agent's own calls sit between them with `within` set to the delegation.

The record: every use (a replay, or a new successful learner run with the same steps) counts
in usage_count; success_rate = success_count / usage_count; confidence follows the scale of
the memory consolidation agent (see `confidence`). After DEMOTE_AFTER consecutive failed uses
a trace is `status: demoted` and no longer matched; demotion is sticky (a new learner run makes
a new version).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmunix.errors import TraceError
from llmunix.memory.store import memory_lock
from llmunix.specs.frontmatter import (
    atomic_write,
    dump_frontmatter,
    read_frontmatter,
    split_frontmatter,
    workspace_root_of,
)
from llmunix.trace.markdown import Trace, iso, slugify, utc_now
from llmunix.trace.steps import replay_steps

FILE_PREFIX = "execution_trace_"
DEMOTE_AFTER = 3  # consecutive failed uses
DELEGATION_TOOLS = ("Agent", "Task")
_STEP_RE = re.compile(r"^### Step (\d+): (.*)$")
_BULLET_RE = re.compile(r"^- ([a-z_]+): (.*)$")
_FENCE_RE = re.compile(r"^(`{3,})([a-z]*)(?: (\w+))?$")
_VERSION_RE = re.compile(r"_v(\d+)$")


def now_iso() -> str:
    return iso(utc_now())


def confidence(success_count: int, usage_count: int, consecutive_failures: int = 0) -> float:
    """0.5 for one success, 0.75 for 2-4, 0.85 for 5-19, 0.99 for 20+ at 95%+ success; scaled
    by the success rate and halved for each failure in a row."""
    if usage_count <= 0 or success_count <= 0:
        return 0.0
    rate = success_count / usage_count
    if success_count >= 20 and rate >= 0.95:
        base = 0.99
    elif success_count >= 5:
        base = 0.85
    elif success_count >= 2:
        base = 0.75
    else:
        base = 0.5
    return round(base * rate * 0.5 ** consecutive_failures, 3)


@dataclass
class LongTermStep:
    number: int
    kind: str  # "tool" | "subagent start" | "subagent end"
    agent: str  # who made the call; for subagent start/end: the sub-agent
    tool: str = ""  # for subagent start: the delegation tool ("Agent")
    input: dict[str, Any] = field(default_factory=dict)
    expected: str = ""  # the recorded result (whole)
    is_error: bool = False
    call_id: str = ""
    parent: str = ""  # subagent start/end: the delegating agent
    within: str = ""  # call id of the enclosing delegation, "" at top level
    depth: int = 0
    spec_hash: str = ""
    source_step: int = 0
    digest: str = ""  # as read from a learned trace (memory/replay_check.py chains them)

    def call(self) -> dict[str, Any]:
        caller = self.parent if self.kind == "subagent start" else self.agent
        return {"tool": self.tool, "agent": caller, "input": self.input}

    def key(self) -> tuple:
        """What makes two steps the same step (results aside)."""
        return (self.kind, self.agent, self.tool,
                json.dumps(self.input, sort_keys=True, ensure_ascii=False))


@dataclass
class LongTermTrace:
    path: Path
    meta: dict[str, Any]
    goal: str
    steps: list[LongTermStep]
    result: str

    @property
    def trace_id(self) -> str:
        return str(self.meta.get("trace_id", self.path.stem))

    @property
    def goal_signature(self) -> str:
        return str(self.meta.get("goal_signature", ""))

    @property
    def status(self) -> str:
        return str(self.meta.get("status", "active"))

    @property
    def demoted(self) -> bool:
        return self.status == "demoted"

    @property
    def confidence(self) -> float:
        return float(self.meta.get("confidence", 0.0))

    @property
    def success_rate(self) -> float:
        return float(self.meta.get("success_rate", 0.0))

    @property
    def usage_count(self) -> int:
        return int(self.meta.get("usage_count", 0))

    @property
    def version(self) -> int:
        return int(self.meta.get("version", 1))

    @property
    def project(self) -> str:
        return str(self.meta.get("project", ""))

    @property
    def agent(self) -> str:
        return str(self.meta.get("agent", ""))

    @property
    def runtime(self) -> str:
        return str(self.meta.get("runtime", ""))

    @property
    def source_traces(self) -> list[str]:
        return [str(t) for t in self.meta.get("source_traces") or []]

    def tool_steps(self) -> list[LongTermStep]:
        return [s for s in self.steps if s.kind == "tool"]

    def replay_steps(self):
        """The steps as the follower replays them (llmunix.trace.steps.ReplayStep)."""
        return replay_steps(self.steps)


# ---------------------------------------------------------------- from a short-term trace


def steps_from_trace(trace: Trace) -> list[LongTermStep]:
    """The replayable steps of a run: allowed tool calls in order, delegations in place."""
    delegated = {str(s.fields.get("call_id", "")) for s in trace.steps
                 if s.kind == "subagent start"}
    steps: list[LongTermStep] = []
    open_calls: list[str] = []
    for s in trace.steps:
        call_id = str(s.fields.get("call_id", ""))
        parent = str(s.fields.get("parent", ""))
        if s.kind == "subagent start":
            steps.append(LongTermStep(
                0, "subagent start", s.agent, "Agent",
                {"subagent_type": s.agent, "prompt": s.blocks.get("prompt", "")},
                call_id=call_id, parent=parent, within=open_calls[-1] if open_calls else "",
                depth=len(open_calls), spec_hash=str(s.fields.get("spec_hash", "")),
                source_step=s.number))
            open_calls.append(call_id)
        elif s.kind == "subagent end":
            if call_id in open_calls:
                del open_calls[open_calls.index(call_id):]
            if steps and steps[-1].kind == "subagent start" and steps[-1].call_id == call_id:
                steps.pop()  # the sub-agent made no call worth keeping
                continue
            steps.append(LongTermStep(
                0, "subagent end", s.agent, expected=s.blocks.get("result", ""),
                call_id=call_id, parent=parent, within=open_calls[-1] if open_calls else "",
                depth=len(open_calls), source_step=s.number))
        elif s.kind == "tool" and s.fields.get("decision") == "allowed":
            if s.tool in DELEGATION_TOOLS and call_id in delegated:
                continue  # recorded as the delegation itself
            try:
                tool_input = s.input
            except ValueError as exc:
                raise TraceError(f"step {s.number}: its input is not valid JSON: {exc}",
                                 path=trace.path) from exc
            steps.append(LongTermStep(
                0, "tool", s.agent, s.tool, tool_input, trace.full_result(s),
                bool(s.fields.get("is_error")), call_id,
                within=open_calls[-1] if open_calls else "", depth=len(open_calls),
                spec_hash=str(s.fields.get("spec_hash", "")), source_step=s.number))
    for number, step in enumerate(steps, start=1):
        step.number = number
    return steps


def fingerprint(steps: list[LongTermStep]) -> tuple:
    return tuple(s.key() for s in steps)


# ---------------------------------------------------------------- the record


def apply_uses(meta: dict[str, Any], successes: int, failures: int = 0,
               when: str | None = None) -> None:
    """Count uses into a trace's record: counts, rate, streak, confidence, demotion."""
    meta["usage_count"] = int(meta.get("usage_count", 0)) + successes + failures
    meta["success_count"] = int(meta.get("success_count", 0)) + successes
    meta["failure_count"] = int(meta.get("failure_count", 0)) + failures
    streak = int(meta.get("consecutive_failures", 0))
    streak = failures if successes else streak + failures
    meta["consecutive_failures"] = streak
    uses = meta["usage_count"]
    meta["success_rate"] = round(meta["success_count"] / uses, 4) if uses else 0.0
    meta["confidence"] = confidence(meta["success_count"], uses, streak)
    if when:
        meta["last_used"] = when
    if streak >= DEMOTE_AFTER and meta.get("status") != "demoted":
        meta["status"] = "demoted"
        meta["demoted_at"] = when or now_iso()
        meta["demoted_reason"] = f"{streak} failed uses in a row"


def record_use(path: Path, success: bool) -> dict[str, Any]:
    """Count one use (a replay) of a learned trace; returns the updated record. A trace that
    fails DEMOTE_AFTER times in a row is demoted (excluded from goal matching)."""
    path = Path(path)
    root = workspace_root_of(path)
    with memory_lock(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TraceError(f"cannot read the learned trace: {exc}", path=path) from exc
        meta, body = split_frontmatter(text, path)
        if "goal_signature" not in meta:
            raise TraceError("not a long-term trace: no goal_signature", path=path)
        apply_uses(meta, 1 if success else 0, 0 if success else 1, now_iso())
        atomic_write(path, dump_frontmatter(meta) + body, root)
    return meta


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class LearnedFile:
    path: Path
    meta: dict[str, Any]

    @property
    def signature(self) -> str:
        return str(self.meta.get("goal_signature", ""))

    @property
    def version(self) -> int:
        return int(self.meta.get("version", 1))


def is_long_term_name(name: str) -> bool:
    return name.startswith(FILE_PREFIX) and name.endswith(".md")


# path -> ((inode, mtime, size), frontmatter): memory is written by atomic replacement (a new
# inode), so a cached entry can never pass for a rewritten file.
_meta_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def learned_files(folder: Path) -> list[LearnedFile]:
    """The long-term traces in a folder (frontmatter only), by file name."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"{FILE_PREFIX}*.md")):
        try:
            st = path.stat()
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = _meta_cache.get(str(path))
            if cached is None or cached[0] != key:
                cached = _meta_cache[str(path)] = (key, read_frontmatter(path))
        except (OSError, TraceError):
            continue
        if "goal_signature" in cached[1]:
            found.append(LearnedFile(path, dict(cached[1])))
    return found


def file_name(slug: str, version: int) -> str:
    return f"{FILE_PREFIX}{slug}_v{version}.md"


def slug_of(path: Path) -> str:
    stem = path.stem[len(FILE_PREFIX):]
    return _VERSION_RE.sub("", stem)


def new_slug(goal: str, signature: str, taken: dict[str, str]) -> str:
    """A file slug for a new signature: from the goal, made unique against `taken`
    (slug -> signature) with a short hash of the signature when needed."""
    import hashlib

    slug = slugify(goal)
    if taken.get(slug, signature) != signature:
        slug = f"{slug[:33]}-{hashlib.sha1(signature.encode()).hexdigest()[:6]}"
    return slug
