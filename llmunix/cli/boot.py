"""`llmunix init` and `llmunix boot`."""

from __future__ import annotations

from pathlib import Path

import typer

from llmunix.cli.app import app


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
    from llmunix.cli import direct

    code = direct.boot_command(json_out)
    if code:
        raise typer.Exit(code)
