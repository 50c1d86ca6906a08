"""`llmunix run` without typer: the goal and options checked, the run started with its view,
the exit code returned; and `direct_args`, which reads a plain `llmunix run` command line by
itself so a replayed goal does not pay for typer's start-up (~7% of a replay). Anything it does
not know for certain (help, completion, numbers, unknown or repeated short options) is left to
typer, which gives the same result and the usual errors. cli/direct.py reads a few other
short commands the same way."""

from __future__ import annotations

import gc
import os
import stat
import sys

from llmunix.cli.home import STATE, workspace

MAX_PIPED_CHARS = 1_000_000
OUTPUT_FORMATS = ("text", "json", "stream-json")
# The run command's options that `direct_args` reads: value options, then flags. The typer
# command (cli/run.py) declares the same names; a test holds the two together.
VALUE_OPTIONS = {"--project": "project", "-p": "project", "--agent": "agent",
                 "--runtime": "runtime", "--model": "model", "--base-url": "base_url",
                 "--mode": "mode", "--output-format": "output_format"}
FLAGS = {"--include-partial-messages": "partial", "--json": "json_out", "--quiet": "quiet",
         "-q": "quiet"}
DEFAULTS = {"project": None, "agent": None, "runtime": None, "model": None, "max_turns": None,
            "budget": None, "timeout": None, "base_url": None, "mode": "auto",
            "output_format": "text", "partial": False, "json_out": False, "quiet": False}


def split_home(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """(--home's value, the rest) of a command line; None when typer should read it."""
    if os.environ.get("_LLMUNIX_COMPLETE"):
        return None
    args = list(argv)
    if args[:1] == ["--home"] and len(args) > 1 and not args[1].startswith("-"):
        return args[1], args[2:]
    if args[:1] and args[0].startswith("--home="):
        return args[0].split("=", 1)[1], args[1:]
    return None, args


def read_options(rest: list[str], values: dict[str, str], flags: dict[str, str],
                 found: dict) -> str | None | bool:
    """Read `rest` into `found` (value options by `values`, flags by `flags`); returns the one
    positional argument (None when there is none), or False when typer should read the line:
    help, numbers, unknown or repeated short options, a missing value, `--`."""
    positional = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in values:
            if not eq:
                if i + 1 >= len(rest) or rest[i + 1].startswith("-"):
                    return False  # a missing value, or one typer may read otherwise
                value = rest[i + 1]
                i += 1
            found[values[name]] = value
        elif name in flags and not eq:
            found[flags[name]] = True
        elif arg == "-" or not arg.startswith("-"):
            if positional is not None:
                return False  # a second argument: typer says what is wrong
            positional = arg
        else:
            return False
        i += 1
    return positional


def direct_args(argv: list[str]) -> dict | None:
    """The arguments of `start_run` for `argv` (without the program name) when it is a plain
    `[--home DIR] run GOAL [options]` line; None when typer should read it."""
    split = split_home(argv)
    if split is None or split[1][:1] != ["run"]:
        return None
    home, args = split
    found = dict(DEFAULTS)
    goal = read_options(args[1:], VALUE_OPTIONS, FLAGS, found)
    if goal is None or goal is False:
        return None
    STATE["home"] = home
    return {"goal": goal, **found}


def start_run(goal: str, project: str | None, agent: str | None, runtime: str | None,
              model: str | None, max_turns: int | None, budget: float | None,
              timeout: float | None, base_url: str | None, mode: str, output_format: str,
              partial: bool, json_out: bool, quiet: bool) -> int:
    """Run a goal; the exit code."""
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

        request = expand_slash(workspace(), request)
    return run_request(request, json_out, quiet, output_format, partial)


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


def run_request(request, json_out: bool, quiet: bool, output_format: str = "text",
                partial: bool = False) -> int:
    """Run it with the view asked for; the exit code."""
    from llmunix.cli import view
    from llmunix.errors import LlmunixError
    from llmunix.run import runner

    events = view.make_view(json_lines=json_out, quiet=quiet, output_format=output_format,
                            partial=partial)
    spans = None
    try:
        ws = workspace()
        spans = telemetry_for(ws)
        # Start-up is over: what it built (modules, classes, config) lives until exit, so the
        # collector, off until now on the direct path, leaves it alone from here on.
        gc.freeze()
        gc.enable()
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
        sys.stdout.write(outcome.result + "\n")
        sys.stdout.flush()
    if outcome.commit_error:
        sys.stderr.write(f"error: commit: failed — {outcome.commit_error} (the trace is kept in "
                         f"{outcome.trace_path}; the next llmunix command commits it)\n")
    return outcome.exit_code


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
