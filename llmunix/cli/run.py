"""`llmunix run`: a goal, with the live view or JSON events."""

from __future__ import annotations

import typer

from llmunix.cli.app import _workspace, app


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
