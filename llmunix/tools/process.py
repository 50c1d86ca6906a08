"""Running a child process with a timeout that kills its whole process group.

Every child started here is known until it ends, so Ctrl-C can end them all at once
(`kill_all`), wherever the call that waits for one is blocked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()

MAX_OUTPUT_CHARS = 1_000_000


@dataclass(frozen=True)
class ProcessResult:
    output: str  # stdout then stderr, decoded leniently
    exit_code: int | None  # None when it timed out
    timed_out: bool
    duration_s: float


def run_process(
    argv: list[str],
    *,
    cwd: str | os.PathLike,
    timeout_s: float,
    env: dict[str, str] | None = None,
    stdin_text: str | None = None,
) -> ProcessResult:
    """Run argv (never through a shell). On timeout, SIGKILL the whole group, children included."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own process group, so a timeout reaches grandchildren too
    )
    with _live_lock:
        _live.add(proc)
    timed_out = False
    try:
        out, err = proc.communicate(stdin_text.encode() if stdin_text is not None else None,
                                    timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        with _live_lock:
            _live.discard(proc)
    text = out.decode("utf-8", "replace")
    if err:
        sep = "" if not text or text.endswith("\n") else "\n"
        text = f"{text}{sep}{err.decode('utf-8', 'replace')}"
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f"\n[output cut at {MAX_OUTPUT_CHARS:,} characters]"
    return ProcessResult(
        text,
        None if timed_out else proc.returncode,
        timed_out,
        time.perf_counter() - started,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def kill_all() -> int:
    """End every child started here that still runs, with its whole process group (Ctrl-C).
    Returns how many there were. Safe to call from a signal handler or any thread."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if proc.poll() is None:
            _kill_group(proc)
    return len(procs)


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL every descendant of `pid` (deepest first, before they can be re-parented),
    then `pid`: for a process that starts children of its own, such as the Claude Code CLI."""
    order, todo = [], [pid]
    while todo:
        current = todo.pop()
        order.append(current)
        todo += _children(current)
    for target in reversed(order):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)
