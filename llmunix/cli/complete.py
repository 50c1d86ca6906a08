"""Shell completion: the values of arguments (agents, tools, projects, trace ids, slash commands)
read from file names in the workspace, never by parsing specs, so a Tab press stays instant."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from llmunix.cli.app import app


def _root() -> Path | None:
    from llmunix.errors import LlmunixError
    from llmunix.workspace.layout import find_workspace

    try:
        return find_workspace(home=os.environ.get("LLMUNIX_HOME") or None).root
    except LlmunixError:
        return None


def _stems(folders: list[Path], incomplete: str) -> list[str]:
    names: set[str] = set()
    for folder in folders:
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.md") if not p.name.startswith("."))
    return sorted(n for n in names if n.startswith(incomplete))


def _projects(root: Path) -> list[Path]:
    folder = root / "projects"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def agents(incomplete: str) -> list[str]:
    root = _root()
    if root is None:
        return []
    folders = [root / "system" / "agents", root / ".claude" / "agents", root / "agents"]
    folders += [p / "agents" for p in _projects(root)]
    return _stems(folders, incomplete)


def tools(incomplete: str) -> list[str]:
    root = _root()
    if root is None:
        return []
    folders = [root / "system" / "tools", root / "tools"] + [p / "tools" for p in _projects(root)]
    return _stems(folders, incomplete)


def projects(incomplete: str) -> list[str]:
    root = _root()
    if root is None:
        return []
    return [p.name for p in _projects(root) if p.name.startswith(incomplete)]


def trace_ids(incomplete: str) -> list[str]:
    """`last`, then every run's trace id, newest first."""
    root = _root()
    if root is None:
        return []
    ids = _stems([p / "memory" / "short_term" for p in _projects(root)], incomplete)
    ids.sort(reverse=True)  # ids start with their UTC start time
    return (["last"] if "last".startswith(incomplete) else []) + ids


def goals(incomplete: str) -> list[str]:
    """A goal is free text; one starting with / completes to a slash command."""
    if not incomplete.startswith("/"):
        return []
    root = _root()
    if root is None:
        return []
    folders = [root / ".claude" / "commands", root / "commands"]
    return ["/" + n for n in _stems(folders, incomplete[1:])]


SHELLS = ("bash", "zsh", "fish")


def script(shell: str) -> str:
    """The completion script `eval "$(llmunix completion bash)"` loads."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="llmunix", complete_var="_LLMUNIX_COMPLETE",
                                 shell=shell)


@app.command("completion")
def completion(
    shell: str = typer.Argument(..., help="bash | zsh | fish."),
) -> None:
    """Print the shell completion script: add `eval "$(llmunix completion bash)"` to ~/.bashrc
    (zsh: ~/.zshrc). It completes commands, options, agents, tools, projects and trace ids."""
    from llmunix.errors import UsageError

    if shell not in SHELLS:
        raise UsageError(f"no completion for the shell {shell!r}",
                         hint="choose " + ", ".join(SHELLS))
    typer.echo(script(shell))


def project_option(help_text: str):
    return typer.Option(None, "--project", "-p", help=help_text, autocompletion=projects)


def agent_option(help_text: str):
    return typer.Option(None, "--agent", help=help_text, autocompletion=agents)
