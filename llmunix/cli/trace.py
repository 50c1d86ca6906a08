"""`llmunix trace replay|show`."""

from __future__ import annotations

from pathlib import Path

import typer

from llmunix.cli.app import trace_app
from llmunix.cli.run import _run


@trace_app.command("replay")
def trace_replay(
    path: Path = typer.Argument(..., help="A trace: short-term or learned (long-term)."),
    project: str | None = typer.Option(None, "--project", "-p", help="Project to replay in."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per event on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the result."),
) -> None:
    """Re-run a trace's tool calls in order with no model (0 tokens), checking each step."""
    from llmunix.run import runner
    from llmunix.trace.markdown import read_meta

    meta = read_meta(path)
    request = runner.RunRequest(
        goal=str(meta.get("goal", "")), project=project or meta.get("project"),
        agent=meta.get("agent"), mode="follower", source=path.resolve(),
    )
    _run(request, json_out, quiet)


@trace_app.command("show")
def trace_show(path: Path = typer.Argument(..., help="A trace file.")) -> None:
    """Summarize a trace: status, totals, and each step on one line."""
    from llmunix.cli import ui
    from llmunix.trace.markdown import read_trace

    ui.print_trace(read_trace(path))
