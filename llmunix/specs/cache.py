"""A cache of parsed specs in `.llmunix/spec-cache.pickle`, keyed like git's index by each
file's size, inode and modification and change times (in ns): an unchanged file is not parsed
again. Boot over a thousand specs is then a stat per file. The cache is only ever a shortcut:
any doubt (a changed stamp, an unreadable or foreign cache file) means the file is parsed."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from llmunix import __version__

CACHE_FILE = ".llmunix/spec-cache.pickle"
# Bumped whenever what a spec holds changes, so a cache written by an older parser is not used.
FORMAT = f"{__version__}+specs.2"


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


class SpecCache:
    def __init__(self, root: Path) -> None:
        self.path = root / CACHE_FILE
        self.entries: dict[tuple[str, str, str], tuple] = {}
        self.seen: set[tuple[str, str, str]] = set()
        self.dirty = False
        try:
            with open(self.path, "rb") as f:
                version, entries = pickle.load(f)  # noqa: S301 - llmunix's own file
            if version == FORMAT and isinstance(entries, dict):
                self.entries = entries
        except Exception:  # noqa: BLE001 - a missing or stale cache is simply rebuilt
            self.entries = {}

    def files(self, scope_dir):
        """`registry.load_folder` through the cache."""
        out = []
        for path in scope_dir.files():
            key = (str(path), scope_dir.kind, scope_dir.scope)
            stamp = _stamp(path)
            self.seen.add(key)
            cached = self.entries.get(key)
            if cached is not None and stamp is not None and cached[0] == stamp:
                out.append((path, cached[1], list(cached[2])))
                continue
            spec, problems = scope_dir.load(path)
            if stamp is not None and stamp == _stamp(path):  # not changed while read
                self.entries[key] = (stamp, spec, problems)
                self.dirty = True
            out.append((path, spec, problems))
        return out

    def save(self) -> None:
        # Entries of files gone from disk go; others stay (a run loads one project's specs).
        stale = {key for key in set(self.entries) - self.seen if not os.path.exists(key[0])}
        for key in stale:
            del self.entries[key]
        if not (self.dirty or stale):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            with open(tmp, "wb") as f:
                pickle.dump((FORMAT, self.entries), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only workspace boots all the same, just without the shortcut
