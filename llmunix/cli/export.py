"""`llmunix export claude`: write the agents in scope into `.claude/agents/` for Claude Code."""

from __future__ import annotations

from pathlib import Path

import typer

from llmunix.cli.app import _registry, app, group
from llmunix.cli.complete import project_option

export_app = group("Export llmunix specs for other tools.")
app.add_typer(export_app, name="export")


@export_app.command("claude")
def export_claude(
    project: str | None = project_option("Include a project's agents."),
    out: Path | None = typer.Option(None, "--out", help="Folder (default: .claude/agents)."),
) -> None:
    """Write every agent in scope as a Claude Code sub-agent file, and say what Claude Code will
    not enforce."""
    from llmunix.specs.export import to_claude
    from llmunix.workspace.layout import relative_path

    reg = _registry(project)
    root = reg.workspace.root
    folder = out or reg.workspace.claude_agents_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for agent in reg.agents.values():
        if agent.scope == "claude" and out is None:
            continue  # already a Claude Code file there
        text, lost = to_claude(agent)
        path = folder / f"{agent.name}.md"
        path.write_text(text, encoding="utf-8")
        written += 1
        shown = relative_path(path, root) if root in path.resolve().parents else str(path)
        typer.echo(f"wrote {shown}")
        if lost:
            typer.echo(f"  not enforced by Claude Code: {', '.join(lost)}")
    typer.echo(f"{written} agent(s) exported")
