"""The workspace lock (llmunix/workspace/flock.py): one holder at a time across processes,
reentrant in its holding thread, and never stale - a killed holder's lock is free at once."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from llmunix.workspace.flock import FileLock

# Tries the lock without waiting: prints "free" or "held".
TRY = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held")
"""


def other_process_sees(path) -> str:
    return subprocess.run([sys.executable, "-c", TRY, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_held_lock_excludes_other_processes_until_released(tmp_path):
    lock = FileLock(tmp_path / "git.lock")
    assert other_process_sees(tmp_path / "git.lock") == "free"
    with lock:
        with lock:  # reentrant: a memory write holds it across its commit
            assert lock.depth == 2
            assert other_process_sees(tmp_path / "git.lock") == "held"
        assert lock.depth == 1
        assert other_process_sees(tmp_path / "git.lock") == "held"  # still the outer hold
    assert other_process_sees(tmp_path / "git.lock") == "free"
    assert not lock.is_locked


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    path = tmp_path / "git.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from llmunix.workspace.flock import FileLock\n"
         "l = FileLock(sys.argv[1]); l.acquire(); print('locked', flush=True); time.sleep(600)",
         str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert other_process_sees(path) == "held"
        with pytest.raises(TimeoutError, match="still locked after 0 s"):
            FileLock(path, timeout=0).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert path.exists()  # the file stays; the lock went with the process
    with FileLock(path) as lock:
        assert lock.is_locked


def test_a_hold_belongs_to_its_thread(tmp_path):
    lock = FileLock(tmp_path / "effects.lock")
    held, done = threading.Event(), threading.Event()

    def holder():
        with lock:
            held.set()
            done.wait()

    worker = threading.Thread(target=holder)
    worker.start()
    try:
        assert held.wait(60)
        assert not lock.is_locked  # not this thread's: it would wait, not re-enter
        assert other_process_sees(tmp_path / "effects.lock") == "held"
    finally:
        done.set()
        worker.join()
    assert other_process_sees(tmp_path / "effects.lock") == "free"


def test_releasing_an_unheld_lock_is_an_error(tmp_path):
    lock = FileLock(tmp_path / "x.lock")
    try:
        lock.release()
    except RuntimeError as exc:
        assert "not locked" in str(exc)
    else:
        raise AssertionError("release without acquire passed")
