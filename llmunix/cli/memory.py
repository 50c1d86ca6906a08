"""`llmunix log` and `llmunix memory consolidate|search|show|diff|revert`."""

from __future__ import annotations

import typer

from llmunix.cli import direct
from llmunix.cli.app import _workspace, app, group
from llmunix.cli.complete import project_option

memory_app = group("Consolidate, search, diff and revert memory.")
app.add_typer(memory_app, name="memory")


@app.command("log")
def log_command(
    project: str | None = project_option("Only this project's runs."),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=1, help=f"At most N runs (default {direct.LOG_DEFAULT})."),
    all_runs: bool = typer.Option(False, "--all", "-a", help="Every run in the history."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs from the git history, newest first: date, goal, mode, status, cost."""
    direct.log_command(project, limit, all_runs, json_out)


@memory_app.command("consolidate")
def memory_consolidate(
    project: str | None = project_option("Only this project."),
    summarize: bool = typer.Option(
        False, "--summarize",
        help="Also let the memory-consolidation-agent write learnings (needs a model runtime).",
    ),
    runtime: str | None = typer.Option(None, "--runtime", help="Runtime for --summarize."),
    model: str | None = typer.Option(None, "--model", help="Model for --summarize."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    full: bool = typer.Option(
        False, "--full", help="Read every short-term trace again, not only new or changed ones."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Distil successful runs into long-term traces, promote patterns proven across projects,
    refresh SmartLibrary.md, prune old short-term traces; one commit. No model needed."""
    from llmunix.cli import view

    summarizer = None
    if summarize:
        from llmunix.run.summarize import Summarizer

        summarizer = Summarizer(
            runtime=runtime, model=model,
            runtime_options={"base_url": base_url} if base_url else {},
            emit=view.make_view(json_lines=False, quiet=json_out),  # the model run, on stderr
        )
    direct.consolidate_command(project, full, json_out, summarizer=summarizer)


@memory_app.command("search")
def memory_search(
    query: str = typer.Argument(..., help="Words to look for."),
    project: str | None = project_option("Only this project (and system-wide memory)."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="At most N entries."),
    reindex: bool = typer.Option(
        False, "--reindex", help="Rebuild the index first (after editing memory files in place)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank entries of every memory tier (short-term, long-term, memory log, SmartLibrary)."""
    direct.search_command(query, project, limit, reindex, json_out)


@memory_app.command("show")
def memory_show(
    what: str = typer.Argument(..., help="What to show: core (the core memory blocks)."),
    project: str | None = typer.Option(None, "--project", "-p", help="This project's block."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show core memory: the system-wide block (system/core.md) and the project's
    (projects/<name>/memory/core.md), as every agent's system prompt gets them."""
    from llmunix.cli import memory_view as show
    from llmunix.errors import LlmunixError
    from llmunix.memory.agent_tools import AgentMemory

    if what != "core":
        raise LlmunixError(f"cannot show {what!r}", hint="use `llmunix memory show core`; the "
                                                         "kernel state is `llmunix status`")
    ws = _workspace()
    memory = AgentMemory(ws, ws.project(project or ws.config.run.project),
                         ws.config.memory.core_tokens)
    show.print_core(memory.blocks(), memory.limit_tokens, json_out)


@memory_app.command("diff")
def memory_diff(
    rev: str = typer.Argument("HEAD~1", help="Compare memory with this revision."),
    project: str | None = project_option("Only this project."),
    stat: bool = typer.Option(False, "--stat", help="Only a summary of the files changed."),
) -> None:
    """Show what changed in memory (system/ and projects/*/memory/) since REV."""
    from llmunix.cli import memory_view as show
    from llmunix.memory import history

    show.print_text(history.memory_diff(_workspace(), rev, project, stat=stat))


@memory_app.command("revert")
def memory_revert(
    trace_id: str = typer.Argument(..., help="The run's trace id (see `llmunix log`)."),
) -> None:
    """Undo one run's commit with `git revert` (aborted, changing nothing, on a conflict)."""
    from llmunix.cli import memory_view as show
    from llmunix.memory import history

    run, sha = history.revert_run(_workspace(), trace_id)
    show.print_revert(run, sha)


@memory_app.command("crystallize")
def memory_crystallize(
    trace_id: str | None = typer.Argument(
        None, help="A learned trace (or one of its runs); default: every learned trace."),
    project: str | None = typer.Option(None, "--project", "-p", help="The project."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Turn learned traces into python tool specs in tools/crystallized/ that redo their work
    with no model; traces with the same steps give the tool its parameters. Each tool is
    verified in a scratch copy of the workspace before it is kept."""
    from llmunix.crystallize import build

    ws = _workspace()
    proj = ws.project(project or ws.config.run.project)
    outcomes = build.crystallize(ws, proj, trace_id)
    if json_out:
        typer.echo(build.as_json(outcomes))
    else:
        for outcome in outcomes:
            typer.echo(build.describe(outcome))
    if not any(o.ok for o in outcomes) or (trace_id is not None and not all(
            o.ok for o in outcomes)):
        raise typer.Exit(1)
