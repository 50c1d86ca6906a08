"""Crystallized tools at run time: which one a goal fits (and the arguments it binds), and
each use counted into the tool's record - failures in a row demote it, as learned traces are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmunix.errors import LlmunixError
from llmunix.memory.longterm import DEMOTE_AFTER, apply_uses, now_iso
from llmunix.memory.store import memory_lock
from llmunix.specs.frontmatter import (
    atomic_write,
    dump_frontmatter,
    read_frontmatter,
    split_frontmatter,
    workspace_root_of,
)
from llmunix.specs.models import CRYSTALLIZED_FOLDER as FOLDER
from llmunix.workspace.layout import Project

if TYPE_CHECKING:
    from llmunix.crystallize.generalize import Pattern, Ref


@dataclass(frozen=True)
class CrystalMatch:
    name: str
    path: Path
    pattern: str
    args: dict[str, str]


def parse_pattern(text: str) -> Pattern:
    # generalize (its regexes) loads only when a crystallized tool exists: not on every run
    from llmunix.crystallize.generalize import Pattern, Ref

    words: list[str | Ref] = []
    for word in text.split():
        if len(word) > 2 and word[0] == "{" and word[-1] == "}" and word[1:-1].isidentifier():
            words.append(Ref(word[1:-1]))
        else:
            words.append(word)
    return Pattern(words)


def crystal_files(project: Project) -> list[tuple[Path, dict]]:
    folder = project.tools_dir / FOLDER
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.md")):
        try:
            meta = read_frontmatter(path)
        except LlmunixError:
            continue
        if isinstance(meta.get("crystallized"), dict):
            found.append((path, meta))
    return found


def match_crystallized(project: Project, goal: str) -> CrystalMatch | None:
    """The first active crystallized tool whose goal pattern the goal fits."""
    for path, meta in crystal_files(project):
        record = meta["crystallized"]
        if record.get("status", "active") == "demoted":
            continue
        pattern = str(record.get("goal_pattern", ""))
        args = parse_pattern(pattern).bind(goal) if pattern else None
        if args is None:
            continue
        wanted = set((meta.get("input") or {}).keys())
        return CrystalMatch(str(meta.get("name", path.stem)), path, pattern,
                            {k: v for k, v in args.items() if k in wanted})
    return None


def record_crystal_use(path: Path, success: bool) -> dict:
    """Count one run of a crystallized tool; DEMOTE_AFTER failures in a row demote it."""
    root = workspace_root_of(path)
    with memory_lock(root):
        text = path.read_text(encoding="utf-8")
        meta, body = split_frontmatter(text, path)
        record = dict(meta.get("crystallized") or {})
        apply_uses(record, 1 if success else 0, 0 if success else 1, now_iso())
        record.pop("confidence", None)
        record.pop("success_rate", None)
        meta["crystallized"] = record
        atomic_write(path, dump_frontmatter(meta) + body, root)
    return record


__all__ = ["DEMOTE_AFTER", "CrystalMatch", "match_crystallized", "record_crystal_use"]
