"""The command line. Commands parse options, hand off to plain modules, and print; the one place
that turns an LlmunixError into a message and an exit code is `main()`.

Imports beyond typer happen inside commands so `llmunix --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from llmunix import __version__

app = typer.Typer(
    name="llmunix",
    help="An operating system for LLM agents: markdown agents and tools, enforced policy, "
    "execution traces, replay, and memory versioned in git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: typer's rich help formatter costs ~90 ms at start-up
)
agents_app = typer.Typer(
    help="List and inspect agents.", no_args_is_help=True, rich_markup_mode=None
)
tools_app = typer.Typer(
    help="List, inspect and run tools.", no_args_is_help=True, rich_markup_mode=None
)
trace_app = typer.Typer(
    help="Show and replay execution traces.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(agents_app, name="agents")
app.add_typer(tools_app, name="tools")
app.add_typer(trace_app, name="trace")

_state: dict[str, str | None] = {"home": None}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmunix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    home: str | None = typer.Option(
        None, "--home", help="Workspace folder (default: $LLMUNIX_HOME, else found upwards)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    _state["home"] = home


def _workspace():
    from llmunix.workspace.layout import find_workspace

    return find_workspace(home=_state["home"])


def _project(ws, name: str | None):
    return ws.project(name or ws.config.run.project)


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Where to create the workspace."),
    force: bool = typer.Option(
        False, "--force", help="Add llmunix's files to a non-empty folder, keeping existing ones."
    ),
    example: str | None = typer.Option(
        None, "--example", help="Also install an example project (see `--example list`)."
    ),
) -> None:
    """Create a workspace: llmunix.toml, system agents and tools, a default project, a git repo."""
    from llmunix.cli import ui
    from llmunix.memory import git as gitmem
    from llmunix.workspace import scaffold

    if example == "list":
        for name in scaffold.examples():
            typer.echo(name)
        return
    report = scaffold.init_workspace(directory, force=force, example=example)
    _index_new_workspace(report)
    report.committed = gitmem.commit_paths(
        report.root, "llmunix init", report.created, create=True
    ) if report.created else None
    ui.print_init(report)


def _index_new_workspace(report) -> None:
    """Write the new workspace's SmartLibrary.md, so the first commit holds the real index."""
    from llmunix.memory import library
    from llmunix.specs import registry
    from llmunix.workspace.layout import Workspace

    library_path = "system/SmartLibrary.md"
    if library_path in report.created:
        library.write_smart_library(registry.boot(Workspace(report.root)))


@app.command()
def boot(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Read and validate every agent and tool spec; show the system; refresh SmartLibrary.md."""
    from llmunix.cli import report
    from llmunix.memory import library
    from llmunix.specs import registry

    ws = _workspace()
    ws.config  # noqa: B018 - boot also validates llmunix.toml
    booted = registry.boot(ws)
    library.write_smart_library(booted)
    if json_out:
        report.print_json(report.boot_to_dict(booted))
    else:
        from llmunix.cli import ui

        ui.print_boot(booted)
    if not booted.ok:
        raise typer.Exit(1)


def _registry(project: str | None):
    from llmunix.specs.registry import load_registry

    ws = _workspace()
    return load_registry(ws, _project(ws, project) if project else None)


@agents_app.command("list")
def agents_list(
    project: str | None = typer.Option(None, "--project", "-p", help="Include a project's agents."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the agents in effect."""
    from llmunix.cli import report, ui

    reg = _registry(project)
    if json_out:
        report.print_json([report.agent_to_dict(a, reg.workspace.root)
                           for a in reg.agents.values()])
    else:
        ui.print_agents(reg)


@agents_app.command("show")
def agents_show(
    name: str,
    project: str | None = typer.Option(None, "--project", "-p", help="Include a project's agents."),
) -> None:
    """Show one agent: its settings and its prompt."""
    from llmunix.cli import ui
    from llmunix.errors import SpecError

    reg = _registry(project)
    agent = reg.agents.get(name)
    if agent is None:
        raise SpecError(f"no agent named {name!r}", hint="see `llmunix agents list`")
    ui.print_agent(agent, reg.workspace.root)


@tools_app.command("list")
def tools_list(
    project: str | None = typer.Option(None, "--project", "-p", help="Include a project's tools."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the tool specs in effect."""
    from llmunix.cli import report, ui

    reg = _registry(project)
    if json_out:
        report.print_json([report.tool_to_dict(t, reg.workspace.root)
                           for t in reg.tools.values()])
    else:
        ui.print_tools(reg)


@tools_app.command("show")
def tools_show(
    name: str,
    project: str | None = typer.Option(None, "--project", "-p", help="Include a project's tools."),
) -> None:
    """Show one tool: kind, input schema, how it runs."""
    from llmunix.cli import ui

    reg = _registry(project)
    ui.print_tool(_tool(reg, name), reg.workspace.root)


def _tool(reg, name: str):
    from llmunix.errors import ToolError

    tool = reg.tools.get(name)
    if tool is None:
        raise ToolError(f"no tool named {name!r}", hint="see `llmunix tools list`")
    return tool


@tools_app.command("run")
def tools_run(
    name: str,
    arg: list[str] = typer.Option([], "--arg", "-a", help="An argument as key=value (repeatable)."),
    json_args: str | None = typer.Option(None, "--json-args", help="All arguments as JSON."),
    project: str | None = typer.Option(None, "--project", "-p", help="Project to run in."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds before it is killed."),
) -> None:
    """Run a command or python tool directly, in the project's workspace folder."""
    import json

    from llmunix.cli import ui
    from llmunix.errors import ToolError
    from llmunix.specs.registry import load_registry
    from llmunix.tools import spec_exec as tool_exec

    ws = _workspace()
    proj = ws.ensure_project(project or ws.config.run.project)
    reg = load_registry(ws, proj)
    spec = _tool(reg, name)
    args = {}
    if json_args:
        try:
            args = json.loads(json_args)
        except json.JSONDecodeError as exc:
            raise ToolError(f"--json-args is not valid JSON: {exc.msg}") from exc
        if not isinstance(args, dict):
            raise ToolError("--json-args must be a JSON object")
    args.update(tool_exec.coerce_cli_args(spec, arg))
    result = tool_exec.run_tool_spec(spec, args, cwd=proj.workspace_dir, timeout_s=timeout)
    ui.print_tool_result(spec, result)
    if result.is_error:
        raise typer.Exit(1)


@app.command()
def run(
    goal: str = typer.Argument(..., help="What to achieve, in plain words."),
    project: str | None = typer.Option(None, "--project", "-p", help="Project (default: default)."),
    agent: str | None = typer.Option(None, "--agent", help="Agent receiving the goal."),
    runtime: str | None = typer.Option(None, "--runtime", help="claude | openai | replay."),
    model: str | None = typer.Option(None, "--model", help="Model name for the runtime."),
    max_turns: int | None = typer.Option(None, "--max-turns", min=1, help="Model turns, at most."),
    budget: float | None = typer.Option(None, "--budget", min=0, help="USD, at most."),
    timeout: float | None = typer.Option(None, "--timeout", min=0.001, help="Seconds, at most."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    mode: str = typer.Option(
        "auto", "--mode",
        help="auto (from learned traces) | learner | follower (replay, no model) | mixed.",
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per event on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the result."),
) -> None:
    """Run a goal: the orchestrator plans and delegates; every step goes into a trace."""
    from llmunix.errors import LlmunixError
    from llmunix.run import runner

    if mode not in ("auto", "learner", "follower", "mixed"):
        raise LlmunixError(f"unknown mode {mode!r}",
                           hint="choose auto, learner, follower or mixed")
    options = {"base_url": base_url} if base_url else {}
    request = runner.RunRequest(
        goal=goal, project=project, agent=agent, runtime=runtime, model=model,
        max_turns=max_turns, budget_usd=budget, timeout_s=timeout, runtime_options=options,
        mode=mode,
    )
    _run(request, json_out, quiet)


def _run(request, json_out: bool, quiet: bool) -> None:
    from llmunix.cli import view
    from llmunix.run import runner

    ws = _workspace()
    outcome = runner.run(ws, request, view.make_view(json_lines=json_out, quiet=quiet))
    if not json_out and outcome.result:
        typer.echo(outcome.result)
    raise typer.Exit(outcome.exit_code)


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


@app.command()
def watch(
    project: str | None = typer.Option(
        None, "--project", "-p",
        help="Watch this project's specs with the system and user ones (default: every project).",
    ),
    json_out: bool = typer.Option(
        False, "--json",
        help="One JSON object per line: event, path, kind, name, scope, error, hash, active_hash.",
    ),
) -> None:
    """Validate specs as you write them: one line per change (added, reloaded, error with file,
    line and cause, removed). Runs until interrupted; Ctrl-C or SIGTERM ends it with exit 0."""
    from llmunix.cli import shell

    shell.run_watch(_workspace(), project, json_lines=json_out)


@app.command("shell")
def shell_command(
    project: str | None = typer.Option(None, "--project", "-p", help="Project (default: default)."),
    agent: str | None = typer.Option(None, "--agent", help="Agent receiving the goals."),
    runtime: str | None = typer.Option(None, "--runtime", help="claude | openai."),
    model: str | None = typer.Option(None, "--model", help="Model name for the runtime."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
) -> None:
    """Interactive: each line is a goal, run with the specs as they are at that moment (edits
    apply without a restart). :help lists the commands (:agents, :reload, :trace, :cost,
    :quit). Ctrl-C stops the running goal, not the shell; Ctrl-D or :quit leaves (exit 0)."""
    from llmunix.cli import shell

    options = shell.ShellOptions(project, agent, runtime, model, base_url)
    raise typer.Exit(shell.run_shell(_workspace(), options))


memory_app = typer.Typer(
    help="Consolidate, search, diff and revert memory.", no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(memory_app, name="memory")


@app.command("log")
def log_command(
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project's runs."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most N runs."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs from the git history: date, goal, mode, status, cost."""
    from llmunix.cli import memory_view as show
    from llmunix.memory import history

    show.print_runs(history.runs(_workspace(), project, limit), json_out)


@memory_app.command("consolidate")
def memory_consolidate(
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
    summarize: bool = typer.Option(
        False, "--summarize",
        help="Also let the memory-consolidation-agent write learnings (needs a model runtime).",
    ),
    runtime: str | None = typer.Option(None, "--runtime", help="Runtime for --summarize."),
    model: str | None = typer.Option(None, "--model", help="Model for --summarize."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Distil successful runs into long-term traces, promote patterns proven across projects,
    refresh SmartLibrary.md, prune old short-term traces; one commit. No model needed."""
    from llmunix.cli import memory_view as show
    from llmunix.cli import view
    from llmunix.memory import consolidate

    emit = view.make_view(json_lines=False, quiet=json_out)  # a --summarize run, on stderr
    report = consolidate(
        _workspace(), project, summarize=summarize, runtime=runtime, model=model,
        runtime_options={"base_url": base_url} if base_url else {}, emit=emit,
    )
    show.print_consolidation(report, json_out)


@memory_app.command("search")
def memory_search(
    query: str = typer.Argument(..., help="Words to look for."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Only this project (and system-wide memory)."
    ),
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="At most N entries."),
    reindex: bool = typer.Option(
        False, "--reindex", help="Rebuild the index first (after editing memory files in place)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank entries of every memory tier (short-term, long-term, memory log, SmartLibrary)."""
    from llmunix.cli import memory_view as show
    from llmunix.memory import search

    hits = search(_workspace(), query, project=project, limit=limit, reindex=reindex)
    show.print_hits(hits, json_out)


@memory_app.command("diff")
def memory_diff(
    rev: str = typer.Argument("HEAD~1", help="Compare memory with this revision."),
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
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


def main() -> None:
    from llmunix.errors import EXIT_INTERRUPTED, LlmunixError

    try:
        app(prog_name="llmunix")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except LlmunixError as exc:
        from llmunix.cli import ui

        ui.print_error(exc)
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = EXIT_INTERRUPTED
    _exit(code)


def _exit(code: int) -> None:
    """Exit with `code`. After a run, Python's teardown of the model SDKs' many modules takes
    ~0.3 s with nothing left to do: every file is closed and every commit made, so exit at once
    once the exit handlers have run and the output is flushed."""
    if "claude_agent_sdk" not in sys.modules and "openai" not in sys.modules:
        sys.exit(code)
    import atexit
    import os

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
