"""Boot: read every agent and tool spec of a workspace, resolve scopes, and report problems.

Scopes, lowest first: system/ < .claude/agents < agents/ < projects/<name>/. A later scope
overrides an earlier one by name; two specs of the same name in one scope are an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.mcp_servers import ServerConfig, load_mcp_json
from llmunix.specs.models import AgentSpec, ToolSpec, is_builtin_tool
from llmunix.specs.scopes import (  # noqa: F401 - part of the registry's interface
    LoadedFile,
    ScopeDir,
    is_spec_file_name,
    project_scope_dirs,
    scope_dirs,
    spec_files,
)
from llmunix.specs.skills import CommandSpec, SkillSpec
from llmunix.workspace.layout import Project, Workspace

Spec = TypeVar("Spec", AgentSpec, ToolSpec)


@dataclass(frozen=True)
class Override:
    kind: str  # "agent" | "tool"
    name: str
    winner: Path
    winner_scope: str
    loser: Path
    loser_scope: str


@dataclass
class Registry:
    """The effective agents and tools for one project (or for none: system and user scopes)."""

    workspace: Workspace
    project: Project | None
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    mcp_servers: dict[str, ServerConfig] = field(default_factory=dict)  # the workspace's .mcp.json
    skills: dict[str, SkillSpec] = field(default_factory=dict)
    commands: dict[str, CommandSpec] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def spec_hashes(self) -> dict[str, str]:
        hashes = {f"agent:{a.name}": a.content_hash for a in self.agents.values()}
        hashes.update({f"tool:{t.name}": t.content_hash for t in self.tools.values()})
        return dict(sorted(hashes.items()))


def load_folder(scope_dir: ScopeDir) -> list[LoadedFile]:
    return scope_dir.loaded(lambda path: (path, *scope_dir.load(path)))


def scope_specs(
    files: Iterable[LoadedFile], scope: str, kind: str, diagnostics: list[Diagnostic]
) -> dict[str, Spec]:
    """One scope's specs by name, from its files in path order; a name defined twice in the
    scope is an error and neither file is used."""
    found: dict[str, Spec] = {}
    clashes: set[str] = set()
    for path, spec, problems in files:
        diagnostics.extend(problems)
        if spec is None:
            continue
        if spec.name in found:
            first = found[spec.name].path
            diagnostics.append(
                Diagnostic(
                    "error",
                    str(path),
                    f"{kind} '{spec.name}' is defined twice in scope '{scope}': {first} and {path}",
                    hint="rename one of them; neither is loaded until then",
                )
            )
            clashes.add(spec.name)
            continue
        found[spec.name] = spec
    for name in clashes:
        del found[name]
    return found


def _layer(
    scopes: Iterable[dict[str, Spec]], kind: str, overrides: list[Override]
) -> dict[str, Spec]:
    merged: dict[str, Spec] = {}
    for layer in scopes:
        for name, spec in layer.items():
            if name in merged:
                old = merged[name]
                overrides.append(Override(kind, name, spec.path, spec.scope, old.path, old.scope))
            merged[name] = spec
    return dict(sorted(merged.items()))


def _check_tool_references(
    agents: dict[str, AgentSpec], tools: dict[str, ToolSpec], diagnostics: list[Diagnostic]
) -> dict[str, AgentSpec]:
    usable: dict[str, AgentSpec] = {}
    known: dict[str, bool] = {}  # tool name -> defined (thousands of agents share a few names)
    for name, agent in agents.items():
        missing = []
        for t in agent.tools or ():
            ok = known.get(t)
            if ok is None:
                ok = known[t] = is_builtin_tool(t) or t in tools
            if not ok:
                missing.append(t)
        if missing:
            diagnostics.append(
                Diagnostic(
                    "error",
                    str(agent.path),
                    f"agent '{name}' lists tool(s) no scope defines: {', '.join(missing)}",
                    field="tools",
                    hint="fix the name, or add a tool spec to system/tools or the project's tools/",
                )
            )
            continue
        usable[name] = agent
    return usable


def _layers(
    dirs: Iterable[ScopeDir],
    files: Callable[[ScopeDir], Iterable[LoadedFile]],
    diagnostics: list[Diagnostic],
) -> tuple[list[dict[str, AgentSpec]], list[dict[str, ToolSpec]]]:
    """Each folder's specs by name, split into agent and tool layers, lowest scope first."""
    layers = _kind_layers(dirs, files, diagnostics)
    return layers["agent"], layers["tool"]


def _kind_layers(dirs: Iterable[ScopeDir], files: Callable[[ScopeDir], Iterable[LoadedFile]],
                 diagnostics: list[Diagnostic]) -> dict[str, list[dict]]:
    """Each folder's specs by name, in layers per kind (agent, tool, skill, command), lowest
    scope first."""
    layers: dict[str, list[dict]] = {"agent": [], "tool": [], "skill": [], "command": []}
    for d in dirs:
        layers[d.kind].append(scope_specs(files(d), d.scope, d.kind, diagnostics))
    return layers


def load_registry(ws: Workspace, project: Project | None = None) -> Registry:
    """The effective registry for `project` (system and user scopes only when None), with
    unchanged files from the spec cache."""
    from llmunix.specs.cache import SpecCache, collector_paused

    with collector_paused():
        cache = SpecCache(ws.root)
        registry = build_registry(ws, project, cache.files)
        cache.save()
    return registry


def build_registry(
    ws: Workspace, project: Project | None, files: Callable[[ScopeDir], Iterable[LoadedFile]]
) -> Registry:
    """Layer the scopes of `project` from each folder's files as `files` gives them (read from
    disk by load_registry, kept per file by the live registry)."""
    registry = Registry(ws, project)
    layers = _kind_layers(scope_dirs(ws, project), files, registry.diagnostics)
    agent_layers, tool_layers = layers["agent"], layers["tool"]
    registry.tools = _layer(tool_layers, "tool", registry.overrides)
    registry.skills = _layer(layers["skill"], "skill", registry.overrides)
    registry.commands = _layer(layers["command"], "command", registry.overrides)
    agents = _layer(agent_layers, "agent", registry.overrides)
    registry.agents = _check_tool_references(agents, registry.tools, registry.diagnostics)
    _load_mcp(registry)
    return registry


MCP_JSON = ".mcp.json"


def _load_mcp(registry: Registry, servers: tuple | None = None,
              warned: dict[int, list[Diagnostic]] | None = None) -> None:
    """The workspace's `.mcp.json` servers, and a warning for each server an agent names that
    none defines. `warned`: the warnings of agent tables already looked at, by identity (a
    project that adds no agent shares the base's table, and its warnings)."""
    if servers is None:
        servers = load_mcp_json(registry.workspace.root / MCP_JSON)
    registry.mcp_servers, problems = servers[0], list(servers[1])
    registry.diagnostics.extend(problems)
    warned = {} if warned is None else warned
    if id(registry.agents) not in warned:
        warned[id(registry.agents)] = _mcp_warnings(registry.agents, registry.mcp_servers)
    registry.diagnostics += warned[id(registry.agents)]


def _mcp_warnings(agents: dict[str, AgentSpec], defined: dict[str, ServerConfig]
                  ) -> list[Diagnostic]:
    found = []
    for agent in agents.values():
        tools = agent.tools
        # most agents name no server: one substring test of the joined names tells (the exact
        # test follows when it finds one)
        if agent.mcp_servers is None and (not tools or "mcp__" not in "\n".join(tools)):
            continue
        names, inline = agent.mcp_servers or ((), ())
        own = {s.name for s in inline}
        listed = [t.split("__")[1] for t in agent.tools or () if t.startswith("mcp__")
                  and t.count("__") >= 1 and not t.startswith("mcp__llmunix")]
        missing = [n for n in dict.fromkeys([*names, *listed])
                   if n and n not in own and n not in defined]
        if missing:
            found.append(Diagnostic(
                "warning", str(agent.path),
                f"agent '{agent.name}' uses MCP server(s) no .mcp.json or mcpServers entry "
                f"defines: {', '.join(missing)}; their tools are refused", field="mcpServers",
                hint="define them in the workspace's .mcp.json or in the agent's mcpServers"))
    return found


@dataclass
class BootReport:
    """Everything `llmunix boot` shows: the base registry plus every project checked."""

    registry: Registry
    projects: dict[str, Registry]
    fingerprint: str = ""  # of every spec file read and its stamp (SpecCache.fingerprint)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        seen: dict[tuple, Diagnostic] = {}
        for reg in (self.registry, *self.projects.values()):
            for d in reg.diagnostics:
                seen.setdefault((d.path, d.line, d.message), d)
        return sorted(seen.values(), key=lambda d: (d.path, d.line or 0, d.message))

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def boot(ws: Workspace) -> BootReport:
    """Load the base scopes once, then layer each project's specs over them. Unchanged files
    come from the spec cache."""
    from llmunix.specs.cache import collector_paused

    with collector_paused():
        return _boot(ws)


def _boot(ws: Workspace) -> BootReport:
    from llmunix.specs.cache import SpecCache

    cache = SpecCache(ws.root)
    load = cache.files
    base = Registry(ws, None)
    layers = _kind_layers(scope_dirs(ws, None), load, base.diagnostics)
    agent_layers, tool_layers = layers["agent"], layers["tool"]
    base.skills = _layer(layers["skill"], "skill", base.overrides)
    base.commands = _layer(layers["command"], "command", base.overrides)
    base_agents = _layer(agent_layers, "agent", base.overrides)
    base.tools = _layer(tool_layers, "tool", base.overrides)
    base_refs: list[Diagnostic] = []  # what the reference check found, for projects too
    base.agents = _check_tool_references(base_agents, base.tools, base_refs)
    base.diagnostics += base_refs
    projects: dict[str, Registry] = {}
    for proj in ws.projects():
        reg = Registry(ws, proj)
        p_layers = _kind_layers(project_scope_dirs(proj), load, reg.diagnostics)
        if not any(any(layer) for layer in p_layers.values()):
            # No specs of its own: the base's, layered and checked already (at 20,000 agents
            # doing it again is a tenth of a boot).
            reg.tools, reg.skills, reg.commands = base.tools, base.skills, base.commands
            reg.agents = base.agents
            reg.diagnostics += base_refs
            projects[proj.name] = reg
            continue
        [p_agents], p_tools = p_layers["agent"], p_layers["tool"]
        reg.tools = _layer([base.tools, *p_tools], "tool", reg.overrides)
        reg.skills = _layer([base.skills, *p_layers["skill"]], "skill", reg.overrides)
        reg.commands = _layer([base.commands, *p_layers["command"]], "command", reg.overrides)
        reg.agents = _check_tool_references(
            _layer([base_agents, p_agents], "agent", reg.overrides), reg.tools, reg.diagnostics
        )
        projects[proj.name] = reg
    servers = load_mcp_json(ws.root / MCP_JSON)
    warned: dict[int, list[Diagnostic]] = {}
    for reg in (base, *projects.values()):
        _load_mcp(reg, servers, warned)
    cache.save()
    return BootReport(base, projects, cache.fingerprint())
