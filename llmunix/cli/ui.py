"""Terminal output for the CLI (rich). Library modules never print; the CLI calls these."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmunix.cli.report import agent_to_dict, all_overrides, memory_counts, tool_to_dict
from llmunix.errors import LlmunixError
from llmunix.workspace.layout import relative_path as _rel

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


def print_error(exc: LlmunixError) -> None:
    where = exc.location()
    prefix = f"{where}: " if where else ""
    err.print(f"[bold red]error:[/] {escape(prefix + exc.message)}", soft_wrap=True)
    if exc.hint:
        err.print(f"  [dim]hint:[/] {escape(exc.hint)}", soft_wrap=True)


def print_init(report) -> None:
    out.print(f"[green]Workspace ready:[/] {report.root}")
    out.print(f"  {len(report.created)} files created", end="")
    out.print(f", {len(report.kept)} existing files kept" if report.kept else "")
    for rel in report.kept[:20]:
        out.print(f"  [dim]kept[/] {rel}")
    if report.committed:
        out.print(f"  git: first commit {report.committed[:10]}")
    out.print("Next: [bold]llmunix boot[/] to see the system, "
              "[bold]llmunix run \"<goal>\"[/] to run a goal.")


def _agents_table(agents, root: Path, title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for col in ("agent", "scope", "model", "tools", "file"):
        table.add_column(col, overflow="fold")
    for a in agents:
        tools = ", ".join(a.tools) if a.tools is not None else "(all)"
        table.add_row(a.name, a.scope, a.model or "-", tools, _rel(a.path, root))
    return table


def _tools_table(tools, root: Path, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("tool", "kind", "scope", "description", "file"):
        table.add_column(col, overflow="fold")
    for t in tools:
        table.add_row(t.name, t.kind, t.scope, t.description, _rel(t.path, root))
    return table


def print_boot(report) -> None:
    reg = report.registry
    root = reg.workspace.root
    out.print(f"[bold]llmunix[/] workspace {root}")
    out.print(_agents_table(reg.agents.values(), root, "Agents"))
    out.print(_tools_table(reg.tools.values(), root, "Tools"))
    for title, specs in (("Skills", reg.skills.values()), ("Commands", reg.commands.values())):
        if specs:
            table = Table(title=title, title_justify="left")
            for col in ("name", "scope", "description", "path"):
                table.add_column(col)
            for spec in specs:
                name = f"/{spec.name}" if title == "Commands" else spec.name
                table.add_row(name, spec.scope, spec.description[:70], _rel(spec.path, root))
            out.print(table)
    projects = Table(title="Projects", title_justify="left")
    for col in ("project", "own agents", "own tools", "short-term", "long-term"):
        projects.add_column(col)
    for name, p in report.projects.items():
        counts = memory_counts(p.project)
        own_a = [a.name for a in p.agents.values() if a.scope.startswith("project:")]
        own_t = [t.name for t in p.tools.values() if t.scope.startswith("project:")]
        projects.add_row(name, ", ".join(own_a) or "-", ", ".join(own_t) or "-",
                         str(counts["short_term"]), str(counts["long_term"]))
    out.print(projects)
    for o in all_overrides(report):
        out.print(f"[cyan]override:[/] {o.kind} '{o.name}' from {_rel(o.winner, root)} "
                  f"({o.winner_scope}) replaces {_rel(o.loser, root)} ({o.loser_scope})")
    print_diagnostics(report.diagnostics)
    errors = sum(d.severity == "error" for d in report.diagnostics)
    warnings = len(report.diagnostics) - errors
    status = "[green]ok[/]" if not errors else f"[red]{errors} error(s)[/]"
    out.print(f"{len(reg.agents)} agents, {len(reg.tools)} tools, {len(reg.skills)} skills, "
              f"{len(reg.commands)} commands, {len(report.projects)} projects: "
              f"{status}" + (f", {warnings} warning(s)" if warnings else ""))


def print_diagnostics(diagnostics) -> None:
    for d in diagnostics:
        color = "red" if d.severity == "error" else "yellow"
        text = f"[{color}]{d.severity}:[/] {d.location()}: "
        out.print(text, end="")
        out.print(f"{d.field + ': ' if d.field else ''}{d.message}", markup=False, end="")
        out.print(f" [dim]({d.hint})[/]" if d.hint else "", soft_wrap=True)


def print_agents(reg) -> None:
    out.print(_agents_table(reg.agents.values(), reg.workspace.root, "Agents"))
    print_diagnostics(reg.diagnostics)


def print_tools(reg) -> None:
    out.print(_tools_table(reg.tools.values(), reg.workspace.root, "Tools"))
    print_diagnostics(reg.diagnostics)


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items()) if value else "(none)"
    return "-" if value is None or value == "" else str(value)


def print_agent(a, root: Path) -> None:
    """An agent as a person reads it: one labelled line per setting, then its prompt."""
    data = agent_to_dict(a, root)
    settings = dict(data["settings"])
    constraints = settings.pop("constraints", {}) or {}
    rows = [
        ("name", data["name"]), ("description", " ".join(str(data["description"]).split())),
        ("scope", data["scope"]), ("dialect", data["dialect"]),
        ("model", data["model"] or "(the runtime's default)"),
        ("tools", data["tools"] if data["tools"] is not None else "(all tools in scope)"),
    ]
    if data["disallowed_tools"]:
        rows.append(("disallowed", data["disallowed_tools"]))
    for label, value in (("permission mode", a.permission_mode), ("skills", a.skills),
                         ("mcp servers", _servers(a.mcp_servers)), ("color", a.color)):
        if value:
            rows.append((label, list(value) if isinstance(value, tuple) else value))
    rows += [(key.replace("_", " "), value) for key, value in settings.items()]
    rows += [(f"constraint {key.replace('_', ' ')}", value) for key, value in constraints.items()]
    rows += [("file", data["path"]), ("hash", data["hash"])]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        out.print(f"[bold]{label.ljust(width)}[/]  ", end="")
        out.print(_value(value), markup=False, soft_wrap=True)
    out.rule("prompt")
    out.print(a.prompt, markup=False, soft_wrap=True)


def _servers(servers) -> list[str]:
    if not servers:
        return []
    names, inline = servers
    return [*names, *(f"{s.name} ({s.describe()})" for s in inline)]


def print_tool(t, root: Path) -> None:
    data = tool_to_dict(t, root)
    for key in ("name", "description", "kind", "scope", "timeout_s", "path", "hash"):
        out.print(f"[bold]{key}:[/] ", end="")
        out.print(str(data[key]), markup=False)
    if t.command:
        out.print("[bold]command:[/] ", end="")
        out.print(json.dumps(list(t.command)), markup=False)
    if t.python:
        out.print("[bold]python:[/] ", end="")
        out.print(t.python, markup=False)
    out.rule("input schema")
    out.print(json.dumps(t.input_schema, indent=2), markup=False)
    if t.body:
        out.rule("body")
        out.print(t.body, markup=False)


def print_tool_result(spec, result) -> None:
    if result.output:
        sys.stdout.write(result.output if result.output.endswith("\n") else result.output + "\n")
        sys.stdout.flush()
    status = "ok" if not result.is_error else "error"
    code = "" if result.exit_code is None else f", exit {result.exit_code}"
    err.print(f"[dim]{spec.name}: {status}{code}, {result.duration_s:.3f} s[/]")


def print_tool_place(spec, project: str, folder: str) -> None:
    """Where `tools run` runs, said before it runs (on stderr: stdout is the tool's output)."""
    err.print(f"[dim]{spec.name} ({spec.kind} tool) in project {escape(project)}, "
              f"folder {escape(folder)}[/]", soft_wrap=True)


def print_trace(trace) -> None:
    meta = trace.meta
    out.print(f"[bold]{trace.trace_id}[/] · {meta.get('status')} · mode {meta.get('mode')} · "
              f"runtime {meta.get('runtime')}", soft_wrap=True)
    out.print(f"goal: {meta.get('goal')}", markup=False)
    out.print(f"{meta.get('turns', 0)} turns · {meta.get('input_tokens', 0):,} in / "
              f"{meta.get('output_tokens', 0):,} out tokens · ${meta.get('cost_usd', 0):.4f} · "
              f"{meta.get('duration_s', 0)} s")
    for step in trace.steps:
        if step.kind == "tool":
            flag = ", interrupted" if step.fields.get("interrupted") else \
                ", error" if step.fields.get("is_error") else ""
            args = json.dumps(step.input, ensure_ascii=False)[:80]
            detail = f"{step.tool} {args} [{step.fields.get('decision')}{flag}]"
        else:
            text = step.blocks.get("text") or step.blocks.get("result") or ""
            detail = text.split("\n")[0][:80]
        out.print(f"{step.number:>4} {step.kind:<15} {step.agent:<20} {detail}", markup=False,
                  soft_wrap=True)
    if trace.result:
        out.rule("result")
        out.print(trace.result, markup=False)
