"""Which files one run changed, exactly, while other runs change files beside it.

Tools whose effect is named by their input (Write, Edit, ...) add their path. Tools whose effect
is opaque (Bash, command and python tool specs) run between two snapshots of the project's
workspace folder (path -> inode, size, mtime, ctime, mode); every path that differs is theirs.
Both kinds take the project's effects lock (a file lock shared by every llmunix process on the
workspace), so no other run's tool writes into the window between two snapshots: under N
concurrent runs, opaque tools of one project run one at a time, and everything else runs in
parallel. Each path is also appended to the run's journal, so a killed run's files are known
to the next command that commits them. An opaque tool's "before" snapshot is saved next to the
journal (`<trace_id>.window`) while it runs: if the run is killed inside the window, whoever takes
the effects lock next compares it with the folder as the dead tool left it (nobody else could
write there meanwhile) and the difference is still that run's (run/journal.py)."""

from __future__ import annotations

import contextlib
import marshal
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from llmunix.workspace.paths import realpath_below

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


def save_window(path: Path, folder: Path, before: dict[str, Stamp]) -> None:
    """The snapshot an opaque tool started from, for the case its run dies inside it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(marshal.dumps((str(folder), before)))
    os.replace(tmp, path)  # whole or absent: a kill while writing leaves no half window


def window_changes(path: Path) -> tuple[Path, set[str]] | None:
    """(folder, paths changed below it since the saved snapshot); None when unreadable."""
    try:
        folder, before = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(folder, str) or not isinstance(before, dict):
        return None
    return Path(folder), changed(before, snapshot(Path(folder)))


class RunChanges:
    """The files of one run, as workspace-root-relative posix paths."""

    def __init__(self, root: Path, workspace_dir: Path, lock_path: Path,
                 journal: Path | None = None,
                 on_lock: Callable[[], None] | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.workspace_dir = Path(os.path.realpath(workspace_dir))
        self._work = str(self.workspace_dir)
        self._root_prefix = str(self.root).rstrip(os.sep) + os.sep
        self.lock_path = lock_path
        self.journal = journal
        self.window = journal.with_suffix(".window") if journal is not None else None
        self.on_lock = on_lock  # settles what dead runs left (once the lock is ours)
        self.paths: set[str] = set()
        self.outputs: set[str] = set()  # written by tools (may be ignored by .gitignore)
        self._lock = None
        self._journal_fd: int | None = None  # the journal, open for appends once one is made

    def _rel(self, path: str | os.PathLike) -> str | None:
        text = os.fspath(path).rstrip(os.sep) or os.sep
        if not os.path.isabs(text):
            text = os.path.join(self._work, text)
        # the folder part is resolved so /tmp and /private/tmp are one place; the last part is
        # kept, as a snapshot sees it (a link itself may be what changed)
        folder, name = os.path.split(text)
        real = os.path.join(realpath_below(self._work, folder), name)
        if not real.startswith(self._root_prefix):
            return None  # outside the workspace: not versioned
        return os.path.normpath(real[len(self._root_prefix):]).replace(os.sep, "/")

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
            try:  # unbuffered appends to a descriptor kept for the run: a kill loses none
                if self._journal_fd is None:
                    self._journal_fd = os.open(
                        self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                        0o666)
                os.write(self._journal_fd, "".join(p + "\n" for p in new).encode("utf-8"))
            except OSError:
                pass  # the run still knows them; only a kill would lose the list

    def close(self) -> None:
        """Close the journal's descriptor (the run is over; `add` would open it again)."""
        fd, self._journal_fd = self._journal_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _file_lock(self):
        if self._lock is None:
            from llmunix.workspace.flock import FileLock

            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.lock_path))
        return self._lock

    @contextmanager
    def effects(self) -> Iterator[None]:
        """Hold the project's effects lock (reentrant in this process)."""
        lock = self._file_lock()
        with lock:
            if self.on_lock is not None and lock.depth == 1:
                self.on_lock()
            yield

    @contextmanager
    def effects_now(self) -> Iterator[bool]:
        """Hold the effects lock if it is free at once (yields True); yields False, holding
        nothing, while another holder has it (a caller that must not wait runs elsewhere)."""
        lock = self._file_lock()
        if not lock.try_acquire():
            yield False
            return
        try:
            if self.on_lock is not None and lock.depth == 1:
                self.on_lock()
            yield True
        finally:
            lock.release()

    def needs_lock(self, name: str) -> bool:
        """Whether a call of `name` changes files (and so takes the effects lock)."""
        return name not in PURE_TOOLS

    @contextmanager
    def opaque(self) -> Iterator[None]:
        """Run a tool whose writes are unknown: what changed in the workspace folder meanwhile
        is this run's."""
        with self.effects():
            before = snapshot(self.workspace_dir)
            if self.window is not None:
                with contextlib.suppress(OSError):  # only a kill inside the call would miss it
                    save_window(self.window, self.workspace_dir, before)
            try:
                yield
            finally:
                after = snapshot(self.workspace_dir)
                self.add(*(self.workspace_dir / p for p in sorted(changed(before, after))),
                         output=True)
                if self.window is not None:
                    self.window.unlink(missing_ok=True)

    def note(self, name: str, tool_input: object) -> None:
        """A call some other program ran (the Claude CLI's own Write and Edit): its path."""
        key = PATH_TOOLS.get(name)
        if key and isinstance(tool_input, dict) and isinstance(tool_input.get(key), str):
            target = tool_input[key]
            if not os.path.isabs(target):
                target = os.path.join(self.workspace_dir, target)
            self.add(realpath_below(self._work, target), output=True)

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
                    self.add(realpath_below(self._work, target), output=True)
            return
        with self.opaque():
            yield
