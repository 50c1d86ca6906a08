"""Reading and writing memory files safely: fast frontmatter, atomic replacement, the lock.

Temporary files go to `.llmunix/tmp/` (ignored by git, same filesystem), never next to the
file: a concurrent `git add` of a project folder must not pick up a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from llmunix.config import CONFIG_FILE

STATE_DIR = ".llmunix"
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


@contextmanager
def memory_lock(root: Path | None):
    """The workspace's lock (the one git commits take), so memory writes and commits never
    interleave. Reentrant within a process."""
    if root is None:
        yield
        return
    from llmunix import gitmem

    with gitmem.workspace_lock(root):
        yield
