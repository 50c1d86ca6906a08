"""`llmunix watch` and `llmunix shell`: the commands that keep specs live while you edit."""

from __future__ import annotations

import typer

from llmunix.cli.app import _workspace, app
from llmunix.cli.complete import agent_option, project_option


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
    project: str | None = project_option("Project (default: default)."),
    agent: str | None = agent_option("Agent receiving the goals."),
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
