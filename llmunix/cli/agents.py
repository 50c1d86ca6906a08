"""`llmunix agents list|show`."""

from __future__ import annotations

import typer

from llmunix.cli import complete
from llmunix.cli.app import _registry, agents_app
from llmunix.cli.complete import project_option


@agents_app.command("list")
def agents_list(
    project: str | None = project_option("Include a project's agents."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the agents in effect."""
    from llmunix.cli import report, ui

    reg = _registry(project)
    if json_out:
        report.print_json([report.agent_to_dict(a, reg.workspace.root)
                           for a in reg.agents.values()])
    else:
        ui.print_agents(reg)


@agents_app.command("show")
def agents_show(
    name: str = typer.Argument(..., help="The agent's name.", autocompletion=complete.agents),
    project: str | None = project_option("Include a project's agents."),
) -> None:
    """Show one agent: its settings and its prompt."""
    from llmunix.cli import ui
    from llmunix.errors import SpecError

    reg = _registry(project)
    agent = reg.agents.get(name)
    if agent is None:
        raise SpecError(f"no agent named {name!r}", hint="see `llmunix agents list`")
    ui.print_agent(agent, reg.workspace.root)
