"""Which files one run changed, exactly, while other runs change files beside it.

Tools whose effect is named by their input (Write, Edit, ...) add their path. Tools whose effect
is opaque (Bash, command and python tool specs) run between two snapshots of the project's
workspace folder (path -> inode, size, mtime, ctime, mode); every path that differs is theirs.
Both kinds take the project's effects lock (a file lock shared by every llmunix process on the
workspace), so no other run's tool writes into the window between two snapshots: under N
concurrent runs, opaque tools of one project run one at a time, and everything else runs in
parallel. Each path is also appended to the run's journal, so a killed run's files are known
to the next command that commits them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

Stamp = tuple[int, int, int, int, int]

# Built-ins whose input names the one file they change.
PATH_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path",
              "NotebookEdit": "notebook_path"}
# Built-ins that change no file.
PURE_TOOLS = frozenset({"Read", "Glob", "Grep", "LS", "TodoWrite", "WebFetch", "WebSearch",
                        "NotebookRead", "Agent", "Task", "ExitPlanMode", "AskUserQuestion",
                        "Skill", "SlashCommand", "BashOutput"})
_SKIP_DIRS = frozenset({".git"})


def snapshot(folder: Path) -> dict[str, Stamp]:
    """Every file and link below `folder` (relative posix path -> stamp), without following
    links."""
    out: dict[str, Stamp] = {}
    stack = [(str(folder), "")]
    while stack:
        absdir, reldir = stack.pop()
        try:
            entries = os.scandir(absdir)
        except OSError:
            continue
        with entries:
            for entry in entries:
                rel = f"{reldir}{entry.name}"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if entry.name not in _SKIP_DIRS:
                        stack.append((entry.path, rel + "/"))
                    continue
                out[rel] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
    return out


def changed(before: dict[str, Stamp], after: dict[str, Stamp]) -> set[str]:
    gone = before.keys() - after.keys()
    return gone | {p for p, s in after.items() if before.get(p) != s}


class RunChanges:
    """The files of one run, as workspace-root-relative posix paths."""

    def __init__(self, root: Path, workspace_dir: Path, lock_path: Path,
                 journal: Path | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.workspace_dir = Path(os.path.realpath(workspace_dir))
        self.lock_path = lock_path
        self.journal = journal
        self.paths: set[str] = set()
        self.outputs: set[str] = set()  # written by tools (may be ignored by .gitignore)
        self._lock = None

    def _rel(self, path: str | os.PathLike) -> str | None:
        p = Path(path)
        if not p.is_absolute():
            p = self.workspace_dir / p
        # the folder part is resolved so /tmp and /private/tmp are one place; the last part is
        # kept, as a snapshot sees it (a link itself may be what changed)
        p = Path(os.path.realpath(p.parent)) / p.name
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return None  # outside the workspace: not versioned

    def add(self, *paths: str | os.PathLike, output: bool = False) -> None:
        """Count files as this run's (absolute, or relative to the project's workspace)."""
        new = []
        for path in paths:
            rel = self._rel(path)
            if rel is None or rel in self.paths or rel.startswith(".llmunix/"):
                continue
            self.paths.add(rel)
            if output:
                self.outputs.add(rel)
            new.append(rel)
        if new and self.journal is not None:
            try:
                with open(self.journal, "a", encoding="utf-8") as fh:
                    fh.write("".join(p + "\n" for p in new))
            except OSError:
                pass  # the run still knows them; only a kill would lose the list

    @contextmanager
    def effects(self) -> Iterator[None]:
        """Hold the project's effects lock (reentrant in this process)."""
        if self._lock is None:
            from filelock import FileLock

            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.lock_path))
        with self._lock:
            yield

    @contextmanager
    def opaque(self) -> Iterator[None]:
        """Run a tool whose writes are unknown: what changed in the workspace folder meanwhile
        is this run's."""
        with self.effects():
            before = snapshot(self.workspace_dir)
            try:
                yield
            finally:
                after = snapshot(self.workspace_dir)
                self.add(*(self.workspace_dir / p for p in sorted(changed(before, after))),
                         output=True)

    def note(self, name: str, tool_input: object) -> None:
        """A call some other program ran (the Claude CLI's own Write and Edit): its path."""
        key = PATH_TOOLS.get(name)
        if key and isinstance(tool_input, dict) and isinstance(tool_input.get(key), str):
            target = tool_input[key]
            if not os.path.isabs(target):
                target = os.path.join(self.workspace_dir, target)
            self.add(os.path.realpath(target), output=True)

    @contextmanager
    def then(self, paths) -> Iterator[None]:
        """Hold the effects lock for a call that reports the files it changed (`paths()`)."""
        with self.effects():
            try:
                yield
            finally:
                self.add(*paths())

    @contextmanager
    def tool(self, name: str, tool_input: object) -> Iterator[None]:
        """Wrap one tool call by the kind of its effects."""
        if name in PURE_TOOLS:
            yield
            return
        key = PATH_TOOLS.get(name)
        if key and isinstance(tool_input, dict) and isinstance(tool_input.get(key), str):
            target = tool_input[key]
            if not os.path.isabs(target):
                target = os.path.join(self.workspace_dir, target)
            with self.effects():
                try:
                    yield
                finally:  # through a link, the file it leads to is what changed
                    self.add(os.path.realpath(target), output=True)
            return
        with self.opaque():
            yield
