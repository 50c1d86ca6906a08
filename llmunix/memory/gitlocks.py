"""Lock files git leaves behind. A git killed mid-commit leaves `.git/index.lock` (or a ref
lock), and every later git command that writes refuses to run while it is there. Before llmunix
commits (holding the workspace lock, so no llmunix git runs meanwhile), each such file is
checked: held by a live process - git keeps it open, or a git is running in this repository -
means wait, for a bounded time; held by nobody means a dead process left it: it is removed."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from llmunix.errors import GitError

LOCK_WAIT_S = 10.0


class GitLockError(GitError):
    """A git lock file held by a live process for longer than llmunix waits."""


def _lock_files(git_dir: Path) -> list[Path]:
    names = [git_dir / "index.lock", git_dir / "HEAD.lock", git_dir / "packed-refs.lock"]
    heads = git_dir / "refs" / "heads"
    with contextlib.suppress(OSError):
        names += [heads / n for n in os.listdir(heads) if n.endswith(".lock")]
    return [p for p in names if os.path.lexists(p)]


def _holders(lock: Path, root: Path) -> list[int]:
    """Processes that keep `lock` open, or git processes working in `root` (a git waiting for
    an editor or a hook has closed its lock file but still owns it). Linux's /proc; elsewhere
    a lock younger than LOCK_WAIT_S counts as held."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        try:
            age = time.time() - lock.lstat().st_mtime
        except OSError:
            return []
        return [0] if age < LOCK_WAIT_S else []
    target = str(lock)
    root_s = str(root)
    me = os.getpid()
    found: list[int] = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            comm = (proc / entry.name / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("git"):
            try:
                cwd = os.readlink(proc / entry.name / "cwd")
            except OSError:
                cwd = ""
            if cwd == root_s or cwd.startswith(root_s + os.sep):
                found.append(pid)
                continue
        try:
            fds = os.listdir(proc / entry.name / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(proc / entry.name / "fd" / fd)
            except OSError:
                continue
            if link == target:
                found.append(pid)
                break
    return found


def clear_stale_locks(root: Path, git_dir: Path, *, wait_s: float = LOCK_WAIT_S) -> list[str]:
    """Remove lock files of dead processes; wait (at most `wait_s`) for live ones. Returns the
    lock files removed (workspace-relative). Raises GitLockError when a live one stays."""
    removed: list[str] = []
    deadline = time.monotonic() + wait_s
    while True:
        locks = _lock_files(git_dir)
        if not locks:
            return removed
        held = []
        for lock in locks:
            pids = _holders(lock, root)
            if pids:
                held.append((lock, pids))
                continue
            try:
                lock.unlink()
                removed.append(os.path.relpath(lock, root))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise GitLockError(f"cannot remove the stale {os.path.relpath(lock, root)}: "
                                   f"{exc.strerror}", hint="remove it by hand") from exc
        if not held:
            return removed
        if time.monotonic() >= deadline:
            lock, pids = held[0]
            who = f"process {pids[0]}" if pids[0] else "another process"
            raise GitLockError(
                f"{os.path.relpath(lock, root)} is held by {who} (still after {wait_s:g} s)",
                hint="let that git command finish, or stop it",
            )
        time.sleep(0.05)
