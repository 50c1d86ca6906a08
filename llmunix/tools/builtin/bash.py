"""Bash: one shell command in the workspace, its process group killed on timeout."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from llmunix.policy.gate import Policy
from llmunix.tools.builtin.common import _KILL_GRACE_S, MAX_OUTPUT_CHARS, _ToolFailure
from llmunix.tools.result import ToolResult

# -- Bash ---------------------------------------------------------------------------------------


def _bash(args: dict, policy: Policy) -> ToolResult:
    timeout = args["timeout"] / 1000  # run_builtin has settled it
    if not policy.workspace.is_dir():
        raise _ToolFailure(f"the workspace {policy.workspace} does not exist")
    data, returncode, timed_out = _run_shell(args["command"], policy.workspace, timeout)
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + (
            f"\n... [output truncated: showing the first {MAX_OUTPUT_CHARS} characters]"
        )
    notes = []
    if timed_out:
        notes.append(f"Command timed out after {timeout:g} s; its process group was killed")
    elif returncode != 0:
        killed = f" (killed by signal {-returncode})" if returncode < 0 else ""
        notes.append(f"exit code {returncode}{killed}")
    text = "\n".join([text, *notes] if text else notes) or "(no output)"
    return ToolResult(text, is_error=timed_out or returncode != 0, exit_code=returncode)


def _run_shell(command: str, cwd: Path, timeout: float) -> tuple[bytes, int, bool]:
    """Run `bash -c command` in its own process group; return (output, exit code, timed out).

    The whole group is killed when the shell ends or the time is up, so background children
    neither outlive the call nor keep its output pipe open.
    """
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    kept = bytearray()
    limit = MAX_OUTPUT_CHARS * 4 + 4  # bytes; enough for MAX_OUTPUT_CHARS characters of UTF-8
    deadline = time.monotonic() + timeout
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        pipe_open = True

        def read_available(wait: float) -> None:
            nonlocal pipe_open
            if not pipe_open:  # the shell closed its output but runs on: poll its exit
                time.sleep(min(wait, 0.005))
                return
            if sel.select(wait):
                chunk = os.read(fd, 65536)
                if not chunk:
                    pipe_open = False
                    sel.unregister(fd)
                elif len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])

        try:
            while not _has_exited(proc):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                read_available(min(remaining, 0.05))
        finally:
            # The shell is not reaped yet, so its process group id cannot have been reused.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            grace_end = time.monotonic() + _KILL_GRACE_S
            while pipe_open and time.monotonic() < grace_end:
                read_available(0.05)
            proc.wait()
            proc.stdout.close()
    return bytes(kept), proc.returncode, timed_out


def _has_exited(proc: subprocess.Popen) -> bool:
    """Whether the shell has ended, without reaping it where the OS allows that."""
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True
    return proc.poll() is not None
