"""The workspace: the folder holding `llmunix.toml`, its layout, and where to find it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from llmunix.errors import WorkspaceError
from llmunix.workspace.config import CONFIG_FILE, Config, load_config

HOME_ENV = "LLMUNIX_HOME"
PROJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PROJECT_DIRS = (
    "agents",
    "tools",
    "workspace",
    "output",
    "memory/short_term",
    "memory/long_term",
)


@dataclass(frozen=True)
class Project:
    name: str
    root: Path

    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    @property
    def tools_dir(self) -> Path:
        return self.root / "tools"

    @property
    def workspace_dir(self) -> Path:
        return self.root / "workspace"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def short_term_dir(self) -> Path:
        return self.root / "memory" / "short_term"

    @property
    def long_term_dir(self) -> Path:
        return self.root / "memory" / "long_term"

    def exists(self) -> bool:
        return self.root.is_dir()

    def create(self) -> None:
        for sub in PROJECT_DIRS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)


def relative_path(path: Path, root: Path) -> str:
    """`path` relative to `root` when inside it, else as given. Spec paths are built from the
    resolved workspace root, so this needs no filesystem call (boot shows thousands)."""
    text, prefix = str(path), str(root).rstrip(os.sep) + os.sep
    if os.sep == "/" and text.startswith(prefix):  # the common case, without pathlib's parsing
        return text[len(prefix):]
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def system_dir(self) -> Path:
        return self.root / "system"

    @property
    def system_agents_dir(self) -> Path:
        return self.system_dir / "agents"

    @property
    def system_tools_dir(self) -> Path:
        return self.system_dir / "tools"

    @property
    def claude_agents_dir(self) -> Path:
        return self.root / ".claude" / "agents"

    @property
    def user_agents_dir(self) -> Path:
        return self.root / "agents"

    @property
    def projects_dir(self) -> Path:
        return self.root / "projects"

    @property
    def smart_library_path(self) -> Path:
        return self.system_dir / "SmartLibrary.md"

    @property
    def memory_log_path(self) -> Path:
        return self.system_dir / "memory_log.md"

    def project(self, name: str) -> Project:
        if not PROJECT_NAME_RE.match(name) or name in (".", ".."):
            raise WorkspaceError(
                f"invalid project name {name!r}",
                hint="use letters, digits, '-', '_' and '.', at most 64 characters",
            )
        return Project(name, self.projects_dir / name)

    def projects(self) -> list[Project]:
        if not self.projects_dir.is_dir():
            return []
        return [
            Project(p.name, p)
            for p in sorted(self.projects_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".")
        ]

    def ensure_project(self, name: str) -> Project:
        project = self.project(name)
        project.create()
        return project


def find_workspace(start: Path | None = None, home: str | Path | None = None) -> Workspace:
    """`--home`, then $LLMUNIX_HOME, then the nearest folder upwards holding llmunix.toml."""
    explicit = home or os.environ.get(HOME_ENV)
    if explicit:
        root = Path(explicit).expanduser()
        if not (root / CONFIG_FILE).is_file():
            source = "--home" if home else f"${HOME_ENV}"
            raise WorkspaceError(
                f"{root} is not an llmunix workspace (no {CONFIG_FILE}), as named by {source}",
                hint=f"create one with `llmunix init {root}`",
            )
        return Workspace(root)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return Workspace(folder)
    raise WorkspaceError(
        f"not inside an llmunix workspace (no {CONFIG_FILE} in {here} or any parent folder)",
        hint="run `llmunix init` here, cd into a workspace, or pass --home DIR",
    )
