"""Running a child process with a timeout that kills its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

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
