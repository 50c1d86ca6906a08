"""What the user sees while a goal runs: a compact live view, JSON lines, or only the result."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from llmunix.trace.events import (
    AssistantText,
    Event,
    RunFinished,
    RunStarted,
    SubagentFinished,
    SubagentStarted,
    ToolCalled,
    UsageUpdated,
)

STATUS_STYLE = {"success": "green", "stopped": "yellow", "interrupted": "yellow", "error": "red"}


def short_args(tool_input: dict[str, Any], limit: int = 60) -> str:
    for key in ("file_path", "command", "pattern", "path", "subagent_type", "url", "query"):
        if isinstance(tool_input.get(key), str):
            text = tool_input[key]
            break
    else:
        text = json.dumps(tool_input, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class JsonView:
    """One JSON object per event on stdout, for scripts and editors."""

    def __call__(self, event: Event) -> None:
        sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()


class QuietView:
    """Nothing while running; the CLI prints the result."""

    def __call__(self, event: Event) -> None:
        return None


class LiveView:
    """A line per step on stderr, a status line with turns, tokens and cost, and a summary."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.status = None
        self.depth = 0

    def _line(self, text: str) -> None:
        self.console.print("  " * self.depth + text, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler:
            handler(event)

    def _on_RunStarted(self, e: RunStarted) -> None:
        model = f" · model {e.model}" if e.model else ""
        self.console.print(
            f"[bold]▶ {escape(e.goal)}[/]\n  [dim]agent {e.agent} · project {e.project} · "
            f"runtime {e.runtime}{escape(model)} · mode {e.mode}[/]"
        )
        if self.console.is_terminal:
            self.status = self.console.status("starting…")
            self.status.start()

    def _on_ModeChosen(self, e) -> None:
        trace = f" · trace {e.trace_id}" if e.trace_id else ""
        self.console.print(f"[bold]mode {e.mode}[/] [dim]({escape(e.reason)}{escape(trace)})[/]",
                           soft_wrap=True)

    def _on_AssistantText(self, e: AssistantText) -> None:
        first = " ".join(e.text.split())
        first = first if len(first) <= 100 else first[:99] + "…"
        self._line(f"[cyan]{escape(e.agent)}[/]: [dim]{escape(first)}[/]")

    def _on_ToolCalled(self, e: ToolCalled) -> None:
        if e.decision == "denied":
            mark, detail = "[red]denied[/]", f" [dim]{escape(e.reason)}[/]"
        elif e.is_error:
            first = (e.output.strip().splitlines() or [""])[0][:80]
            mark, detail = "[red]error[/]", f" [dim]{escape(first)}[/]"
        else:
            mark, detail = "[green]ok[/]", ""
        self._line(
            f"[cyan]{escape(e.agent)}[/] {escape(e.tool)} {escape(short_args(e.input))} "
            f"[dim]{e.duration_s:.2f}s[/] {mark}{detail}"
        )

    def _on_SubagentStarted(self, e: SubagentStarted) -> None:
        self._line(f"[magenta]→ {escape(e.agent)}[/] [dim](from {escape(e.parent)})[/]")
        self.depth += 1

    def _on_SubagentFinished(self, e: SubagentFinished) -> None:
        self.depth = max(0, self.depth - 1)
        self._line(f"[magenta]← {escape(e.agent)}[/]")

    def _on_UsageUpdated(self, e: UsageUpdated) -> None:
        if self.status is not None:
            self.status.update(
                f"turns {e.turns} · tokens {e.input_tokens:,} in / {e.output_tokens:,} out · "
                f"${e.cost_usd:.4f}"
            )

    def _on_RunFinished(self, e: RunFinished) -> None:
        if self.status is not None:
            self.status.stop()
        style = STATUS_STYLE.get(e.status, "white")
        reason = f": {escape(e.reason)}" if e.reason else ""
        self.console.print(
            f"[bold {style}]■ {e.status}[/]{reason}\n  [dim]{e.turns} turns · "
            f"{e.input_tokens:,} in / {e.output_tokens:,} out tokens · ${e.cost_usd:.4f} · "
            f"{e.duration_s:.1f}s[/]\n  [dim]trace[/] {escape(e.trace_path)}",
            soft_wrap=True,
        )


def make_view(*, json_lines: bool, quiet: bool):
    if json_lines:
        return JsonView()
    if quiet:
        return QuietView()
    return LiveView()
