"""Markdown files with YAML frontmatter that llmunix writes itself (traces, learned traces):
split, read and dump them quickly with libyaml, and replace them atomically. (User-written specs
go through document.py, which also keeps the line of every key for error messages.)"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from llmunix.errors import TraceError
from llmunix.workspace.config import CONFIG_FILE

STATE_DIR = ".llmunix"  # caches, locks and temporary files; ignored by git

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def split_frontmatter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    """(frontmatter mapping, body) of a markdown file; TraceError when there is none."""
    if not text.startswith("---\n"):
        raise TraceError("no frontmatter", path=path)
    end = text.find("\n---\n", 3)
    if end < 0:
        raise TraceError("the frontmatter is not closed", path=path, line=1)
    try:
        meta = yaml.load(text[4:end], Loader=_LOADER) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise TraceError(f"the frontmatter is not valid YAML: {exc}", path=path) from exc
    if not isinstance(meta, dict):
        raise TraceError("the frontmatter is not a mapping", path=path)
    return meta, text[end + 5:]


def read_frontmatter(path: Path, head: int = 65536) -> dict[str, Any]:
    """Only the frontmatter, reading no more of the file than needed."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(head)
            if "\n---\n" not in text[3:] and len(text) == head:
                text += fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read: {exc}", path=path) from exc
    return split_frontmatter(text, path)[0]


def dump_frontmatter(meta: dict[str, Any]) -> str:
    body = yaml.dump(meta, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1000)
    return "---\n" + body + "---\n"


def workspace_root_of(path: Path) -> Path | None:
    for folder in path.resolve().parents:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def atomic_write(path: Path, text: str, root: Path | None = None) -> None:
    """Replace `path` in one rename, the temporary file kept out of the versioned folders."""
    root = root or workspace_root_of(path)
    tmp_dir = root / STATE_DIR / "tmp" if root else path.parent
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
