"""`llmunix tools list|show|run`."""

from __future__ import annotations

import typer

from llmunix.cli import complete
from llmunix.cli.app import _registry, _workspace, tools_app
from llmunix.cli.complete import project_option


@tools_app.command("list")
def tools_list(
    project: str | None = project_option("Include a project's tools."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the tool specs in effect."""
    from llmunix.cli import report, ui

    reg = _registry(project)
    if json_out:
        report.print_json([report.tool_to_dict(t, reg.workspace.root)
                           for t in reg.tools.values()])
    else:
        ui.print_tools(reg)


@tools_app.command("show")
def tools_show(
    name: str = typer.Argument(..., help="The tool's name.", autocompletion=complete.tools),
    project: str | None = project_option("Include a project's tools."),
) -> None:
    """Show one tool: kind, input schema, how it runs."""
    from llmunix.cli import ui

    reg = _registry(project)
    ui.print_tool(_tool(reg, name), reg.workspace.root)


def _tool(reg, name: str):
    from llmunix.errors import ToolError

    tool = reg.tools.get(name)
    if tool is None:
        raise ToolError(f"no tool named {name!r}", hint="see `llmunix tools list`")
    return tool


@tools_app.command("run")
def tools_run(
    name: str = typer.Argument(..., help="The tool's name.", autocompletion=complete.tools),
    arg: list[str] = typer.Option([], "--arg", "-a", help="An argument as key=value (repeatable)."),
    json_args: str | None = typer.Option(None, "--json-args", help="All arguments as JSON."),
    project: str | None = project_option("Project to run in."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds before it is killed."),
) -> None:
    """Run a command or python tool directly, in the project's workspace folder
    (projects/<project>/workspace/; the first line on stderr says which)."""
    import json

    from llmunix.cli import ui
    from llmunix.errors import ToolError
    from llmunix.specs.registry import load_registry
    from llmunix.tools import spec_exec as tool_exec
    from llmunix.workspace.layout import relative_path

    ws = _workspace()
    proj = ws.ensure_project(project or ws.config.run.project)
    reg = load_registry(ws, proj)
    spec = _tool(reg, name)
    args = {}
    if json_args:
        try:
            args = json.loads(json_args)
        except json.JSONDecodeError as exc:
            raise ToolError(f"--json-args is not valid JSON: {exc.msg}") from exc
        if not isinstance(args, dict):
            raise ToolError("--json-args must be a JSON object")
    args.update(tool_exec.coerce_cli_args(spec, arg))
    ui.print_tool_place(spec, proj.name, relative_path(proj.workspace_dir, ws.root) + "/")
    from llmunix.errors import PolicyDenied
    from llmunix.run.runner import build_policy, build_sandbox

    decision = build_policy(ws, proj.workspace_dir).check_path_args(spec.name, spec.input_schema,
                                                                     args)
    if not decision.allowed:
        raise PolicyDenied(decision.reason)

    result = tool_exec.run_tool_spec(spec, args, cwd=proj.workspace_dir, timeout_s=timeout,
                                     sandbox=build_sandbox(ws, proj.workspace_dir))
    ui.print_tool_result(spec, result)
    if result.is_error:
        raise typer.Exit(1)
