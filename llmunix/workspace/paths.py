"""Paths and files as the file system has them: `realpath_below`, and `file_stamp`.

`os.path.realpath` for paths below a folder already known to be real:

Resolving a file path `lstat`s every component from the root: ~35 µs for a workspace file 12
levels deep, and a file tool call resolves its path four or five times (the gate, the tool, the
checked open, the record of what changed). Below a real folder only the components past it can
be links, so only those are looked at; anything unusual (`..`, `.`, empty parts, a link on the
way) gets the full `os.path.realpath`, so the answer is always the same as its answer.
"""

from __future__ import annotations

import os
import stat

__all__ = ["Stamp", "file_stamp", "realpath_below"]

Stamp = tuple[int, int, int, int]


def realpath_below(base: str, path: str) -> str:
    """`os.path.realpath(path)`, given that `base` is an absolute path with no link in it
    (itself the result of `os.path.realpath`). `path` may be relative to the current folder."""
    if path == base:
        return base
    if base == os.sep or not path.startswith(base) or path[len(base):len(base) + 1] != os.sep:
        return os.path.realpath(path)
    rest = path[len(base) + 1:]
    parts = rest.split(os.sep)
    if "" in parts or "." in parts or ".." in parts:
        return os.path.realpath(path)
    current = base
    for part in parts:
        current = f"{current}{os.sep}{part}"
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            break  # missing (or not a folder): realpath keeps the rest as written
        if stat.S_ISLNK(mode):
            return os.path.realpath(path)
    return path


def file_stamp(path: str | os.PathLike) -> Stamp | None:
    """(size, inode, mtime, ctime) of a file, None when it is not there: what the caches keyed
    by files compare (an edit, a rename into place or a touch each changes it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
