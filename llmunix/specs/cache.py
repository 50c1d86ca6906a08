"""A cache of parsed specs in `.llmunix/spec-cache.pickle`, keyed like git's index by each
file's size, inode and modification and change times (in ns): an unchanged file is not parsed
again. Boot over a thousand specs is then one read of the cache (with the garbage collector
paused: it would otherwise walk the heap again and again while thousands of specs are rebuilt)
and a stat per file. The cache is only ever a shortcut: any doubt (a
changed stamp, an unreadable or foreign cache file) means the file is parsed."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
from pathlib import Path

from llmunix import __version__

CACHE_FILE = ".llmunix/spec-cache.pickle"
# Bumped whenever what a spec holds changes, so a cache written by an older parser is not used.
FORMAT = f"{__version__}+specs.3"
MAX_CACHE_BYTES = 256_000_000  # specs are bounded (1 MB, bounded YAML): far below this


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
        collecting = gc.isenabled()
        gc.disable()
        try:
            if os.stat(self.path).st_size > MAX_CACHE_BYTES:
                raise ValueError("cache too large: rebuilt")
            with open(self.path, "rb") as f:
                version, entries = pickle.load(f)  # noqa: S301 - llmunix's own file
            if version == FORMAT and isinstance(entries, dict):
                self.entries = entries
        except Exception:  # noqa: BLE001 - a missing or stale cache is simply rebuilt
            self.entries = {}
        finally:
            if collecting:
                gc.enable()

    def files(self, scope_dir):
        """`registry.load_folder` through the cache."""
        return scope_dir.loaded(lambda path: self._file(scope_dir, path))

    def _file(self, scope_dir, path: Path):
        key = (str(path), scope_dir.kind, scope_dir.scope)
        stamp = _stamp(path)
        self.seen.add(key)
        cached = self.entries.get(key)
        if cached is not None and stamp is not None and cached[0] == stamp:
            return path, cached[1], list(cached[2])
        spec, problems = scope_dir.load(path)
        if stamp is not None and stamp == _stamp(path):  # not changed while read
            self.entries[key] = (stamp, spec, problems)
            self.dirty = True
        return path, spec, problems

    def save(self) -> None:
        # Entries of files gone from disk go; others stay (a run loads one project's specs).
        stale = {key for key in set(self.entries) - self.seen if not os.path.exists(key[0])}
        for key in stale:
            del self.entries[key]
        if not (self.dirty or stale):
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                pickle.dump((FORMAT, self.entries), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except Exception:  # noqa: BLE001 - read-only workspace, or a value pickle refuses:
            # boot goes on without the shortcut
            with contextlib.suppress(OSError):
                tmp.unlink()
