"""`llmunix mcp list`: the MCP servers configured (the workspace's .mcp.json and the agents'
mcpServers), each started once to show its status and tools."""

from __future__ import annotations

import typer

from llmunix.cli.app import _registry, app, group
from llmunix.cli.complete import project_option

mcp_app = group("MCP servers: configured, started, their tools.")
app.add_typer(mcp_app, name="mcp")


@mcp_app.command("list")
def mcp_list(
    project: str | None = project_option("Include a project's agents' servers."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    no_start: bool = typer.Option(False, "--no-start", help="Show the configuration only."),
) -> None:
    """List MCP servers: where each is defined, whether it starts, and its tools."""
    import asyncio
    from pathlib import Path

    from llmunix.cli import report
    from llmunix.mcp.client import McpHub
    from llmunix.mcp.scope import servers_of
    from llmunix.run.runner import build_sandbox
    from llmunix.workspace.layout import relative_path

    reg = _registry(project)
    ws = reg.workspace
    root = ws.root
    configs = servers_of(reg.agents.values(), reg.mcp_servers)
    for name, cfg in reg.mcp_servers.items():
        configs.setdefault(name, cfg)
    # Started as a run starts them: in the sandbox, in a project's workspace folder.
    where = (reg.project or ws.project(ws.config.run.project)).workspace_dir
    where = where if where.is_dir() else root
    hub = McpHub(configs.values(), cwd=str(where), sandbox=build_sandbox(ws, where))
    if not no_start:
        async def probe() -> None:
            try:
                await hub.start()
            finally:
                await hub.aclose()

        asyncio.run(probe())
    rows = []
    for name, state in sorted(hub.servers.items()):
        cfg = state.config
        users = sorted(a.name for a in reg.agents.values()
                       if name in servers_of([a], reg.mcp_servers))
        rows.append({
            "name": name, "type": cfg.type, "target": configs[name].describe(),
            "source": relative_path(Path(cfg.source), root) if cfg.source else "",
            "required": cfg.required,
            "status": "not started" if no_start else
            ("ok" if state.status in ("running", "stopped") and not state.error else "failed"),
            "error": state.error,
            "start_s": round(state.start_s, 3), "tools_list_s": round(state.list_s, 4),
            "tools": [{"name": t.full_name, "description": t.description} for t in state.tools],
            "agents": users,
        })
    if json_out:
        report.print_json(rows)
        return
    if not rows:
        typer.echo("no MCP servers configured (.mcp.json, or mcpServers in an agent)")
        return
    for row in rows:
        timing = f"  started in {row['start_s']:.2f} s" if row["status"] == "ok" else ""
        typer.echo(f"{row['name']}  {row['type']}  {row['status']}{timing}  {row['target']}"
                   f"  ({row['source'] or 'agent'})")
        if row["error"]:
            typer.echo(f"  {row['error']}")
        for tool in row["tools"]:
            typer.echo(f"  {tool['name']}  {tool['description'].splitlines()[0][:80]}"
                       if tool["description"] else f"  {tool['name']}")
        if row["agents"]:
            typer.echo(f"  used by: {', '.join(row['agents'])}")
    if any(r["status"] == "failed" for r in rows):
        raise typer.Exit(1)
