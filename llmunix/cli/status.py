"""`llmunix status`: the kernel's state of a project, its effects and its last changes."""

from __future__ import annotations

import typer

from llmunix.cli.app import _workspace, app


@app.command("status")
def status_command(
    project: str | None = typer.Option(None, "--project", "-p", help="This project's state."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The kernel's state (safety, curiosity, energy, confidence), what it changes in the next
    runs, and what changed it lately (memory/state.md; git has every change)."""
    from llmunix.cli.report import print_json
    from llmunix.cli.ui import out
    from llmunix.kernel import state as kstate
    from llmunix.workspace.layout import relative_path

    ws = _workspace()
    proj = ws.project(project or ws.config.run.project)
    path = kstate.state_path(proj.root)
    rel = relative_path(path, ws.root)
    if not ws.config.state.enabled:
        if json_out:
            print_json({"project": proj.name, "enabled": False})
        else:
            out.print(f"kernel state of project {proj.name}: off ([state] enabled = false)",
                      markup=False)
        return
    current = kstate.load(path)
    conf = ws.config.memory
    effects = kstate.effects(current, conf.follower_threshold, conf.mixed_threshold)
    if json_out:
        print_json({"project": proj.name, "enabled": True, "path": rel, **current.values(),
                    "runs": current.runs, "replay_streak": current.replay_streak,
                    "effects": effects, "history": current.history})
        return
    since = f"{current.runs} run(s)" if path.exists() else "no run yet: the defaults"
    out.print(f"kernel state of project {proj.name} ({rel}, {since})", markup=False)
    for name, value in current.values().items():
        out.print(f"  {name:<11} {value:.2f}", markup=False)
    out.print("effects:" if effects else "effects: none (every value is near its default)",
              markup=False)
    for effect in effects:
        out.print(f"  - {effect}", markup=False, soft_wrap=True)
    if current.history:
        out.print("last changes:", markup=False)
        for line in current.history[:10]:
            out.print(f"  - {line}", markup=False, soft_wrap=True)
