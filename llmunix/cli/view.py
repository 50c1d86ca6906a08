"""What the user sees while a goal runs: a live terminal view that streams, plain lines for a
pipe, JSON lines, or only the result.

The terminal view keeps a small live region at the bottom (the text the model is writing, each
running tool with its timer, a spinner with the elapsed time, turns, tokens and cost) and prints
every finished step above it. Piped, every event is one plain line: no control codes, no
wrapping. NO_COLOR is honoured by both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

from llmunix.cli.stream_json import timestamp
from llmunix.trace.events import (
    AssistantText,
    Event,
    ModeChosen,
    RunFinished,
    RunStarted,
    SubagentFinished,
    SubagentStarted,
    TextDelta,
    ToolCalled,
    ToolStarted,
    UsageUpdated,
)

STATUS_STYLE = {"success": "green", "stopped": "yellow", "interrupted": "yellow", "error": "red"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def short_args(tool_input: dict[str, Any], limit: int = 60) -> str:
    for key in ("file_path", "command", "pattern", "path", "subagent_type", "url", "query"):
        if isinstance(tool_input.get(key), str):
            text = tool_input[key]
            break
    else:
        text = json.dumps(tool_input, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str, limit: int | None = None) -> str:
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _tool_outcome(e: ToolCalled) -> tuple[str, str]:
    if e.interrupted:
        return "interrupted", ""
    if e.decision == "denied":
        return "denied", one_line(e.reason, 120)
    if e.is_error:
        first = (e.output.strip().splitlines() or [""])[0]
        return "error", one_line(first, 80)
    return "ok", ""


def context_window_line(e, shown: set[str]) -> str:
    """The window of a model, the first time an agent runs on it."""
    if e.model in shown:
        return ""
    shown.add(e.model)
    return f"context window {e.window:,} tokens ({e.source}) · model {e.model}"


def kernel_state_lines(e) -> list[str]:
    values = " · ".join(f"{k} {v:.2f}" for k, v in e.values.items())
    return [f"  state {values}", *(f"  state: {effect}" for effect in e.effects)]


def context_paged_line(e) -> str:
    fill = f" (ctx {100 * e.tokens_after // e.window}%)" if e.window else ""
    return f"context {e.agent}: {e.what}{fill}"


class JsonView:
    """llmunix's own events, one JSON object per line on stdout, each with its time."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            return  # the whole text follows as assistant_text
        data = event.to_dict()
        data["timestamp"] = timestamp()
        self.out.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def close(self) -> None:
        return None


class QuietView:
    """Nothing while running; the CLI prints the result."""

    def __call__(self, event: Event) -> None:
        return None

    def close(self) -> None:
        return None


class PlainView:
    """One line per event on stderr, for pipes, logs and dumb terminals."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.depth = 0

    def _write(self, text: str) -> None:
        self.out.write("  " * self.depth + text + "\n")
        self.out.flush()

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler:
            handler(event)

    def close(self) -> None:
        return None

    def _on_RunStarted(self, e: RunStarted) -> None:
        model = f" · model {e.model}" if e.model else ""
        self._write(f"▶ {one_line(e.goal)}")
        self._write(f"  agent {e.agent} · project {e.project} · runtime {e.runtime}{model} · "
                    f"mode {e.mode}")
        if e.sandbox:
            self._write(f"  sandbox {e.sandbox}")

    def _on_ModeChosen(self, e: ModeChosen) -> None:
        trace = f" · trace {e.trace_id}" if e.trace_id else ""
        self._write(f"mode {e.mode} ({one_line(e.reason)}{trace})")

    def _on_AssistantText(self, e: AssistantText) -> None:
        self._write(f"{e.agent}: {one_line(e.text)}")

    def _on_ToolStarted(self, e: ToolStarted) -> None:
        self._write(f"{e.agent} {e.tool} {short_args(e.input)} …")

    def _on_ToolCalled(self, e: ToolCalled) -> None:
        mark, detail = _tool_outcome(e)
        detail = f" {detail}" if detail else ""
        self._write(f"{e.agent} {e.tool} {short_args(e.input)} {e.duration_s:.2f}s {mark}{detail}")

    def _on_SubagentStarted(self, e: SubagentStarted) -> None:
        self._write(f"→ {e.agent} (from {e.parent})")
        self.depth += 1

    def _on_SubagentFinished(self, e: SubagentFinished) -> None:
        self.depth = max(0, self.depth - 1)
        self._write(f"← {e.agent}")

    def _on_ContextWindow(self, e) -> None:
        line = context_window_line(e, self.__dict__.setdefault("windows", set()))
        if line:
            self._write(line)

    def _on_ContextPaged(self, e) -> None:
        self._write(context_paged_line(e))

    def _on_KernelState(self, e) -> None:
        for line in kernel_state_lines(e):
            self._write(line)

    def _on_RunFinished(self, e: RunFinished) -> None:
        self.depth = 0
        reason = f": {one_line(e.reason)}" if e.reason else ""
        self._write(f"■ {e.status}{reason}")
        self._write(f"  {e.turns} turns · {e.input_tokens:,} in / {e.output_tokens:,} out tokens "
                    f"· ${e.cost_usd:.4f} · {e.duration_s:.1f}s")
        self._write(f"  trace {e.trace_path}")
        for path in e.extra.get("left_out") or ():
            self._write(f"  warning: {path} holds a secret; it was left out of the commit")


class _Region:
    """The live part of the terminal view, rendered by rich on each refresh (so the timers
    tick without events)."""

    def __init__(self, view: LiveView) -> None:
        self.view = view

    def __rich__(self):
        from rich.text import Text

        v = self.view
        now = time.monotonic()
        lines = Text()
        for agent, text in v.partial.items():
            tail = text.rstrip().splitlines()[-3:] if text.strip() else []
            for line in tail:
                lines.append(f"{agent}: ", style="cyan")
                lines.append(one_line(line, v.width - len(agent) - 4) + "\n", style="dim")
        frame = SPINNER[int(now * 10) % len(SPINNER)]
        for call in v.running.values():
            agent, tool, args, t0, depth = call
            lines.append("  " * depth + f"{frame} ", style="yellow")
            lines.append(f"{agent} ", style="cyan")
            lines.append(f"{tool} {args} ")
            lines.append(f"{now - t0:.1f}s\n", style="dim")
        u = v.usage
        elapsed = now - v.started
        what = ("running tools" if v.running else "writing" if v.partial
                else "waiting for the model")
        status = f"{frame} {what} · {elapsed:.0f}s"
        if u is not None:
            status += (f" · turns {u.turns} · {u.input_tokens:,} in / {u.output_tokens:,} out"
                       f" · ${u.cost_usd:.4f}")
            if u.context_tokens:
                fill = f"context {u.context_tokens:,} tokens"
                if u.context_window:
                    fill += f" ({u.context_tokens / u.context_window:.0%})"
                status += f" · {fill}"
        lines.append(status, style="bold")
        return lines


class LiveView:
    """The terminal view: streamed text and running tools in a live region, finished steps
    printed above it."""

    def __init__(self, console=None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.width = self.console.width
        self.depth = 0
        self.live = None
        self.started = time.monotonic()
        self.partial: dict[str, str] = {}  # agent -> text streamed so far
        self.running: dict[str, tuple] = {}  # call_id -> agent, tool, args, t0, depth
        self.usage: UsageUpdated | None = None

    # ------------------------------------------------------------ the live region

    def _start(self) -> None:
        if self.live is not None or not self.console.is_terminal:
            return
        from rich.live import Live

        self.live = Live(_Region(self), console=self.console, refresh_per_second=8,
                         transient=True, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    @property
    def status(self):  # the shell stops a view through this name
        return self

    def stop(self) -> None:
        self.close()

    def _print(self, text, *, indent: bool = True) -> None:
        from rich.text import Text

        line = text if isinstance(text, Text) else Text(text)
        if indent and self.depth:
            line = Text("  " * self.depth) + line
        self.console.print(line, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler:
            handler(event)

    # ------------------------------------------------------------ events

    def _on_RunStarted(self, e: RunStarted) -> None:
        from rich.text import Text

        model = f" · model {e.model}" if e.model else ""
        head = Text(f"▶ {one_line(e.goal)}", style="bold")
        self._print(head, indent=False)
        self._print(Text(f"  agent {e.agent} · project {e.project} · runtime {e.runtime}{model}"
                         f" · mode {e.mode}", style="dim"), indent=False)
        if e.sandbox:  # "off" is unsafe: said in red, every run
            self._print(Text(f"  sandbox {e.sandbox}",
                             style="bold red" if e.sandbox.startswith("off") else "dim"),
                        indent=False)
        self.started = time.monotonic()
        self._start()

    def _on_ModeChosen(self, e: ModeChosen) -> None:
        from rich.text import Text

        trace = f" · trace {e.trace_id}" if e.trace_id else ""
        line = Text(f"mode {e.mode} ", style="bold")
        line.append(f"({one_line(e.reason)}{trace})", style="dim")
        self._print(line, indent=False)

    def _on_TextDelta(self, e: TextDelta) -> None:
        self.partial[e.agent] = self.partial.get(e.agent, "") + e.text

    def _on_AssistantText(self, e: AssistantText) -> None:
        from rich.text import Text

        self.partial.pop(e.agent, None)
        lines = e.text.strip().splitlines()
        shown = lines[:8]
        line = Text(f"{e.agent}: ", style="cyan")
        line.append("\n".join(shown) + (" …" if len(lines) > len(shown) else ""), style="dim")
        self._print(line)

    def _on_ToolStarted(self, e: ToolStarted) -> None:
        self.partial.pop(e.agent, None)
        self.running[e.call_id] = (e.agent, e.tool, short_args(e.input), time.monotonic(),
                                   self.depth)

    def _on_ToolCalled(self, e: ToolCalled) -> None:
        from rich.text import Text

        self.running.pop(e.call_id, None)
        mark, detail = _tool_outcome(e)
        style = "green" if mark == "ok" else "red" if mark in ("error", "denied") else "yellow"
        line = Text(f"{e.agent} ", style="cyan")
        line.append(f"{e.tool} {short_args(e.input)} ")
        line.append(f"{e.duration_s:.2f}s ", style="dim")
        line.append(mark, style=style)
        if detail:
            line.append(f" {detail}", style="dim")
        self._print(line)

    def _on_SubagentStarted(self, e: SubagentStarted) -> None:
        from rich.text import Text

        self.running.pop(e.call_id, None)
        line = Text(f"→ {e.agent}", style="magenta")
        line.append(f" (from {e.parent})", style="dim")
        self._print(line)
        self.depth += 1

    def _on_SubagentFinished(self, e: SubagentFinished) -> None:
        from rich.text import Text

        self.depth = max(0, self.depth - 1)
        self.partial.pop(e.agent, None)
        self._print(Text(f"← {e.agent}", style="magenta"))

    def _on_UsageUpdated(self, e: UsageUpdated) -> None:
        self.usage = e

    def _on_ContextWindow(self, e) -> None:
        from rich.text import Text

        line = context_window_line(e, self.__dict__.setdefault("windows", set()))
        if line:
            self._print(Text(line, style="dim"))

    def _on_ContextPaged(self, e) -> None:
        from rich.text import Text

        line = Text("context ", style="yellow")
        line.append(context_paged_line(e).removeprefix("context "), style="dim")
        self._print(line)

    def _on_KernelState(self, e) -> None:
        from rich.text import Text

        for line in kernel_state_lines(e):
            self._print(Text(line, style="dim"), indent=False)

    def _on_RunFinished(self, e: RunFinished) -> None:
        from rich.text import Text

        self.close()
        self.depth = 0
        self.partial.clear()
        self.running.clear()
        style = STATUS_STYLE.get(e.status, "white")
        line = Text(f"■ {e.status}", style=f"bold {style}")
        if e.reason:
            line.append(f": {e.reason}")
        self._print(line)
        self._print(Text(f"  {e.turns} turns · {e.input_tokens:,} in / {e.output_tokens:,} out "
                         f"tokens · ${e.cost_usd:.4f} · {e.duration_s:.1f}s", style="dim"))
        tail = Text("  trace ", style="dim")
        tail.append(e.trace_path)
        self._print(tail)
        for path in e.extra.get("left_out") or ():
            self._print(Text(f"  warning: {path} holds a secret; it was left out of the commit",
                             style="yellow"))


def is_live_terminal(stream: TextIO) -> bool:
    """A terminal that can redraw lines: not a pipe, not TERM=dumb."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def make_view(*, json_lines: bool = False, quiet: bool = False, output_format: str = "text",
              partial: bool = False):
    if output_format in ("stream-json", "json"):
        from llmunix.cli.stream_json import StreamJsonView

        return StreamJsonView(lines=output_format == "stream-json", partial=partial)
    if json_lines:
        return JsonView()
    if quiet:
        return QuietView()
    if is_live_terminal(sys.stderr):
        return LiveView()
    return PlainView()
