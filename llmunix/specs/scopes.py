"""Where specs live: the scope folders of a workspace, lowest scope first, and which files in
them are specs. The registry and the spec cache both read folders through this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmunix.specs.agents import load_agent
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.models import AgentSpec, ToolSpec
from llmunix.specs.tools import load_tool
from llmunix.workspace.layout import Project, Workspace

# One file as read: its path, its spec (None when broken) and every problem found in it.
LoadedFile = tuple[Path, AgentSpec | ToolSpec | None, list[Diagnostic]]


@dataclass(frozen=True)
class ScopeDir:
    """One folder specs of one kind are read from, and the scope they get."""

    kind: str  # "agent" | "tool"
    scope: str
    folder: Path
    recursive: bool = False  # sub-folders too (Claude Code reads .claude/agents/**/*.md)

    def load(self, path: Path) -> tuple[AgentSpec | ToolSpec | None, list[Diagnostic]]:
        return (load_agent if self.kind == "agent" else load_tool)(path, self.scope)

    def files(self) -> list[Path]:
        return spec_files(self.folder, recursive=self.recursive)

    def subfolders(self) -> list[Path]:
        """The folders below `folder` whose files belong to this scope (live reload watches
        each)."""
        if not self.recursive or not self.folder.is_dir():
            return []
        return sorted(d for d in self.folder.rglob("*") if d.is_dir() and not _hidden(d, self))


def project_scope_dirs(project: Project) -> list[ScopeDir]:
    scope = f"project:{project.name}"
    return [ScopeDir("agent", scope, project.agents_dir),
            ScopeDir("tool", scope, project.tools_dir)]


def scope_dirs(ws: Workspace, project: Project | None) -> list[ScopeDir]:
    """The folders of `project`'s registry (system and user scopes only when None), lowest
    scope first."""
    dirs = [
        ScopeDir("agent", "system", ws.system_agents_dir),
        ScopeDir("agent", "claude", ws.claude_agents_dir, recursive=True),
        ScopeDir("agent", "user", ws.user_agents_dir),
        ScopeDir("tool", "system", ws.system_tools_dir),
    ]
    return dirs + (project_scope_dirs(project) if project is not None else [])


def is_spec_file_name(name: str) -> bool:
    return name.endswith(".md") and name.lower() != "readme.md" and not name.startswith(".")


def spec_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    found = folder.rglob("*.md") if recursive else folder.glob("*.md")
    return sorted(p for p in found if p.is_file() and is_spec_file_name(p.name)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _hidden(path: Path, scope_dir: ScopeDir) -> bool:
    return any(part.startswith(".") for part in path.relative_to(scope_dir.folder).parts)
