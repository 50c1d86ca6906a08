"""`llmunix init`: lay out a new workspace from the shipped templates, never overwriting a file."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from llmunix.errors import ConfigError, WorkspaceError
from llmunix.workspace.config import CONFIG_FILE, default_config_text, load_config
from llmunix.workspace.layout import Project

DEFAULT_PROJECT = "default"
GITIGNORE = (
    "# caches only: everything else is memory, versioned on purpose\n"
    "__pycache__/\n*.pyc\n.llmunix/\n"
)


def templates_root() -> Path:
    """The shipped system/, agents/ and projects/: inside the wheel, or the source checkout."""
    package = Path(__file__).resolve().parent.parent  # llmunix/
    for root in (package / "_templates", package.parent):
        if (root / "system" / "agents").is_dir():
            return root
    raise WorkspaceError("llmunix's templates are missing from this installation",
                         hint="reinstall llmunix")


def examples() -> list[str]:
    projects = templates_root() / "projects"
    return sorted(p.name for p in projects.iterdir() if p.is_dir() and p.name != DEFAULT_PROJECT)


@dataclass
class InitReport:
    root: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files that existed and were left alone
    committed: str | None = None


def plan_files(example: str | None) -> dict[str, Path]:
    """Workspace-relative path -> template source file."""
    root = templates_root()
    sources = [root / "system", root / "agents", root / "projects" / DEFAULT_PROJECT]
    if example:
        available = examples()
        if example not in available:
            raise WorkspaceError(
                f"no example named {example!r}",
                hint=f"available: {', '.join(available) or 'none'}",
            )
        sources.append(root / "projects" / example)
    files: dict[str, Path] = {}
    for source in sources:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = path
    return files


def init_workspace(target: Path, *, force: bool = False, example: str | None = None) -> InitReport:
    target = target.expanduser().resolve()
    files = plan_files(example)
    if target.exists() and not target.is_dir():
        raise WorkspaceError(f"{target} exists and is not a folder")
    existing = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    if existing and not force:
        more = f" and {len(existing) - 8} more" if len(existing) > 8 else ""
        shown = ", ".join(existing[:8]) + more
        raise WorkspaceError(
            f"{target} is not empty (it holds {shown}); nothing was written",
            hint="use an empty folder, or --force: add llmunix's files, keep every existing one",
        )
    report = InitReport(target)
    target.mkdir(parents=True, exist_ok=True)
    generated = {CONFIG_FILE: default_config_text(), ".gitignore": GITIGNORE}
    for rel, text in generated.items():
        _place(target / rel, rel, report, text=text)
    for rel, source in files.items():
        _place(target / rel, rel, report, source=source)
    for name in [DEFAULT_PROJECT] + ([example] if example else []):
        Project(name, target / "projects" / name).create()
    # checked now, so the first command reads the configuration from its cache; a broken
    # config.toml of the user's is reported by that command
    with contextlib.suppress(ConfigError):
        load_config(target / CONFIG_FILE)
    return report


def _place(dest: Path, rel: str, report: InitReport, *, source: Path | None = None,
           text: str | None = None) -> None:
    if dest.exists() or dest.is_symlink():
        report.kept.append(rel)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, dest)
    else:
        dest.write_text(text or "", encoding="utf-8")
    report.created.append(rel)
