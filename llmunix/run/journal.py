"""The journal of runs in progress: `.llmunix/runs/<trace_id>.json` (who, which trace) and
`<trace_id>.paths` (the files the run changed, appended as it goes). A live run holds an
exclusive lock on its journal file from before the file has its name until it is removed, so
"the lock can be taken" means "its process is gone", whatever happened to the pid since.
A run removes its journal once its commit is made; one that is still there after its process
ended is a run that was killed or could not commit: the next command finds it, marks its trace
`interrupted` if it was still `running`, and commits it."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

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
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # its run is alive
            continue
        if not path.exists():  # finished and removed between listing and locking
            os.close(fd)
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
