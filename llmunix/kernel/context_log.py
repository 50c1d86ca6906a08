"""What the pagers of a run need from the kernel: where each result is in the trace (so a
paged-out result can name the step `Recall` reads it back from), and where paging events go
(a `context` step in the trace, an event for the live view)."""

from __future__ import annotations

from collections.abc import Callable

from llmunix.context.pager import PageEvent, StepRef
from llmunix.trace.events import ContextPaged, ContextWindow, Event
from llmunix.trace.markdown import TraceWriter


class ContextLog:
    def __init__(self, trace: TraceWriter, emit: Callable[[Event], None]) -> None:
        self.trace = trace
        self.emit = emit
        self.step_refs: dict[str, StepRef] = {}  # call id -> the step holding its result
        self.step_log: list[StepRef] = []  # in the order they were recorded
        self.windows: dict[str, dict] = {}  # model -> {window, source}, for the trace
        self.paged = 0  # paging events this run

    def summary(self) -> dict:
        """For the trace's frontmatter: each model's window, and how often paging happened."""
        if not self.windows and not self.paged:
            return {}
        return {"context": {"windows": self.windows, "paging_events": self.paged}}

    def record(self, call_id: str, agent: str, tool: str, tool_input: object,
               chars: int) -> None:
        """The result of `call_id` is the step just written."""
        ref = StepRef(self.trace.steps, agent, tool,
                      tool_input if isinstance(tool_input, dict) else {}, chars)
        self.step_refs[call_id] = ref
        self.step_log.append(ref)

    def window_known(self, agent: str, model: str, window: int, source: str) -> None:
        if model not in self.windows:
            self.windows[model] = {"window": window, "source": source}
        self.emit(ContextWindow(agent, model, window, source))

    def context_paged(self, event: PageEvent) -> None:
        self.paged += 1
        self.compacted(ContextPaged(
            event.agent, event.window, event.tokens_before, event.tokens_after,
            event.describe(), list(event.paged_steps), list(event.cut_steps),
            event.folded_turns, event.summary, event.summarized_by))

    def cli_compacted(self, agent: str, data: dict) -> None:
        """The Claude CLI's `compact_boundary` message: it summarized the conversation."""
        meta = data.get("compact_metadata") or {}
        before = int(meta.get("pre_tokens") or 0)
        after = int(meta.get("post_tokens") or 0)
        trigger = str(meta.get("trigger") or "auto")
        what = (f"Claude Code compacted the conversation ({trigger}): {before:,} → "
                f"{after:,} tokens")
        self.paged += 1
        self.compacted(ContextPaged(agent, 0, before, after, what, summarized_by="model",
                                    source="claude"))

    def compacted(self, event: ContextPaged) -> None:
        """A paging event, llmunix's or a runtime's own (the Claude CLI's compaction)."""
        self.trace.context(event)
        self.emit(event)
