"""`llmunix init` and `llmunix boot`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from llmunix.cli.app import _workspace, app


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
    import gc

    from llmunix.cli import report
    from llmunix.specs import registry

    # A short command that builds an object or two per spec and keeps them all to the end:
    # the garbage collector would only walk them again and again (a fifth of a boot at 20,000).
    gc.disable()
    ws = _workspace()
    ws.config  # noqa: B018 - boot also validates llmunix.toml
    _check_policy_config(ws)
    booted = registry.boot(ws)
    _refresh_library(ws, booted)
    if json_out:
        report.print_json(report.boot_to_dict(booted))
    else:
        from llmunix.cli import ui

        ui.print_boot(booted)
    if not booted.ok:
        raise typer.Exit(1)


LIBRARY_STAMP = ".llmunix/library-stamp"


def _refresh_library(ws, booted) -> None:
    """Write SmartLibrary.md when what it shows may have changed: not when every spec file, every
    learned trace and the library itself are as the last boot left them (rendering it is
    O(every spec) for nothing, most boots)."""
    from llmunix.memory import library

    memo = ws.root / LIBRARY_STAMP
    inputs = _library_inputs(ws, booted)
    try:
        if inputs and memo.read_text(encoding="utf-8") == \
                f"{inputs} {_stamp(ws.smart_library_path)}\n":
            return
    except OSError:
        pass
    library.write_smart_library(booted)
    if inputs:
        import contextlib

        with contextlib.suppress(OSError):  # a read-only workspace: render it every boot
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
            tmp.write_text(f"{inputs} {_stamp(ws.smart_library_path)}\n", encoding="utf-8")
            os.replace(tmp, memo)


def _library_inputs(ws, booted) -> str:
    """A digest of what SmartLibrary.md is made of: the spec files (boot's fingerprint),
    each project's long-term folder, file by file with their stamps, and the code rendering it
    (an upgraded llmunix may render it otherwise)."""
    import hashlib
    import marshal

    from llmunix.memory import library

    if not booted.fingerprint:
        return ""
    learned = [_stamp(library.__file__)]
    for project in ws.projects():
        folder = str(project.long_term_dir)
        try:
            with os.scandir(folder) as entries:
                learned += sorted((folder, e.name, _stamp(e.path)) for e in entries)
        except OSError:
            learned.append((folder, None))
    digest = hashlib.blake2b(marshal.dumps(learned), digest_size=16).hexdigest()
    return f"{booted.fingerprint}-{digest}"


def _stamp(path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "none"
    return f"{st.st_size}.{st.st_ino}.{st.st_mtime_ns}.{st.st_ctime_ns}"


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
