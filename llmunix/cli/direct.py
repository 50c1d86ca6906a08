"""Short commands read and run without typer: plain `memory consolidate`, `memory search`,
`log` and `boot` lines. typer builds a pydantic adapter for each option it parses (~0.1 s of
start-up), more than these commands' own work on most workspaces. The bodies live here and the
typer commands (cli/memory.py, cli/boot.py) call the same functions, so both paths do the same
thing; a line this reader is not sure of (help, numbers it cannot check, unknown options,
`--summarize`) is left to typer, which gives the usual errors."""

from __future__ import annotations

import os
from collections.abc import Callable

from llmunix.cli.home import STATE, workspace
from llmunix.cli.launch import read_options, split_home
from llmunix.workspace.paths import file_stamp

LOG_DEFAULT = 20  # runs `llmunix log` lists unless told otherwise: the newest
LIBRARY_STAMP = ".llmunix/library-stamp"


def consolidate_command(project: str | None = None, full: bool = False,
                        json_out: bool = False, summarizer=None) -> int:
    from llmunix.cli import memory_view as show
    from llmunix.memory import consolidate

    report = consolidate(workspace(), project, summarizer=summarizer, full=full)
    show.print_consolidation(report, json_out)
    return 0


def log_command(project: str | None = None, limit: int | None = None, all_runs: bool = False,
                json_out: bool = False) -> int:
    from llmunix.cli import memory_view as show
    from llmunix.memory import history

    wanted = None if all_runs else limit or LOG_DEFAULT
    # one more than shown tells whether there are more, without reading the whole history
    runs = history.runs(workspace(), project, None if wanted is None else wanted + 1)
    show.print_runs(runs[:wanted], json_out)
    if wanted is not None and len(runs) > wanted and limit is None:
        show.print_more_runs(wanted)
    return 0


def search_command(query: str, project: str | None = None, limit: int = 10,
                   reindex: bool = False, json_out: bool = False) -> int:
    from llmunix.cli import memory_view as show
    from llmunix.memory import search

    show.print_hits(search(workspace(), query, project=project, limit=limit, reindex=reindex),
                    json_out)
    return 0


def boot_command(json_out: bool = False) -> int:
    import gc

    from llmunix.cli import report
    from llmunix.specs import registry

    # A short command that builds an object or two per spec and keeps them all to the end:
    # the garbage collector would only walk them again and again (a fifth of a boot at 20,000).
    gc.disable()
    ws = workspace()
    ws.config  # noqa: B018 - boot also validates llmunix.toml
    _check_policy_config(ws)
    booted = registry.boot(ws)
    _refresh_library(ws, booted)
    if json_out:
        report.print_json(report.boot_to_dict(booted))
    else:
        from llmunix.cli import ui

        ui.print_boot(booted)
    return 0 if booted.ok else 1


# ---------------------------------------------------------------- boot's helpers

def _check_policy_config(ws) -> None:
    """[policy] command patterns compile now, not at the first Bash call of some later run."""
    from llmunix.errors import ConfigError
    from llmunix.policy.gate import Policy

    conf = ws.config.policy
    try:
        Policy(ws.root, deny_commands=list(conf.deny_commands),
               allow_commands=conf.allow_commands or None)
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"[policy]: {getattr(exc, 'message', exc)}", path=ws.config_path,
                          hint="fix the pattern in llmunix.toml") from None


def _refresh_library(ws, booted) -> None:
    """Write SmartLibrary.md when what it shows may have changed: not when every spec file, every
    learned trace and the library itself are as the last boot left them (rendering it is
    O(every spec) for nothing, most boots)."""
    import contextlib

    from llmunix.memory import library
    from llmunix.specs.frontmatter import atomic_write

    memo = ws.root / LIBRARY_STAMP
    inputs = _library_inputs(ws, booted)
    try:
        if inputs and memo.read_text(encoding="utf-8") == \
                f"{inputs} {file_stamp(ws.smart_library_path)}\n":
            return
    except OSError:
        pass
    library.write_smart_library(booted)
    if inputs:
        with contextlib.suppress(OSError):  # a read-only workspace: render it every boot
            atomic_write(memo, f"{inputs} {file_stamp(ws.smart_library_path)}\n", ws.root)


def _library_inputs(ws, booted) -> str:
    """A digest of what SmartLibrary.md is made of: the spec files (boot's fingerprint),
    each project's long-term folder, file by file with their stamps, and the code rendering it
    (an upgraded llmunix may render it otherwise)."""
    import hashlib
    import marshal

    from llmunix.memory import library

    if not booted.fingerprint:
        return ""
    learned = [file_stamp(library.__file__)]
    for project in ws.projects():
        folder = str(project.long_term_dir)
        try:
            with os.scandir(folder) as entries:
                learned += sorted((folder, e.name, file_stamp(e.path)) for e in entries)
        except OSError:
            learned.append((folder, None))
    digest = hashlib.blake2b(marshal.dumps(learned), digest_size=16).hexdigest()
    return f"{booted.fingerprint}-{digest}"


# ---------------------------------------------------------------- reading the line

PROJECT = {"--project": "project", "-p": "project"}
JSON = {"--json": "json_out"}
# words -> (the body's name in this module, value options, flags, numeric options: at least 1,
# the name of its one positional argument or None)
COMMANDS: dict[tuple[str, ...], tuple[str, dict, dict, dict, str | None]] = {
    ("memory", "consolidate"): ("consolidate_command", PROJECT, {"--full": "full", **JSON}, {},
                                None),
    ("memory", "search"): ("search_command", PROJECT, {"--reindex": "reindex", **JSON},
                           {"--limit": "limit", "-n": "limit"}, "query"),
    ("log",): ("log_command", PROJECT, {"--all": "all_runs", "-a": "all_runs", **JSON},
               {"--limit": "limit", "-n": "limit"}, None),
    ("boot",): ("boot_command", {}, JSON, {}, None),
}


def direct_command(argv: list[str]) -> Callable[[], int] | None:
    """The command `argv` (without the program name) asks for, ready to run, when it is a
    plain line of one of COMMANDS; None when typer should read it."""
    split = split_home(argv)
    if split is None:
        return None
    home, args = split
    words = next((w for w in COMMANDS if tuple(args[:len(w)]) == w), None)
    if words is None:
        return None
    body, values, flags, numbers, positional = COMMANDS[words]
    found: dict = {}
    given = read_options(args[len(words):], {**values, **numbers}, flags, found)
    if given is False or (given is None) != (positional is None) or given == "-":
        return None  # a missing or unexpected argument, or a line typer should read
    if positional is not None:
        found[positional] = given
    for key in set(numbers.values()) & found.keys():
        if not found[key].isdigit() or int(found[key]) < 1:
            return None  # typer says what is wrong
        found[key] = int(found[key])
    STATE["home"] = home
    return lambda: globals()[body](**found)
