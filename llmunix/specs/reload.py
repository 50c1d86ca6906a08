"""What hot reload reports (ReloadEvent, ReloadError, LiveStatus) and the bookkeeping of
the live registry's worker: one record per watched file, the changes it found."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.document import MAX_SPEC_BYTES
from llmunix.specs.models import AgentSpec, ToolSpec
from llmunix.specs.registry import (
    Registry,
    ScopeDir,
)

EVENTS = ("added", "reloaded", "error", "removed")
DEBOUNCE_S = 0.025  # quiet time before a changed file is read
MAX_WAIT_S = 1.0  # a file reported as still open for writing is read anyway after this
CONFIRM_S = 0.1  # a file that fails to parse is read again after this before it is reported


@dataclass(frozen=True)
class ReloadError:
    file: str
    line: int | None
    cause: str
    hint: str | None = None

    @classmethod
    def from_diagnostic(cls, d: Diagnostic) -> ReloadError:
        cause = f"{d.field}: {d.message}" if d.field else d.message
        return cls(d.path, d.line, cause, d.hint)


@dataclass(frozen=True)
class ReloadEvent:
    """One change of the registry, for one spec file."""

    event: str  # added | reloaded | error | removed
    path: str
    kind: str  # agent | tool
    name: str
    scope: str
    hash: str = ""  # content hash of the file as last read ("" once removed)
    active_hash: str = ""  # hash of this file's version in effect ("" when none is)
    error: ReloadError | None = None
    generation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self, root: Path | None = None) -> str:
        """One line for a terminal, paths relative to `root`."""
        where = _rel(self.path, root)
        head = f"{self.event:<8} {self.kind} {self.name}"
        if self.event == "removed":
            return f"{head}  {where}"
        if self.error is None:
            return f"{head}  {where}  {self.hash}"
        err = self.error
        loc = _rel(err.file, root) + (f":{err.line}" if err.line else "")
        hint = f" ({err.hint})" if err.hint else ""
        kept = (f"; still using {self.active_hash}" if self.active_hash
                else "; not loaded")
        return f"{head}  {loc}: {err.cause}{hint}{kept}"


@dataclass(frozen=True)
class LiveStatus:
    generation: int
    agents: int
    tools: int
    files: int
    errors: list[Diagnostic]
    recent: list[ReloadEvent]
    watching: list[Path]


@dataclass
class _File:
    scope_dir: ScopeDir
    spec: AgentSpec | ToolSpec | None  # the version in use: the last one that parsed
    problems: list[Diagnostic]  # from the latest read
    hash: str  # of the latest read


@dataclass
class _Pending:
    last: float  # monotonic time of the latest event for the path
    writing: bool = False  # modified and not yet closed (only where close events exist)
    confirm: str | None = None  # hash of a failed read that must be read again to count


@dataclass
class _Change:
    event: str
    path: Path
    old: _File | None
    new: _File | None


_MISSING = ("missing",)
_SAME = ("same",)
_UNSTABLE = ("unstable",)  # changed while being read, or written a moment ago: read it later


def _rel(path: str, root: Path | None) -> str:
    if root is None or not path:
        return path
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def _digest(path: Path) -> str | None:
    """The content hash `document.parse_document` gives the file, or None when unreadable."""
    try:
        st = path.stat()
        if st.st_size > MAX_SPEC_BYTES:  # refused by the loader; not worth reading
            return f"big-{st.st_size}-{st.st_mtime_ns}"
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def _first_errors(registry: Registry) -> dict[str, Diagnostic]:
    errors: dict[str, Diagnostic] = {}
    for d in registry.errors:
        errors.setdefault(d.path, d)
    return errors


def _active(registry: Registry) -> dict[str, AgentSpec | ToolSpec]:
    return {str(s.path): s for s in (*registry.agents.values(), *registry.tools.values())}
