"""`llmunix trace replay|show|html`."""

from __future__ import annotations

from pathlib import Path

import typer

from llmunix.cli import complete
from llmunix.cli.app import trace_app
from llmunix.cli.complete import project_option
from llmunix.cli.run import _run

REF_HELP = "A trace: its id (as `llmunix log` prints it, or a unique prefix), `last`, or a path."


def _resolve(ref: str, project: str | None = None) -> Path:
    from llmunix.cli.app import _workspace
    from llmunix.errors import WorkspaceError
    from llmunix.trace import locate

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    try:
        ws = _workspace()
    except WorkspaceError:
        ws = None
    return locate.resolve(ws, ref, project)


@trace_app.command("replay")
def trace_replay(
    ref: str = typer.Argument(..., help="A trace (short-term or learned): id, `last` or path.",
                              autocompletion=complete.trace_ids),
    project: str | None = project_option("Project to replay in."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per event on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the result."),
) -> None:
    """Re-run a trace's tool calls in order with no model (0 tokens), checking each step."""
    from llmunix.run import runner
    from llmunix.trace.markdown import read_meta

    path = _resolve(ref)
    meta = read_meta(path)
    request = runner.RunRequest(
        goal=str(meta.get("goal", "")), project=project or meta.get("project"),
        agent=meta.get("agent"), mode="follower", source=path.resolve(),
    )
    _run(request, json_out, quiet)


@trace_app.command("show")
def trace_show(
    ref: str = typer.Argument("last", help=REF_HELP, autocompletion=complete.trace_ids),
    project: str | None = project_option("Look for the id in this project only."),
) -> None:
    """Summarize a run: status, totals, and each step on one line."""
    from llmunix.cli import ui
    from llmunix.trace.markdown import read_trace

    ui.print_trace(read_trace(_resolve(ref, project)))


@trace_app.command("html")
def trace_html(
    ref: str | None = typer.Argument(None, help=REF_HELP + " Omit it for an index of every run.",
                                     autocompletion=complete.trace_ids),
    output: str | None = typer.Option(  # str: typer would load pydantic to convert a Path
        None, "--output", "-o",
        help="Where to write: a file for one run; a folder for the index (default: "
             ".llmunix/html/ in the workspace)."),
    project: str | None = project_option("Only this project's runs."),
) -> None:
    """Write a run as one self-contained HTML page (timeline, nesting, tokens and cost per agent
    and turn, every tool call, denials, mode decision, spec versions), or, without a trace, an
    index of the workspace's runs with a page per run. Prints the path."""
    from llmunix.viewer import pages

    target = Path(output).expanduser() if output else None
    if ref is not None:
        written = pages.write_run(_resolve(ref, project), target)
    else:
        from llmunix.cli.app import _workspace

        written = pages.write_index(_workspace(), target, project)
    typer.echo(str(written))
