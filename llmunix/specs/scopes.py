"""Where specs live: the scope folders of a workspace, lowest scope first, and which files in
them are specs. The registry and the spec cache both read folders through this."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import SpecError
from llmunix.specs.agents import load_agent
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.models import CRYSTALLIZED_FOLDER, AgentSpec, ToolSpec
from llmunix.specs.skills import SKILL_FILE, load_command, load_skill
from llmunix.specs.tools import load_tool
from llmunix.workspace.layout import Project, Workspace

# One file as read: its path, its spec (None when broken) and every problem found in it.
LoadedFile = tuple[Path, AgentSpec | ToolSpec | None, list[Diagnostic]]


@dataclass(frozen=True)
class ScopeDir:
    """One folder specs of one kind are read from, and the scope they get."""

    kind: str  # "agent" | "tool" | "skill" | "command"
    scope: str
    folder: Path
    recursive: bool = False  # sub-folders too (Claude Code reads .claude/agents/**/*.md)

    def load(self, path: Path) -> tuple[AgentSpec | ToolSpec | None, list[Diagnostic]]:
        try:
            if self.kind == "skill":
                return load_skill(path, self.scope)
            if self.kind == "command":
                return load_command(path, self.scope, self.folder)
            return (load_agent if self.kind == "agent" else load_tool)(path, self.scope)
        except Exception as exc:  # noqa: BLE001 - one file must never stop the others
            return None, [Diagnostic("error", str(path), "this file could not be read "
                                     f"({type(exc).__name__}: {str(exc)[:200]})")]

    def loaded(self, load) -> list[LoadedFile]:
        """`load(path)` for each spec file of the folder; a folder that cannot be listed is one
        problem, not a silent empty scope."""
        try:
            paths = self.files()
        except SpecError as exc:
            return [(self.folder, None, [Diagnostic.from_error(exc)])]
        return [load(path) for path in paths]

    def owns(self, path: Path) -> bool:
        """Whether `path` (in `folder` or one of its `subfolders()`) is a spec of this scope:
        in a skill's folder only SKILL.md is, the rest is the skill's own material."""
        return path.name == SKILL_FILE if self.kind == "skill" else is_spec_file_name(path.name)

    def files(self) -> list[Path]:
        if self.kind == "skill":  # <folder>/<skill>/SKILL.md
            if not self.folder.is_dir():
                return []
            return sorted(p for p in self.folder.glob(f"*/{SKILL_FILE}") if p.is_file()
                          and not p.parent.name.startswith("."))
        return spec_files(self.folder, recursive=self.recursive)

    def subfolders(self) -> list[Path]:
        """The folders below `folder` whose files belong to this scope (live reload watches
        each)."""
        if self.kind == "skill" and self.folder.is_dir():
            return sorted(d for d in self.folder.iterdir() if d.is_dir()
                          and not d.name.startswith("."))
        if not self.recursive or not self.folder.is_dir():
            return []
        return sorted(d for d in self.folder.rglob("*") if d.is_dir() and not _hidden(d, self))


def project_scope_dirs(project: Project) -> list[ScopeDir]:
    scope = f"project:{project.name}"
    # Crystallized tools (llmunix writes them) sit below the project's own: a hand-written
    # tool of the same name wins.
    return [ScopeDir("agent", scope, project.agents_dir),
            ScopeDir("tool", scope, project.tools_dir / CRYSTALLIZED_FOLDER),
            ScopeDir("tool", scope, project.tools_dir),
            ScopeDir("skill", scope, project.root / "skills"),
            ScopeDir("command", scope, project.root / "commands", recursive=True)]


def scope_dirs(ws: Workspace, project: Project | None) -> list[ScopeDir]:
    """The folders of `project`'s registry (system and user scopes only when None), lowest
    scope first."""
    dirs = [
        ScopeDir("agent", "system", ws.system_agents_dir),
        ScopeDir("agent", "claude", ws.claude_agents_dir, recursive=True),
        ScopeDir("agent", "user", ws.user_agents_dir),
        ScopeDir("tool", "system", ws.system_tools_dir),
        # Skills and slash commands: system < .claude/ < the workspace's own, like agents.
        ScopeDir("skill", "system", ws.system_dir / "skills"),
        ScopeDir("skill", "claude", ws.root / ".claude" / "skills"),
        ScopeDir("skill", "user", ws.root / "skills"),
        ScopeDir("command", "claude", ws.root / ".claude" / "commands", recursive=True),
        ScopeDir("command", "user", ws.root / "commands", recursive=True),
    ]
    return dirs + (project_scope_dirs(project) if project is not None else [])


def is_spec_file_name(name: str) -> bool:
    return name.endswith(".md") and name.lower() != "readme.md" and not name.startswith(".")


def spec_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Every entry named like a spec - a link, pipe or (not recursive) folder too, so reading it
    reports what it is; hidden files and folders aside. SpecError when the folder exists but
    cannot be listed."""
    def fail(exc: OSError) -> None:
        raise SpecError(f"cannot list this folder: {exc.strerror or exc}",
                        path=exc.filename or folder,
                        hint="check its permissions; its specs are not loaded") from None

    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        fail(exc)
    if not recursive:  # one folder: the order of the names is the order of the paths
        return [child_path(folder, n) for n in sorted(n for n in names if is_spec_file_name(n))]
    found = []
    for dirpath, dirs, files in os.walk(folder, onerror=fail):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        parent = Path(dirpath)
        found += [(parent.parts, n, parent) for n in files if is_spec_file_name(n)]
    found.sort(key=lambda f: (*f[0], f[1]))  # pathlib's order: part by part
    return [child_path(parent, n) for _parts, n, parent in found]


def child_path(folder: Path, name: str) -> Path:
    """`folder / name` for a plain file name from a listing of `folder`, without parsing it
    again (pathlib's own shortcut for listings where it has one; boot makes thousands)."""
    make = getattr(folder, "_make_child_relpath", None)
    return make(name) if make is not None else folder / name


def _hidden(path: Path, scope_dir: ScopeDir) -> bool:
    return any(part.startswith(".") for part in path.relative_to(scope_dir.folder).parts)
