"""What the user-facing outputs cost: each view's time per event over a 1,000-event run, and
`llmunix trace html` of a 500-step trace.

The events are a scripted run's (streamed text, tool starts and ends, usage, a delegation),
fed straight to each view so only the view's own work is timed; the floor is a view that does
nothing. Goals: the live view adds at most 1 ms per event; `trace html` of 500 steps <= 0.5 s.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

from _common import llmunix_cmd, median, row, time_command

from llmunix.cli.stream_json import StreamJsonView
from llmunix.cli.view import LiveView, PlainView, QuietView
from llmunix.trace.events import (
    AssistantText,
    RunFinished,
    RunStarted,
    SubagentFinished,
    SubagentStarted,
    TextDelta,
    ToolCalled,
    ToolStarted,
    UsageUpdated,
)
from llmunix.trace.markdown import TraceWriter

EVENTS = 1_000
STEPS = 500
RUNS = 7


def scripted_events() -> list:
    events = [RunStarted("t1", "summarize the notes", "default", "boss", "openai", "m",
                         "learner", "/tmp/t1.md", "/tmp", ["Read", "Bash"], ["writer"])]
    n = 0
    while len(events) < EVENTS - 1:
        n += 1
        agent = "writer" if n % 10 >= 5 else "boss"
        if n % 10 == 5:
            events.append(SubagentStarted("writer", "boss", f"a{n}", "write it"))
        events += [TextDelta(agent, "Looking at the next file, "), TextDelta(agent, "then "),
                   AssistantText(agent, "Looking at the next file, then writing."),
                   UsageUpdated(n, 100 * n, 10 * n, 0, 0.001 * n, 100, 8192),
                   ToolStarted(f"c{n}", agent, "Read", {"file_path": f"notes/{n}.md"}),
                   ToolCalled(f"c{n}", agent, "Read", {"file_path": f"notes/{n}.md"},
                              "line\n" * 20, False, 0.002, "allowed")]
        if n % 10 == 9:
            events.append(SubagentFinished("writer", "boss", f"a{n - 4}", "written"))
    events = events[: EVENTS - 1]
    events.append(RunFinished("t1", "success", "done", "", 1.0, n, 100 * n, 10 * n, 0.01,
                              "/tmp/t1.md"))
    return events


def per_event(make_view, events) -> float:
    """Median seconds per event over RUNS passes."""
    times = []
    for _ in range(RUNS):
        view = make_view()
        start = time.perf_counter()
        for event in events:
            view(event)
        view.close()
        times.append((time.perf_counter() - start) / len(events))
    return median(times)


def live_view():
    from rich.console import Console

    # A terminal console writing to memory: the live region renders and refreshes as on a tty.
    console = Console(file=io.StringIO(), force_terminal=True, width=120, highlight=False)
    return LiveView(console)


def write_trace(folder: Path) -> Path:
    path = folder / "20260101T000000000Z_bench.md"
    writer = TraceWriter(path, {"trace_id": path.stem, "goal": "bench", "project": "default",
                                "agent": "boss", "runtime": "openai", "model": "m",
                                "mode": "learner", "specs": {}})
    for n in range(STEPS):
        if n % 50 == 10:
            writer.subagent_started(SubagentStarted("writer", "boss", f"a{n}", "do it"),
                                    {"turn": n, "input_tokens": 100, "output_tokens": 10})
        elif n % 50 == 40:
            writer.subagent_finished(SubagentFinished("writer", "boss", f"a{n - 30}", "done"))
        elif n % 2:
            writer.assistant_text(AssistantText("boss", "thinking about the notes " * 10),
                                  {"turn": n, "input_tokens": 100, "output_tokens": 10,
                                   "cost_usd": 0.0001})
        else:
            writer.tool_called(ToolCalled(f"c{n}", "boss", "Read", {"file_path": f"n{n}.md"},
                                          "content line\n" * 40, n % 7 == 0, 0.01,
                                          "denied" if n % 13 == 0 else "allowed"))
    writer.finish({"status": "success", "duration_s": 10.0, "turns": STEPS // 2}, "done")
    return path


def main() -> None:
    events = scripted_events()
    with open(os.devnull, "w") as devnull:
        floor = per_event(QuietView, events)
        plain = per_event(lambda: PlainView(devnull), events)
        live = per_event(live_view, events)
        stream = per_event(lambda: StreamJsonView(devnull), events)
    print(f"{len(events)} events of a scripted run, median of {RUNS} passes")
    row("view that does nothing (floor)", f"{floor * 1e6:.1f} us/event")
    row("live view, terminal", f"{live * 1e3:.3f} ms/event", "goal <= 1 ms",
        f"+{(live - floor) * 1e3:.3f} ms over floor")
    row("plain lines, pipe", f"{plain * 1e3:.3f} ms/event", "goal <= 1 ms")
    row("stream-json", f"{stream * 1e3:.3f} ms/event", "goal <= 1 ms")

    from llmunix.viewer.pages import render

    with tempfile.TemporaryDirectory() as tmp:
        trace = write_trace(Path(tmp))
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            page = render(trace)
            times.append(time.perf_counter() - start)
        out = Path(tmp) / "page.html"
        cli = median(time_command([*llmunix_cmd(), "trace", "html", str(trace), "-o",
                                   str(out)], RUNS))
        start_up = median(time_command([*llmunix_cmd(), "--version"], RUNS))
        print(f"trace html, {STEPS} steps ({trace.stat().st_size // 1024} KB trace, "
              f"{len(page) // 1024} KB page)")
        row("render in-process", f"{median(times):.3f} s", "goal <= 0.5 s")
        row("llmunix trace html (whole command)", f"{cli:.3f} s", "goal <= 0.5 s",
            f"llmunix --version alone: {start_up:.3f} s")


if __name__ == "__main__":
    main()
