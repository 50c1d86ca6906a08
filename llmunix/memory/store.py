"""The lock memory writes take: the workspace's git lock, so they never interleave with a
commit. (Atomic replacement of memory files is `markdown_meta.atomic_write`.)"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def memory_lock(root: Path | None):
    """The workspace's lock (the one git commits take), so memory writes and commits never
    interleave. Reentrant within a process."""
    if root is None:
        yield
        return
    from llmunix.memory import git as gitmem

    with gitmem.workspace_lock(root):
        yield
