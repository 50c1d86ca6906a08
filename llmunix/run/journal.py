"""The journal of runs in progress: `.llmunix/runs/<trace_id>.json` (who, which trace) and
`<trace_id>.paths` (the files the run changed, appended as it goes). A live run holds an
exclusive lock on its journal file from before the file has its name until it is removed, so
"the lock can be taken" means "its process is gone", whatever happened to the pid since.
A run removes its journal once its commit is made; one that is still there after its process
ended is a run that was killed or could not commit: the next command finds it, marks its trace
`interrupted` if it was still `running`, and commits it. A run killed inside an opaque tool
(Bash, a command tool) also leaves `<trace_id>.window`, the snapshot that tool started from:
settled into `.paths` by the next run to take that project's effects lock, or by the recovery."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from llmunix.kernel.changes import window_changes

RUNS_DIR = ".llmunix/runs"


@dataclass
class Journal:
    """The open journal of the run of this process."""

    json_path: Path
    paths_path: Path
    fd: int

    def close(self, *, remove: bool) -> None:
        if self.fd < 0:
            return
        if remove:
            self.paths_path.unlink(missing_ok=True)
            self.json_path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = -1


def open_journal(root: Path, trace_id: str, record: dict) -> Journal:
    folder = root / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{trace_id}.json"
    tmp = folder / f".{trace_id}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({**record, "pid": os.getpid()}).encode())
        os.replace(tmp, final)  # locked before it has its name: never seen unlocked alive
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return Journal(final, folder / f"{trace_id}.paths", fd)


@dataclass
class Orphan:
    """A journal whose run's process is gone."""

    record: dict
    paths: list[str]
    json_path: Path
    fd: int  # held locked while it is recovered

    def done(self) -> None:
        self.json_path.with_suffix(".paths").unlink(missing_ok=True)
        self.json_path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _lock_if_dead(path: Path) -> int | None:
    """A descriptor holding the lock of journal `path` when its run's process is gone; None
    while the run lives, or when the journal is gone (its run finished meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)  # its run is alive
        return None
    if not path.exists():  # finished and removed between listing and locking
        os.close(fd)
        return None
    return fd


def orphans(root: Path) -> list[Orphan]:
    """Journals of runs whose process is gone, each locked by this process until `done()` or
    `release()`. Cheap when there are none: one listing of a small folder."""
    folder = root / RUNS_DIR
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return []
    found = []
    for name in names:
        path = folder / name
        fd = _lock_if_dead(path)
        if fd is None:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError
        except (OSError, ValueError):
            record = {}
        try:
            listed = path.with_suffix(".paths").read_text(encoding="utf-8").splitlines()
        except OSError:
            listed = []
        found.append(Orphan(record, [p for p in listed if p], path, fd))
    return found


def _window_paths(root: Path, found: tuple[Path, set[str]] | None) -> list[str]:
    """Root-relative paths an opaque tool of a dead run changed, from its saved window."""
    if found is None:
        return []
    folder, changed = found
    out = []
    for rel in sorted(changed):
        path = os.path.relpath(os.path.join(folder, rel), root)
        if not path.startswith(".."):
            out.append(Path(path).as_posix())
    return out


def settle_window(root: Path, window: Path, paths_file: Path, found=None) -> list[str]:
    """Add what a dead run's interrupted opaque tool changed to that run's journal; call with
    the project's effects lock held. Returns the paths added."""
    if found is None and window.exists():
        found = window_changes(window)
    paths = _window_paths(root, found)
    if paths:
        with open(paths_file, "a", encoding="utf-8") as fh:
            fh.write("".join(p + "\n" for p in paths))
    window.unlink(missing_ok=True)
    return paths


def settle_windows(root: Path, workspace_dir: Path) -> int:
    """With the effects lock of the project at `workspace_dir` just taken: settle the windows
    that dead runs left on it, before anything else can write there. One listing when none.
    Returns how many windows the folder held (0: there was nothing to settle)."""
    folder = root / RUNS_DIR
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".window")]
    except OSError:
        return 0
    for name in names:
        window = folder / name
        journal = window.with_suffix(".json")
        if not journal.exists():
            window.unlink(missing_ok=True)  # its run ended; nothing to settle
            continue
        fd = _lock_if_dead(journal)
        if fd is None:  # alive, or being recovered by a command that settles it itself
            continue
        try:
            found = window_changes(window)
            if found is not None and Path(os.path.realpath(found[0])) != \
                    Path(os.path.realpath(workspace_dir)):
                continue  # another project's: settled under that project's lock
            settle_window(root, window, window.with_suffix(".paths"), found)
        finally:
            os.close(fd)
    return len(names)


# A folder's time is that of the kernel's coarse clock: a change made soon after a listing may
# carry the time the listing saw. Only a time this far before the listing proves "unchanged".
_SETTLED_TIME_NS = 1_000_000_000


class WindowSettler:
    """`settle_windows` as a run's `on_lock` (each time it takes the effects lock): the runs
    folder is listed again only when it changed since a listing that found no window. A window
    is made by a rename into that folder, which changes its time; a window that was there is
    always looked at again (its run may die at any time)."""

    def __init__(self, root: Path, workspace_dir: Path) -> None:
        self.root = root
        self.workspace_dir = workspace_dir
        self._folder = str(root / RUNS_DIR)
        self._clean_at: int | None = None  # the folder's time when a listing found no window

    def __call__(self) -> None:
        try:
            before = os.stat(self._folder).st_mtime_ns
        except OSError:
            before = None
        if before is not None and before == self._clean_at:
            return
        listed_at = time.time_ns()
        windows = settle_windows(self.root, self.workspace_dir)
        settled = before is not None and listed_at - before > _SETTLED_TIME_NS
        self._clean_at = before if windows == 0 and settled else None
