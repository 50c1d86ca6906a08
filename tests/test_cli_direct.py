"""`llmunix run` read without typer (cli/launch.py direct_args): for every command line it
takes, the run gets exactly what typer's `run` command would pass; anything else is typer's."""

from __future__ import annotations

import pytest

from llmunix.cli import direct, home, launch
from llmunix.cli.main import _app

TAKEN = [
    ["run", "Turn the notes into action items"],
    ["run", "goal", "--project", "hello-notes", "--mode", "follower", "-q"],
    ["run", "--json", "goal text", "-p", "x", "--agent=writer", "--runtime", "replay",
     "--model", "m", "--base-url", "http://127.0.0.1:1/v1", "--output-format", "stream-json",
     "--include-partial-messages", "--quiet"],
    ["--home", "/tmp/somewhere", "run", "g"],
    ["--home=/tmp/elsewhere", "run", "g", "--mode=learner"],
    ["run", "-"],
    ["run", "g", "--mode", "mixed", "--mode", "follower"],  # the last one wins, as in typer
    ["run", "g", "--project="],
    ["run", "/review src"],
]

LEFT_TO_TYPER = [
    ["run", "--help"], ["run", "g", "-h"], ["run", "g", "--max-turns", "3"],
    ["run", "g", "--budget", "0"], ["run", "g", "--timeout", "5"], ["run"], ["run", "a", "b"],
    ["run", "g", "--", "x"], ["run", "g", "-x"], ["run", "g", "--project"],
    ["run", "g", "--project", "--quiet"], ["run", "g", "--json=1"], ["run", "g", "-qp", "x"],
    ["agents", "list"], ["--version"], [], ["--home", "run", "g"],
]


def through_typer(argv: list[str], monkeypatch) -> tuple[dict, str | None]:
    seen: dict = {}

    def start_run(*args):
        names = ["goal", "project", "agent", "runtime", "model", "max_turns", "budget",
                 "timeout", "base_url", "mode", "output_format", "partial", "json_out", "quiet"]
        seen.update(zip(names, args, strict=True))
        return 0

    monkeypatch.setattr(launch, "start_run", start_run)
    home.STATE["home"] = None
    with pytest.raises(SystemExit):
        _app()(argv, prog_name="llmunix")
    return seen, home.STATE["home"]


@pytest.mark.parametrize("argv", TAKEN, ids=" ".join)
def test_direct_reading_equals_typers(argv, monkeypatch):
    monkeypatch.delenv("_LLMUNIX_COMPLETE", raising=False)
    expected, expected_home = through_typer(argv, monkeypatch)
    home.STATE["home"] = None
    assert launch.direct_args(argv) == expected
    assert home.STATE["home"] == expected_home


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_anything_else_is_left_to_typer(argv, monkeypatch):
    monkeypatch.delenv("_LLMUNIX_COMPLETE", raising=False)
    assert launch.direct_args(argv) is None


def test_shell_completion_is_left_to_typer(monkeypatch):
    monkeypatch.setenv("_LLMUNIX_COMPLETE", "complete_bash")
    assert launch.direct_args(["run", "g"]) is None


def test_typer_and_the_direct_path_know_the_same_options():
    command = next(c for c in _app().registered_commands if c.callback.__name__ == "run")
    import inspect

    declared = set()
    for param in inspect.signature(command.callback).parameters.values():
        info = param.default
        declared.update(d for d in getattr(info, "param_decls", ()) or () if d.startswith("-"))
    numeric = {"--max-turns", "--budget", "--timeout"}  # left to typer's checks
    assert declared == set(launch.VALUE_OPTIONS) | set(launch.FLAGS) | numeric


# ---------------------------------------------------------------- consolidate, log, boot

DIRECT_TAKEN = [
    ["memory", "consolidate"], ["memory", "consolidate", "--full", "--json", "-p", "x"],
    ["--home", "/tmp/w", "memory", "consolidate", "--project=p"],
    ["log"], ["log", "-n", "5", "--json"], ["log", "--all", "-p", "x"], ["log", "--limit=1"],
    ["boot"], ["boot", "--json"], ["--home=/tmp/v", "boot"],
    ["memory", "search", "bonsai watering"], ["memory", "search", "x", "-n", "3", "--json"],
    ["memory", "search", "--reindex", "-p", "p", "water"],
]

DIRECT_LEFT_TO_TYPER = [
    ["memory", "consolidate", "--summarize"], ["memory", "consolidate", "--runtime", "openai"],
    ["memory", "consolidate", "--help"], ["memory", "consolidate", "extra"],
    ["log", "-n", "0"], ["log", "-n", "x"], ["log", "--limit", "-1"], ["log", "-an", "2"],
    ["boot", "--help"], ["boot", "--json=yes"], ["memory"], ["memory", "search"],
    ["memory", "search", "a", "b"], ["memory", "search", "-"], ["memory", "search", "x", "-n", "0"],
    ["log", "extra"],
]

BODIES = {"memory consolidate": "consolidate_command", "memory search": "search_command",
          "log": "log_command", "boot": "boot_command"}
REAL = {name: getattr(direct, name) for name in BODIES.values()}


def _called(argv: list[str], monkeypatch, through_typer: bool) -> tuple[dict, str | None]:
    """What the command's body was called with, read by typer or by direct_command."""
    import inspect

    seen: dict = {}
    for name, real in REAL.items():
        def record(*args, _real=real, **kwargs):
            bound = inspect.signature(_real).bind(*args, **kwargs)
            bound.apply_defaults()
            seen.update(bound.arguments)
            return 0

        monkeypatch.setattr(direct, name, record)
    home.STATE["home"] = None
    if through_typer:
        with pytest.raises(SystemExit):
            _app()(argv, prog_name="llmunix")
    else:
        command = direct.direct_command(argv)
        assert command is not None
        assert command() == 0
    return seen, home.STATE["home"]


@pytest.mark.parametrize("argv", DIRECT_TAKEN, ids=" ".join)
def test_short_commands_read_directly_get_what_typer_gives(argv, monkeypatch):
    monkeypatch.delenv("_LLMUNIX_COMPLETE", raising=False)
    expected = _called(argv, monkeypatch, through_typer=True)
    assert expected[0]  # typer called the same body
    assert _called(argv, monkeypatch, through_typer=False) == expected


@pytest.mark.parametrize("argv", DIRECT_LEFT_TO_TYPER, ids=" ".join)
def test_short_commands_left_to_typer(argv, monkeypatch):
    monkeypatch.delenv("_LLMUNIX_COMPLETE", raising=False)
    assert direct.direct_command(argv) is None


@pytest.mark.parametrize("words", list(BODIES))
def test_typer_and_the_direct_reader_know_the_same_options(words):
    import inspect

    app = _app()
    *group, name = words.split()
    commands = app.registered_commands if not group else next(
        g.typer_instance for g in app.registered_groups if g.name == group[0]
    ).registered_commands
    command = next(c for c in commands if (c.name or c.callback.__name__) == name)
    declared = set()
    for param in inspect.signature(command.callback).parameters.values():
        declared.update(d for d in getattr(param.default, "param_decls", ()) or ()
                        if d.startswith("-"))
    _body, values, flags, numbers, _positional = direct.COMMANDS[tuple(words.split())]
    typer_only = {"--summarize", "--runtime", "--model", "--base-url"} \
        if words == "memory consolidate" else set()
    assert declared == set(values) | set(flags) | set(numbers) | typer_only
