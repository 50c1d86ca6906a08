"""The context window of one agent loop, managed like RAM.

Before each request the pager counts the prompt. Above the high-water mark it pages out, oldest
first, until the prompt is under the low-water mark:
1. tool results (and long arguments of old calls) become one-line stubs that name the trace step
   holding them, which `Recall(step=N)` reads back;
2. if that is not enough, the oldest turns are folded into a summary kept after the goal
   (written by the model with a short fixed prompt, or by rules with `[context] summarize = false`).
The system prompt, the goal and the last `keep_turns` turns are never paged while they fit; a
result too big for its share of the window is cut when it arrives, with a stub to read on.
Every paging event is reported to the session (a `context` step in the trace).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from llmunix.context.summary import fold_by_rules, fold_request
from llmunix.context.tokens import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TokenCounter,
    estimate_text,
    message_text,
    tools_text,
)
from llmunix.errors import LimitReached
from llmunix.workspace.config import ContextConfig

STUB_MIN_CHARS = 240  # results shorter than this are not worth a stub
LONG_ARG_CHARS = 600  # call arguments longer than this are paged out with their results
RESULT_SHARE = 0.25  # the most of the window one new result may take
SUMMARY_SHARE = 0.15  # the most of the window the summary may take
_RESULT_TAG = re.compile(r'(<tool_result name="[^"]*">\n)(.*?)(\n</tool_result>)', re.S)


@dataclass(frozen=True)
class StepRef:
    """Where a tool result lives in the trace."""

    step: int
    agent: str
    tool: str
    input: dict
    chars: int


@dataclass
class PageEvent:
    """One paging event: what went out, tokens before and after."""

    agent: str
    window: int
    tokens_before: int
    tokens_after: int
    paged_steps: list[int] = field(default_factory=list)
    cut_steps: list[int] = field(default_factory=list)
    folded_turns: int = 0
    summary: str = ""
    summarized_by: str = ""  # "model" | "rules" | ""

    def describe(self) -> str:
        parts = []
        if self.cut_steps:
            parts.append("cut " + _steps(self.cut_steps) + " to fit")
        if self.paged_steps:
            parts.append("paged out " + _steps(self.paged_steps))
        if self.folded_turns:
            parts.append(f"folded {self.folded_turns} turn(s) into a summary "
                         f"(by the {'model' if self.summarized_by == 'model' else 'rules'})")
        return (f"{'; '.join(parts) or 'nothing to page'}: {self.tokens_before:,} → "
                f"{self.tokens_after:,} tokens of {self.window:,}")


def _steps(numbers: list[int]) -> str:
    return ("step " if len(numbers) == 1 else "steps ") + ", ".join(map(str, numbers))


class Host(Protocol):
    """What the pager needs from the run (the session): where each call's result is in the
    trace, and where to report."""

    step_refs: dict[str, StepRef]  # call id -> its step
    step_log: list[StepRef]  # every recorded result, in order

    def context_paged(self, event: PageEvent) -> None: ...


Summarizer = Callable[[list[dict]], Awaitable[str]]


class Pager:
    def __init__(self, host: Host, agent: str, window: int,
                 settings: ContextConfig = ContextConfig(), *,
                 summarizer: Summarizer | None = None, reserve: int = 0, mark: int = 0,
                 counter: TokenCounter | None = None) -> None:
        self.host = host
        self.agent = agent
        self.window = window
        self.settings = settings
        self.summarizer = summarizer if settings.summarize else None
        self.reserve = reserve  # tokens kept free for the reply (max_tokens), when it is set
        self.counter = counter  # the server's tokenizer where it has one; else the estimate
        self.scale = 1.0  # the server's counts against our estimate, learnt from usage (>= 1)
        self.last_estimate = 0
        self.paged_once = False
        self.summary = ""
        self._goal = ""  # the goal message as the loop wrote it, before any summary
        self._seen = 0  # messages already looked at
        self._mark = mark  # entries of host.step_log already looked at
        self._refs: dict[int, tuple[dict, list[StepRef]]] = {}
        self._tools_key: tuple[int, int] = (0, 0)
        self._tools_tokens = 0
        self._counted: dict[int, tuple[dict, object, int]] = {}  # id -> (msg, content, tokens)

    # ------------------------------------------------------------ counting

    async def count_message(self, msg: dict) -> int:
        """A message's tokens, counted once while it is unchanged (messages are counted by
        identity: the loop replaces a message's content when it changes it, never edits it)."""
        content = msg.get("content")
        cached = self._counted.get(id(msg))
        if cached is not None and cached[0] is msg and cached[1] is content:
            return cached[2]
        text = message_text(msg)
        if self.counter is not None:
            n = (await self.counter.count_text(text)).tokens
        else:
            n = estimate_text(text)
        n += MESSAGE_OVERHEAD
        self._counted[id(msg)] = (msg, content, n)
        return n

    async def count(self, messages: list[dict], tools: list[dict] | None) -> int:
        """The request's prompt tokens, as the server will count them (see `observed`)."""
        if tools:
            key = (id(tools), len(tools))
            if key != self._tools_key:
                self._tools_key = key
                text = tools_text(tools)
                self._tools_tokens = ((await self.counter.count_text(text)).tokens
                                      if self.counter is not None else estimate_text(text))
        raw = REPLY_PRIMING + (self._tools_tokens if tools else 0)
        counted = self._counted
        for msg in messages:  # the cache looked up here: no coroutine for a counted message
            cached = counted.get(id(msg))
            if cached is not None and cached[0] is msg and cached[1] is msg.get("content"):
                raw += cached[2]
            else:
                raw += await self.count_message(msg)
        return int(raw * self.scale + 0.999)

    def observed(self, prompt_tokens: int) -> None:
        """The server's count of the last request (usage.prompt_tokens): if it counts more
        than our estimate, later estimates are scaled up to match. Never scaled down: a server
        that reports nothing useful must not make us overfill the window."""
        if prompt_tokens and self.last_estimate:
            ratio = prompt_tokens / max(1.0, self.last_estimate / self.scale)
            if ratio > self.scale:
                self.scale = min(ratio, 4.0)

    @property
    def budget(self) -> int:
        return self.window - self.reserve

    # ------------------------------------------------------------ the hook

    async def before_request(self, messages: list[dict], tools: list[dict] | None) -> None:
        """Make `messages` fit: called by the agent loop before every model request."""
        if not self._goal and len(messages) > 1:
            self._goal = messages[1].get("content") or ""
        event = PageEvent(self.agent, self.window, 0, 0)
        self._take_new(messages, event)
        tokens = await self.count(messages, tools)
        event.tokens_before = tokens
        high = int(self.budget * self.settings.high_water)
        if tokens > high:
            await self._page(messages, tools, event)
            tokens = await self.count(messages, tools)
        if event.cut_steps or event.paged_steps or event.folded_turns:
            event.tokens_after = tokens
            self.paged_once = True
            self.host.context_paged(event)
        if tokens > self.budget:
            raise LimitReached(
                f"the context window of {self.window:,} tokens cannot hold the system prompt, "
                f"the goal, the tools and the last turn ({tokens:,} tokens)",
                hint='raise context_window for this model in [models."<name>"] of llmunix.toml, '
                     "or give the agent fewer tools or a shorter prompt",
            )
        self.last_estimate = tokens

    # ------------------------------------------------------------ new messages

    def _take_new(self, messages: list[dict], event: PageEvent) -> None:
        """Note which trace steps the new results came from; cut results too big to keep."""
        log = self.host.step_log
        pending = [r for r in log[self._mark:] if r.agent == self.agent]
        self._mark = len(log)
        for msg in messages[max(self._seen, 2):]:
            refs: list[StepRef] = []
            if msg.get("role") == "tool":
                ref = self.host.step_refs.get(str(msg.get("tool_call_id", "")))
                if ref is not None:
                    refs = [ref]
                    if ref in pending:
                        pending.remove(ref)
            elif msg.get("role") == "user" and "<tool_result name=" in str(msg.get("content")):
                n = len(_RESULT_TAG.findall(msg["content"]))
                refs, pending = pending[:n], pending[n:]
            if refs:
                self._refs[id(msg)] = (msg, refs)
                self._cut_if_big(msg, refs, event)
        self._seen = len(messages)

    def _cut_if_big(self, msg: dict, refs: list[StepRef], event: PageEvent) -> None:
        limit = int(self.budget * RESULT_SHARE)
        chars = int(limit * 3)  # a conservative characters-per-token
        if msg.get("role") == "tool":
            text = msg.get("content") or ""
            if estimate_text(text) * self.scale > limit:
                msg["content"] = _cut(text, chars, refs[0])
                event.cut_steps.append(refs[0].step)
            return
        parts = iter(refs)

        def cut(match: re.Match) -> str:
            ref = next(parts, None)
            body = match.group(2)
            if ref is None or estimate_text(body) * self.scale <= limit:
                return match.group(0)
            event.cut_steps.append(ref.step)
            return match.group(1) + _cut(body, chars, ref) + match.group(3)

        msg["content"] = _RESULT_TAG.sub(cut, msg["content"])

    # ------------------------------------------------------------ paging

    def _turns(self, messages: list[dict]) -> list[tuple[int, int]]:
        """(start, end) of each turn after the goal: an assistant message and what follows it."""
        starts = [i for i in range(2, len(messages)) if messages[i].get("role") == "assistant"]
        return [(s, (starts[k + 1] if k + 1 < len(starts) else len(messages)))
                for k, s in enumerate(starts)]

    async def _page(self, messages: list[dict], tools: list[dict] | None,
                    event: PageEvent) -> None:
        """Stubs first, oldest first, down to the low-water mark; when stubs are not enough,
        the old turns are folded into the summary; fewer kept turns only when even that does
        not get under the high-water mark. Paging to the low mark, not just under the high
        one, keeps paging (which changes the prompt a server may have cached) rare."""
        low = int(self.budget * self.settings.low_water)
        high = int(self.budget * self.settings.high_water)
        keep = self.settings.keep_turns
        while True:
            turns = self._turns(messages)
            old = turns[:max(0, len(turns) - keep)]
            tokens = await self.count(messages, tools)
            for start, end in old:
                for i in range(start, end):  # the total moves by what each stub saves
                    before = await self.count_message(messages[i])
                    self._stub(messages[i], event)
                    tokens -= int((before - await self.count_message(messages[i])) * self.scale)
                if tokens <= low:
                    return
            if old:
                await self._fold(messages, old[0][0], old[-1][1], event)
            if await self.count(messages, tools) <= high:
                return
            if keep <= 1:
                return
            keep -= 1

    def _stub(self, msg: dict, event: PageEvent) -> None:
        entry = self._refs.get(id(msg))
        if msg.get("role") == "assistant":
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") or {}
                args = fn.get("arguments") or ""
                if len(args) > LONG_ARG_CHARS:
                    fn["arguments"] = _stub_arguments(args, call.get("id", ""), self.host)
                    self._counted.pop(id(msg), None)
            return
        if entry is None or entry[0] is not msg:
            return
        refs = entry[1]
        if msg.get("role") == "tool":
            text = msg.get("content") or ""
            if len(text) > STUB_MIN_CHARS and not text.startswith("[paged out"):
                msg["content"] = stub(refs[0])
                event.paged_steps.append(refs[0].step)
            return
        parts = iter(refs)

        def out(match: re.Match) -> str:
            ref = next(parts, None)
            body = match.group(2)
            if ref is None or len(body) <= STUB_MIN_CHARS or body.startswith("[paged out"):
                return match.group(0)
            event.paged_steps.append(ref.step)
            return match.group(1) + stub(ref) + match.group(3)

        msg["content"] = _RESULT_TAG.sub(out, msg["content"])

    async def _fold(self, messages: list[dict], start: int, end: int, event: PageEvent) -> None:
        folded = messages[start:end]
        text = None
        if self.summarizer is not None:
            request = fold_request(self.summary, folded, int(self.budget * 0.5))
            try:
                text = (await self.summarizer(request)).strip() or None
            except LimitReached:
                raise
            except Exception:  # noqa: BLE001 - a failed summary falls back to the rules
                text = None
        by = "model" if text else "rules"
        limit_chars = int(self.budget * SUMMARY_SHARE) * 3
        if text is None:
            text = fold_by_rules(self.summary, folded, limit_chars)
        elif len(text) > limit_chars:
            text = text[:limit_chars - 1] + "…"
        self.summary = text
        for msg in folded:
            self._refs.pop(id(msg), None)
            self._counted.pop(id(msg), None)
        del messages[start:end]
        self._seen = len(messages)
        messages[1]["content"] = (
            f"{self._goal}\n\n## Earlier in this run (a summary; the steps are in the trace, "
            f"and Recall(step=N) reads any of them back)\n\n{self.summary}"
        )
        event.folded_turns += sum(1 for m in folded if m.get("role") == "assistant")
        event.summary = self.summary
        event.summarized_by = by


def stub(ref: StepRef) -> str:
    return (f"[paged out: step {ref.step}, {ref.tool}{_target(ref)}, {_size(ref.chars)} — "
            f"Recall(step={ref.step}) to read it again]")


def _cut(text: str, chars: int, ref: StepRef) -> str:
    offset = int(ref.input.get("offset", 0) or 0) if ref.tool == "Recall" else 0
    step = int(ref.input.get("step", ref.step) or ref.step) if ref.tool == "Recall" else ref.step
    return (text[:chars] + f"\n[cut to fit the context window: step {step}, {ref.tool}"
            f"{_target(ref)}, {_size(ref.chars)} in all — Recall(step={step}, "
            f"offset={offset + chars}) reads on]")


def _target(ref: StepRef) -> str:
    for key in ("file_path", "path", "pattern", "command", "query", "subagent_type", "url"):
        value = ref.input.get(key)
        if isinstance(value, str) and value:
            value = " ".join(value.split())
            return " " + (value if len(value) <= 60 else value[:59] + "…")
    return ""


def _size(chars: int) -> str:
    return f"{chars / 1024:.0f} KB" if chars >= 10 * 1024 else \
        f"{chars / 1024:.1f} KB" if chars >= 1024 else f"{chars} characters"


def _stub_arguments(args: str, call_id: str, host: Host) -> str:
    """Long string values of an old call's arguments become stubs; the JSON stays valid, so a
    server that re-parses the history accepts it."""
    try:
        data = json.loads(args)
    except json.JSONDecodeError:
        return "{}"
    if not isinstance(data, dict):
        return "{}"
    ref = host.step_refs.get(call_id)
    where = f"step {ref.step}" if ref else "the trace"
    for key, value in data.items():
        if isinstance(value, str) and len(value) > LONG_ARG_CHARS // 2:
            data[key] = f"[paged out: {len(value):,} characters — in {where}]"
    return json.dumps(data, ensure_ascii=False)
