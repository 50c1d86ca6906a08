"""The typer app, its command groups and the helpers every command uses. Commands live in one
module per group (boot, agents, tools, run, trace, watch, memory); cli/main.py registers them.

Imports beyond typer happen inside commands so `llmunix --help` stays fast.
"""

from __future__ import annotations

import typer

from llmunix import __version__
from llmunix.cli import home as home_state

# -h as well as --help, on every command; help text never wraps into a pipe's 80 columns.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

app = typer.Typer(
    name="llmunix",
    help="An operating system for LLM agents: markdown agents and tools, enforced policy, "
    "execution traces, replay, and memory versioned in git.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: typer's rich help formatter costs ~90 ms at start-up
    context_settings=CONTEXT,
)


def group(help_text: str) -> typer.Typer:
    """A command group (`llmunix agents ...`) with the app's conventions."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None,
                       context_settings=CONTEXT)


agents_app = group("List and inspect agents.")
tools_app = group("List, inspect and run tools.")
trace_app = group("Show, replay and view execution traces.")
app.add_typer(agents_app, name="agents")
app.add_typer(tools_app, name="tools")
app.add_typer(trace_app, name="trace")


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
    home_state.STATE["home"] = home


def _workspace():
    return home_state.workspace()


def _project(ws, name: str | None):
    return ws.project(name or ws.config.run.project)


def _registry(project: str | None):
    from llmunix.specs.registry import load_registry

    ws = _workspace()
    return load_registry(ws, _project(ws, project) if project else None)

