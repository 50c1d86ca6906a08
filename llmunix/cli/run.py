"""`llmunix run`: a goal, with the live view, JSON events or Claude Code's stream-json."""

from __future__ import annotations

import os
import stat
import sys

import typer

from llmunix.cli import complete
from llmunix.cli.app import _workspace, app
from llmunix.cli.complete import agent_option, project_option

MAX_PIPED_CHARS = 1_000_000
OUTPUT_FORMATS = ("text", "json", "stream-json")


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
    from llmunix.errors import UsageError
    from llmunix.run import runner

    if mode not in ("auto", "learner", "follower", "mixed", "crystallized"):
        raise UsageError(f"unknown mode {mode!r}",
                         hint="choose auto, learner, follower, mixed or crystallized")
    if output_format not in OUTPUT_FORMATS:
        raise UsageError(f"unknown output format {output_format!r}",
                         hint="choose " + ", ".join(OUTPUT_FORMATS))
    piped = ""
    if goal == "-":
        goal = sys.stdin.read().strip()
        if not goal:
            raise UsageError("no goal on standard input", hint='echo "<goal>" | llmunix run -')
    else:
        piped = piped_input()
    goal = checked_text("the goal", goal)
    options = {"base_url": checked_url(base_url)} if base_url else {}
    request = runner.RunRequest(
        goal=goal, project=project, agent=agent, runtime=runtime, model=model,
        max_turns=max_turns, budget_usd=budget, timeout_s=timeout, runtime_options=options,
        mode=mode, piped_input=piped,
    )
    if goal.startswith("/"):
        from llmunix.run.commands import expand_slash

        request = expand_slash(_workspace(), request)
    _run(request, json_out, quiet, output_format, partial)


def checked_text(what: str, value: str) -> str:
    """Command-line text as it must be to be recorded: UTF-8 (bytes that are not arrive as
    lone surrogates), not empty."""
    from llmunix.errors import UsageError

    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} is not valid UTF-8 text",
                         hint="check the terminal's encoding (e.g. LANG=C.UTF-8)") from None
    if not value.strip():
        raise UsageError(f"{what} is empty", hint="say what the run should achieve")
    return value


def checked_url(url: str) -> str:
    """--base-url: an http(s) URL with a host (and a valid port, if any)."""
    from urllib.parse import urlsplit

    from llmunix.errors import UsageError

    checked_text("--base-url", url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"--base-url {url!r} is not a valid URL: {exc}",
                         hint="e.g. http://127.0.0.1:11434/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url {url!r} is not an http(s) URL with a host",
                         hint="e.g. http://127.0.0.1:11434/v1")
    return url


def piped_input() -> str:
    """What a pipe or a redirected file holds on stdin; nothing for a terminal or /dev/null."""
    from llmunix.errors import UsageError

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return ""
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return ""
    text = sys.stdin.read(MAX_PIPED_CHARS + 1)
    if len(text) > MAX_PIPED_CHARS:
        raise UsageError(f"more than {MAX_PIPED_CHARS:,} characters were piped in",
                         hint="name the file in the goal instead; the agent can Read it")
    return text


def _run(request, json_out: bool, quiet: bool, output_format: str = "text",
         partial: bool = False) -> None:
    from llmunix.cli import view
    from llmunix.errors import LlmunixError
    from llmunix.run import runner

    events = view.make_view(json_lines=json_out, quiet=quiet, output_format=output_format,
                            partial=partial)
    spans = None
    try:
        ws = _workspace()
        spans = telemetry_for(ws)
        outcome = runner.run(ws, request, events if spans is None else both(events, spans))
    except LlmunixError as exc:
        if hasattr(events, "fail"):  # stream-json still ends with a result
            events.fail(str(exc))
        raise
    finally:
        events.close()
        if spans is not None:
            spans.close()
    if output_format == "text" and not json_out and outcome.result:
        typer.echo(outcome.result)
    if outcome.commit_error:
        sys.stderr.write(f"error: commit: failed — {outcome.commit_error} (the trace is kept in "
                         f"{outcome.trace_path}; the next llmunix command commits it)\n")
    raise typer.Exit(outcome.exit_code)


def telemetry_for(ws):
    """The OTLP span recorder when an endpoint is configured (the SDK loads only then)."""
    from llmunix import telemetry

    if not telemetry.endpoint(ws.config):
        return None
    from llmunix.kernel.redact import Redactor

    return telemetry.recorder(ws.config, Redactor.from_environment())


def both(first, second):
    def emit(event) -> None:
        first(event)
        second(event)

    return emit
