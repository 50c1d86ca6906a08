"""An exclusive lock on a file, held through `flock(2)`: what serializes llmunix processes
working on one workspace (git commits, memory writes, a project's tool effects).

The kernel drops the lock when its holder's file is closed, so a killed process never leaves a
stale lock behind: the lock file itself may stay, and is harmless. Reentrant per thread (a
memory operation holds it across its writes and its commit); two threads of one process each
open the file and exclude each other like two processes. Waits until the lock is free, or
for at most `timeout` seconds (then TimeoutError); `try_acquire` never waits.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path


class FileLock:
    def __init__(self, path: str | Path, timeout: float | None = None) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._local = threading.local()

    def acquire(self) -> None:
        self._take(self._lock)

    def try_acquire(self) -> bool:
        """Take the lock only if that needs no wait: False (nothing held) while another holder
        has it."""
        return self._take(_lock_now)

    def _take(self, lock) -> bool:
        """Hold the lock once more, or open the file and `lock(fd)` it (False: not taken)."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            taken = lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            os.close(fd)
            return False
        self._local.fd = fd
        self._local.depth = 1
        return True

    def _lock(self, fd: int) -> bool:
        if self.timeout is None:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    return True
                except InterruptedError:  # a signal while waiting: wait again
                    continue
        deadline = time.monotonic() + self.timeout
        while not _lock_now(fd):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.path} is still locked after {self.timeout:g} s")
            time.sleep(0.05)
        return True

    def release(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if not depth:
            raise RuntimeError(f"{self.path} is not locked by this thread")
        self._local.depth = depth - 1
        if depth == 1:
            fd, self._local.fd = self._local.fd, None
            os.close(fd)  # closing the only descriptor drops the flock

    @property
    def depth(self) -> int:
        """How many holds of this thread are open (0: it does not hold the lock)."""
        return getattr(self._local, "depth", 0)

    @property
    def is_locked(self) -> bool:
        """Held by this thread."""
        return self.depth > 0

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_now(fd: int) -> bool:
    """flock `fd` if no other holder has it: False (and no wait) while one does."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, InterruptedError):
        return False
    return True
