"""A cache of parsed specs in `.llmunix/spec-cache.marshal`, keyed like git's index by each
file's size, inode and modification and change times (in ns): an unchanged file is not parsed
again. Boot over thousands of specs is then one read of the cache and one stat per file.

The cache holds plain values only (tuples, dicts, strings, numbers: specs/plain.py), written
with `marshal`, so reading it builds no objects but those values and runs no code; specs are
rebuilt from them without validating again. A header names the format (llmunix's version, the
Python's, every field of every spec class) and a checksum of the rest. The cache is only ever
a shortcut: any doubt (a changed stamp, a foreign, truncated or damaged cache file, a value of
another shape) means the file is parsed."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import os
import sys
import zlib
from pathlib import Path

from llmunix import __version__
from llmunix.specs import plain
from llmunix.workspace.paths import Stamp, file_stamp

CACHE_FILE = ".llmunix/spec-cache.marshal"
OLD_CACHE_FILES = (".llmunix/spec-cache.pickle",)  # earlier formats, removed when we save
MAGIC = b"llmunix spec cache\n"
# Bumped whenever what a spec holds means something new, so an older parser's cache is not used.
FORMAT = (f"{__version__}+specs.5 py{sys.version_info[0]}.{sys.version_info[1]} "
          f"{zlib.crc32(plain.SIGNATURE.encode()):08x}").encode()
MAX_CACHE_BYTES = 256_000_000  # specs are bounded (1 MB, bounded YAML): far below this

def read_cache(path: Path) -> dict:
    """The entries of the cache file at `path`, or {} when it is missing or not exactly one of
    ours (another format, damaged, truncated, too large)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_CACHE_BYTES:
                return {}
            data = f.read(size + 1)  # read(limit) would allocate the whole limit first
            if len(data) > size:  # being written meanwhile: not ours to read
                return {}
    except OSError:
        return {}
    header = MAGIC + FORMAT + b"\n"
    if not data.startswith(header):
        return {}
    checksum, payload = data[len(header):len(header) + 9], data[len(header) + 9:]
    if checksum != b"%08x\n" % zlib.crc32(payload):
        return {}
    try:
        with collector_paused():
            entries = marshal.loads(payload)
    except Exception:  # noqa: BLE001 - any damage means: rebuild
        return {}
    return entries if isinstance(entries, dict) else {}


def write_cache(path: Path, entries: dict) -> None:
    try:
        payload = marshal.dumps(entries)
    except ValueError:  # belt: SpecCache stores only what marshal holds
        payload = marshal.dumps({k: v for k, v in entries.items() if _storable(v)})
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(MAGIC + FORMAT + b"\n" + b"%08x\n" % zlib.crc32(payload) + payload)
        os.replace(tmp, path)
    except OSError:  # a read-only workspace: boot goes on without the shortcut
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def collector_paused():
    """Building thousands of specs with the garbage collector on has it walk all of them again
    and again (a third of a boot at 20,000 agents); nothing built here is a cycle to collect."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _storable(value) -> bool:
    try:
        marshal.dumps(value)
    except ValueError:
        return False
    return True


class SpecCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / CACHE_FILE
        # (path, kind, scope) -> (stamp, plain spec or None, plain problems)
        self.entries: dict[tuple[str, str, str], tuple] = (
            read_cache(self.path) if plain.USABLE else {})
        self.seen: set[tuple[str, str, str]] = set()
        self.visited: list[tuple] = []  # (path, stamp) of each file looked at, in order
        self.dirty = False

    def files(self, scope_dir):
        """`registry.load_folder` through the cache."""
        return scope_dir.loaded(lambda path: self._file(scope_dir, path))

    def _file(self, scope_dir, path: Path):
        name = str(path)
        key = (name, scope_dir.kind, scope_dir.scope)
        stamp = file_stamp(name)
        self.seen.add(key)
        self.visited.append((name, stamp))
        cached = self.entries.get(key)
        if cached is not None and stamp is not None:
            try:
                old, row, problems = cached
                if old == stamp:
                    spec = None if row is None else plain.spec_in(scope_dir.kind, row, path)
                    return path, spec, plain.problems_in(problems)
            except Exception:  # noqa: BLE001 - a stored value of another shape: parse the file
                pass
        spec, problems = scope_dir.load(path)
        if plain.USABLE and stamp is not None and stamp == file_stamp(name):  # unchanged meanwhile
            entry = self._entry(scope_dir.kind, stamp, spec, problems)
            if entry is not None:
                self.entries[key] = entry
                self.dirty = True
            elif self.entries.pop(key, None) is not None:
                self.dirty = True
        return path, spec, problems

    def fingerprint(self) -> str:
        """A digest of every file looked at and its stamp: equal fingerprints, equal specs
        (what depends only on them, like SmartLibrary.md's tables, need not be made again)."""
        digest = hashlib.blake2b(marshal.dumps(self.visited), digest_size=16).hexdigest()
        return f"{digest}-{len(self.visited)}"

    @staticmethod
    def _entry(kind: str, stamp: Stamp, spec, problems) -> tuple | None:
        """The entry for a file just parsed, or None when it holds a value the cache cannot
        (a YAML date in a tool's schema, say): that file is then parsed at each boot. Only a
        tool's input schema is free-form data; every other field was checked to be text,
        numbers or lists of them."""
        try:
            entry = (stamp, None if spec is None else plain.spec_out(kind, spec),
                     plain.problems_out(problems))
        except (ValueError, TypeError):  # PlainError is a ValueError
            return None
        return entry if kind != "tool" or _storable(entry) else None

    def save(self) -> None:
        # Entries of files gone from disk go; others stay (a run loads one project's specs).
        stale = {key for key in set(self.entries) - self.seen if not os.path.exists(key[0])}
        for key in stale:
            del self.entries[key]
        if not (self.dirty or stale):
            return
        write_cache(self.path, self.entries)
        for old in OLD_CACHE_FILES:
            with contextlib.suppress(OSError):
                (self.root / old).unlink()
