"""Markdown files with YAML frontmatter that llmunix writes itself (traces, learned traces):
split, read and dump them quickly with libyaml, and replace them atomically. (User-written specs
go through document.py, which also keeps the line of every key for error messages.)"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from llmunix.errors import TraceError
from llmunix.specs import safe_yaml
from llmunix.workspace.config import CONFIG_FILE

STATE_DIR = ".llmunix"  # caches, locks and temporary files; ignored by git

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# An anchor or alias token could be anywhere such a character starts a value; the bounded
# loader (slower) reads those documents.
_MAYBE_ALIAS = re.compile(r"(?:^|[\s,\[{:-])[&*][^\s,\[\]{}]", re.M)
LLMUNIX_MAX_VALUES = 1_000_000  # a trace lists every spec's hash: far more than a spec holds
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def split_frontmatter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    """(frontmatter mapping, body) of a markdown file; TraceError when there is none."""
    if not text.startswith("---\n"):
        raise TraceError("no frontmatter", path=path)
    end = text.find("\n---\n", 3)
    if end < 0:
        raise TraceError("the frontmatter is not closed", path=path, line=1)
    head = text[4:end]
    try:
        if _MAYBE_ALIAS.search(head):  # llmunix never writes aliases; a hand-made file may
            meta = safe_yaml.load(head, max_values=LLMUNIX_MAX_VALUES) or {}
        else:
            meta = yaml.load(head, Loader=_LOADER) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        raise TraceError(f"the frontmatter is not valid YAML: {problem}", path=path,
                         line=mark.line + 2 if mark else None) from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise TraceError(f"the frontmatter cannot be read: {type(exc).__name__}: "
                         f"{str(exc)[:200]}", path=path) from None
    if not isinstance(meta, dict):
        raise TraceError("the frontmatter is not a mapping", path=path)
    return meta, text[end + 5:]


MAX_FILE_BYTES = 256_000_000  # a trace or learned trace; anything larger is not one


def read_regular(path: Path, *, head: int | None = None,
                 limit: int = MAX_FILE_BYTES) -> str:
    """The text of a regular file (a pipe, device or folder is refused before it is read, so
    `/dev/zero` cannot hang a command), at most `limit` bytes; with `head`, only that many
    bytes unless the frontmatter does not end within them."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise TraceError(f"cannot read: {exc.strerror or exc}", path=path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise TraceError("not a regular file", path=path)
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > limit:
            raise TraceError(f"file is {st.st_size:,} bytes (at most {limit:,} are read)",
                             path=path)
        try:
            raw = fh.read(head) if head else fh.read(limit + 1)
            if head and len(raw) == head and b"\n---\n" not in raw[3:]:
                raw += fh.read(limit + 1 - head)
        except OSError as exc:
            raise TraceError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if len(raw) > limit:
        raise TraceError(f"file is over {limit:,} bytes", path=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"not UTF-8 text (byte offset {exc.start})", path=path) from None


def read_frontmatter(path: Path, head: int = 65536) -> dict[str, Any]:
    """Only the frontmatter, reading no more of the file than needed."""
    text = read_regular(path, head=head)
    return split_frontmatter(text, path)[0]


def dump_frontmatter(meta: dict[str, Any]) -> str:
    body = yaml.dump(meta, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1000)
    return "---\n" + body + "---\n"


def workspace_root_of(path: Path) -> Path | None:
    for folder in path.resolve().parents:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def atomic_write(path: Path, text: str | bytes, root: Path | None = None) -> None:
    """Replace `path` in one rename, the temporary file kept out of the versioned folders
    (and removed if the write fails). Text is written as UTF-8, bytes as they are."""
    root = root or workspace_root_of(path)
    tmp_dir = root / STATE_DIR / "tmp" if root else path.parent
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if isinstance(text, bytes)
              else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
