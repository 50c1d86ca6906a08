"""`llmunix run`: a goal, with the live view, JSON events or Claude Code's stream-json."""

from __future__ import annotations

import typer

from llmunix.cli import complete
from llmunix.cli.app import app
from llmunix.cli.complete import agent_option, project_option


@app.command()
def run(
    goal: str = typer.Argument(
        ..., help="What to achieve, in plain words; `-` reads it from standard input.",
        autocompletion=complete.goals),
    project: str | None = project_option("Project (default: default)."),
    agent: str | None = agent_option("Agent receiving the goal."),
    runtime: str | None = typer.Option(None, "--runtime", help="claude | openai | replay."),
    model: str | None = typer.Option(None, "--model", help="Model name for the runtime."),
    max_turns: int | None = typer.Option(None, "--max-turns", min=1, help="Model turns, at most."),
    budget: float | None = typer.Option(None, "--budget", min=0, help="USD, at most."),
    timeout: float | None = typer.Option(None, "--timeout", min=0.001, help="Seconds, at most."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    mode: str = typer.Option(
        "auto", "--mode",
        help="auto (from learned traces) | learner | follower (replay, no model) | mixed | "
             "crystallized (a crystallized tool, no model).",
    ),
    output_format: str = typer.Option(
        "text", "--output-format",
        help="text (live view on stderr, result on stdout) | stream-json (Claude Code's "
             "event lines) | json (Claude Code's one result object)."),
    partial: bool = typer.Option(
        False, "--include-partial-messages",
        help="stream-json: also the model's text as it streams (stream_event lines)."),
    json_out: bool = typer.Option(False, "--json", help="llmunix's own events, one JSON object "
                                                        "per line on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the result."),
) -> None:
    """Run a goal: the orchestrator plans and delegates; every step goes into a trace. Text
    piped in (`cat notes.md | llmunix run "summarize this"`) reaches the model with the goal."""
    from llmunix.cli.launch import start_run

    raise typer.Exit(start_run(goal, project, agent, runtime, model, max_turns, budget, timeout,
                               base_url, mode, output_format, partial, json_out, quiet))


def _run(request, json_out: bool, quiet: bool) -> None:
    """Run `request` (`llmunix trace replay`) and exit with its code."""
    from llmunix.cli.launch import run_request

    raise typer.Exit(run_request(request, json_out, quiet))
